//! One segment: a `.log` file of whole RecordBatch v2 batches, plus its
//! `.index` and `.timeindex` (see `index`). Files are named after the
//! segment's base offset, zero-padded to 20 digits, as in Kafka.
//!
//! Invariants: the `.log` file holds only complete, CRC-valid batches up to
//! `size` (the committed length readers may see); batch base offsets
//! increase; one writer (the partition's writer lock) at a time, any number
//! of concurrent readers using positioned reads.

use parking_lot::RwLock;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};

use super::batch::{self, BatchHeader};
use super::index::{OffsetIndex, TimeIndex};
use crate::error::{IoContext, Result};

/// Read size while scanning a segment on recovery.
const SCAN_CHUNK: usize = 8 << 20;

pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

#[derive(Debug, Default)]
struct Indexes {
    offsets: OffsetIndex,
    times: TimeIndex,
    bytes_since_entry: u64,
}

#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    dir: PathBuf,
    file: File,
    /// Committed bytes: readers never look past this.
    size: AtomicU64,
    /// One past the last offset in this segment (== base when empty).
    next_offset: AtomicI64,
    /// Largest record timestamp seen, -1 when empty.
    max_timestamp: AtomicI64,
    /// Wall-clock ms when the first batch was appended (or its timestamp,
    /// after a restart): segment.ms rolls count from here.
    first_append_ms: AtomicI64,
    indexes: RwLock<Indexes>,
}

/// What recovery found in a segment.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recovery {
    pub valid_bytes: u64,
    pub truncated_bytes: u64,
}

impl Segment {
    fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (dir.join(format!("{stem}.log")), dir.join(format!("{stem}.index")), dir.join(format!("{stem}.timeindex")))
    }

    /// Creates a new, empty segment.
    pub fn create(dir: &Path, base_offset: i64) -> Result<Segment> {
        let (log, _, _) = Self::paths(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log)
            .storage(|| format!("creating segment {}", log.display()))?;
        Ok(Self::from_parts(dir, base_offset, file, 0))
    }

    fn from_parts(dir: &Path, base_offset: i64, file: File, size: u64) -> Segment {
        Segment {
            base_offset,
            dir: dir.to_path_buf(),
            file,
            size: AtomicU64::new(size),
            next_offset: AtomicI64::new(base_offset),
            max_timestamp: AtomicI64::new(-1),
            first_append_ms: AtomicI64::new(-1),
            indexes: RwLock::new(Indexes::default()),
        }
    }

    /// Opens an existing segment. With `recover`, every batch is read and
    /// CRC-checked, the indexes are rebuilt, and a torn or corrupt tail is
    /// cut off. Without it, the index files are trusted when well formed
    /// (they were written and synced when the segment rolled).
    pub fn open(dir: &Path, base_offset: i64, recover: bool, index_interval: u32) -> Result<(Segment, Recovery)> {
        let (log, index_path, time_path) = Self::paths(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log)
            .storage(|| format!("opening segment {}", log.display()))?;
        let file_size = file.metadata().storage(|| format!("stat {}", log.display()))?.len();
        let segment = Self::from_parts(dir, base_offset, file, file_size);
        if !recover {
            let offsets = std::fs::read(&index_path).ok().and_then(|b| OffsetIndex::decode(&b, file_size.max(1)));
            let times = std::fs::read(&time_path).ok().and_then(|b| TimeIndex::decode(&b));
            if let (Some(offsets), Some(times)) = (offsets, times)
                && segment.load_tail_facts(offsets.last())?
            {
                if let Some(ts) = times.last_timestamp() {
                    segment.max_timestamp.fetch_max(ts, Ordering::AcqRel);
                }
                {
                    let mut idx = segment.indexes.write();
                    idx.offsets = offsets;
                    idx.times = times;
                }
                return Ok((segment, Recovery { valid_bytes: file_size, truncated_bytes: 0 }));
            }
        }
        let recovery = segment.scan(file_size, index_interval, recover)?;
        Ok((segment, recovery))
    }

    /// For a trusted segment: reads from the last indexed batch to the end
    /// to learn the next offset and largest timestamp. Returns false when
    /// the tail does not parse (then the segment is scanned instead).
    fn load_tail_facts(&self, last_entry: Option<(u32, u32)>) -> Result<bool> {
        let size = self.size();
        let start = u64::from(last_entry.map_or(0, |(_, p)| p));
        let tail = self.read_at(start, (size - start) as usize)?;
        let mut end = start;
        for (_, h) in batch::iter_headers(&tail) {
            self.note_batch(&h);
            end += h.size as u64;
        }
        if end != size {
            return Ok(false);
        }
        // The largest timestamp may sit before the last index entry.
        Ok(true)
    }

    /// Walks every batch from the start, rebuilding the indexes; with
    /// `check_crc` also validates each batch and truncates at the first bad
    /// one.
    fn scan(&self, file_size: u64, index_interval: u32, check_crc: bool) -> Result<Recovery> {
        // `pos` always sits on a batch boundary: the end of the valid log so far.
        let mut pos = 0u64;
        let mut expected_min_offset = self.base_offset;
        let mut idx = Indexes::default();
        self.next_offset.store(self.base_offset, Ordering::Relaxed);
        self.max_timestamp.store(-1, Ordering::Relaxed);
        self.first_append_ms.store(-1, Ordering::Relaxed);
        while pos < file_size {
            let chunk = self.read_at(pos, SCAN_CHUNK.min((file_size - pos) as usize))?;
            let mut at = 0usize;
            let mut stop = false;
            while at < chunk.len() {
                let rest = &chunk[at..];
                let Ok(size) = batch::peek_size(rest) else {
                    // A header cut by the chunk's end is re-read; anything
                    // else (a short file end or a bad length) ends the log.
                    let cut_by_chunk =
                        rest.len() < batch::LOG_OVERHEAD && at > 0 && pos + (chunk.len() as u64) < file_size;
                    stop = !cut_by_chunk;
                    break;
                };
                if pos + (at + size) as u64 > file_size {
                    stop = true; // torn: the batch runs past the end of the file
                    break;
                }
                let header = if size > rest.len() {
                    if at > 0 {
                        break; // re-read from this batch's start
                    }
                    let whole = self.read_at(pos, size)?; // one batch larger than a chunk
                    self.check(&whole, check_crc, expected_min_offset)
                } else {
                    self.check(rest, check_crc, expected_min_offset)
                };
                let Some(h) = header else {
                    stop = true;
                    break;
                };
                self.index_batch(&mut idx, &h, pos + at as u64, index_interval);
                expected_min_offset = h.next_offset();
                at += size;
            }
            pos += at as u64;
            if stop || at == 0 {
                break;
            }
        }
        *self.indexes.write() = idx;
        let truncated = file_size - pos;
        if truncated > 0 {
            self.file.set_len(pos).storage(|| format!("truncating {}", self.log_path().display()))?;
            self.file.sync_all().storage(|| format!("syncing {}", self.log_path().display()))?;
        }
        self.size.store(pos, Ordering::Release);
        Ok(Recovery { valid_bytes: pos, truncated_bytes: truncated })
    }

    fn check(&self, bytes: &[u8], check_crc: bool, expected_min_offset: i64) -> Option<BatchHeader> {
        let header = if check_crc { batch::validate(bytes).ok()? } else { batch::parse_header(bytes).ok()? };
        if header.base_offset < expected_min_offset {
            return None;
        }
        if header.base_offset - self.base_offset > i64::from(u32::MAX) {
            return None;
        }
        Some(header)
    }

    fn note_batch(&self, h: &BatchHeader) {
        self.next_offset.store(h.next_offset(), Ordering::Release);
        self.max_timestamp.fetch_max(h.max_timestamp, Ordering::AcqRel);
        if self.first_append_ms.load(Ordering::Relaxed) < 0 {
            self.first_append_ms.store(h.max_timestamp, Ordering::Relaxed);
        }
    }

    fn index_batch(&self, idx: &mut Indexes, h: &BatchHeader, position: u64, index_interval: u32) {
        if idx.bytes_since_entry >= u64::from(index_interval) {
            let rel = (h.base_offset - self.base_offset) as u32;
            idx.offsets.push(rel, position as u32);
            let max_so_far = self.max_timestamp.load(Ordering::Acquire).max(h.max_timestamp);
            idx.times.push(max_so_far, rel);
            idx.bytes_since_entry = 0;
        }
        idx.bytes_since_entry += h.size as u64;
        self.note_batch(h);
    }

    /// Appends one batch (offsets already assigned). Caller holds the
    /// partition's writer lock.
    pub fn append(&self, bytes: &[u8], header: &BatchHeader, index_interval: u32, now_ms: i64) -> Result<()> {
        let position = self.size.load(Ordering::Acquire);
        self.file.write_all_at(bytes, position).storage(|| format!("appending to {}", self.log_path().display()))?;
        if self.first_append_ms.load(Ordering::Relaxed) < 0 {
            self.first_append_ms.store(now_ms, Ordering::Relaxed);
        }
        {
            let mut idx = self.indexes.write();
            self.index_batch(&mut idx, header, position, index_interval);
        }
        self.size.store(position + bytes.len() as u64, Ordering::Release);
        Ok(())
    }

    /// Cuts the segment before the batch holding `offset` (batches are
    /// atomic: a batch that starts below `offset` but reaches it goes too).
    /// Returns the segment's new next offset.
    pub fn truncate_from(&self, offset: i64, index_interval: u32) -> Result<i64> {
        let size = self.size();
        let mut pos = self.lookup_position(offset);
        while pos < size {
            let head = self.read_at(pos, batch::HEADER_LEN)?;
            let Ok(h) = batch::parse_header(&head) else { break };
            if h.last_offset() >= offset {
                break;
            }
            pos += h.size as u64;
        }
        let pos = pos.min(size);
        self.file.set_len(pos).storage(|| format!("truncating {}", self.log_path().display()))?;
        self.size.store(pos, Ordering::Release);
        self.scan(pos, index_interval, false)?;
        Ok(self.next_offset())
    }

    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    pub fn first_append_ms(&self) -> i64 {
        self.first_append_ms.load(Ordering::Relaxed)
    }

    pub fn log_path(&self) -> PathBuf {
        Self::paths(&self.dir, self.base_offset).0
    }

    /// Reads `len` bytes at `position` (fewer at the end of the file).
    pub fn read_at(&self, position: u64, len: usize) -> Result<Bytes> {
        let mut buf = BytesMut::zeroed(len);
        let mut filled = 0;
        while filled < len {
            let n = self
                .file
                .read_at(&mut buf[filled..], position + filled as u64)
                .storage(|| format!("reading {}", self.log_path().display()))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf.freeze())
    }

    /// Position of the last indexed batch starting at or before `offset`.
    pub fn lookup_position(&self, offset: i64) -> u64 {
        let rel = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        u64::from(self.indexes.read().offsets.lookup(rel))
    }

    /// Position from which to scan for the first record with timestamp >= ts.
    pub fn lookup_time_position(&self, timestamp: i64) -> u64 {
        let idx = self.indexes.read();
        let rel = idx.times.lookup(timestamp);
        u64::from(idx.offsets.lookup(rel))
    }

    /// Reads whole batches holding offsets >= `offset` and < `max_offset`:
    /// at most `max_bytes` of them, but always the first whole batch so a
    /// consumer can make progress. `None` when the segment has none.
    pub fn read(&self, offset: i64, max_offset: i64, max_bytes: usize, index_slack: u32) -> Result<Option<Bytes>> {
        let size = self.size();
        let mut at = self.lookup_position(offset);
        if at >= size {
            return Ok(None);
        }
        let span = |at: u64, at_least: usize| ((size - at) as usize).min(max_bytes.max(at_least));
        let mut chunk = self.read_at(at, span(at, batch::HEADER_LEN).saturating_add(index_slack as usize))?;
        let mut pos = 0usize;
        // Skip the batches between the index entry and `offset`.
        loop {
            if at + pos as u64 >= size {
                return Ok(None);
            }
            let rest = &chunk[pos..];
            let needed = match batch::parse_header(rest) {
                Ok(h) if rest.len() >= h.size => {
                    if h.base_offset >= max_offset {
                        return Ok(None);
                    }
                    if h.last_offset() < offset {
                        pos += h.size;
                        continue;
                    }
                    break;
                }
                Ok(h) => h.size,
                Err(_) => batch::HEADER_LEN,
            };
            // The chunk ends inside this batch: read again from its start.
            at += pos as u64;
            pos = 0;
            chunk = self.read_at(at, span(at, needed))?;
            if chunk.len() < needed {
                return Ok(None); // the segment shrank under us (deleted)
            }
        }
        let mut end = pos;
        for (p, h) in batch::iter_headers(&chunk[pos..]) {
            if h.base_offset >= max_offset || (p > 0 && p + h.size > max_bytes) {
                break;
            }
            end = pos + p + h.size;
        }
        Ok(Some(chunk.slice(pos..end)))
    }

    pub fn flush(&self) -> Result<()> {
        self.file.sync_data().storage(|| format!("syncing {}", self.log_path().display()))
    }

    /// Writes both index files (atomically: temp file + rename) and syncs them.
    pub fn write_indexes(&self) -> Result<()> {
        let (_, index_path, time_path) = Self::paths(&self.dir, self.base_offset);
        let (offsets, times) = {
            let idx = self.indexes.read();
            (idx.offsets.encode(), idx.times.encode())
        };
        for (path, bytes) in [(index_path, offsets), (time_path, times)] {
            let tmp = path.with_extension("tmp");
            let write = || -> std::io::Result<()> {
                std::fs::write(&tmp, &bytes)?;
                File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, &path)
            };
            write().storage(|| format!("writing index {}", path.display()))?;
        }
        Ok(())
    }

    /// Removes the segment's files.
    pub fn delete_files(&self) -> Result<()> {
        let (log, index, time) = Self::paths(&self.dir, self.base_offset);
        for path in [log, index, time] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).storage(|| format!("deleting {}", path.display())),
            }
        }
        Ok(())
    }
}
