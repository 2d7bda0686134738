//! Checkpoints and group offset sync (MM2's MirrorCheckpointConnector):
//! every checkpoint interval, each mirrored group's committed offsets on
//! the source are translated through the offset syncs, written as
//! checkpoint records to `<source-alias>.checkpoints.internal` on the
//! target, and committed to the same group on the target when that group
//! has no members there and its committed offset is behind. A consumer of
//! the group that moves to the target then starts where the source's
//! committed offsets point (translated exactly), so it reprocesses at most
//! what it read after its last commit on the source.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use kmon_client::{ErrorCode, OutgoingRecord, TopicPartition};
use tokio::sync::watch;

use crate::error::{Context, MirrorError};
use crate::metrics::{CheckpointLabels, GroupLabels};
use crate::run::Mirror;
use crate::sync::Checkpoint;

pub(crate) struct Checkpointer {
    mirror: Arc<Mirror>,
    /// The last checkpoint written per (group, target partition): only
    /// changes are written again.
    written: HashMap<(String, TopicPartition), (i64, i64)>,
}

impl Checkpointer {
    pub(crate) fn new(mirror: Arc<Mirror>) -> Self {
        Checkpointer { mirror, written: HashMap::new() }
    }

    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let interval = self.mirror.args.checkpoint_interval;
        while !*stop.borrow() {
            if let Err(err) = self.round().await {
                tracing::warn!(error = %err, "checkpoint round failed; next interval retries");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn round(&mut self) -> Result<(), MirrorError> {
        let mirror = self.mirror.clone();
        let own = mirror.args.position_group();
        let groups = mirror.source.list_groups().await.context(|| "listing the source's groups".into())?;
        for group in groups.iter().map(|g| &g.group_id).filter(|g| **g != own && mirror.policy.mirrors_group(g)) {
            if let Err(err) = self.checkpoint_group(group).await {
                tracing::warn!(group, error = %err, "group not checkpointed this round");
            }
        }
        Ok(())
    }

    async fn checkpoint_group(&mut self, group: &str) -> Result<(), MirrorError> {
        let started = Instant::now();
        let mirror = self.mirror.clone();
        let committed = mirror
            .source
            .fetch_offsets(group, &[])
            .await
            .context(|| format!("reading group {group:?}'s offsets on the source"))?;
        let mut checkpoints = Vec::new();
        {
            let store = mirror.store.lock().expect("offset sync store");
            for c in committed.iter().filter(|c| mirror.policy.mirrors_topic(&c.topic)) {
                let Some(upstream) = c.offset else { continue };
                let source = TopicPartition::new(&c.topic, c.partition);
                let Some(downstream) = store.translate(&source, upstream) else { continue };
                checkpoints.push(Checkpoint {
                    group: group.to_owned(),
                    partition: TopicPartition::new(mirror.policy.remote_topic(&c.topic), c.partition),
                    upstream,
                    downstream,
                    metadata: c.metadata.clone(),
                });
            }
        }
        let fresh: Vec<&Checkpoint> = checkpoints
            .iter()
            .filter(|c| self.written.get(&(c.group.clone(), c.partition.clone())) != Some(&(c.upstream, c.downstream)))
            .collect();
        if !fresh.is_empty() {
            self.write(group, &fresh, started).await?;
        }
        // Every round, not only on new checkpoints: a sync refused while
        // the group was active on the target is tried again.
        if mirror.args.sync_group_offsets && !checkpoints.is_empty() {
            self.sync_group(group, &checkpoints).await?;
        }
        Ok(())
    }

    /// Writes checkpoints and notes them as written.
    async fn write(&mut self, group: &str, fresh: &[&Checkpoint], started: Instant) -> Result<(), MirrorError> {
        let mirror = self.mirror.clone();
        let topic = mirror.policy.checkpoints_topic();
        for c in fresh {
            let (key, value) = (c.key(), c.value());
            let record =
                OutgoingRecord { partition: Some(0), timestamp_ms: None, key: Some(&key), value: &value, headers: &[] };
            mirror
                .producer
                .send_record(&topic, &record)
                .await
                .context(|| format!("writing a checkpoint to {topic}"))?;
        }
        mirror.producer.flush().await.context(|| format!("writing checkpoints to {topic}"))?;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let group_labels = group_labels(&mirror, group);
        mirror.metrics.checkpoints.get_or_create(&group_labels).inc_by(fresh.len() as u64);
        for c in fresh {
            let labels = CheckpointLabels {
                source: group_labels.source.clone(),
                target: group_labels.target.clone(),
                group: group.to_owned(),
                topic: c.partition.topic.clone(),
                partition: c.partition.partition.to_string(),
            };
            mirror.metrics.checkpoint_latency_ms.get_or_create(&labels).set(latency_ms);
            let max = mirror.metrics.checkpoint_latency_ms_max.get_or_create(&labels);
            if latency_ms > max.get() {
                max.set(latency_ms);
            }
            self.written.insert((c.group.clone(), c.partition.clone()), (c.upstream, c.downstream));
        }
        Ok(())
    }

    /// Commits the translated offsets to the group on the target, unless
    /// the group has members there (it is already consuming there) or is
    /// already at or past them.
    async fn sync_group(&self, group: &str, checkpoints: &[Checkpoint]) -> Result<(), MirrorError> {
        let target = &self.mirror.target;
        match target.describe_group(group).await {
            Ok(description) if !matches!(description.state.as_str(), "Empty" | "Dead") => {
                tracing::debug!(group, state = %description.state, "group active on the target: offsets not synced");
                return Ok(());
            }
            Ok(_) => {}
            Err(err) if err.code() == Some(ErrorCode::GroupIdNotFound) => {}
            Err(err) => return Err(err).context(|| format!("describing group {group:?} on the target")),
        }
        let partitions: Vec<TopicPartition> = checkpoints.iter().map(|c| c.partition.clone()).collect();
        let current = target
            .fetch_offsets(group, &partitions)
            .await
            .context(|| format!("reading group {group:?}'s offsets on the target"))?;
        let behind: BTreeMap<TopicPartition, i64> = checkpoints
            .iter()
            .filter(|c| {
                let now = current.iter().find(|o| o.topic == c.partition.topic && o.partition == c.partition.partition);
                now.and_then(|o| o.offset).is_none_or(|offset| offset < c.downstream)
            })
            .map(|c| (c.partition.clone(), c.downstream))
            .collect();
        if behind.is_empty() {
            return Ok(());
        }
        match target.reset_offsets(group, &behind).await {
            Ok(()) => {
                self.mirror
                    .metrics
                    .group_offsets_synced
                    .get_or_create(&group_labels(&self.mirror, group))
                    .inc_by(behind.len() as u64);
                tracing::info!(group, partitions = behind.len(), "synced group offsets to the target");
                Ok(())
            }
            // A member joined meanwhile: it is consuming on the target.
            Err(err) if err.code() == Some(ErrorCode::NonEmptyGroup) => Ok(()),
            Err(err) => Err(err).context(|| format!("committing group {group:?}'s offsets on the target")),
        }
    }
}

fn group_labels(mirror: &Mirror, group: &str) -> GroupLabels {
    GroupLabels {
        source: mirror.policy.source_alias.clone(),
        target: mirror.policy.target_alias.clone(),
        group: group.to_owned(),
    }
}
