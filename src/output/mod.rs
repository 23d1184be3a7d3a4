//! What users and CI see: per-host reports (human or JSON Lines), the summary line, and the
//! exit code they imply. Data goes to stdout, messages for humans to stderr.

mod report;
mod style;

pub use report::{HostReport, Printer, Status, Summary};
pub use style::Style;

/// How results are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable text grouped by host.
    #[default]
    Human,
    /// One JSON object per host per line on stdout.
    Json,
}
