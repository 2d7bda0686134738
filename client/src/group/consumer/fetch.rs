//! Fetching the owned partitions: where each starts (committed offset or
//! `auto_offset_reset`), taking fetch results, resetting positions out of
//! range, and handing records to `poll` while the positions move past
//! them.

use std::collections::BTreeMap;

use super::GroupConsumer;
use super::config::AutoOffsetReset;
use crate::error::{ClientError, ErrorCode};
use crate::group::admin::fetch_offsets;
use crate::types::{ConsumerRecord, OffsetSpec, TopicPartition};

impl GroupConsumer {
    /// Forgets `partitions` without committing.
    pub(super) fn drop_partitions(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.fetcher.unassign(&tp.topic, tp.partition);
            self.positions.remove(tp);
            self.owned.remove(tp);
            self.unstarted.remove(tp);
        }
        self.buffer.retain(|r| !partitions.iter().any(|tp| *tp.topic == *r.topic && tp.partition == r.partition));
    }

    pub(super) fn stop_fetching_all(&mut self) {
        for tp in &self.owned {
            self.fetcher.unassign(&tp.topic, tp.partition);
        }
        self.buffer.clear();
    }

    /// Starts fetching the owned partitions not started yet: at the
    /// committed offset, else per `auto_offset_reset`. A failure leaves
    /// them for the next `poll`.
    pub(super) async fn start_unstarted(&mut self) {
        if self.unstarted.is_empty() {
            return;
        }
        let partitions: Vec<TopicPartition> = self.unstarted.iter().cloned().collect();
        if let Err(err) = self.start(&partitions).await {
            tracing::warn!(group = %self.config.group_id, error = %err, "cannot start partitions yet");
        }
    }

    async fn start(&mut self, partitions: &[TopicPartition]) -> Result<(), ClientError> {
        let committed = fetch_offsets(&self.coordinator, partitions).await?;
        let mut starts: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for c in committed {
            if let Some(offset) = c.offset {
                starts.insert(TopicPartition::new(c.topic, c.partition), offset);
            }
        }
        let missing: Vec<&TopicPartition> = partitions.iter().filter(|tp| !starts.contains_key(*tp)).collect();
        if !missing.is_empty() {
            let spec = OffsetSpec::from(self.config.auto_offset_reset);
            let request: Vec<(&str, u32, OffsetSpec)> =
                missing.iter().map(|tp| (tp.topic.as_str(), tp.partition, spec)).collect();
            for resolved in self.admin.list_offsets(&request).await? {
                starts.insert(TopicPartition::new(resolved.topic, resolved.partition), resolved.offset.unwrap_or(0));
            }
        }
        for tp in partitions {
            let Some(&offset) = starts.get(tp) else { continue };
            if !self.owned.contains(tp) {
                continue;
            }
            self.fetcher.assign(&tp.topic, tp.partition, offset);
            self.positions.insert(tp.clone(), offset);
            self.unstarted.remove(tp);
            tracing::debug!(group = %self.config.group_id, partition = %tp, offset, "starting");
        }
        Ok(())
    }

    /// Takes a fetch result: records into the buffer; an offset out of
    /// range resets the partitions concerned.
    pub(super) async fn fetched(
        &mut self,
        fetched: Result<Vec<ConsumerRecord>, ClientError>,
    ) -> Result<(), ClientError> {
        match fetched {
            Ok(records) => {
                self.buffer.extend(records);
                Ok(())
            }
            Err(err) if err.code() == Some(ErrorCode::OffsetOutOfRange) => self.reset_out_of_range().await,
            Err(err) if err.is_retriable() => {
                tracing::debug!(error = %err, "fetch failed, retrying");
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Moves every partition whose position is outside its log to
    /// `auto_offset_reset`.
    async fn reset_out_of_range(&mut self) -> Result<(), ClientError> {
        let partitions: Vec<TopicPartition> = self.positions.keys().cloned().collect();
        let mut request = Vec::new();
        for tp in &partitions {
            request.push((tp.topic.as_str(), tp.partition, OffsetSpec::Earliest));
            request.push((tp.topic.as_str(), tp.partition, OffsetSpec::Latest));
        }
        let earliest: BTreeMap<TopicPartition, i64> = self
            .admin
            .list_offsets(&request.iter().copied().step_by(2).collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|o| (TopicPartition::new(o.topic, o.partition), o.offset.unwrap_or(0)))
            .collect();
        let latest: BTreeMap<TopicPartition, i64> = self
            .admin
            .list_offsets(&request.iter().copied().skip(1).step_by(2).collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|o| (TopicPartition::new(o.topic, o.partition), o.offset.unwrap_or(0)))
            .collect();
        for tp in partitions {
            let (Some(&low), Some(&high)) = (earliest.get(&tp), latest.get(&tp)) else { continue };
            let Some(fetch_position) = self.fetcher.position(&tp.topic, tp.partition) else { continue };
            if (low..=high).contains(&fetch_position) {
                continue;
            }
            let to = match self.config.auto_offset_reset {
                AutoOffsetReset::Earliest => low,
                AutoOffsetReset::Latest => high,
            };
            tracing::warn!(partition = %tp, position = fetch_position, to, "offset out of range: resetting");
            self.buffer.retain(|r| !(*r.topic == tp.topic && r.partition == tp.partition));
            self.fetcher.assign(&tp.topic, tp.partition, to);
            self.positions.insert(tp, to);
        }
        Ok(())
    }

    /// Up to `max` buffered records; the positions move past them.
    pub(super) fn take(&mut self, max: usize) -> Vec<ConsumerRecord> {
        let count = max.min(self.buffer.len());
        let records: Vec<ConsumerRecord> = self.buffer.drain(..count).collect();
        let mut last: Option<(&ConsumerRecord, i64)> = None;
        let advance = |record: &ConsumerRecord, next: i64, positions: &mut BTreeMap<TopicPartition, i64>| {
            let tp = TopicPartition::new(&*record.topic, record.partition);
            if let Some(position) = positions.get_mut(&tp) {
                *position = (*position).max(next);
            }
        };
        for record in &records {
            match last {
                Some((previous, _)) if previous.topic == record.topic && previous.partition == record.partition => {}
                Some((previous, next)) => advance(previous, next, &mut self.positions),
                None => {}
            }
            last = Some((record, record.offset + 1));
        }
        if let Some((previous, next)) = last {
            advance(previous, next, &mut self.positions);
        }
        records
    }
}
