//! Committing: on demand ([`GroupConsumer::commit`],
//! [`GroupConsumer::commit_offsets`]), auto-commit when due, and the
//! OffsetCommit itself, in the member's current generation.

use std::collections::BTreeMap;
use std::time::Instant;

use super::GroupConsumer;
use crate::error::ClientError;
use crate::group::admin::commit_request;
use crate::group::member::{NO_GENERATION, Reaction};
use crate::types::TopicPartition;

impl GroupConsumer {
    /// Commits the positions of the records returned so far on every owned
    /// partition, synchronously.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        let offsets = self.owned_positions();
        self.last_commit = Instant::now();
        self.commit_now(&offsets).await
    }

    /// Commits these offsets (the offset of the next record to read, as in
    /// Kafka) in the current generation.
    pub async fn commit_offsets(&mut self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<(), ClientError> {
        self.commit_now(offsets).await
    }

    pub(super) async fn maybe_auto_commit(&mut self) {
        if !self.config.auto_commit || self.last_commit.elapsed() < self.config.auto_commit_interval {
            return;
        }
        self.last_commit = Instant::now();
        let offsets = self.owned_positions();
        if offsets.is_empty() {
            return;
        }
        if let Err(err) = self.commit_now(&offsets).await {
            tracing::warn!(group = %self.config.group_id, error = %err, "auto-commit failed");
        }
    }

    pub(super) fn owned_positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.positions.iter().filter(|(tp, _)| self.owned.contains(*tp)).map(|(tp, &o)| (tp.clone(), o)).collect()
    }

    /// OffsetCommit in the current generation; a group error is applied to
    /// the member state (and wakes `poll`).
    pub(super) async fn commit_now(&self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let (member_id, generation) = {
            let state = self.shared.lock();
            (state.member_id.clone(), state.generation)
        };
        if generation == NO_GENERATION {
            return Err(ClientError::InvalidArgument(format!(
                "not a member of a generation of group {:?} (poll first)",
                self.config.group_id
            )));
        }
        let request = commit_request(
            &self.config.group_id,
            generation,
            &member_id,
            self.config.group_instance_id.as_deref(),
            offsets,
        );
        let result = self
            .coordinator
            .request(|mut client| {
                let request = request.clone();
                async move { client.offset_commit(request).await }
            })
            .await;
        match result {
            Ok(_) => {
                tracing::debug!(group = %self.config.group_id, ?offsets, "committed");
                Ok(())
            }
            Err(err) => {
                if self.shared.lock().on_error(generation, &member_id, &err) != Reaction::None {
                    self.shared.wake.notify_one();
                }
                Err(err)
            }
        }
    }
}
