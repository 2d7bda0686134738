//! Consumer lag evaluation, the way Burrow does it: no fixed lag
//! threshold, but the shape of a short sliding window of commits per
//! partition.
//!
//! Per partition, from the window (oldest → newest) and the current lag:
//! - **OK**: lag is zero, or dropped to zero somewhere in the window, or
//!   nothing below applies;
//! - **REWIND**: a committed offset went backwards inside the window;
//! - **STOP**: lag > 0 and the last commit is older than `stop_after`;
//! - **STALL**: lag > 0, the window is full and every commit in it is the
//!   same offset (the consumer is alive but not moving);
//! - **WARN**: the window is full and lag grew at every commit.
//!
//! A group is **ERR** when any partition is STOP or STALL, **WARN** when any
//! is WARN or REWIND, else **OK**.

use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PartitionStatus {
    Ok,
    Warn,
    Rewind,
    Stall,
    Stop,
}

impl PartitionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionStatus::Ok => "OK",
            PartitionStatus::Warn => "WARN",
            PartitionStatus::Rewind => "REWIND",
            PartitionStatus::Stall => "STALL",
            PartitionStatus::Stop => "STOP",
        }
    }

    /// Numeric value for the lag-status gauge: 0 OK … 4 STOP.
    pub fn code(self) -> i64 {
        self as i64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStatus {
    Ok,
    Warn,
    Err,
}

impl GroupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Ok => "OK",
            GroupStatus::Warn => "WARN",
            GroupStatus::Err => "ERR",
        }
    }

    pub fn of(partitions: impl IntoIterator<Item = PartitionStatus>) -> GroupStatus {
        let mut status = GroupStatus::Ok;
        for p in partitions {
            match p {
                PartitionStatus::Stop | PartitionStatus::Stall => return GroupStatus::Err,
                PartitionStatus::Warn | PartitionStatus::Rewind => status = GroupStatus::Warn,
                PartitionStatus::Ok => {}
            }
        }
        status
    }
}

/// Thresholds of the evaluator (broker config `group_lag_*`).
#[derive(Debug, Clone, Copy)]
pub struct LagRules {
    /// Commits kept per partition (Burrow's default is 10).
    pub window: usize,
    /// Lag > 0 with no commit for this long is STOP.
    pub stop_after: Duration,
}

/// One commit as the evaluator saw it: offset, lag at that moment, time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitSample {
    pub offset: i64,
    pub lag: i64,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct CommitWindow {
    samples: VecDeque<CommitSample>,
}

impl CommitWindow {
    pub fn push(&mut self, sample: CommitSample, rules: &LagRules) {
        self.samples.push_back(sample);
        while self.samples.len() > rules.window.max(2) {
            self.samples.pop_front();
        }
    }

    pub fn last(&self) -> Option<&CommitSample> {
        self.samples.back()
    }

    /// Evaluates the partition at `now_ms` with its current `lag`.
    pub fn evaluate(&self, lag: i64, now_ms: i64, rules: &LagRules) -> PartitionStatus {
        if lag <= 0 {
            return PartitionStatus::Ok;
        }
        let Some(last) = self.samples.back() else {
            return PartitionStatus::Ok;
        };
        let s: Vec<&CommitSample> = self.samples.iter().collect();
        if s.windows(2).any(|w| w[1].offset < w[0].offset) {
            return PartitionStatus::Rewind;
        }
        if now_ms - last.at_ms >= rules.stop_after.as_millis() as i64 {
            return PartitionStatus::Stop;
        }
        if s.iter().any(|c| c.lag == 0) {
            return PartitionStatus::Ok;
        }
        let full = s.len() >= rules.window.max(2);
        if full && s.iter().all(|c| c.offset == last.offset) {
            return PartitionStatus::Stall;
        }
        if full && s.windows(2).all(|w| w[1].lag > w[0].lag) {
            return PartitionStatus::Warn;
        }
        PartitionStatus::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: LagRules = LagRules { window: 4, stop_after: Duration::from_secs(10) };

    fn window(samples: &[(i64, i64, i64)]) -> CommitWindow {
        let mut w = CommitWindow::default();
        for &(offset, lag, at_ms) in samples {
            w.push(CommitSample { offset, lag, at_ms }, &RULES);
        }
        w
    }

    #[test]
    fn burrow_rules() {
        let moving = window(&[(10, 5, 0), (20, 5, 1000), (30, 4, 2000), (40, 6, 3000)]);
        assert_eq!(moving.evaluate(6, 3500, &RULES), PartitionStatus::Ok);
        assert_eq!(moving.evaluate(0, 60_000, &RULES), PartitionStatus::Ok, "no lag is OK even when idle");
        assert_eq!(moving.evaluate(6, 20_000, &RULES), PartitionStatus::Stop, "commits stopped with lag");
        let growing = window(&[(10, 5, 0), (20, 8, 1000), (30, 12, 2000), (40, 20, 3000)]);
        assert_eq!(growing.evaluate(20, 3500, &RULES), PartitionStatus::Warn);
        let stalled = window(&[(10, 5, 0), (10, 8, 1000), (10, 12, 2000), (10, 20, 3000)]);
        assert_eq!(stalled.evaluate(20, 3500, &RULES), PartitionStatus::Stall);
        let rewound = window(&[(10, 5, 0), (20, 5, 1000), (5, 30, 2000)]);
        assert_eq!(rewound.evaluate(30, 2500, &RULES), PartitionStatus::Rewind);
        let caught_up_once = window(&[(10, 5, 0), (20, 0, 1000), (30, 12, 2000), (40, 20, 3000)]);
        assert_eq!(caught_up_once.evaluate(20, 3500, &RULES), PartitionStatus::Ok);
        // The window slides: an old rewind ages out.
        let mut w = rewound.clone();
        for i in 0..4 {
            w.push(CommitSample { offset: 100 + i, lag: 1, at_ms: 3000 + i }, &RULES);
        }
        assert_eq!(w.evaluate(1, 3100, &RULES), PartitionStatus::Ok);
    }

    #[test]
    fn group_status_is_the_worst_partition() {
        use PartitionStatus::*;
        assert_eq!(GroupStatus::of([Ok, Ok]), GroupStatus::Ok);
        assert_eq!(GroupStatus::of([Ok, Warn]), GroupStatus::Warn);
        assert_eq!(GroupStatus::of([Rewind, Ok]), GroupStatus::Warn);
        assert_eq!(GroupStatus::of([Warn, Stop]), GroupStatus::Err);
        assert_eq!(GroupStatus::of([Stall]), GroupStatus::Err);
    }
}
