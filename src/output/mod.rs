//! What users and CI see: per-host reports (human or JSON Lines), the summary line, and the
//! exit code they imply. Data goes to stdout, messages for humans to stderr.

pub mod events;
pub mod monitor;
mod report;
mod style;

pub use report::{HostReport, Printer, Status, Summary};
pub use style::Style;

/// The current UTC time as RFC 3339, for logs.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// How results are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable text on stderr.
    #[default]
    Human,
    /// JSON Lines on stdout.
    Json,
}
