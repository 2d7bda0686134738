//! All partition logs of a broker, spread over its data directories.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::config::LogConfig;
use crate::error::{BrokerError, IoContext, Result};

use super::partition::{PartitionLog, now_ms};

pub type PartitionKey = (String, u32);

/// How long a tombstone stays in a compacted log (delete.retention.ms).
const DELETE_RETENTION_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug)]
pub struct LogManager {
    data_dirs: Vec<PathBuf>,
    logs: RwLock<HashMap<PartitionKey, Arc<PartitionLog>>>,
    /// Data directories where a log's I/O failed since the broker started
    /// (`kafka_log_logmanager_offlinelogdirectorycount`). Unlike Kafka, kmon
    /// does not stop using such a directory: the failed request fails, the
    /// error is logged, and the directory is counted here until restart.
    failed_dirs: Mutex<BTreeSet<PathBuf>>,
    /// Bytes of torn or corrupt tails that recovery cut off at start-up:
    /// non-zero means this start lost records the last one had.
    recovery_cut_bytes: u64,
    /// The last run closed every log and left [`CLEAN_SHUTDOWN_MARKER`] in
    /// every data directory (or there were no logs yet).
    clean_shutdown: bool,
}

/// Written into each data directory once every log is closed (Kafka's
/// `.kafka_cleanshutdown`), removed at start: its absence means the last
/// run was killed or crashed, so appends not yet synced may be gone.
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kmon_clean_shutdown";

fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// `<topic>-<partition>` → (topic, partition); other names are not logs.
pub fn parse_partition_dir(name: &str) -> Option<PartitionKey> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic.to_string(), partition.parse().ok()?))
}

impl LogManager {
    /// Opens every partition found in the data directories, recovering them
    /// in parallel. `config_for` gives each topic's log config (or `None`
    /// for directories of topics that no longer exist: they are removed).
    pub fn open(
        data_dirs: &[PathBuf],
        config_for: impl Fn(&str) -> Option<Arc<LogConfig>> + Sync,
    ) -> Result<LogManager> {
        let marked = data_dirs.iter().all(|dir| dir.join(CLEAN_SHUTDOWN_MARKER).exists());
        let mut found = Vec::new();
        for dir in data_dirs {
            std::fs::create_dir_all(dir).storage(|| format!("creating data dir {}", dir.display()))?;
            for entry in std::fs::read_dir(dir).storage(|| format!("listing {}", dir.display()))? {
                let entry = entry.storage(|| format!("listing {}", dir.display()))?;
                let name = entry.file_name().to_string_lossy().to_string();
                if !entry.path().is_dir() {
                    continue;
                }
                if name.ends_with("-delete") {
                    // A deletion interrupted by a crash: finish it.
                    let _ = std::fs::remove_dir_all(entry.path());
                    continue;
                }
                if let Some(key) = parse_partition_dir(&name) {
                    found.push((key, entry.path()));
                }
            }
        }
        let results: Vec<Result<Option<(PartitionKey, PartitionLog, u64)>>> = std::thread::scope(|scope| {
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
            let chunks: Vec<Vec<(PartitionKey, PathBuf)>> =
                (0..workers).map(|w| found.iter().skip(w).step_by(workers).cloned().collect()).collect();
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    let config_for = &config_for;
                    scope.spawn(move || {
                        chunk
                            .into_iter()
                            .map(|((topic, partition), path)| {
                                let Some(config) = config_for(&topic) else {
                                    tracing::warn!(dir = %path.display(), "removing log of a topic that does not exist");
                                    std::fs::remove_dir_all(&path).storage(|| format!("removing {}", path.display()))?;
                                    return Ok(None);
                                };
                                let (log, truncated) = PartitionLog::open(&topic, partition, &path, config)?;
                                if truncated > 0 {
                                    tracing::warn!(
                                        topic = %topic, partition, truncated_bytes = truncated,
                                        "cut a torn or corrupt tail off the log"
                                    );
                                }
                                Ok(Some(((topic, partition), log, truncated)))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("recovery thread")).collect()
        });
        let mut logs = HashMap::new();
        let mut recovery_cut_bytes = 0;
        for result in results {
            if let Some((key, log, truncated)) = result? {
                logs.insert(key, Arc::new(log));
                recovery_cut_bytes += truncated;
            }
        }
        // From here on a crash is an unclean shutdown: the markers go, durably.
        for dir in data_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_MARKER);
            match std::fs::remove_file(&marker) {
                Ok(()) => sync_dir(dir).storage(|| format!("syncing {}", dir.display()))?,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err).storage(|| format!("removing {}", marker.display())),
            }
        }
        Ok(LogManager {
            data_dirs: data_dirs.to_vec(),
            clean_shutdown: marked || logs.is_empty(),
            logs: RwLock::new(logs),
            failed_dirs: Mutex::default(),
            recovery_cut_bytes,
        })
    }

    /// Whether the last run shut down cleanly (every log closed), as the
    /// markers said when the logs were opened.
    pub fn clean_shutdown(&self) -> bool {
        self.clean_shutdown
    }

    /// Bytes recovery cut off torn or corrupt log tails when this process
    /// opened its logs (the broker then registers as shut down uncleanly).
    pub fn recovery_cut_bytes(&self) -> u64 {
        self.recovery_cut_bytes
    }

    pub fn get(&self, topic: &str, partition: u32) -> Option<Arc<PartitionLog>> {
        self.logs.read().get(&(topic.to_string(), partition)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<PartitionLog>> {
        self.logs.read().values().cloned().collect()
    }

    /// Creates an empty partition log in the least used data directory
    /// (fewest bytes of logs, then fewest partitions).
    pub fn create(&self, topic: &str, partition: u32, config: Arc<LogConfig>) -> Result<Arc<PartitionLog>> {
        let mut logs = self.logs.write();
        if let Some(existing) = logs.get(&(topic.to_string(), partition)) {
            return Ok(existing.clone());
        }
        let dir = self.least_used_dir(&logs);
        let path = dir.join(format!("{topic}-{partition}"));
        let (log, _) = PartitionLog::open(topic, partition, &path, config)?;
        let log = Arc::new(log);
        logs.insert((topic.to_string(), partition), log.clone());
        Ok(log)
    }

    fn least_used_dir(&self, logs: &HashMap<PartitionKey, Arc<PartitionLog>>) -> &Path {
        let usage = |dir: &Path| {
            let mine: Vec<_> = logs.values().filter(|l| l.dir().parent() == Some(dir)).collect();
            (mine.iter().map(|l| l.size_bytes()).sum::<u64>(), mine.len())
        };
        self.data_dirs.iter().min_by_key(|dir| usage(dir)).expect("at least one data dir")
    }

    /// Removes a partition's log: renamed first (atomic), then deleted.
    /// Returns the log that was removed, if there was one.
    pub fn delete(&self, topic: &str, partition: u32) -> Result<Option<Arc<PartitionLog>>> {
        let log = self.logs.write().remove(&(topic.to_string(), partition));
        if let Some(log) = &log {
            let doomed = log.dir().with_file_name(format!("{topic}-{partition}.{}-delete", now_ms()));
            std::fs::rename(log.dir(), &doomed).storage(|| format!("renaming {}", log.dir().display()))?;
            std::fs::remove_dir_all(&doomed).storage(|| format!("removing {}", doomed.display()))?;
        }
        Ok(log)
    }

    pub fn flush_all(&self) {
        for log in self.all() {
            if let Err(err) = log.flush() {
                // A log deleted meanwhile (topic deleted, replica moved away)
                // has no directory left to flush into: not an error.
                if self.note_failure(&log, &err) {
                    tracing::error!(topic = %log.topic, partition = log.partition, error = %err, "flush failed");
                }
            }
        }
    }

    /// Counts the data directory of `log` as failed when `err` is an I/O
    /// error (a refused batch is not) of a log still in use; whether it was.
    pub fn note_failure(&self, log: &Arc<PartitionLog>, err: &BrokerError) -> bool {
        let deleted = self.get(&log.topic, log.partition).is_none_or(|current| !Arc::ptr_eq(&current, log));
        if deleted || !matches!(err, BrokerError::Storage { .. }) {
            return !deleted;
        }
        if let Some(dir) = log.dir().parent() {
            self.failed_dirs.lock().insert(dir.to_path_buf());
        }
        true
    }

    /// Data directories where a log's I/O failed since start.
    pub fn failed_dir_count(&self) -> usize {
        self.failed_dirs.lock().len()
    }

    pub fn retention_all(&self) -> usize {
        let now = now_ms();
        for log in self.all() {
            if let Err(err) = super::cleaner::clean(&log, now, DELETE_RETENTION_MS) {
                self.note_failure(&log, &err);
                tracing::error!(topic = %log.topic, partition = log.partition, error = %err, "log cleaning failed");
            }
        }
        self.all()
            .iter()
            .map(|log| {
                log.apply_retention(now).unwrap_or_else(|err| {
                    self.note_failure(log, &err);
                    tracing::error!(topic = %log.topic, partition = log.partition, error = %err, "retention failed");
                    0
                })
            })
            .sum()
    }

    /// Closes every log; when all closed, marks each data directory as
    /// shut down cleanly.
    pub fn close_all(&self) {
        let mut closed = true;
        for log in self.all() {
            if let Err(err) = log.close() {
                tracing::error!(topic = %log.topic, partition = log.partition, error = %err, "close failed");
                closed = false;
            }
        }
        if !closed {
            return;
        }
        for dir in &self.data_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_MARKER);
            let written = std::fs::File::create(&marker).and_then(|f| f.sync_all()).and_then(|()| sync_dir(dir));
            if let Err(err) = written {
                tracing::error!(path = %marker.display(), error = %err, "could not mark a clean shutdown");
            }
        }
    }

    pub fn data_dirs(&self) -> &[PathBuf] {
        &self.data_dirs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shutdown_is_clean_only_when_the_last_run_closed_every_log() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        let config = Arc::new(crate::config::BrokerConfig::default().default_log_config());
        let open = || LogManager::open(&dirs, |_| Some(config.clone())).unwrap();
        let logs = open();
        assert!(logs.clean_shutdown(), "no logs yet: nothing to lose");
        logs.create("t", 0, config.clone()).unwrap();
        drop(logs); // killed: never closed
        let logs = open();
        assert!(!logs.clean_shutdown());
        logs.close_all();
        assert!(dir.path().join(CLEAN_SHUTDOWN_MARKER).exists());
        let logs = open();
        assert!(logs.clean_shutdown());
        assert!(!dir.path().join(CLEAN_SHUTDOWN_MARKER).exists(), "a crash from now on is unclean");
        drop(logs);
        assert!(!open().clean_shutdown());
    }

    #[test]
    fn partition_dir_names() {
        assert_eq!(parse_partition_dir("orders-3"), Some(("orders".into(), 3)));
        assert_eq!(parse_partition_dir("my-topic-12"), Some(("my-topic".into(), 12)));
        assert_eq!(parse_partition_dir("orders-3.1700-delete"), None);
        assert_eq!(parse_partition_dir("orders"), None);
        assert_eq!(parse_partition_dir("-3"), None);
    }

    #[test]
    fn an_io_error_counts_its_data_dir_as_failed_and_a_refusal_does_not() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let paths: Vec<PathBuf> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        let logs = LogManager::open(&paths, |_| None).unwrap();
        let config = Arc::new(crate::config::BrokerConfig::default().default_log_config());
        let a = logs.create("a", 0, config.clone()).unwrap();
        let b = logs.create("b", 0, config).unwrap();
        assert_eq!(logs.failed_dir_count(), 0);
        assert!(logs.note_failure(&a, &BrokerError::InvalidRequest("refused".into())));
        assert_eq!(logs.failed_dir_count(), 0, "a refused request is not a disk failure");
        let io = || BrokerError::Storage { context: "writing".into(), source: std::io::Error::other("EIO") };
        assert!(logs.note_failure(&a, &io()));
        assert!(logs.note_failure(&a, &io()));
        assert_eq!(logs.failed_dir_count(), 1, "one directory, however many errors");
        assert!(logs.note_failure(&b, &io()));
        assert_eq!(logs.failed_dir_count(), 2);
        // A log deleted meanwhile has nothing left to fail on.
        let deleted = logs.delete("a", 0).unwrap().unwrap();
        assert!(!logs.note_failure(&deleted, &io()));
    }
}
