//! Optional timing log (`kmon tui --timings FILE`, or `KMON_TUI_TIMINGS`):
//! one line per measured event, `<kind> <microseconds>[ <detail>]`, for
//! `kmon bench tui`. Kinds:
//!
//! - `key`: from the input thread reading a key to the end of the first
//!   draw after the main loop handled it (the frame written and flushed to
//!   the terminal);
//! - `draw`: one whole `Terminal::draw` (render + diff + write);
//! - `data`: the reducer absorbing one refresh;
//! - `refresh`: the data task gathering one refresh (wall time), with the
//!   RPCs it sent (`rpcs=N`).
//!
//! Off (a no-op) without a file.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Cheap to clone; every clone appends to the same file.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    file: Option<Arc<Mutex<File>>>,
}

impl Timings {
    /// Appends to `path` (created if missing); `None` is off.
    pub fn open(path: Option<&Path>) -> std::io::Result<Timings> {
        let file = match path {
            Some(path) => Some(Arc::new(Mutex::new(File::options().create(true).append(true).open(path)?))),
            None => None,
        };
        Ok(Timings { file })
    }

    pub fn enabled(&self) -> bool {
        self.file.is_some()
    }

    pub fn record(&self, kind: &str, took: Duration, detail: &str) {
        let Some(file) = &self.file else { return };
        let line = if detail.is_empty() {
            format!("{kind} {}\n", took.as_micros())
        } else {
            format!("{kind} {} {detail}\n", took.as_micros())
        };
        // One write per line, so lines from the two tasks never interleave.
        let _ = file.lock().unwrap_or_else(|p| p.into_inner()).write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_line_per_record() {
        let dir = std::env::temp_dir().join(format!("kmon-tui-timings-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let timings = Timings::open(Some(&dir)).unwrap();
        timings.record("key", Duration::from_micros(1234), "");
        timings.clone().record("refresh", Duration::from_millis(2), "rpcs=3");
        Timings::default().record("draw", Duration::from_micros(1), "");
        assert_eq!(std::fs::read_to_string(&dir).unwrap(), "key 1234\nrefresh 2000 rpcs=3\n");
        let _ = std::fs::remove_file(&dir);
    }
}
