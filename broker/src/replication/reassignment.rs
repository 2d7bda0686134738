//! The active controller's side of a reassignment: once every target
//! replica of a moving partition is in its ISR, propose
//! `CompleteReassignment` (drop the leaving replicas, preferred replica
//! leads). Everything else lives in the replicated metadata, so a new
//! controller picks up where the old one stopped.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::controller::Controller;
use crate::controller::state::MetadataCommand;

/// Re-checks this often even without a metadata change (a refused or
/// failed completion is retried).
const RECHECK: Duration = Duration::from_millis(500);

pub async fn completion_loop(controller: Controller, shutdown: CancellationToken) {
    let mut state = controller.state();
    loop {
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RECHECK) => {}
            _ = shutdown.cancelled() => return,
        }
        if !controller.is_leader() {
            continue;
        }
        // Read in place (no copy of the whole state), released before writing.
        let ready: Vec<(String, u32)> = {
            let current = state.borrow_and_update();
            if current.reassignment.is_none() {
                continue; // nothing moving: no need to look at every partition
            }
            current
                .pending_reassignments()
                .filter(|(_, _, p, r)| r.target.iter().all(|b| p.isr.contains(b)))
                .map(|(topic, partition, _, _)| (topic.to_string(), partition))
                .collect()
        };
        for (topic, partition) in ready {
            let command = MetadataCommand::CompleteReassignment { topic: topic.clone(), partition };
            match controller.write(command).await {
                Ok(Ok(_)) => tracing::info!(%topic, partition, "reassignment of partition completed"),
                Ok(Err(refused)) => tracing::debug!(%topic, partition, %refused, "completion refused"),
                Err(err) => tracing::warn!(%topic, partition, error = %err, "could not complete reassignment"),
            }
        }
    }
}
