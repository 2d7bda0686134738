//! The replication throttle of a reassignment: a token bucket per broker
//! and direction (leader side: bytes sent to replicas being added; follower
//! side: bytes a new replica copies), like Kafka's
//! `leader.replication.throttled.rate` / `follower.replication.throttled.rate`.
//! Replication between in-sync replicas is never throttled, so acks=all
//! latency does not suffer while a reassignment copies data.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How much unused rate may be saved up: half a second's worth, so the
/// rate holds over short windows too — or twice the largest transfer seen,
/// if more: a fetch returns at least one whole batch, and with batches
/// larger than the saving cap the leader's and the follower's buckets
/// would each make the other wait, and the copy would run below the rate.
const BURST: f64 = 0.5;

#[derive(Debug)]
pub struct Throttle {
    /// Bytes per second; 0 = unthrottled.
    rate: AtomicU64,
    /// Tokens (bytes; negative = debt) and when they were counted.
    bucket: Mutex<(f64, Instant)>,
    /// The largest single transfer accounted, bytes.
    largest: AtomicU64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle { rate: AtomicU64::new(0), bucket: Mutex::new((0.0, Instant::now())), largest: AtomicU64::new(0) }
    }
}

impl Throttle {
    pub fn set_rate(&self, bytes_per_sec: Option<u64>) {
        let rate = bytes_per_sec.unwrap_or(0);
        if self.rate.swap(rate, Ordering::Relaxed) != rate {
            *self.bucket.lock() = (0.0, Instant::now());
        }
    }

    pub fn rate(&self) -> Option<u64> {
        Some(self.rate.load(Ordering::Relaxed)).filter(|r| *r > 0)
    }

    /// The most one fetch should carry: a tenth of a second's worth, so a
    /// throttled copy moves in small steps rather than bursts.
    pub fn chunk(&self, max_bytes: usize) -> usize {
        match self.rate() {
            Some(rate) => max_bytes.min((rate / 10).max(16 * 1024) as usize),
            None => max_bytes,
        }
    }

    /// Accounts for `bytes` sent or received; returns how long to wait
    /// before the next transfer to stay within the rate.
    pub fn consume(&self, bytes: usize) -> Duration {
        self.consume_at(Instant::now(), bytes)
    }

    fn consume_at(&self, now: Instant, bytes: usize) -> Duration {
        let Some(rate) = self.rate() else { return Duration::ZERO };
        let rate = rate as f64;
        let largest = self.largest.fetch_max(bytes as u64, Ordering::Relaxed).max(bytes as u64) as f64;
        let cap = (rate * BURST).max(2.0 * largest);
        let mut bucket = self.bucket.lock();
        let (tokens, since) = *bucket;
        let refilled = (tokens + now.saturating_duration_since(since).as_secs_f64() * rate).min(cap);
        let left = refilled - bytes as f64;
        *bucket = (left, now);
        if left >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-left / rate) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unthrottled_never_waits() {
        let t = Throttle::default();
        assert_eq!(t.consume(10 << 20), Duration::ZERO);
        assert_eq!(t.chunk(1 << 20), 1 << 20);
    }

    #[test]
    fn debt_is_paid_at_the_rate() {
        let t = Throttle::default();
        t.set_rate(Some(1_000_000));
        assert_eq!(t.chunk(8 << 20), 100_000);
        // From an empty bucket, 500 kB costs half a second.
        let wait = t.consume(500_000);
        assert!(wait > Duration::from_millis(450) && wait <= Duration::from_millis(500), "{wait:?}");
        // The next 100 kB queue behind the debt.
        let wait = t.consume(100_000);
        assert!(wait > Duration::from_millis(550) && wait <= Duration::from_millis(600), "{wait:?}");
        t.set_rate(None);
        assert_eq!(t.consume(1 << 30), Duration::ZERO);
    }

    #[test]
    fn a_leader_and_a_follower_bucket_in_series_keep_the_rate_with_large_batches() {
        // Both sides throttle the same copy; a fetch carries one 2 MB batch,
        // far above half a second's worth at 1 MB/s. Simulated clock: the
        // leader waits before answering, then the follower before fetching
        // again.
        let (leader, follower) = (Throttle::default(), Throttle::default());
        leader.set_rate(Some(1_000_000));
        follower.set_rate(Some(1_000_000));
        let start = Instant::now();
        let mut clock = start;
        let batch = 2_000_000;
        for _ in 0..20 {
            clock += leader.consume_at(clock, batch);
            clock += follower.consume_at(clock, batch);
        }
        let seconds = clock.duration_since(start).as_secs_f64();
        let rate = 20.0 * batch as f64 / seconds;
        assert!((900_000.0..=1_100_000.0).contains(&rate), "{rate:.0} B/s over {seconds:.1} s");
    }
}
