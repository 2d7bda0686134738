//! How long to wait between tries (pure, no I/O); which failures are
//! worth another try is [`ClientError::is_retriable`].

use std::time::Duration;

/// First wait after a retriable failure.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between two tries.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Exponential backoff: [`INITIAL_BACKOFF`] doubling up to
/// [`MAX_BACKOFF`].
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: INITIAL_BACKOFF }
    }
}

impl Backoff {
    /// The wait before the next try.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_second() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| backoff.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
    }
}
