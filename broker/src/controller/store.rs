//! Durable Raft storage for the controller quorum (openraft storage v2):
//! [`LogStore`] is the Raft log plus the vote, [`StateMachineStore`] is the
//! [`ClusterState`] plus its snapshots.
//!
//! On-disk layout under `<dir>` (the controller passes `<data dir>/raft`):
//!
//! ```text
//! vote.json       the last vote; replaced atomically (temp file, fsync, rename, fsync dir)
//! committed.json  the last committed log id known here; replaced with a rename, not fsynced
//! log             append-only records, each [len: u32 LE][crc32c(json): u32 LE][json: LogRecord]
//! snapshot.json   {"meta": SnapshotMeta, "state": ClusterState}; replaced atomically
//! ```
//!
//! Invariants:
//! - A record of `log` is on disk (fsync) before openraft hears it is
//!   (`LogFlushed::log_io_completed`), and so is a vote before `save_vote`
//!   returns. Truncations and purges are records too, so replaying `log` from
//!   the start rebuilds the log exactly; a torn record at the tail (a crash
//!   in the middle of an append that was never acknowledged) is cut off on
//!   open.
//! - When most records of `log` are dead (purged or truncated entries), the
//!   file is rewritten atomically with only the live entries.
//! - `committed.json` is a hint: stale is fine, and on open it is dropped if
//!   it points past the last entry of the log.
//! - The state machine is in memory; only snapshots are written. On restart
//!   openraft loads the snapshot and re-applies the committed entries after
//!   it. Logs are purged only up to a snapshot that is already on disk.
//! - Every apply and every snapshot install publishes the new state on a
//!   `watch` channel.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Cursor, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, LogState, OptionalSend, RaftLogReader, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::TypeConfig;
use super::state::{ApplyResult, ClusterState, CommandOutcome, LeaderElections};

type NodeId = u64;

const VOTE_FILE: &str = "vote.json";
const COMMITTED_FILE: &str = "committed.json";
const LOG_FILE: &str = "log";
const SNAPSHOT_FILE: &str = "snapshot.json";
/// Record header: length and CRC-32C of the JSON body.
const HEADER_LEN: usize = 8;
/// The log file is rewritten when it holds more than this many records and
/// more than twice as many as there are live entries.
const COMPACT_MIN_RECORDS: usize = 1024;

/// Opens (or creates) the storage under `dir`: the log store and the state
/// machine, with the state recovered from the last snapshot.
pub(crate) fn open(dir: &Path) -> io::Result<(LogStore, StateMachineStore)> {
    fs::create_dir_all(dir)?;
    Ok((LogStore::open(dir)?, StateMachineStore::open(dir)?))
}

/// One record of the `log` file.
#[derive(Debug, Serialize, Deserialize)]
enum LogRecord<E> {
    Entry(E),
    /// Entries at index `since` and after are gone (they conflicted with the leader's log).
    Truncate {
        since: u64,
    },
    /// Entries up to and including `upto` are gone (a snapshot covers them).
    Purge {
        upto: LogId<NodeId>,
    },
}

/// The Raft log and the vote. Cheap to clone: clones share the same log.
#[derive(Clone)]
pub(crate) struct LogStore {
    inner: Arc<Mutex<LogInner>>,
    committed_index: Arc<AtomicU64>,
}

struct LogInner {
    dir: PathBuf,
    /// `log`, opened for appending.
    file: File,
    /// Bytes of valid records in `file`; a failed append is cut back to it.
    file_len: u64,
    /// Records in `file`, live or not.
    records: usize,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
}

/// `committed_index` value meaning "none".
const NO_INDEX: u64 = u64::MAX;

impl LogStore {
    fn open(dir: &Path) -> io::Result<LogStore> {
        let vote = read_json::<Vote<NodeId>>(&dir.join(VOTE_FILE))?;
        let committed = match read_json::<Option<LogId<NodeId>>>(&dir.join(COMMITTED_FILE)) {
            Ok(c) => c.flatten(),
            Err(error) => {
                tracing::warn!(%error, "ignoring unreadable committed.json (a hint only)");
                None
            }
        };
        let path = dir.join(LOG_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut entries = BTreeMap::new();
        let mut last_purged: Option<LogId<NodeId>> = None;
        let (records, valid_len) = replay(&bytes, |record| match record {
            LogRecord::Entry(entry) => {
                entries.insert(entry.log_id.index, entry);
            }
            LogRecord::Truncate { since } => {
                entries.split_off(&since);
            }
            LogRecord::Purge { upto } => {
                entries = entries.split_off(&(upto.index + 1));
                if last_purged < Some(upto) {
                    last_purged = Some(upto);
                }
            }
        });
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if (valid_len as usize) < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = bytes.len() - valid_len as usize,
                "cutting a torn record off the end of the raft log"
            );
            file.set_len(valid_len)?;
            file.sync_all()?;
        }
        let last_index = entries.keys().next_back().copied().or(last_purged.map(|l| l.index));
        let committed = committed.filter(|c| last_index.is_some_and(|last| c.index <= last));
        tracing::info!(
            dir = %dir.display(),
            entries = entries.len(),
            last_purged = ?last_purged.map(|l| l.index),
            last_index = ?last_index,
            committed = ?committed.map(|c| c.index),
            "opened raft log"
        );
        let committed_index = Arc::new(AtomicU64::new(committed.map_or(NO_INDEX, |c| c.index)));
        Ok(LogStore {
            inner: Arc::new(Mutex::new(LogInner {
                dir: dir.to_path_buf(),
                file,
                file_len: valid_len,
                records,
                vote,
                committed,
                last_purged,
                entries,
            })),
            committed_index,
        })
    }

    /// The last committed index this node has seen, for status.
    pub(crate) fn committed_index_handle(&self) -> CommittedIndex {
        CommittedIndex(self.committed_index.clone())
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs file I/O off the async worker threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LogInner) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&mut inner.lock().unwrap_or_else(PoisonError::into_inner)))
            .await
            .map_err(io::Error::other)?
    }
}

/// Partition leader elections this node decided as the quorum's leader
/// (Kafka's ControllerStats), since the process started.
#[derive(Debug)]
pub(crate) struct DecidedElections {
    node: NodeId,
    term_at_start: u64,
    counts: Mutex<LeaderElections>,
}

impl DecidedElections {
    fn note(&self, entry: &LogId<NodeId>, elections: LeaderElections) {
        if entry.leader_id.node_id == self.node && entry.leader_id.term > self.term_at_start {
            self.counts.lock().unwrap_or_else(PoisonError::into_inner).add(elections);
        }
    }

    pub(crate) fn get(&self) -> LeaderElections {
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Shared view of the committed index saved by the log store.
#[derive(Clone)]
pub(crate) struct CommittedIndex(Arc<AtomicU64>);

impl CommittedIndex {
    pub(crate) fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|i| *i != NO_INDEX)
    }
}

impl LogInner {
    /// Appends records and fsyncs them.
    fn write_records(&mut self, records: &[LogRecord<&Entry<TypeConfig>>]) -> io::Result<()> {
        let mut buf = Vec::new();
        for record in records {
            encode_record(&mut buf, record)?;
        }
        let result = self.file.write_all(&buf).and_then(|()| self.file.sync_data());
        if let Err(error) = result {
            // Do not leave a partial record in front of the next append.
            let _ = self.file.set_len(self.file_len);
            return Err(error);
        }
        self.file_len += buf.len() as u64;
        self.records += records.len();
        Ok(())
    }

    fn append(&mut self, entries: Vec<Entry<TypeConfig>>) -> io::Result<()> {
        let records: Vec<_> = entries.iter().map(LogRecord::Entry).collect();
        self.write_records(&records)?;
        for entry in entries {
            self.entries.insert(entry.log_id.index, entry);
        }
        Ok(())
    }

    fn truncate(&mut self, since: u64) -> io::Result<()> {
        self.write_records(&[LogRecord::Truncate { since }])?;
        self.entries.split_off(&since);
        self.maybe_compact()
    }

    fn purge(&mut self, upto: LogId<NodeId>) -> io::Result<()> {
        self.write_records(&[LogRecord::Purge { upto }])?;
        self.entries = self.entries.split_off(&(upto.index + 1));
        if self.last_purged < Some(upto) {
            self.last_purged = Some(upto);
        }
        self.maybe_compact()
    }

    /// Rewrites `log` with only the live entries once most records are dead.
    fn maybe_compact(&mut self) -> io::Result<()> {
        let live = self.entries.len() + 1;
        if self.records <= COMPACT_MIN_RECORDS || self.records <= 2 * live {
            return Ok(());
        }
        let mut records = Vec::with_capacity(live);
        if let Some(upto) = self.last_purged {
            records.push(LogRecord::Purge { upto });
        }
        records.extend(self.entries.values().map(LogRecord::Entry));
        let mut buf = Vec::new();
        for record in &records {
            encode_record(&mut buf, record)?;
        }
        let path = self.dir.join(LOG_FILE);
        write_atomic(&path, &buf, true)?;
        self.file = OpenOptions::new().append(true).open(&path)?;
        tracing::debug!(before = self.records, after = records.len(), "compacted raft log file");
        self.file_len = buf.len() as u64;
        self.records = records.len();
        Ok(())
    }
}

fn encode_record<E: Serialize>(buf: &mut Vec<u8>, record: &LogRecord<E>) -> io::Result<()> {
    let json = serde_json::to_vec(record)?;
    let len = u32::try_from(json.len()).map_err(|_| io::Error::other("raft log record larger than 4 GiB"))?;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(&json).to_le_bytes());
    buf.extend_from_slice(&json);
    Ok(())
}

/// Replays the records of `bytes`; returns how many were valid and the
/// length of the valid prefix (a torn or corrupt tail stops the replay).
fn replay(bytes: &[u8], mut on_record: impl FnMut(LogRecord<Entry<TypeConfig>>)) -> (usize, u64) {
    let mut pos = 0;
    let mut records = 0;
    while bytes.len() - pos >= HEADER_LEN {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(pos + HEADER_LEN..pos + HEADER_LEN + len) else {
            break;
        };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(record) = serde_json::from_slice(body) else {
            break;
        };
        on_record(record);
        records += 1;
        pos += HEADER_LEN + len;
    }
    (records, pos as u64)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.lock().entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.lock();
        let last_log_id = inner.entries.values().next_back().map(|e| e.log_id).or(inner.last_purged);
        Ok(LogState { last_purged_log_id: inner.last_purged, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote = *vote;
        self.blocking(move |inner| {
            write_atomic(&inner.dir.join(VOTE_FILE), &serde_json::to_vec(&vote)?, true)?;
            inner.vote = Some(vote);
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        self.committed_index.store(committed.map_or(NO_INDEX, |c| c.index), Ordering::Relaxed);
        self.blocking(move |inner| {
            // Not fsynced: a committed index that is lost or stale only
            // means openraft re-applies less on restart and learns the rest
            // from the leader.
            write_atomic(&inner.dir.join(COMMITTED_FILE), &serde_json::to_vec(&committed)?, false)?;
            inner.committed = committed;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        match self.blocking(move |inner| inner.append(entries)).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        tracing::debug!(since = log_id.index, "truncating raft log");
        self.blocking(move |inner| inner.truncate(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        tracing::debug!(upto = log_id.index, "purging raft log");
        self.blocking(move |inner| inner.purge(log_id)).await.map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

/// `snapshot.json`.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<NodeId, BasicNode>,
    state: ClusterState,
}

/// A snapshot held in memory: its metadata and the serialized state that
/// travels to followers.
#[derive(Clone)]
struct CurrentSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// The metadata state machine. Cheap to clone: clones share the state.
#[derive(Clone)]
pub(crate) struct StateMachineStore {
    shared: Arc<SmShared>,
}

struct SmShared {
    dir: PathBuf,
    /// Set once the node knows who it is: elections it decides are counted.
    decided: OnceLock<Arc<DecidedElections>>,
    data: Mutex<SmData>,
    /// The last snapshot written; also serializes writes of `snapshot.json`.
    snapshot: Mutex<Option<CurrentSnapshot>>,
    /// Makes snapshot ids unique within this process.
    snapshot_seq: AtomicU64,
    published: watch::Sender<Arc<ClusterState>>,
}

struct SmData {
    state: ClusterState,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

impl StateMachineStore {
    fn open(dir: &Path) -> io::Result<StateMachineStore> {
        let (data, snapshot) = match read_json::<SnapshotFile>(&dir.join(SNAPSHOT_FILE))? {
            Some(file) => {
                let bytes = serde_json::to_vec(&file.state)?;
                tracing::info!(snapshot = %file.meta, "loaded controller snapshot");
                let data = SmData {
                    state: file.state,
                    last_applied: file.meta.last_log_id,
                    membership: file.meta.last_membership.clone(),
                };
                (data, Some(CurrentSnapshot { meta: file.meta, data: bytes }))
            }
            None => (
                SmData { state: ClusterState::default(), last_applied: None, membership: StoredMembership::default() },
                None,
            ),
        };
        let (published, _) = watch::channel(Arc::new(data.state.clone()));
        Ok(StateMachineStore {
            shared: Arc::new(SmShared {
                dir: dir.to_path_buf(),
                decided: OnceLock::new(),
                data: Mutex::new(data),
                snapshot: Mutex::new(snapshot),
                snapshot_seq: AtomicU64::new(0),
                published,
            }),
        })
    }

    /// Counts, from now on, the partition leader elections made by entries
    /// `node` appended as leader in this process: those of its leader id at
    /// a term above the vote `log` holds at start (entries a former process
    /// of the same node appended are at that term or below, and are only
    /// applied again here).
    pub(crate) fn count_decided_elections(&self, node: NodeId, log: &LogStore) -> Arc<DecidedElections> {
        let term_at_start = log.lock().vote.map_or(0, |v| v.leader_id.term);
        let decided =
            Arc::new(DecidedElections { node, term_at_start, counts: Mutex::new(LeaderElections::default()) });
        self.shared.decided.get_or_init(|| decided).clone()
    }

    /// The state after each apply.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<ClusterState>> {
        self.shared.published.subscribe()
    }

    fn data(&self) -> MutexGuard<'_, SmData> {
        self.shared.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `snapshot.json` unless a newer snapshot is already there.
    async fn store_snapshot(&self, snapshot: CurrentSnapshot, state: ClusterState) -> io::Result<()> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let mut current = shared.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
            if current.as_ref().is_some_and(|c| c.meta.last_log_id > snapshot.meta.last_log_id) {
                return Ok(());
            }
            let file = SnapshotFile { meta: snapshot.meta.clone(), state };
            write_atomic(&shared.dir.join(SNAPSHOT_FILE), &serde_json::to_vec(&file)?, true)?;
            *current = Some(snapshot);
            Ok(())
        })
        .await
        .map_err(io::Error::other)?
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (state, last_log_id, last_membership) = {
            let data = self.data();
            (data.state.clone(), data.last_applied, data.membership.clone())
        };
        let seq = self.shared.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_log_id {
            Some(l) => format!("{}-{}-{seq}", l.leader_id.term, l.index),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta { last_log_id, last_membership, snapshot_id };
        let bytes =
            serde_json::to_vec(&state).map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let snapshot = CurrentSnapshot { meta: meta.clone(), data: bytes.clone() };
        self.store_snapshot(snapshot, state)
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        tracing::info!(snapshot = %meta, "built controller snapshot");
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let data = self.data();
        Ok((data.last_applied, data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResult>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut data = self.data();
        let mut results = Vec::new();
        for entry in entries {
            data.last_applied = Some(entry.log_id);
            let result = match entry.payload {
                EntryPayload::Blank => Ok(CommandOutcome::Done),
                EntryPayload::Normal(command) => {
                    let mut elections = LeaderElections::default();
                    // Chaos runs log each partition change (leader, epoch,
                    // ISR) to read a red run's elections back.
                    let before = tracing::enabled!(tracing::Level::DEBUG).then(|| partition_heads(&data.state));
                    let result = data.state.apply_counting(&command, &mut elections);
                    if let Some(before) = before {
                        for (partition, head) in partition_heads(&data.state) {
                            if before.get(&partition) != Some(&head) {
                                let (leader, leader_epoch, isr, elr) = head;
                                tracing::debug!(index = entry.log_id.index, %partition, leader, leader_epoch, ?isr, ?elr, "partition changed");
                            }
                        }
                    }
                    if let Some(decided) = self.shared.decided.get() {
                        decided.note(&entry.log_id, elections);
                    }
                    tracing::debug!(index = entry.log_id.index, ?command, ?result, "applied metadata command");
                    result
                }
                EntryPayload::Membership(membership) => {
                    data.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Ok(CommandOutcome::Done)
                }
            };
            results.push(result);
        }
        self.shared.published.send_replace(Arc::new(data.state.clone()));
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let state: ClusterState =
            serde_json::from_slice(&bytes).map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        self.store_snapshot(CurrentSnapshot { meta: meta.clone(), data: bytes }, state.clone())
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let mut data = self.data();
        data.state = state;
        data.last_applied = meta.last_log_id;
        data.membership = meta.last_membership.clone();
        self.shared.published.send_replace(Arc::new(data.state.clone()));
        tracing::info!(snapshot = %meta, "installed controller snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let current = self.shared.snapshot.lock().unwrap_or_else(PoisonError::into_inner).clone();
        Ok(current.map(|c| Snapshot { meta: c.meta, snapshot: Box::new(Cursor::new(c.data)) }))
    }
}

/// Reads a JSON file; `None` if it does not exist.
fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `bytes` through a temporary file and a rename; with
/// `durable`, the file and the directory entry are fsynced.
fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
    }
    fs::rename(&tmp, path)?;
    if durable && let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Leader, leader epoch, ISR and ELR of every partition, by `topic-partition`.
type PartitionHead = (i32, i32, Vec<i32>, Vec<i32>);

fn partition_heads(state: &ClusterState) -> BTreeMap<String, PartitionHead> {
    state
        .topics
        .iter()
        .flat_map(|(name, topic)| {
            topic
                .partitions
                .iter()
                .enumerate()
                .map(move |(i, p)| (format!("{name}-{i}"), (p.leader, p.leader_epoch, p.isr.clone(), p.elr.clone())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{CommittedLeaderId, Membership};
    use tempfile::TempDir;

    use super::*;
    use crate::controller::state::{BrokerRecord, MetadataCommand};

    struct TempDirBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for TempDirBuilder {
        async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<NodeId>> {
            let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
            let (log, sm) = open(dir.path()).map_err(|e| StorageIOError::write(&e))?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's storage conformance suite. It runs its own runtimes, so
    /// this is a plain `#[test]`.
    #[test]
    fn passes_openraft_conformance_suite() {
        Suite::test_all(TempDirBuilder).expect("conformance suite");
    }

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId { leader_id: CommittedLeaderId::new(term, 1), index }
    }

    fn register(id: i32) -> MetadataCommand {
        MetadataCommand::RegisterBroker(BrokerRecord::local(id, 0, 0))
    }

    fn entries(from: u64, to: u64) -> Vec<Entry<TypeConfig>> {
        (from..=to)
            .map(|i| {
                if i == from {
                    Entry {
                        log_id: log_id(1, i),
                        payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1])], ())),
                    }
                } else {
                    Entry { log_id: log_id(1, i), payload: EntryPayload::Normal(register(i as i32)) }
                }
            })
            .collect()
    }

    #[tokio::test]
    async fn everything_comes_back_after_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, mut sm) = open(dir.path()).unwrap();
            log.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
            {
                let mut inner = log.lock();
                inner.append(entries(1, 10)).unwrap();
                inner.truncate(9).unwrap();
                inner.purge(log_id(1, 2)).unwrap();
            }
            log.save_committed(Some(log_id(1, 8))).await.unwrap();
            let mut watch = sm.subscribe();
            sm.apply(entries(1, 5)).await.unwrap();
            assert!(watch.has_changed().unwrap());
            assert_eq!(watch.borrow_and_update().brokers.len(), 4);
            sm.build_snapshot().await.unwrap();
        }
        // A crash in the middle of an append leaves half a record.
        let mut file = OpenOptions::new().append(true).open(dir.path().join(LOG_FILE)).unwrap();
        file.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{']).unwrap();
        drop(file);

        let (mut log, mut sm) = open(dir.path()).unwrap();
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new_committed(1, 1)));
        assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 8)));
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 2)));
        assert_eq!(state.last_log_id, Some(log_id(1, 8)));
        let indexes: Vec<u64> = log.try_get_log_entries(..).await.unwrap().iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, (3..=8).collect::<Vec<_>>());
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 5)));
        assert_eq!(membership.voter_ids().collect::<Vec<_>>(), vec![1]);
        assert_eq!(sm.subscribe().borrow().brokers.len(), 4);
        assert!(sm.get_current_snapshot().await.unwrap().is_some());
        // Appends after the cut tail land on a clean record boundary.
        log.lock().append(entries(9, 9)).unwrap();
        drop((log, sm));
        let (mut log, _) = open(dir.path()).unwrap();
        assert_eq!(log.get_log_state().await.unwrap().last_log_id, Some(log_id(1, 9)));
    }

    #[tokio::test]
    async fn log_file_is_compacted_when_mostly_purged() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path()).unwrap();
        {
            let mut inner = log.lock();
            inner.append(entries(1, 2000)).unwrap();
            inner.purge(log_id(1, 1990)).unwrap();
            assert_eq!(inner.records, 11);
        }
        drop(log);
        let (mut log, _) = open(dir.path()).unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1990)));
        assert_eq!(state.last_log_id, Some(log_id(1, 2000)));
        assert_eq!(log.try_get_log_entries(..).await.unwrap().len(), 10);
    }
}
