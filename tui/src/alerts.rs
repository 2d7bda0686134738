//! The alert conditions of the Prometheus rules, evaluated live from a
//! snapshot (and the lag history kept by [`crate::app::State`]).

use std::collections::{BTreeMap, VecDeque};

use crate::snapshot::{GroupStatus, Snapshot, is_offline, is_under_replicated};

/// Disk used above this fraction raises an alert.
pub const DISK_FULL: f64 = 0.85;
/// Lag rising over this many consecutive samples counts as growing.
pub const LAG_GROWING_SAMPLES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

/// A condition that holds now; `key` identifies it across refreshes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub key: String,
    pub severity: Severity,
    pub message: String,
}

/// An active alert: a condition and when it was first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub condition: Condition,
    pub since_ms: u64,
}

fn condition(key: String, severity: Severity, message: String) -> Condition {
    Condition { key, severity, message }
}

/// Every condition that holds in `snapshot`.
pub fn evaluate(snapshot: &Snapshot, lag_history: &BTreeMap<String, VecDeque<u64>>) -> Vec<Condition> {
    let mut out = Vec::new();
    if snapshot.metadata.controller_id < 0 {
        out.push(condition("controller".into(), Severity::Critical, "no active controller".into()));
    }
    for b in &snapshot.metadata.brokers {
        if !b.alive {
            out.push(condition(
                format!("down/{}", b.id),
                Severity::Critical,
                format!("broker {} down (fenced) at {}", b.id, b.address),
            ));
        }
    }
    for topic in &snapshot.metadata.topics {
        let offline: Vec<String> =
            topic.partitions.iter().filter(|p| is_offline(p)).map(|p| p.partition.to_string()).collect();
        if !offline.is_empty() {
            out.push(condition(
                format!("offline/{}", topic.name),
                Severity::Critical,
                format!("{}: {} offline partition(s): {}", topic.name, offline.len(), abbreviate(&offline)),
            ));
        }
        let under: Vec<String> =
            topic.partitions.iter().filter(|p| is_under_replicated(p)).map(|p| p.partition.to_string()).collect();
        if !under.is_empty() {
            out.push(condition(
                format!("urp/{}", topic.name),
                Severity::Warning,
                format!("{}: {} under-replicated partition(s): {}", topic.name, under.len(), abbreviate(&under)),
            ));
        }
    }
    for group in &snapshot.groups {
        let status = group.status();
        match status {
            GroupStatus::Stall | GroupStatus::Stop => out.push(condition(
                format!("stalled/{}", group.id()),
                Severity::Critical,
                format!("group {}: {} (lag {})", group.id(), status.as_str(), group.total_lag()),
            )),
            GroupStatus::Err => out.push(condition(
                format!("err/{}", group.id()),
                Severity::Warning,
                format!(
                    "group {}: ERR{}",
                    group.id(),
                    group.description.as_ref().err().map(|e| format!(" ({e})")).unwrap_or_default()
                ),
            )),
            _ => {}
        }
        if let Some(history) = lag_history.get(group.id())
            && history.len() >= LAG_GROWING_SAMPLES
        {
            let recent: Vec<u64> = history.iter().rev().take(LAG_GROWING_SAMPLES).copied().collect();
            if recent.windows(2).all(|w| w[0] > w[1]) {
                out.push(condition(
                    format!("lag/{}", group.id()),
                    Severity::Warning,
                    format!("group {}: lag growing ({} → {})", group.id(), recent[recent.len() - 1], recent[0]),
                ));
            }
        }
    }
    for gap in &snapshot.group_gaps {
        out.push(condition(format!("groups/{gap}"), Severity::Warning, format!("groups missing: {gap}")));
    }
    for node in &snapshot.nodes {
        if node.disk_used_fraction() > DISK_FULL {
            out.push(condition(
                format!("disk/{}", node.node),
                Severity::Critical,
                format!("node {}: disk {} {:.0}% used", node.node, node.disk_mount, node.disk_used_fraction() * 100.0),
            ));
        }
    }
    out
}

fn abbreviate(items: &[String]) -> String {
    if items.len() <= 6 { items.join(",") } else { format!("{},…", items[..6].join(",")) }
}

/// Keeps the alerts still holding (with their first-seen time), adds the
/// new ones at `now_ms`; newest first.
pub fn merge(active: &[Alert], conditions: Vec<Condition>, now_ms: u64) -> Vec<Alert> {
    let mut out: Vec<Alert> = conditions
        .into_iter()
        .map(|c| {
            let since_ms = active.iter().find(|a| a.condition.key == c.key).map_or(now_ms, |a| a.since_ms);
            Alert { condition: c, since_ms }
        })
        .collect();
    out.sort_by(|a, b| b.since_ms.cmp(&a.since_ms).then(b.condition.severity.cmp(&a.condition.severity)));
    out
}
