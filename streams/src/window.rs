//! Time windows on record time (pure): tumbling and hopping windows with a
//! grace period, as Kafka Streams' `TimeWindows`.
//!
//! A window is `[start, start + size)`, starts are multiples of `advance`
//! (tumbling: `advance == size`). A record updates every window holding
//! its timestamp unless that window is closed: `end + grace <=` stream
//! time (the largest timestamp its task has seen, this record included).
//! Updates of closed windows are dropped and counted. A window stays in its
//! store until stream time passes its start + retention (default one day,
//! at least size + grace, as Kafka Streams' windowed stores), then it is
//! purged at the next commit.

use std::time::Duration;

use crate::error::StreamsError;
use crate::serde::Serde;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    pub size_ms: i64,
    pub advance_ms: i64,
    pub grace_ms: i64,
    /// `None`: [`DEFAULT_RETENTION_MS`], or size + grace if longer.
    pub retention_ms: Option<i64>,
}

/// Kafka Streams' default retention of a windowed store: one day.
pub const DEFAULT_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

impl TimeWindows {
    /// Tumbling windows of `size`, no grace.
    pub fn tumbling(size: Duration) -> TimeWindows {
        let size_ms = size.as_millis() as i64;
        TimeWindows { size_ms, advance_ms: size_ms, grace_ms: 0, retention_ms: None }
    }

    /// Hopping windows: a window of `size` starting every `advance`.
    pub fn hopping(size: Duration, advance: Duration) -> TimeWindows {
        TimeWindows {
            size_ms: size.as_millis() as i64,
            advance_ms: advance.as_millis() as i64,
            grace_ms: 0,
            retention_ms: None,
        }
    }

    /// How long after a window's end its late records are still taken.
    pub fn grace(self, grace: Duration) -> TimeWindows {
        TimeWindows { grace_ms: grace.as_millis() as i64, ..self }
    }

    /// How long after its start a window is kept in the store (at least
    /// size + grace: a window must not be purged while it takes records).
    pub fn retention(self, retention: Duration) -> TimeWindows {
        TimeWindows { retention_ms: Some(retention.as_millis() as i64), ..self }
    }

    /// The retention in effect (see [`TimeWindows::retention`]).
    pub fn retention_ms(&self) -> i64 {
        self.retention_ms.unwrap_or(DEFAULT_RETENTION_MS.max(self.size_ms + self.grace_ms))
    }

    pub(crate) fn validate(&self) -> Result<(), StreamsError> {
        if self.size_ms <= 0 || self.advance_ms <= 0 || self.advance_ms > self.size_ms || self.grace_ms < 0 {
            return Err(StreamsError::Topology(format!(
                "windows need 0 < advance <= size and grace >= 0 (size {} ms, advance {} ms, grace {} ms)",
                self.size_ms, self.advance_ms, self.grace_ms
            )));
        }
        if self.retention_ms() < self.size_ms + self.grace_ms {
            return Err(StreamsError::Topology(format!(
                "window retention ({} ms) must be at least size + grace ({} ms)",
                self.retention_ms(),
                self.size_ms + self.grace_ms
            )));
        }
        Ok(())
    }

    /// The starts of the windows holding `timestamp_ms`, oldest first.
    pub fn starts_for(&self, timestamp_ms: i64) -> Vec<i64> {
        let last = timestamp_ms.div_euclid(self.advance_ms) * self.advance_ms;
        let mut starts = Vec::new();
        let mut start = last;
        while start > timestamp_ms - self.size_ms {
            starts.push(start);
            start -= self.advance_ms;
        }
        starts.reverse();
        starts
    }

    /// Whether the window starting at `start_ms` no longer takes records.
    pub fn is_closed(&self, start_ms: i64, stream_time_ms: i64) -> bool {
        start_ms + self.size_ms + self.grace_ms <= stream_time_ms
    }

    /// Whether the window starting at `start_ms` is past its retention
    /// (closed too, as retention >= size + grace).
    pub fn is_expired(&self, start_ms: i64, stream_time_ms: i64) -> bool {
        start_ms.saturating_add(self.retention_ms()) <= stream_time_ms
    }
}

/// A key within one window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    pub key: K,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A windowed store key: the key's bytes, then the window start (8 bytes
/// big-endian).
pub(crate) fn window_key(key: &[u8], start_ms: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 8);
    out.extend_from_slice(key);
    out.extend_from_slice(&start_ms.to_be_bytes());
    out
}

pub(crate) fn split_window_key(bytes: &[u8]) -> Option<(&[u8], i64)> {
    let cut = bytes.len().checked_sub(8)?;
    Some((&bytes[..cut], i64::from_be_bytes(bytes[cut..].try_into().ok()?)))
}

/// Reads [`Windowed`] keys back from windowed store keys.
pub(crate) struct WindowedSerde<K> {
    pub(crate) inner: std::sync::Arc<dyn Serde<K>>,
    pub(crate) size_ms: i64,
}

impl<K: 'static> Serde<Windowed<K>> for WindowedSerde<K> {
    fn serialize(&self, value: &Windowed<K>) -> Vec<u8> {
        window_key(&self.inner.serialize(&value.key), value.start_ms)
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<Windowed<K>, StreamsError> {
        let (key, start_ms) = split_window_key(bytes)
            .ok_or(StreamsError::Deserialize { what: "a windowed key", reason: "shorter than 8 bytes".into() })?;
        Ok(Windowed { key: self.inner.deserialize(key)?, start_ms, end_ms: start_ms + self.size_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn tumbling_windows_hold_each_timestamp_once() {
        let w = TimeWindows::tumbling(10 * S);
        assert_eq!(w.starts_for(0), vec![0]);
        assert_eq!(w.starts_for(9_999), vec![0]);
        assert_eq!(w.starts_for(10_000), vec![10_000]);
        assert_eq!(w.starts_for(-1), vec![-10_000]);
    }

    #[test]
    fn hopping_windows_overlap() {
        let w = TimeWindows::hopping(10 * S, 5 * S);
        assert_eq!(w.starts_for(12_000), vec![5_000, 10_000]);
        assert_eq!(w.starts_for(10_000), vec![5_000, 10_000]);
        assert_eq!(w.starts_for(4_999), vec![-5_000, 0]);
        let thirds = TimeWindows::hopping(3 * S, S);
        assert_eq!(thirds.starts_for(5_500), vec![3_000, 4_000, 5_000]);
    }

    #[test]
    fn a_window_closes_at_end_plus_grace() {
        let w = TimeWindows::tumbling(10 * S).grace(2 * S);
        assert!(!w.is_closed(0, 11_999));
        assert!(w.is_closed(0, 12_000));
        let no_grace = TimeWindows::tumbling(10 * S);
        assert!(!no_grace.is_closed(0, 9_999));
        assert!(no_grace.is_closed(0, 10_000));
    }

    #[test]
    fn bad_windows_are_refused() {
        assert!(TimeWindows::hopping(S, 2 * S).validate().unwrap_err().to_string().contains("advance <= size"));
        assert!(TimeWindows::tumbling(Duration::ZERO).validate().is_err());
        assert!(TimeWindows::tumbling(S).grace(S).validate().is_ok());
        let short = TimeWindows::tumbling(10 * S).grace(2 * S).retention(11 * S);
        assert!(short.validate().unwrap_err().to_string().contains("at least size + grace (12000 ms)"));
    }

    #[test]
    fn a_window_expires_a_retention_after_its_start() {
        let w = TimeWindows::tumbling(10 * S);
        assert_eq!(w.retention_ms(), DEFAULT_RETENTION_MS);
        assert!(!w.is_expired(0, DEFAULT_RETENTION_MS - 1));
        assert!(w.is_expired(0, DEFAULT_RETENTION_MS));
        let long = TimeWindows::tumbling(Duration::from_secs(2 * 86_400));
        assert_eq!(long.retention_ms(), 2 * DEFAULT_RETENTION_MS, "at least size + grace");
        let custom = TimeWindows::tumbling(10 * S).grace(2 * S).retention(60 * S);
        assert!(!custom.is_expired(0, 59_999) && custom.is_expired(0, 60_000));
    }

    #[test]
    fn window_keys_split_back() {
        let key = window_key(b"user", -5_000);
        assert_eq!(split_window_key(&key), Some((&b"user"[..], -5_000)));
        assert_eq!(split_window_key(b"short"), None);
    }
}
