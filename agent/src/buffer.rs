//! The agent's disk buffer: every sample is appended here (and fsynced)
//! before it is shipped, and forgotten once a broker acknowledged it.
//!
//! # On-disk layout (the `--buffer-dir` directory)
//!
//! ```text
//! 00000000000000000042.seg   segments, named by the sequence number of
//! 00000000000000000311.seg   their first frame (20 digits, so name order
//! ...                        is sequence order)
//! ack                        u64 LE: the first sequence NOT yet acknowledged
//!                            ++ u32 LE crc32c of those 8 bytes
//! ```
//!
//! A segment is a run of frames, all little-endian:
//!
//! ```text
//! u32 len | u32 crc32c(sequence bytes ++ payload) | u64 sequence | payload (len bytes)
//! ```
//!
//! The payload is opaque here (the agent stores a protobuf `NodeSample`).
//!
//! # Invariants
//!
//! 1. Frames are appended only to the last segment; sequence numbers grow by
//!    one from frame to frame, across segments too (a gap appears only where
//!    the oldest segments were dropped, which is counted).
//! 2. A push returns only after its frame is written and `fdatasync`ed:
//!    a sample that was pushed survives a crash of the agent or the host.
//! 3. The segments' total size stays at most `max_bytes`: before a frame
//!    that would overflow is written, the oldest segments are deleted whole;
//!    their unacknowledged frames are returned by `push` as dropped.
//!    A segment is rolled once it reaches `max_bytes / 16` (at least 4 KiB),
//!    so one drop loses at most about 1/16 of the buffer.
//! 4. Frames with a sequence below the `ack` file's value are never returned
//!    again. `ack` is replaced atomically (write `ack.tmp`, fsync, rename),
//!    after the broker's acknowledgement: a crash in between ships those
//!    frames again (at least once), never loses them. A segment all of
//!    whose frames are acknowledged is deleted, except the last one.
//! 5. Recovery (`open`): every segment is scanned; the first frame that is
//!    short or fails its CRC ends it, and the file is truncated there (a
//!    torn write from a crash can only be the last frame). The next sequence
//!    is one past the last good frame, or the `ack` value if higher, so
//!    sequence numbers continue across restarts of the agent.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::AgentError;

const FRAME_HEADER: u64 = 16;
const ACK_FILE: &str = "ack";
const SEGMENT_SUFFIX: &str = ".seg";

/// A segment file and the index of its frames.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    /// (sequence, offset of the frame, payload length).
    frames: Vec<(u64, u64, u32)>,
    bytes: u64,
}

impl Segment {
    fn last_sequence(&self) -> Option<u64> {
        self.frames.last().map(|f| f.0)
    }
}

/// The buffer; see the module docs.
#[derive(Debug)]
pub struct DiskBuffer {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    /// The file of the last segment, open for appending.
    active: Option<File>,
    total_bytes: u64,
    acked: u64,
    next: u64,
}

/// What `open` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut off torn or corrupt segment tails.
    pub truncated_bytes: u64,
}

impl DiskBuffer {
    /// Opens (or creates) the buffer in `dir`, recovering what is there.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Self, Recovery), AgentError> {
        let segment_bytes = (max_bytes / 16).max(4096);
        Self::open_with(dir, max_bytes, segment_bytes)
    }

    /// As [`DiskBuffer::open`] with an explicit segment size (tests).
    pub fn open_with(dir: &Path, max_bytes: u64, segment_bytes: u64) -> Result<(Self, Recovery), AgentError> {
        let err = |context: &str| {
            let context = context.to_owned();
            let dir = dir.to_path_buf();
            move |source| AgentError::Buffer { dir, context, source }
        };
        std::fs::create_dir_all(dir).map_err(err("creating the directory"))?;
        let acked = read_ack(&dir.join(ACK_FILE)).map_err(err("reading the ack file"))?;
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(err("listing"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SEGMENT_SUFFIX)))
            .collect();
        names.sort();
        let mut recovery = Recovery::default();
        let mut segments = VecDeque::new();
        for path in names {
            let (segment, cut) = scan(&path).map_err(err("recovering a segment"))?;
            recovery.truncated_bytes += cut;
            if segment.frames.is_empty() {
                std::fs::remove_file(&path).map_err(err("removing an empty segment"))?;
            } else {
                segments.push_back(segment);
            }
        }
        let last = segments.back().and_then(Segment::last_sequence);
        let next = last.map_or(acked, |l| (l + 1).max(acked));
        let total_bytes = segments.iter().map(|s| s.bytes).sum();
        let mut buffer = DiskBuffer {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes,
            segments,
            active: None,
            total_bytes,
            acked,
            next,
        };
        buffer.delete_acked_segments()?;
        Ok((buffer, recovery))
    }

    /// The sequence number the next pushed frame gets.
    pub fn next_sequence(&self) -> u64 {
        self.next
    }

    /// Frames not yet acknowledged.
    pub fn pending(&self) -> u64 {
        self.next - self.first_pending().unwrap_or(self.next)
    }

    /// Total size of the segment files.
    pub fn size_bytes(&self) -> u64 {
        self.total_bytes
    }

    fn first_pending(&self) -> Option<u64> {
        self.segments.iter().flat_map(|s| s.frames.iter()).map(|f| f.0).find(|&seq| seq >= self.acked)
    }

    /// Appends `payload` as frame [`DiskBuffer::next_sequence`] and syncs
    /// it; returns how many unacknowledged frames had to be dropped to stay
    /// within the bound.
    pub fn push(&mut self, payload: &[u8]) -> Result<u64, AgentError> {
        let frame_len = FRAME_HEADER + payload.len() as u64;
        if frame_len > self.max_bytes {
            return Err(self.io_error("pushing", std::io::Error::other("sample larger than the whole buffer")));
        }
        let mut dropped = 0;
        while self.total_bytes + frame_len > self.max_bytes
            && let Some(oldest) = self.segments.pop_front()
        {
            if self.segments.is_empty() {
                self.active = None;
            }
            dropped += oldest.frames.iter().filter(|f| f.0 >= self.acked).count() as u64;
            self.total_bytes -= oldest.bytes;
            std::fs::remove_file(&oldest.path).map_err(|e| self.io_error("dropping the oldest segment", e))?;
        }
        if self.segments.back().is_none_or(|s| s.bytes >= self.segment_bytes) {
            self.roll()?;
        }
        if self.active.is_none() {
            let path = &self.segments.back().expect("a segment exists").path;
            let file = OpenOptions::new().append(true).open(path).map_err(|e| self.io_error("opening a segment", e))?;
            self.active = Some(file);
        }
        let sequence = self.next;
        let mut frame = Vec::with_capacity(frame_len as usize);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&frame_crc(sequence, payload).to_le_bytes());
        frame.extend_from_slice(&sequence.to_le_bytes());
        frame.extend_from_slice(payload);
        let file = self.active.as_mut().expect("opened above");
        let written = file.write_all(&frame).and_then(|()| file.sync_data());
        let segment = self.segments.back_mut().expect("a segment exists");
        if let Err(e) = written {
            // Cut a partial frame off so later appends stay readable.
            let _ = OpenOptions::new().write(true).open(&segment.path).and_then(|f| f.set_len(segment.bytes));
            self.active = None;
            return Err(self.io_error("appending", e));
        }
        segment.frames.push((sequence, segment.bytes, payload.len() as u32));
        segment.bytes += frame_len;
        self.total_bytes += frame_len;
        self.next += 1;
        Ok(dropped)
    }

    fn roll(&mut self) -> Result<(), AgentError> {
        let path = self.dir.join(format!("{:020}{SEGMENT_SUFFIX}", self.next));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| self.io_error("creating a segment", e))?;
        sync_dir(&self.dir).map_err(|e| self.io_error("syncing the directory", e))?;
        self.segments.push_back(Segment { path, frames: Vec::new(), bytes: 0 });
        self.active = Some(file);
        Ok(())
    }

    /// Up to `max_frames` unacknowledged frames (and at most about
    /// `max_bytes` of payload, always at least one), oldest first.
    pub fn read_pending(&self, max_frames: usize, max_bytes: usize) -> Result<Vec<(u64, Vec<u8>)>, AgentError> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for segment in &self.segments {
            let mut file: Option<File> = None;
            for &(sequence, offset, len) in segment.frames.iter().filter(|f| f.0 >= self.acked) {
                if out.len() >= max_frames || (!out.is_empty() && bytes + len as usize > max_bytes) {
                    return Ok(out);
                }
                let f = match &mut file {
                    Some(f) => f,
                    None => file.insert(File::open(&segment.path).map_err(|e| self.io_error("reading", e))?),
                };
                let mut payload = vec![0; len as usize];
                f.seek(SeekFrom::Start(offset + FRAME_HEADER))
                    .and_then(|_| f.read_exact(&mut payload))
                    .map_err(|e| self.io_error("reading", e))?;
                bytes += payload.len();
                out.push((sequence, payload));
            }
        }
        Ok(out)
    }

    /// Every frame up to and including `sequence` was acknowledged.
    pub fn ack(&mut self, sequence: u64) -> Result<(), AgentError> {
        let acked = sequence + 1;
        if acked <= self.acked {
            return Ok(());
        }
        self.acked = acked.min(self.next);
        write_ack(&self.dir, self.acked).map_err(|e| self.io_error("writing the ack file", e))?;
        self.delete_acked_segments()
    }

    fn delete_acked_segments(&mut self) -> Result<(), AgentError> {
        while self.segments.len() > 1 && self.segments[0].last_sequence().is_some_and(|l| l < self.acked) {
            let segment = self.segments.pop_front().expect("len > 1");
            self.total_bytes -= segment.bytes;
            std::fs::remove_file(&segment.path).map_err(|e| self.io_error("deleting an acknowledged segment", e))?;
        }
        Ok(())
    }

    fn io_error(&self, context: &str, source: std::io::Error) -> AgentError {
        AgentError::Buffer { dir: self.dir.clone(), context: context.to_owned(), source }
    }
}

fn frame_crc(sequence: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&sequence.to_le_bytes()), payload)
}

/// Reads a segment's good frames; truncates the file after the last one.
fn scan(path: &Path) -> std::io::Result<(Segment, u64)> {
    let data = std::fs::read(path)?;
    let mut frames = Vec::new();
    let mut offset = 0usize;
    let mut expected: Option<u64> = None;
    while data.len() - offset >= FRAME_HEADER as usize {
        let header = &data[offset..offset + FRAME_HEADER as usize];
        let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let sequence = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        let start = offset + FRAME_HEADER as usize;
        let Some(payload) = data.get(start..start + len as usize) else { break };
        if frame_crc(sequence, payload) != crc || expected.is_some_and(|e| e != sequence) {
            break;
        }
        frames.push((sequence, offset as u64, len));
        expected = Some(sequence + 1);
        offset = start + len as usize;
    }
    let cut = (data.len() - offset) as u64;
    if cut > 0 {
        tracing::warn!(segment = %path.display(), bytes = cut, "disk buffer: cutting a torn or corrupt tail");
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(offset as u64)?;
        file.sync_all()?;
    }
    Ok((Segment { path: path.to_path_buf(), frames, bytes: offset as u64 }, cut))
}

fn read_ack(path: &Path) -> std::io::Result<u64> {
    match std::fs::read(path) {
        Ok(data) if data.len() == 12 && crc32c::crc32c(&data[..8]).to_le_bytes() == data[8..12] => {
            Ok(u64::from_le_bytes(data[..8].try_into().expect("8 bytes")))
        }
        Ok(_) => {
            // Replaced by rename, so it is never torn; a bad one means
            // tampering: ship everything again rather than skip samples.
            tracing::warn!(path = %path.display(), "disk buffer: ignoring a corrupt ack file");
            Ok(0)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

fn write_ack(dir: &Path, acked: u64) -> std::io::Result<()> {
    let tmp = dir.join("ack.tmp");
    let mut data = acked.to_le_bytes().to_vec();
    data.extend_from_slice(&crc32c::crc32c(&data).to_le_bytes());
    let mut file = File::create(&tmp)?;
    file.write_all(&data)?;
    file.sync_data()?;
    std::fs::rename(&tmp, dir.join(ACK_FILE))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(i: u64) -> Vec<u8> {
        format!("sample-{i}-{}", "x".repeat((i % 7) as usize * 10)).into_bytes()
    }

    fn sequences(buffer: &DiskBuffer) -> Vec<u64> {
        buffer.read_pending(usize::MAX, usize::MAX).unwrap().into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn frames_come_back_in_order_and_acks_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut buffer, _) = DiskBuffer::open_with(dir.path(), 1 << 20, 4096).unwrap();
        for i in 0..200 {
            assert_eq!(buffer.next_sequence(), i);
            assert_eq!(buffer.push(&payload(i)).unwrap(), 0);
        }
        let first = buffer.read_pending(50, usize::MAX).unwrap();
        assert_eq!(first.len(), 50);
        for (i, (seq, data)) in first.iter().enumerate() {
            assert_eq!((*seq, data.clone()), (i as u64, payload(i as u64)));
        }
        buffer.ack(49).unwrap();
        assert_eq!(buffer.pending(), 150);
        let segments_before = buffer.segments.len();
        buffer.ack(149).unwrap();
        assert!(buffer.segments.len() < segments_before, "acknowledged segments are deleted");
        drop(buffer);

        let (mut buffer, recovery) = DiskBuffer::open_with(dir.path(), 1 << 20, 4096).unwrap();
        assert_eq!(recovery, Recovery::default());
        assert_eq!(sequences(&buffer), (150..200).collect::<Vec<_>>());
        assert_eq!(buffer.read_pending(10, usize::MAX).unwrap()[0].1, payload(150));
        assert_eq!(buffer.next_sequence(), 200);
        buffer.ack(199).unwrap();
        assert_eq!(buffer.pending(), 0);
        drop(buffer);
        // Everything acknowledged: sequence numbers still continue.
        let (buffer, _) = DiskBuffer::open_with(dir.path(), 1 << 20, 4096).unwrap();
        assert_eq!(buffer.next_sequence(), 200);
        assert_eq!(buffer.pending(), 0);
    }

    #[test]
    fn the_bound_drops_the_oldest_frames_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let max = 16 * 1024;
        let (mut buffer, _) = DiskBuffer::open_with(dir.path(), max, 2048).unwrap();
        let mut dropped = 0;
        for i in 0..2000 {
            dropped += buffer.push(&payload(i)).unwrap();
            assert!(buffer.size_bytes() <= max, "over the bound after push {i}");
            let on_disk: u64 =
                std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
            assert!(on_disk <= max, "files over the bound after push {i}");
        }
        assert!(dropped > 0);
        let pending = sequences(&buffer);
        assert_eq!(dropped + pending.len() as u64, 2000, "every frame is either pending or counted as dropped");
        assert_eq!(*pending.last().unwrap(), 1999);
        assert!(pending.windows(2).all(|w| w[1] == w[0] + 1), "what is kept is the newest, gap-free");
    }

    #[test]
    fn a_torn_last_frame_is_cut_and_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let (mut buffer, _) = DiskBuffer::open_with(dir.path(), 1 << 20, 1 << 20).unwrap();
        for i in 0..10 {
            buffer.push(&payload(i)).unwrap();
        }
        let segment = buffer.segments.back().unwrap().path.clone();
        drop(buffer);
        // A crash mid-write: the last frame lost its last 3 bytes.
        let len = std::fs::metadata(&segment).unwrap().len();
        OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 3).unwrap();
        let (mut buffer, recovery) = DiskBuffer::open_with(dir.path(), 1 << 20, 1 << 20).unwrap();
        assert!(recovery.truncated_bytes > 0);
        assert_eq!(sequences(&buffer), (0..9).collect::<Vec<_>>());
        assert_eq!(buffer.next_sequence(), 9);
        buffer.push(&payload(9)).unwrap();
        drop(buffer);

        // Garbage after the last frame (a frame header written, payload not).
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 10, 0, 0, 0, 0, 0, 0, 0, 9]).unwrap();
        drop(file);
        let (buffer, recovery) = DiskBuffer::open_with(dir.path(), 1 << 20, 1 << 20).unwrap();
        assert_eq!(recovery.truncated_bytes, 17);
        let frames = buffer.read_pending(usize::MAX, usize::MAX).unwrap();
        assert_eq!(frames.iter().map(|f| f.0).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert_eq!(frames[9].1, payload(9));
    }

    #[test]
    fn a_flipped_byte_ends_the_segment_at_the_bad_frame() {
        let dir = tempfile::tempdir().unwrap();
        let (mut buffer, _) = DiskBuffer::open_with(dir.path(), 1 << 20, 1 << 20).unwrap();
        for i in 0..5 {
            buffer.push(&payload(i)).unwrap();
        }
        let (_, offset, _) = buffer.segments[0].frames[3];
        let segment = buffer.segments[0].path.clone();
        drop(buffer);
        let mut data = std::fs::read(&segment).unwrap();
        data[offset as usize + FRAME_HEADER as usize] ^= 0xff;
        std::fs::write(&segment, data).unwrap();
        let (buffer, _) = DiskBuffer::open_with(dir.path(), 1 << 20, 1 << 20).unwrap();
        assert_eq!(sequences(&buffer), vec![0, 1, 2]);
        assert_eq!(buffer.next_sequence(), 3);
    }
}
