//! The availability figure: time is cut into [`WINDOW`]s; a window of a
//! partition is available when an acks=all produce to that partition was
//! acknowledged in it (each producer sends every 10 ms, so a healthy window
//! holds several). Each window is counted under the fault active when it
//! starts (`healthy` between faults and during recovery), and the share is
//! available partition-windows over all partition-windows of that kind.
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
        let kind = history
            .iter()
            .find(|e| e.applied <= at && e.healed.is_none_or(|h| at < h))
            .map_or("healthy".to_string(), |e| e.fault.kind.to_string());
        let share = shares.entry(kind).or_default();
        for partition in &acked {
            share.windows += 1;
            share.available += u64::from(partition[w]);
        }
    }
    shares
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
