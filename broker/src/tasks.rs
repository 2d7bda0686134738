//! The broker's one cancellation token and one task tracker: every task a
//! broker spawns (its loops, follower fetchers, ISR proposals, the group
//! coordinator's loads and writes, the Kafka listener) is tracked here, so
//! shutdown cancels them all and waits for every one before the logs close.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone, Default)]
pub struct Tasks {
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Tasks {
    pub fn new(shutdown: CancellationToken) -> Self {
        Tasks { shutdown, tracker: TaskTracker::new() }
    }

    /// The broker's shutdown token.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Spawns a task that stops by itself once shutdown is cancelled (a
    /// loop that selects on it); shutdown waits for it to finish.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(task);
    }

    /// Spawns a one-off task that is dropped at its next await once shutdown
    /// is cancelled (a quorum write that could wait for a lost majority).
    pub fn spawn_cancellable(&self, task: impl Future<Output = ()> + Send + 'static) {
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = task => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }

    /// Cancels shutdown and waits for every tracked task.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn stop_waits_for_loops_and_drops_cancellable_tasks() {
        let tasks = Tasks::new(CancellationToken::new());
        let finished = Arc::new(AtomicBool::new(false));
        let (token, done) = (tasks.shutdown().clone(), finished.clone());
        tasks.spawn(async move {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_millis(20)).await; // cleanup after the signal
            done.store(true, Ordering::SeqCst);
        });
        tasks.spawn_cancellable(std::future::pending());
        tokio::time::timeout(Duration::from_secs(5), tasks.stop()).await.expect("stop returns");
        assert!(finished.load(Ordering::SeqCst), "stop waited for the loop's cleanup");
    }
}
