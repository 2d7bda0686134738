//! The crate's error type.

use std::path::PathBuf;
use std::time::Duration;

/// What can stop a report, each naming what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("--out {}: unknown image format {extension:?}; use a .png or .svg file name", path.display())]
    UnknownFormat { path: PathBuf, extension: String },
    #[error("--since must be longer than 0s")]
    EmptyWindow,
    #[error("no history in the last {}: {detail}", humantime::format_duration(*since))]
    NoHistory { since: Duration, detail: String },
    #[error("reading {topic}: {context}")]
    Read {
        topic: &'static str,
        context: String,
        #[source]
        source: Box<kmon_client::ClientError>,
    },
    #[error("reading {topic}: {0}", topic = crate::history::TOPIC)]
    ReadTimeout(String),
    #[error("the bundled font could not be loaded")]
    Font,
    #[error("drawing {}: {message}", path.display())]
    Draw { path: PathBuf, message: String },
}
