//! The mean time a metadata command takes to commit on the leader, over a
//! recent window, as Kafka's `commit-latency-avg` keeps it: samples of 30 s,
//! the average over the current sample and the one before (30 to 60 s of
//! history), none when no command committed in that time.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One sample: commands that committed from `start` on, and their total time.
#[derive(Debug, Clone, Copy)]
struct Sample {
    start: Instant,
    count: u64,
    total: Duration,
}

impl Sample {
    fn new(start: Instant) -> Sample {
        Sample { start, count: 0, total: Duration::ZERO }
    }
}

#[derive(Debug)]
struct Samples {
    current: Sample,
    previous: Option<Sample>,
}

#[derive(Debug)]
pub(crate) struct CommitLatency {
    sample: Duration,
    samples: Mutex<Samples>,
}

impl Default for CommitLatency {
    fn default() -> Self {
        CommitLatency::new(Duration::from_secs(30), Instant::now())
    }
}

impl CommitLatency {
    fn new(sample: Duration, now: Instant) -> CommitLatency {
        CommitLatency { sample, samples: Mutex::new(Samples { current: Sample::new(now), previous: None }) }
    }

    /// A command committed (and was applied) `took` after it was proposed.
    pub(crate) fn record(&self, took: Duration) {
        self.record_at(Instant::now(), took);
    }

    /// The mean over the window; `None` when nothing committed in it.
    pub(crate) fn average(&self) -> Option<Duration> {
        self.average_at(Instant::now())
    }

    fn record_at(&self, now: Instant, took: Duration) {
        let mut samples = self.roll(now);
        samples.current.count += 1;
        samples.current.total += took;
    }

    fn average_at(&self, now: Instant) -> Option<Duration> {
        let samples = self.roll(now);
        let (count, total) = samples
            .previous
            .iter()
            .chain([&samples.current])
            .fold((0u64, Duration::ZERO), |(c, t), s| (c + s.count, t + s.total));
        (count > 0).then(|| total / u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Starts a new sample once the current one is `sample` old; the old
    /// one stays as the previous sample while it is less than two old.
    fn roll(&self, now: Instant) -> std::sync::MutexGuard<'_, Samples> {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let age = now.saturating_duration_since(samples.current.start);
        if age >= self.sample {
            samples.previous = (age < 2 * self.sample).then_some(samples.current);
            samples.current = Sample::new(now);
        }
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_covers_the_current_and_the_previous_sample_only() {
        let t0 = Instant::now();
        let s = Duration::from_secs(30);
        let latency = CommitLatency::new(s, t0);
        assert_eq!(latency.average_at(t0), None, "nothing committed yet");
        latency.record_at(t0, Duration::from_millis(10));
        latency.record_at(t0 + Duration::from_secs(1), Duration::from_millis(30));
        assert_eq!(latency.average_at(t0 + Duration::from_secs(2)), Some(Duration::from_millis(20)));
        // A new sample: the previous one still counts.
        latency.record_at(t0 + Duration::from_secs(31), Duration::from_millis(80));
        assert_eq!(latency.average_at(t0 + Duration::from_secs(32)), Some(Duration::from_millis(40)));
        // Another: the first one is gone.
        assert_eq!(latency.average_at(t0 + Duration::from_secs(62)), Some(Duration::from_millis(80)));
        // Quiet for longer than two samples: nothing.
        assert_eq!(latency.average_at(t0 + Duration::from_secs(200)), None);
    }
}
