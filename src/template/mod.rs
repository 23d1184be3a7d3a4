//! Jinja2 templating (stub: only the filter set lives here for now).

pub mod filters;
