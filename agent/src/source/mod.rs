//! The Linux files the collectors read themselves, where sysinfo gives
//! nothing (or other device names): one module per file, each a pure parser
//! of the file's text (so it is tested with text captured from real
//! machines, under `testdata/`) plus a `read` that opens the real file.
//!
//! | module | file | what |
//! |---|---|---|
//! | [`diskstats`] | `/proc/diskstats` | per block device: I/Os completed, sectors, time doing I/O |
//! | [`mounts`] | `/proc/mounts` | mounted file systems: device, mount point, type, options |
//! | [`net_speed`] | `/sys/class/net/IF/speed` | a NIC's link speed (Mb/s), when known |
//!
//! A malformed file is a [`SourceError`] naming the file (and line).

pub mod diskstats;
pub mod mounts;
pub mod net_speed;

use crate::collect::CollectError;

/// A source file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}: {text:?}")]
    Parse { path: String, line: usize, message: String, text: String },
}

impl From<SourceError> for CollectError {
    fn from(err: SourceError) -> Self {
        match &err {
            SourceError::Read { source, .. } => CollectError(format!("{err}: {source}")),
            SourceError::Parse { .. } => CollectError(err.to_string()),
        }
    }
}

/// Reads a whole source file.
fn read(path: &str) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|source| SourceError::Read { path: path.to_owned(), source })
}
