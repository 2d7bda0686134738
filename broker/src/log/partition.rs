//! One partition's log: an ordered set of segments under
//! `<data-dir>/<topic>-<partition>/`, the last of which is active.
//!
//! Write path: `append` checks the batch (outside the locks), then under the
//! writer lock rolls the active segment if needed, stamps the next offset
//! into the batch and writes it; readers are woken through a watch channel
//! carrying the high watermark. Reads take the state lock only to pick
//! segments.
//!
//! Two locks so that a slow disk stalls only this partition's writers: the
//! writer lock is held across a whole append, a roll's fdatasync and index
//! fsyncs and a leader-epoch checkpoint included (appends stay ordered);
//! the state lock (segments, start and end offsets) only for moments, so
//! readers and offset queries on the async workers never wait for an fsync.
//! Async callers run the file I/O itself through [`PartitionLog::blocking`]
//! and [`PartitionLog::read_async`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use super::batch::{self, BatchHeader};
use super::producer_state::{self, ProducerStates, SequenceCheck, SequenceError};
use super::segment::{Recovery, Segment};
use crate::config::LogConfig;
use crate::error::{BrokerError, IoContext, Result};

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub append_time_ms: i64,
    pub log_start_offset: i64,
    /// An idempotent producer's retry of a batch already written: these are
    /// its first offsets, and nothing was written now.
    pub duplicate: bool,
}

/// What a read returns.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

#[derive(Debug)]
struct LogState {
    segments: BTreeMap<i64, Arc<Segment>>,
    log_start_offset: i64,
    next_offset: i64,
}

impl LogState {
    fn active(&self) -> &Arc<Segment> {
        self.segments.values().next_back().expect("a log always has an active segment")
    }
}

/// Which offsets a read may return: consumers see up to the high
/// watermark, follower replicas up to the log end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBound {
    HighWatermark,
    LogEnd,
}

/// A read's segments and bounds, picked under the state lock; reading them
/// (preads) needs no lock.
struct ReadPlan {
    segments: Vec<Arc<Segment>>,
    offset: i64,
    upper: i64,
    slack: u32,
    high_watermark: i64,
    log_start_offset: i64,
}

impl ReadPlan {
    fn is_empty(&self) -> bool {
        self.offset >= self.upper
    }

    fn read(self, max_bytes: usize) -> Result<ReadResult> {
        let mut records = Bytes::new();
        if !self.is_empty() {
            for segment in &self.segments {
                if let Some(found) = segment.read(self.offset, self.upper, max_bytes, self.slack)? {
                    records = found;
                    break;
                }
            }
        }
        Ok(ReadResult { records, high_watermark: self.high_watermark, log_start_offset: self.log_start_offset })
    }
}

/// File holding the high watermark, written on flush and close.
const HIGH_WATERMARK_FILE: &str = "high-watermark";
/// Which topic (by id) this log belongs to, as Kafka's file of that name.
const PARTITION_METADATA_FILE: &str = "partition.metadata";
/// File holding the leader epoch cache: `epoch start_offset` per line.
const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";

#[derive(Debug)]
pub struct PartitionLog {
    pub topic: String,
    pub partition: u32,
    dir: PathBuf,
    config: RwLock<Arc<LogConfig>>,
    /// Held by whoever writes the log (append, roll, truncate), I/O
    /// included; taken before `state`.
    writer: Mutex<()>,
    /// Held only briefly, never across file I/O on the write path.
    state: Mutex<LogState>,
    /// Log end offset: wakes follower fetches and acks=all waiters.
    end_offset: watch::Sender<i64>,
    /// Offsets below it are on every in-sync replica: consumers read up to it.
    high_watermark: watch::Sender<i64>,
    /// (leader epoch, first offset written in it), ascending.
    epochs: Mutex<Vec<(i32, i64)>>,
    /// The newest leader epoch this replica has learned of from the
    /// metadata (see `fence_epochs_below`); changed under `writer`.
    epoch_fence: AtomicI32,
    /// Idempotent producers' sequences (see `producer_state`).
    producers: Mutex<ProducerStates>,
    dirty: AtomicBool,
    /// Compacted logs: sealed segments below this offset were cleaned.
    cleaned_up_to: AtomicI64,
    /// The id of the topic this log belongs to; 0: not recorded.
    topic_id: AtomicU64,
    /// `topic_id` is not in `partition.metadata` yet.
    topic_id_unsaved: AtomicBool,
}

/// Writes a small file so that a crash leaves the old or the new content.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        std::fs::write(&tmp, bytes)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().storage(|| format!("writing {}", path.display()))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, validating the active segment.
    /// Returns the log and the number of bytes cut from a bad tail.
    pub fn open(topic: &str, partition: u32, dir: &Path, config: Arc<LogConfig>) -> Result<(PartitionLog, u64)> {
        std::fs::create_dir_all(dir).storage(|| format!("creating {}", dir.display()))?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir).storage(|| format!("listing {}", dir.display()))? {
            let name = entry.storage(|| format!("listing {}", dir.display()))?.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".log") {
                let base = stem.parse::<i64>().map_err(|_| BrokerError::CorruptLogDir {
                    path: dir.to_path_buf(),
                    reason: format!("unexpected segment file {name}"),
                })?;
                bases.push(base);
            }
            if name.ends_with(".tmp") || name.ends_with(".cleaned") {
                let _ = std::fs::remove_file(dir.join(&*name));
            }
        }
        bases.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut truncated = 0u64;
        let last = bases.len().saturating_sub(1);
        for (i, &base) in bases.iter().enumerate() {
            // Older segments were synced with their indexes when they rolled;
            // the active one is always checked batch by batch.
            let (segment, Recovery { truncated_bytes, .. }) =
                Segment::open(dir, base, i == last, config.index_interval_bytes)?;
            truncated += truncated_bytes;
            segments.insert(base, Arc::new(segment));
        }
        if segments.is_empty() {
            segments.insert(0, Arc::new(Segment::create(dir, 0)?));
        }
        let log_start_offset = *segments.keys().next().expect("one segment");
        let next_offset = segments.values().next_back().expect("one segment").next_offset();
        let hw = std::fs::read_to_string(dir.join(HIGH_WATERMARK_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0)
            .clamp(log_start_offset, next_offset);
        let mut epochs: Vec<(i32, i64)> = std::fs::read_to_string(dir.join(LEADER_EPOCH_FILE))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (e, o) = l.split_once(' ')?;
                Some((e.parse().ok()?, o.parse().ok()?))
            })
            .collect();
        // Epochs that start beyond the (possibly truncated) log end are gone.
        epochs.retain(|&(_, start)| start < next_offset);
        let topic_id = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE))
            .unwrap_or_default()
            .lines()
            .find_map(|l| u64::from_str_radix(l.strip_prefix("topic_id: ")?.trim(), 16).ok())
            .unwrap_or(0);
        let (end_offset, _) = watch::channel(next_offset);
        let (high_watermark, _) = watch::channel(hw);
        let log = PartitionLog {
            topic: topic.to_string(),
            partition,
            dir: dir.to_path_buf(),
            config: RwLock::new(config),
            writer: Mutex::new(()),
            state: Mutex::new(LogState { segments, log_start_offset, next_offset }),
            end_offset,
            high_watermark,
            epochs: Mutex::new(epochs),
            epoch_fence: AtomicI32::new(-1),
            producers: Mutex::new(ProducerStates::default()),
            dirty: AtomicBool::new(false),
            cleaned_up_to: AtomicI64::new(0),
            topic_id: AtomicU64::new(topic_id),
            topic_id_unsaved: AtomicBool::new(false),
        };
        log.rebuild_producer_states()?;
        Ok((log, truncated))
    }

    /// Producer states as of the log end: the latest snapshot at or below
    /// it, then every batch after it read again (headers only matter).
    fn rebuild_producer_states(&self) -> Result<()> {
        let end = self.log_end_offset();
        let (mut offset, mut states) = producer_state::load_snapshot(&self.dir, end).unwrap_or_default();
        offset = offset.max(self.log_start_offset());
        let now = now_ms();
        while offset < end {
            let read = self.read_bounded(offset, 1 << 20, ReadBound::LogEnd)?;
            let mut next = offset;
            for (_, header) in batch::iter_headers(&read.records) {
                // Restarting never makes a live producer look idle.
                states.record(&header, now);
                next = header.next_offset();
            }
            if next == offset {
                break;
            }
            offset = next;
        }
        *self.producers.lock() = states;
        Ok(())
    }

    /// Whether `header` is an idempotent producer's batch that came before
    /// an earlier batch of the same producer (its sequence is ahead of the
    /// next one expected, or the producer's first batch has not come yet):
    /// it can be appended once that one is.
    pub fn awaits_earlier_batches(&self, header: &BatchHeader) -> bool {
        self.producers.lock().awaits_earlier_batches(header)
    }

    /// Idempotent producers this partition knows.
    pub fn producer_count(&self) -> usize {
        self.producers.lock().len()
    }

    /// Forgets producers idle for longer than `max_idle_ms`.
    pub fn expire_producers(&self, now_ms: i64, max_idle_ms: i64) -> usize {
        self.producers.lock().expire(now_ms, max_idle_ms)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The id of the topic this log was created for (0: not recorded, a
    /// log from before topic ids).
    pub fn topic_id(&self) -> u64 {
        self.topic_id.load(Ordering::Relaxed)
    }

    /// Sets the topic id; `partition.metadata` is written at the next
    /// flush, as Kafka does: creating 10,000 partitions must not cost 10,000
    /// more file writes on the way. A file lost or torn in a crash reads as
    /// "not recorded", as for logs from before ids.
    pub fn set_topic_id(&self, topic_id: u64) {
        self.topic_id.store(topic_id, Ordering::Relaxed);
        self.topic_id_unsaved.store(true, Ordering::Release);
    }

    fn save_topic_id(&self) -> Result<()> {
        if !self.topic_id_unsaved.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let path = self.dir.join(PARTITION_METADATA_FILE);
        let text = format!("version: 0\ntopic_id: {:016x}\n", self.topic_id());
        std::fs::write(&path, text).storage(|| format!("writing {}", path.display())).inspect_err(|_| {
            self.topic_id_unsaved.store(true, Ordering::Release);
        })
    }

    pub fn config(&self) -> Arc<LogConfig> {
        self.config.read().clone()
    }

    pub fn set_config(&self, config: Arc<LogConfig>) {
        *self.config.write() = config;
    }

    /// Checks and appends one produced batch; returns where it landed.
    pub fn append(&self, bytes: BytesMut, leader_epoch: i32) -> Result<AppendInfo> {
        let header = batch::validate_produced(&bytes, self.config().max_message_bytes as usize)?;
        self.append_checked(bytes, header, leader_epoch)
    }

    /// Appends a batch the caller has already checked with
    /// [`batch::validate_produced`] (the produce path checks every batch of
    /// a request before writing any, and the CRC is not computed twice).
    pub fn append_checked(&self, mut bytes: BytesMut, header: BatchHeader, leader_epoch: i32) -> Result<AppendInfo> {
        let config = self.config();
        let now = now_ms();
        let info = {
            let _writer = self.writer.lock();
            // A produce accepted under an older leadership must not land
            // once this replica knows of a newer epoch (it became a
            // follower while the request waited): the batch would sit at
            // offsets the new leader filled differently, after the
            // follower's truncation had run, and replicas would differ
            // below the high watermark (found by the chaos harness, issue 16).
            self.check_epoch_fence(leader_epoch)?;
            let check = self.producers.lock().check(&header).map_err(|refusal| self.sequence_error(refusal))?;
            if let SequenceCheck::Duplicate { base_offset, last_offset } = check {
                let log_start_offset = self.log_start_offset();
                return Ok(AppendInfo {
                    base_offset,
                    last_offset,
                    append_time_ms: -1,
                    log_start_offset,
                    duplicate: true,
                });
            }
            let (base_offset, active) = self.active_for(&config, bytes.len(), &header, now)?;
            batch::assign_offset(&mut bytes, base_offset, leader_epoch);
            let stamped = BatchHeader { base_offset, leader_epoch, ..header };
            active.append(&bytes, &stamped, config.index_interval_bytes, now)?;
            let log_start_offset = {
                let mut state = self.state.lock();
                state.next_offset = stamped.next_offset();
                state.log_start_offset
            };
            self.producers.lock().record(&stamped, now);
            self.note_epoch(leader_epoch, base_offset)?;
            AppendInfo {
                base_offset,
                last_offset: stamped.last_offset(),
                append_time_ms: now,
                log_start_offset,
                duplicate: false,
            }
        };
        self.dirty.store(true, Ordering::Release);
        self.end_offset.send_replace(info.last_offset + 1);
        Ok(info)
    }
    /// Appends batches a follower fetched from its leader, offsets and
    /// epochs as the leader assigned them. Each batch is CRC-checked and
    /// must start at the log end offset. `fetch_epoch` is the leader epoch
    /// the fetch was made under: a fetch that was under way when this
    /// replica learned of a newer epoch is refused, like a stale produce.
    pub fn append_replicated(&self, bytes: &[u8], fetch_epoch: i32) -> Result<usize> {
        let config = self.config();
        let now = now_ms();
        let mut appended = 0;
        {
            let _writer = self.writer.lock();
            self.check_epoch_fence(fetch_epoch)?;
            let mut pos = 0;
            while pos < bytes.len() {
                let header = batch::validate(&bytes[pos..]).map_err(|f| {
                    BrokerError::CorruptMessage(format!("replicated batch for {}-{}: {f}", self.topic, self.partition))
                })?;
                let (end, active) = self.active_for(&config, header.size, &header, now)?;
                if header.base_offset != end {
                    return Err(BrokerError::InvalidRequest(format!(
                        "replicated batch for {}-{} starts at {}, log end is {end}",
                        self.topic, self.partition, header.base_offset
                    )));
                }
                active.append(&bytes[pos..pos + header.size], &header, config.index_interval_bytes, now)?;
                self.state.lock().next_offset = header.next_offset();
                self.producers.lock().record(&header, now);
                self.note_epoch(header.leader_epoch, header.base_offset)?;
                pos += header.size;
                appended += 1;
            }
            if appended > 0 {
                self.end_offset.send_replace(self.log_end_offset());
            }
        }
        if appended > 0 {
            self.dirty.store(true, Ordering::Release);
        }
        Ok(appended)
    }

    /// Raises the newest leader epoch this replica knows of, before its
    /// role changes to that epoch's. Taken under the writer lock: an append
    /// of an older epoch either finished before (and the follower's
    /// truncation that follows sees it) or is refused.
    pub fn fence_epochs_below(&self, epoch: i32) {
        if self.epoch_fence.load(Ordering::Acquire) >= epoch {
            return;
        }
        let _writer = self.writer.lock();
        self.epoch_fence.fetch_max(epoch, Ordering::AcqRel);
    }

    /// Refuses a write made under `leader_epoch` when a newer epoch is
    /// known: from the metadata, or from records already in the log.
    /// Caller holds the writer lock.
    fn check_epoch_fence(&self, leader_epoch: i32) -> Result<()> {
        let current = self.epoch_fence.load(Ordering::Acquire).max(self.latest_epoch().unwrap_or(-1));
        if current > leader_epoch {
            return Err(BrokerError::FencedLeaderEpoch {
                topic: self.topic.clone(),
                partition: self.partition,
                requested: leader_epoch,
                current,
            });
        }
        Ok(())
    }

    fn sequence_error(&self, refusal: SequenceError) -> BrokerError {
        BrokerError::ProducerSequence { topic: self.topic.clone(), partition: self.partition, refusal }
    }

    /// Records that `epoch` starts at `offset` if it is newer than the last
    /// known epoch (persisted: followers truncate by it after a failover).
    /// Caller holds the writer lock, which orders the checkpoint writes;
    /// the file is written outside the epochs lock (readers of the cache
    /// do not wait for its fsync).
    fn note_epoch(&self, epoch: i32, offset: i64) -> Result<()> {
        let updated = {
            let mut epochs = self.epochs.lock();
            let newer = epochs.last().is_none_or(|&(last, _)| epoch > last);
            newer.then(|| {
                epochs.push((epoch, offset));
                epochs.clone()
            })
        };
        match updated {
            Some(epochs) => self.write_epochs(&epochs),
            None => Ok(()),
        }
    }

    fn write_epochs(&self, epochs: &[(i32, i64)]) -> Result<()> {
        let text: String = epochs.iter().map(|(e, o)| format!("{e} {o}\n")).collect();
        write_atomically(&self.dir.join(LEADER_EPOCH_FILE), text.as_bytes())
    }

    /// The newest leader epoch in this log, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.lock().last().map(|&(e, _)| e)
    }

    /// Kafka's OffsetForLeaderEpoch: the largest epoch <= `epoch` this log
    /// knows and the offset where it ended (the next epoch's start, or the
    /// log end). `None` when the log knows no epoch that old.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let epochs = self.epochs.lock().clone();
        let i = epochs.partition_point(|&(e, _)| e <= epoch);
        if i == 0 {
            return None;
        }
        let end = epochs.get(i).map_or_else(|| self.log_end_offset(), |&(_, start)| start);
        Some((epochs[i - 1].0, end))
    }

    /// Removes every record at or after `offset` (a follower dropping what
    /// its new leader does not have). Batches are atomic: one that reaches
    /// `offset` goes whole. Returns the new log end offset.
    pub fn truncate_to(&self, offset: i64) -> Result<i64> {
        let _writer = self.writer.lock();
        self.truncate_locked(offset)
    }

    /// [`PartitionLog::truncate_to`] by a follower of `leader_epoch`,
    /// refused once the metadata names a newer epoch: a fetcher stopped
    /// after it asked where to truncate must not cut the log of the leader
    /// this replica has become meanwhile.
    pub fn truncate_as_follower(&self, offset: i64, leader_epoch: i32) -> Result<i64> {
        let _writer = self.writer.lock();
        let fence = self.epoch_fence.load(Ordering::Acquire);
        if fence > leader_epoch {
            return Err(BrokerError::FencedLeaderEpoch {
                topic: self.topic.clone(),
                partition: self.partition,
                requested: leader_epoch,
                current: fence,
            });
        }
        self.truncate_locked(offset)
    }

    /// Caller holds the writer lock.
    fn truncate_locked(&self, offset: i64) -> Result<i64> {
        let config = self.config();
        let new_end = {
            // Rare (a follower's start): the state lock stays held across
            // the cut, so no reader sees a half-truncated log.
            let mut state = self.state.lock();
            if offset >= state.next_offset {
                return Ok(state.next_offset);
            }
            let offset = offset.max(state.log_start_offset);
            // Whole segments starting after `offset` go; keep at least one.
            let doomed: Vec<i64> = state.segments.range(offset + 1..).map(|(b, _)| *b).collect();
            for base in doomed {
                if state.segments.len() > 1
                    && let Some(segment) = state.segments.remove(&base)
                {
                    segment.delete_files()?;
                }
            }
            let active = state.active().clone();
            let end = active.truncate_from(offset, config.index_interval_bytes)?;
            state.next_offset = end;
            end
        };
        let epochs = {
            let mut epochs = self.epochs.lock();
            epochs.retain(|&(_, start)| start < new_end);
            epochs.clone()
        };
        self.write_epochs(&epochs)?;
        self.rebuild_producer_states()?;
        self.end_offset.send_replace(new_end);
        self.high_watermark.send_if_modified(|hw| {
            let changed = *hw > new_end;
            *hw = (*hw).min(new_end);
            changed
        });
        self.dirty.store(true, Ordering::Release);
        tracing::info!(topic = %self.topic, partition = self.partition, new_end, "truncated log");
        Ok(new_end)
    }

    /// Moves the high watermark forward (never past the log end).
    pub fn set_high_watermark(&self, hw: i64) {
        let hw = hw.min(self.log_end_offset());
        self.high_watermark.send_if_modified(|current| {
            let advance = hw > *current;
            if advance {
                *current = hw;
            }
            advance
        });
    }

    /// Notified whenever the log end offset moves (leader side of replication).
    pub fn subscribe_end(&self) -> watch::Receiver<i64> {
        self.end_offset.subscribe()
    }

    fn should_roll(&self, state: &LogState, config: &LogConfig, len: usize, h: &BatchHeader, now: i64) -> bool {
        let active = state.active();
        if active.size() == 0 {
            return false;
        }
        let too_big = active.size() + len as u64 > config.segment_bytes;
        let first = active.first_append_ms();
        let too_old = first >= 0 && now - first > config.segment_ms;
        let offsets_overflow =
            state.next_offset + i64::from(h.last_offset_delta) - active.base_offset >= i64::from(u32::MAX);
        too_big || too_old || offsets_overflow
    }

    /// The log end offset and the segment the next batch (`len` bytes)
    /// goes to, rolling first if the active one is full or old. Caller
    /// holds the writer lock.
    fn active_for(&self, config: &LogConfig, len: usize, h: &BatchHeader, now: i64) -> Result<(i64, Arc<Segment>)> {
        let (end, active, roll) = {
            let state = self.state.lock();
            (state.next_offset, state.active().clone(), self.should_roll(&state, config, len, h, now))
        };
        if !roll {
            return Ok((end, active));
        }
        Ok((end, self.roll(&active, end)?))
    }

    /// Seals `old` (synced with its indexes) and starts a new segment at
    /// `base_offset`. Caller holds the writer lock; the syncs run outside
    /// the state lock, readers keep reading `old` meanwhile.
    fn roll(&self, old: &Segment, base_offset: i64) -> Result<Arc<Segment>> {
        old.flush()?;
        old.write_indexes()?;
        let segment = Arc::new(Segment::create(&self.dir, base_offset)?);
        self.state.lock().segments.insert(base_offset, segment.clone());
        // Every batch below `base_offset` is recorded: a restart reads only
        // the segments after this snapshot again.
        let states = self.producers.lock().clone();
        producer_state::write_snapshot(&self.dir, base_offset, &states)
            .storage(|| format!("writing a producer-state snapshot in {}", self.dir.display()))?;
        tracing::debug!(topic = %self.topic, partition = self.partition, base_offset, "rolled segment");
        Ok(segment)
    }

    /// Reads batches from `offset`, up to the high watermark.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        self.read_bounded(offset, max_bytes, ReadBound::HighWatermark)
    }

    /// Reads batches from `offset` up to `bound`.
    pub fn read_bounded(&self, offset: i64, max_bytes: usize, bound: ReadBound) -> Result<ReadResult> {
        self.plan_read(offset, bound)?.read(max_bytes)
    }

    /// [`PartitionLog::read_bounded`] with its preads on a blocking thread.
    /// A read with nothing to return (a caught-up consumer or follower
    /// polling) is answered in place: no file I/O, no thread hop.
    pub async fn read_async(self: &Arc<Self>, offset: i64, max_bytes: usize, bound: ReadBound) -> Result<ReadResult> {
        let plan = self.plan_read(offset, bound)?;
        if plan.is_empty() {
            return plan.read(max_bytes);
        }
        self.blocking(move |_| plan.read(max_bytes)).await
    }

    /// Runs `io` (file I/O on this log: an append that may roll a segment
    /// and checkpoint a leader epoch, a truncation) on a blocking thread
    /// and waits for it, so a slow disk stalls only this partition's
    /// requests rather than a tokio worker and every partition it serves.
    /// Callers wait for it before going on: their ordering is unchanged. A
    /// caller dropped meanwhile does not cancel `io`; it completes.
    pub async fn blocking<T, F>(self: &Arc<Self>, io: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&PartitionLog) -> Result<T> + Send + 'static,
    {
        let log = Arc::clone(self);
        tokio::task::spawn_blocking(move || io(&log)).await.map_err(|e| {
            BrokerError::Internal(format!("file I/O task of {}-{} failed: {e}", self.topic, self.partition))
        })?
    }

    /// What a read from `offset` up to `bound` covers, picked under the
    /// state lock (no file I/O).
    fn plan_read(&self, offset: i64, bound: ReadBound) -> Result<ReadPlan> {
        let (segments, log_start_offset, high_watermark, upper) = {
            let state = self.state.lock();
            let hw = *self.high_watermark.borrow();
            let upper = match bound {
                ReadBound::HighWatermark => hw,
                ReadBound::LogEnd => state.next_offset,
            };
            if offset < state.log_start_offset || offset > upper {
                return Err(BrokerError::OffsetOutOfRange {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    offset,
                    log_start: state.log_start_offset,
                    log_end: upper,
                });
            }
            let from = state.segments.range(..=offset).next_back().map_or(state.log_start_offset, |(b, _)| *b);
            let segs: Vec<_> = state.segments.range(from..).map(|(_, s)| s.clone()).collect();
            (segs, state.log_start_offset, hw, upper)
        };
        let slack = self.config().index_interval_bytes;
        Ok(ReadPlan { segments, offset, upper, slack, high_watermark, log_start_offset })
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// Notified whenever the high watermark moves (long-poll fetches).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.lock().log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.state.lock().next_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.state.lock().segments.values().map(|s| s.size()).sum()
    }

    /// Every segment but the active one.
    pub fn sealed_segments(&self) -> Vec<Arc<Segment>> {
        let state = self.state.lock();
        let n = state.segments.len();
        state.segments.values().take(n - 1).cloned().collect()
    }

    pub fn cleaned_up_to(&self) -> i64 {
        self.cleaned_up_to.load(Ordering::Acquire)
    }

    pub fn set_cleaned_up_to(&self, offset: i64) {
        self.cleaned_up_to.store(offset, Ordering::Release);
    }

    /// Swaps a sealed segment for its cleaned content (same base offset):
    /// temp file, fsync, indexes dropped, rename, indexes rebuilt.
    pub fn replace_segment(&self, old: &Arc<Segment>, cleaned: &[u8]) -> Result<()> {
        let base = old.base_offset;
        let stem = super::segment::file_stem(base);
        let tmp = self.dir.join(format!("{stem}.log.cleaned"));
        write_atomically(&tmp, cleaned)?;
        let mut state = self.state.lock();
        if !state.segments.get(&base).is_some_and(|s| Arc::ptr_eq(s, old)) {
            let _ = std::fs::remove_file(&tmp); // deleted by retention meanwhile
            return Ok(());
        }
        for ext in ["index", "timeindex"] {
            let path = self.dir.join(format!("{stem}.{ext}"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).storage(|| format!("removing {}", path.display())),
            }
        }
        let log_path = self.dir.join(format!("{stem}.log"));
        std::fs::rename(&tmp, &log_path).storage(|| format!("replacing {}", log_path.display()))?;
        let (segment, _) = Segment::open(&self.dir, base, false, self.config().index_interval_bytes)?;
        segment.write_indexes()?;
        state.segments.insert(base, Arc::new(segment));
        Ok(())
    }

    pub fn segment_count(&self) -> usize {
        self.state.lock().segments.len()
    }

    /// The first offset whose record timestamp is >= `timestamp`, with that
    /// record's timestamp; `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        let (segments, hw) = {
            let state = self.state.lock();
            (state.segments.values().cloned().collect::<Vec<_>>(), *self.high_watermark.borrow())
        };
        for segment in segments {
            if segment.max_timestamp() < timestamp {
                continue;
            }
            let start = segment.lookup_time_position(timestamp);
            let mut pos = start;
            while pos < segment.size() {
                let len = ((segment.size() - pos) as usize).min(1 << 20);
                let chunk = segment.read_at(pos, len.max(batch::HEADER_LEN))?;
                let mut consumed = 0usize;
                for (at, h) in batch::iter_headers(&chunk) {
                    consumed = at + h.size;
                    if h.base_offset >= hw {
                        return Ok(None);
                    }
                    if h.max_timestamp >= timestamp {
                        let exact = batch::first_record_at_or_after(&chunk[at..at + h.size], timestamp);
                        return Ok(Some(exact.unwrap_or((h.base_offset, h.max_timestamp))));
                    }
                }
                if consumed == 0 {
                    // One batch larger than the chunk.
                    let size = batch::peek_size(&chunk)
                        .map_err(|f| BrokerError::CorruptLogDir { path: segment.log_path(), reason: f.to_string() })?;
                    let whole = segment.read_at(pos, size)?;
                    let h = batch::parse_header(&whole)
                        .map_err(|f| BrokerError::CorruptLogDir { path: segment.log_path(), reason: f.to_string() })?;
                    if h.max_timestamp >= timestamp && h.base_offset < hw {
                        let exact = batch::first_record_at_or_after(&whole, timestamp);
                        return Ok(Some(exact.unwrap_or((h.base_offset, h.max_timestamp))));
                    }
                    consumed = size;
                }
                pos += consumed as u64;
            }
        }
        Ok(None)
    }

    /// Syncs the active segment if anything was written since the last
    /// flush; writes the topic id if it is new.
    pub fn flush(&self) -> Result<()> {
        self.save_topic_id()?;
        if self.dirty.swap(false, Ordering::AcqRel) {
            let active = self.state.lock().active().clone();
            if let Err(e) = active.flush() {
                self.dirty.store(true, Ordering::Release);
                return Err(e);
            }
            self.checkpoint_high_watermark()?;
        }
        Ok(())
    }

    /// Deletes whole segments (never the active one) past `retention.ms` or
    /// while the log exceeds `retention.bytes`. Returns how many went.
    pub fn apply_retention(&self, now: i64) -> Result<usize> {
        let config = self.config();
        let doomed: Vec<Arc<Segment>> = {
            let mut state = self.state.lock();
            let mut total: u64 = state.segments.values().map(|s| s.size()).sum();
            let mut doomed = Vec::new();
            let count = state.segments.len();
            for segment in state.segments.values().take(count - 1) {
                // Compact-only logs keep their latest records whatever their age.
                let deletes = config.deletes();
                let expired = deletes
                    && config.retention_ms > 0
                    && segment.max_timestamp() >= 0
                    && now - segment.max_timestamp() > config.retention_ms;
                let too_big =
                    deletes && config.retention_bytes >= 0 && total - segment.size() >= config.retention_bytes as u64;
                let empty_old = segment.size() == 0;
                if !(expired || too_big || empty_old) {
                    break;
                }
                total -= segment.size();
                doomed.push(segment.clone());
            }
            for segment in &doomed {
                state.segments.remove(&segment.base_offset);
            }
            if !doomed.is_empty() {
                state.log_start_offset = *state.segments.keys().next().expect("active segment stays");
            }
            doomed
        };
        for segment in &doomed {
            segment.delete_files()?;
            tracing::info!(
                topic = %self.topic, partition = self.partition, base_offset = segment.base_offset,
                "retention deleted segment"
            );
        }
        Ok(doomed.len())
    }

    /// Flushes the active segment and its indexes (clean shutdown) and
    /// snapshots the producer states at the log end, so the next start
    /// reads nothing again (as Kafka at clean shutdown).
    pub fn close(&self) -> Result<()> {
        let _writer = self.writer.lock();
        let active = self.state.lock().active().clone();
        active.flush()?;
        active.write_indexes()?;
        self.save_topic_id()?;
        self.checkpoint_high_watermark()?;
        let end = self.log_end_offset();
        if producer_state::latest_snapshot_offset(&self.dir).is_none_or(|offset| offset < end) {
            let states = self.producers.lock().clone();
            producer_state::write_snapshot(&self.dir, end, &states)
                .storage(|| format!("writing a producer-state snapshot in {}", self.dir.display()))?;
        }
        Ok(())
    }

    fn checkpoint_high_watermark(&self) -> Result<()> {
        let hw = *self.high_watermark.borrow();
        write_atomically(&self.dir.join(HIGH_WATERMARK_FILE), hw.to_string().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::log::batch::tests::make_batch;

    fn config(segment_bytes: u64) -> Arc<LogConfig> {
        let mut c = BrokerConfig::default().default_log_config();
        c.segment_bytes = segment_bytes;
        c.index_interval_bytes = 256;
        Arc::new(c)
    }

    fn append_n(log: &PartitionLog, batches: usize, per_batch: i32, ts: i64) {
        for _ in 0..batches {
            let info = log.append(BytesMut::from(&make_batch(per_batch, ts, 50)[..]), 0).unwrap();
            commit(log, info);
        }
    }

    /// A single replica: everything appended is committed.
    fn commit(log: &PartitionLog, info: AppendInfo) {
        log.set_high_watermark(info.last_offset + 1);
    }

    /// Reads everything from `from`, returning the base offset of each batch.
    fn read_all(log: &PartitionLog, from: i64) -> Vec<i64> {
        let mut offset = from;
        let mut bases = Vec::new();
        while offset < log.high_watermark() {
            let r = log.read(offset, 4096).unwrap();
            assert!(!r.records.is_empty(), "no data at {offset}");
            for (_, h) in batch::iter_headers(&r.records) {
                batch::validate(&r.records[..]).unwrap();
                bases.push(h.base_offset);
                offset = h.next_offset();
            }
        }
        bases
    }

    #[test]
    fn appends_roll_segments_and_read_back_from_any_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config(4096)).unwrap();
        append_n(&log, 200, 5, 1000);
        assert_eq!(log.log_end_offset(), 1000);
        assert!(log.segment_count() > 5, "segments: {}", log.segment_count());
        let bases = read_all(&log, 0);
        assert_eq!(bases, (0..200).map(|i| i * 5).collect::<Vec<_>>());
        // Mid-batch offset: the batch holding it comes back first.
        let r = log.read(503, 1).unwrap();
        let (_, h) = batch::iter_headers(&r.records).next().unwrap();
        assert_eq!(h.base_offset, 500);
        assert_eq!(batch::iter_headers(&r.records).count(), 1, "max_bytes=1 still returns one whole batch");
        // At the end: empty; past it: a clear error with the range.
        assert!(log.read(1000, 1 << 20).unwrap().records.is_empty());
        let err = log.read(1001, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("0..1000"), "{err}");
    }

    /// One record of `producer` at `sequence`.
    fn idempotent(producer: i64, epoch: i16, sequence: i32) -> BytesMut {
        let mut builder = kmon_proto::record_batch::BatchBuilder::with_capacity(0);
        builder.append(1_000, None, &sequence.to_be_bytes(), &[]);
        builder.set_producer(producer, epoch, sequence);
        BytesMut::from(&builder.finish()[..])
    }

    #[test]
    fn idempotent_retries_are_not_written_twice_across_rolls_restarts_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let mut last = None;
        {
            // Tiny segments: snapshots are written as it rolls.
            let (log, _) = PartitionLog::open("t", 0, dir.path(), config(200)).unwrap();
            for sequence in 0..20 {
                let info = log.append(idempotent(7, 0, sequence), 0).unwrap();
                assert!(!info.duplicate);
                commit(&log, info);
                last = Some(info);
            }
            assert!(log.segment_count() > 3);
            let again = log.append(idempotent(7, 0, 19), 0).unwrap();
            assert!(again.duplicate);
            assert_eq!(again.base_offset, last.unwrap().base_offset);
            assert_eq!(log.log_end_offset(), 20, "a retry writes nothing");
            let gap = log.append(idempotent(7, 0, 25), 0).unwrap_err();
            assert!(matches!(gap, BrokerError::ProducerSequence { .. }), "{gap}");
            assert_eq!(log.producer_count(), 1);
        }
        let snapshots = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "snapshot"))
            .count();
        assert!(snapshots >= 1, "a roll writes a producer-state snapshot");
        // A restart knows the producer: a retry is still a duplicate.
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config(200)).unwrap();
        let again = log.append(idempotent(7, 0, 19), 0).unwrap();
        assert!(again.duplicate, "the state came back from the snapshot and the log after it");
        assert_eq!(again.base_offset, 19);
        // Cut the last five records: the producer's state goes back with them.
        log.truncate_to(15).unwrap();
        assert!(!log.append(idempotent(7, 0, 15), 0).unwrap().duplicate);
        assert_eq!(log.log_end_offset(), 16);
        // Idle producers are forgotten: a retry is then not recognised
        // (Kafka's trade-off), and a producer without state may go on at
        // any sequence.
        assert_eq!(log.expire_producers(now_ms() + 10_000, 1_000), 1);
        assert_eq!(log.producer_count(), 0);
        assert!(!log.append(idempotent(7, 0, 16), 0).unwrap().duplicate);
    }

    #[test]
    fn a_clean_close_snapshots_producers_at_the_log_end() {
        let dir = tempfile::tempdir().unwrap();
        {
            // One segment, never rolled: without the close snapshot every
            // start would read the whole log again.
            let (log, _) = PartitionLog::open("t", 0, dir.path(), config(1 << 20)).unwrap();
            for sequence in 0..10 {
                commit(&log, log.append(idempotent(3, 0, sequence), 0).unwrap());
            }
            assert_eq!(log.segment_count(), 1);
            log.close().unwrap();
        }
        assert_eq!(producer_state::latest_snapshot_offset(dir.path()), Some(10));
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config(1 << 20)).unwrap();
        assert_eq!(log.producer_count(), 1);
        assert!(log.append(idempotent(3, 0, 9), 0).unwrap().duplicate, "known from the snapshot");
    }

    #[test]
    fn reopen_keeps_everything_and_continues_offsets() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, _) = PartitionLog::open("t", 0, dir.path(), config(4096)).unwrap();
            append_n(&log, 50, 3, 1000);
            log.close().unwrap();
        }
        let (log, truncated) = PartitionLog::open("t", 0, dir.path(), config(4096)).unwrap();
        assert_eq!(truncated, 0);
        assert_eq!(log.log_end_offset(), 150);
        append_n(&log, 1, 3, 1000);
        assert_eq!(read_all(&log, 0).len(), 51);
        assert_eq!(read_all(&log, 100), (33..51).map(|i| i * 3).collect::<Vec<_>>());
    }

    #[test]
    fn torn_and_corrupt_tails_are_cut_back_to_the_last_valid_batch() {
        let dir = tempfile::tempdir().unwrap();
        let batch_len = make_batch(3, 1000, 50).len() as u64;
        {
            let (log, _) = PartitionLog::open("t", 0, dir.path(), config(1 << 20)).unwrap();
            append_n(&log, 10, 3, 1000);
        }
        let seg = dir.path().join("00000000000000000000.log");
        // Overwrite the last 7 bytes of the last batch.
        let mut bytes = std::fs::read(&seg).unwrap();
        let n = bytes.len();
        bytes[n - 7..].copy_from_slice(b"garbage");
        // And append a torn half batch after it.
        bytes.extend_from_slice(&make_batch(3, 1000, 50)[..40]);
        std::fs::write(&seg, &bytes).unwrap();
        let (log, truncated) = PartitionLog::open("t", 0, dir.path(), config(1 << 20)).unwrap();
        assert_eq!(truncated, batch_len + 40);
        assert_eq!(log.log_end_offset(), 27);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), 9 * batch_len);
        log.set_high_watermark(log.log_end_offset());
        assert_eq!(read_all(&log, 0).len(), 9);
        // Appends continue where the valid log ends.
        let info = log.append(BytesMut::from(&make_batch(3, 1000, 50)[..]), 0).unwrap();
        assert_eq!(info.base_offset, 27);
    }

    #[test]
    fn retention_deletes_whole_old_segments_by_size_and_age() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config(2048)).unwrap();
        let old = now_ms() - 10_000;
        append_n(&log, 60, 5, old);
        let before = log.segment_count();
        let mut c = (*log.config()).clone();
        c.retention_bytes = 4096;
        log.set_config(Arc::new(c.clone()));
        let deleted = log.apply_retention(now_ms()).unwrap();
        assert!(deleted > 0 && log.segment_count() == before - deleted);
        assert!(log.size_bytes() <= 4096 + 2048, "size {}", log.size_bytes());
        let start = log.log_start_offset();
        assert!(start > 0);
        assert!(log.read(0, 100).is_err(), "deleted offsets are out of range");
        assert_eq!(read_all(&log, start).first(), Some(&start));
        // Age: everything but the active segment is older than 5 s.
        c.retention_bytes = -1;
        c.retention_ms = 5_000;
        log.set_config(Arc::new(c));
        log.apply_retention(now_ms()).unwrap();
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.log_end_offset(), 300, "retention never moves the end");
    }

    /// `compact` alone keeps old segments (their latest values are the
    /// table); `compact,delete` (windowed changelogs) also ages them out.
    #[test]
    fn only_a_deleting_cleanup_policy_ages_out_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config(2048)).unwrap();
        append_n(&log, 60, 5, now_ms() - 10_000);
        let before = log.segment_count();
        let mut c = (*log.config()).clone();
        c.retention_ms = 5_000;
        c.cleanup_policy = "compact".into();
        log.set_config(Arc::new(c.clone()));
        assert_eq!(log.apply_retention(now_ms()).unwrap(), 0);
        assert_eq!(log.segment_count(), before);
        c.cleanup_policy = "compact,delete".into();
        log.set_config(Arc::new(c));
        assert_eq!(log.apply_retention(now_ms()).unwrap(), before - 1);
        assert_eq!(log.segment_count(), 1);
    }

    /// Chaos harness, issue 16: a produce accepted at epoch 5 that reached
    /// the log after the replica had taken epoch-7 records from a new
    /// leader landed between them, at an offset the leader had filled
    /// differently. It is refused now, and the log is left as it was.
    #[test]
    fn an_append_of_an_older_leader_epoch_is_fenced() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config(2048)).unwrap();
        log.append(BytesMut::from(&make_batch(4, 1000, 50)[..]), 5).unwrap();
        log.append(BytesMut::from(&make_batch(4, 1000, 50)[..]), 7).unwrap();
        let end = log.log_end_offset();
        let stale = log.append(BytesMut::from(&make_batch(4, 1000, 50)[..]), 5);
        assert!(
            matches!(stale, Err(BrokerError::FencedLeaderEpoch { requested: 5, current: 7, .. })),
            "an epoch-5 append after epoch-7 records must be fenced: {stale:?}"
        );
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(log.latest_epoch(), Some(7));
        // The current epoch still appends.
        assert_eq!(log.append(BytesMut::from(&make_batch(4, 1000, 50)[..]), 7).unwrap().base_offset, end);
    }

    /// Chaos harness, issue 16 (seed 1796457640057432491): the leader of
    /// epoch 5 became a follower at epoch 6; its fetcher truncated to what
    /// the new leader had, and only then did a produce accepted at epoch 5
    /// reach the log (no epoch-6 record was there yet to fence it). The
    /// batch sat at offsets the new leader filled differently: replicas of
    /// the same length that differed below the high watermark. Learning of
    /// epoch 6 from the metadata now fences epoch 5 writes at once, produced
    /// or replicated by a fetcher of the old leadership.
    #[test]
    fn a_newer_epoch_from_the_metadata_fences_older_writes_before_any_record_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config(2048)).unwrap();
        log.append(BytesMut::from(&make_batch(4, 1000, 50)[..]), 5).unwrap();
        let end = log.log_end_offset();
        log.fence_epochs_below(6);
        let stale = log.append(BytesMut::from(&make_batch(4, 1000, 50)[..]), 5);
        assert!(
            matches!(stale, Err(BrokerError::FencedLeaderEpoch { requested: 5, current: 6, .. })),
            "an epoch-5 produce after epoch 6 is known must be fenced: {stale:?}"
        );
        let dir2 = tempfile::tempdir().unwrap();
        let (leader, _) = PartitionLog::open("t", 0, dir2.path(), config(2048)).unwrap();
        for _ in 0..2 {
            leader.append(BytesMut::from(&make_batch(4, 1000, 50)[..]), 5).unwrap();
        }
        let fetched = leader.read_bounded(end, 1 << 20, ReadBound::LogEnd).unwrap().records;
        let stale = log.append_replicated(&fetched, 5);
        assert!(
            matches!(stale, Err(BrokerError::FencedLeaderEpoch { requested: 5, current: 6, .. })),
            "a fetch made under epoch 5 must not land once epoch 6 is known: {stale:?}"
        );
        assert_eq!((log.log_end_offset(), log.latest_epoch()), (end, Some(5)), "the log is as it was");
        let stale = log.truncate_as_follower(0, 5);
        assert!(
            matches!(stale, Err(BrokerError::FencedLeaderEpoch { requested: 5, current: 6, .. })),
            "a truncation decided under epoch 5 must not cut the log once epoch 6 is known: {stale:?}"
        );
        assert_eq!(log.log_end_offset(), end, "nothing was cut");
        // Epoch 6's writes go ahead; fencing an older epoch again changes nothing.
        log.fence_epochs_below(3);
        assert_eq!(log.append_replicated(&fetched, 6).unwrap(), 1);
        assert_eq!(log.append(BytesMut::from(&make_batch(4, 1000, 50)[..]), 6).unwrap().base_offset, end + 4);
    }

    #[test]
    fn truncation_and_leader_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config(2048)).unwrap();
        for epoch in 0..3 {
            for _ in 0..10 {
                let info = log.append(BytesMut::from(&make_batch(4, 1000, 50)[..]), epoch).unwrap();
                commit(&log, info);
            }
        }
        assert_eq!(log.log_end_offset(), 120);
        assert_eq!(log.latest_epoch(), Some(2));
        assert_eq!(log.end_offset_for_epoch(0), Some((0, 40)));
        assert_eq!(log.end_offset_for_epoch(1), Some((1, 80)));
        assert_eq!(log.end_offset_for_epoch(7), Some((2, 120)));
        let segments = log.segment_count();
        // Mid-batch: the whole batch holding offset 50 goes.
        assert_eq!(log.truncate_to(50).unwrap(), 48);
        assert!(log.segment_count() < segments);
        assert_eq!(log.high_watermark(), 48);
        assert_eq!(log.latest_epoch(), Some(1));
        assert_eq!(log.end_offset_for_epoch(5), Some((1, 48)));
        assert_eq!(read_all(&log, 0).len(), 12);
        // Appends continue at the new end; everything survives a reopen.
        let info = log.append(BytesMut::from(&make_batch(4, 1000, 50)[..]), 3).unwrap();
        assert_eq!(info.base_offset, 48);
        commit(&log, info);
        log.close().unwrap();
        drop(log);
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config(2048)).unwrap();
        assert_eq!(log.log_end_offset(), 52);
        assert_eq!(log.high_watermark(), 52);
        assert_eq!(log.end_offset_for_epoch(1), Some((1, 48)));
        assert_eq!(log.end_offset_for_epoch(3), Some((3, 52)));
        // A follower's replicated batches keep the leader's offsets and epochs.
        let dir2 = tempfile::tempdir().unwrap();
        let (follower, _) = PartitionLog::open("t", 0, dir2.path(), config(2048)).unwrap();
        while follower.log_end_offset() < log.log_end_offset() {
            let chunk = log.read(follower.log_end_offset(), 1 << 20).unwrap().records;
            follower.append_replicated(&chunk, 3).unwrap();
        }
        let chunk = log.read(0, 1 << 20).unwrap().records;
        assert_eq!(follower.end_offset_for_epoch(1), Some((1, 48)));
        assert!(follower.append_replicated(&chunk, 3).is_err(), "non-contiguous batches are refused");
    }

    #[test]
    fn active_segment_rolls_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = (*config(1 << 20)).clone();
        c.segment_ms = 30;
        let (log, _) = PartitionLog::open("t", 0, dir.path(), Arc::new(c)).unwrap();
        append_n(&log, 3, 2, now_ms());
        assert_eq!(log.segment_count(), 1, "young segment keeps growing");
        let rolled_after = std::time::Instant::now();
        while log.segment_count() == 1 {
            assert!(rolled_after.elapsed() < std::time::Duration::from_secs(5), "segment never rolled by age");
            std::thread::sleep(std::time::Duration::from_millis(10));
            append_n(&log, 1, 2, now_ms());
        }
        assert!(rolled_after.elapsed() >= std::time::Duration::from_millis(30));
        assert_eq!(read_all(&log, 0).len() as i64 * 2, log.log_end_offset());
    }

    #[test]
    fn offset_for_timestamp_finds_first_newer_record() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config(4096)).unwrap();
        for i in 0..100 {
            let info = log.append(BytesMut::from(&make_batch(2, 1000 + i * 10, 50)[..]), 0).unwrap();
            commit(&log, info);
        }
        assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1000)));
        assert_eq!(log.offset_for_timestamp(1500).unwrap(), Some((100, 1500)));
        assert_eq!(log.offset_for_timestamp(1501).unwrap(), Some((102, 1510)));
        assert_eq!(log.offset_for_timestamp(99_999).unwrap(), None);
    }

    #[test]
    fn bad_batches_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config(4096)).unwrap();
        let mut bad = make_batch(2, 0, 10);
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(matches!(log.append(BytesMut::from(&bad[..]), 0), Err(BrokerError::CorruptMessage(_))));
        let mut c = (*log.config()).clone();
        c.max_message_bytes = 100;
        log.set_config(Arc::new(c));
        let big = make_batch(10, 0, 100);
        assert!(matches!(log.append(BytesMut::from(&big[..]), 0), Err(BrokerError::MessageTooLarge { .. })));
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(log.size_bytes(), 0);
    }
}
