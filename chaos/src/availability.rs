//! The availability figure: time is cut into [`WINDOW`]s; a window of a
//! partition is available when an acks=all produce to that partition was
//! acknowledged in it (each producer sends every 10 ms, so a healthy window
//! holds several). Each window is counted under the fault active when it
//! starts; between faults, under `recovering` from a heal until every
//! partition was acknowledged again (the recovery time), and `healthy`
//! after that. The share is available partition-windows over all
//! partition-windows of that kind.
//! Recovery time is from a heal to the moment every partition had an
//! acknowledgement again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::faults::Event;
use crate::workload::Ack;

pub const WINDOW: Duration = Duration::from_millis(100);

/// Availability of one fault kind (or `healthy`).
#[derive(Debug, Clone, Default)]
pub struct Share {
    pub windows: u64,
    pub available: u64,
}

impl Share {
    pub fn percent(&self) -> f64 {
        if self.windows == 0 { 100.0 } else { self.available as f64 * 100.0 / self.windows as f64 }
    }
}

/// Availability per fault kind name, over `[start, end)`.
pub fn per_fault(
    start: Instant,
    end: Instant,
    partitions: u32,
    acks: &[Ack],
    history: &[Event],
) -> BTreeMap<String, Share> {
    let windows = ((end - start).as_millis() / WINDOW.as_millis()) as usize;
    let mut acked = vec![vec![false; windows]; partitions as usize];
    for ack in acks {
        if ack.at < start {
            continue;
        }
        let w = ((ack.at - start).as_millis() / WINDOW.as_millis()) as usize;
        if w < windows {
            acked[ack.partition as usize][w] = true;
        }
    }
    let mut shares: BTreeMap<String, Share> = BTreeMap::new();
    for w in 0..windows {
        let at = WINDOW * w as u32;
        let kind = window_kind(history, at);
        let share = shares.entry(kind).or_default();
        for partition in &acked {
            share.windows += 1;
            share.available += u64::from(partition[w]);
        }
    }
    shares
}

/// The fault active at `at` (from the run's start), else `recovering` or
/// `healthy` after the last heal.
fn window_kind(history: &[Event], at: Duration) -> String {
    if let Some(active) = history.iter().find(|e| e.applied <= at && e.healed.is_none_or(|h| at < h)) {
        return active.fault.kind.to_string();
    }
    let last_heal = history.iter().filter(|e| e.healed.is_some_and(|h| h <= at)).max_by_key(|e| e.healed);
    match last_heal {
        // No recovery measured: it lasted until the next fault.
        Some(e) if e.recovery.is_none_or(|r| at < e.healed.unwrap_or_default() + r) => "recovering".to_string(),
        _ => "healthy".to_string(),
    }
}

/// Heal → every partition acknowledged a produce after the heal, if all did.
/// Acks are recorded roughly in time order, so the scan goes backwards and
/// stops well before the heal.
pub fn recovery(healed: Instant, partitions: u32, acks: &[Ack]) -> Option<Duration> {
    let mut first: Vec<Option<Instant>> = vec![None; partitions as usize];
    for ack in acks.iter().rev() {
        if ack.at + Duration::from_secs(5) < healed {
            break;
        }
        if ack.at >= healed {
            let slot = &mut first[ack.partition as usize];
            *slot = Some(slot.map_or(ack.at, |t: Instant| t.min(ack.at)));
        }
    }
    first.into_iter().map(|at| at.map(|at| at - healed)).collect::<Option<Vec<_>>>()?.into_iter().max()
}

/// The `q` quantile of `values` (nearest rank).
pub fn quantile(values: &[Duration], q: f64) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{Fault, FaultKind};

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn windows_count_under_the_fault_then_recovering_then_healthy() {
        // One fault over [100, 300) ms, recovered 200 ms after the heal;
        // one partition acknowledged in the windows at 0, 200, 400 and 600 ms.
        let fault =
            Fault { kind: FaultKind::Pause, target: 1, hold: ms(200), loss_percent: 0, delay_ms: 0, torn_bytes: 0 };
        let history = [Event {
            index: 1,
            fault,
            applied: ms(100),
            healed: Some(ms(300)),
            recovery: Some(ms(200)),
            note: String::new(),
        }];
        let start = Instant::now();
        let acks: Vec<Ack> = [0, 200, 400, 600]
            .iter()
            .map(|&at| Ack { partition: 0, offset: 0, seq: 0, at: start + ms(at + 10) })
            .collect();
        let shares = per_fault(start, start + ms(800), 1, &acks, &history);
        let of = |kind: &str| shares.get(kind).map(|s| (s.available, s.windows));
        // Windows 0, 5, 6, 7 → healthy (0 and 600 acked); 1, 2 → the fault
        // (200 acked); 3, 4 → recovering (400 acked).
        assert_eq!(of("healthy"), Some((2, 4)));
        assert_eq!(of(&FaultKind::Pause.to_string()), Some((1, 2)));
        assert_eq!(of("recovering"), Some((1, 2)));
    }
}
