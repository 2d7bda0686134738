//! The faults a chaos run injects, chosen by a seeded RNG so a failing run
//! can be replayed (`--seed`), and the history of what was done when.
//!
//! One fault at a time: it is applied, held for a random 1–3 s (the
//! `hold` range of the run), healed, and the next starts once the cluster
//! is healthy again (every broker alive, every replica in its ISR), so no
//! two faults ever overlap; acks=all with `min.insync.replicas=2` promises
//! nothing beyond one failure at a time.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

use crate::hosts::Hosts;

/// What a fault does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// SIGKILL a broker; restart it at heal.
    KillRestart,
    /// SIGSTOP a broker; SIGCONT at heal.
    Pause,
    /// Cut one broker off from every other broker and from the clients.
    IsolateOne,
    /// [`FaultKind::IsolateOne`] on the active controller.
    IsolateController,
    /// Two brokers on one side, one on the other (clients see both).
    Split,
    /// Two brokers cannot reach each other; the third sees both.
    Bridge,
    /// 10–30 % packet loss and 50–200 ms delay on one broker's link.
    Netem,
    /// The tmpfs data directory of the disk host filled up by a ballast file.
    DiskFull,
    /// SIGKILL a broker, cut the last few bytes of each of its active
    /// segments, restart at heal.
    TornWrite,
}

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::KillRestart,
        FaultKind::Pause,
        FaultKind::IsolateOne,
        FaultKind::IsolateController,
        FaultKind::Split,
        FaultKind::Bridge,
        FaultKind::Netem,
        FaultKind::DiskFull,
        FaultKind::TornWrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillRestart => "kill-restart",
            FaultKind::Pause => "sigstop",
            FaultKind::IsolateOne => "isolate",
            FaultKind::IsolateController => "isolate-controller",
            FaultKind::Split => "split-2|1",
            FaultKind::Bridge => "bridge",
            FaultKind::Netem => "netem",
            FaultKind::DiskFull => "disk-full",
            FaultKind::TornWrite => "torn-write",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One fault as chosen: what, on which broker(s), for how long.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    /// The broker acted on (for split and bridge: the lone side, or the
    /// bridge node).
    pub target: u32,
    pub hold: Duration,
    /// Netem loss percent and delay ms.
    pub loss_percent: u32,
    pub delay_ms: u32,
    /// Bytes cut from each active segment (torn write).
    pub torn_bytes: u64,
}

/// One entry of the history: times are from the start of the run.
#[derive(Debug, Clone)]
pub struct Event {
    pub index: usize,
    pub fault: Fault,
    pub applied: Duration,
    pub healed: Option<Duration>,
    /// Heal → every partition acknowledged a produce again.
    pub recovery: Option<Duration>,
    pub note: String,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{}ms", d.as_millis()));
        write!(
            f,
            "fault {:>3}: {:<18} broker {} at {} healed {} recovered +{}",
            self.index,
            self.fault.kind,
            self.fault.target,
            ms(Some(self.applied)),
            ms(self.healed),
            ms(self.recovery)
        )?;
        match self.fault.kind {
            FaultKind::Netem => write!(f, " (loss {}%, delay {}ms)", self.fault.loss_percent, self.fault.delay_ms)?,
            FaultKind::TornWrite => write!(f, " (cut {} bytes)", self.fault.torn_bytes)?,
            _ => {}
        }
        if !self.note.is_empty() {
            write!(f, " [{}]", self.note)?;
        }
        Ok(())
    }
}

/// Picks the target and parameters of a `kind` fault. `controller` is the
/// active controller's id.
pub fn choose(rng: &mut StdRng, kind: FaultKind, brokers: u32, controller: u32, hold: (Duration, Duration)) -> Fault {
    let target = match kind {
        FaultKind::IsolateController => controller,
        FaultKind::DiskFull => brokers,
        _ => rng.random_range(1..=brokers),
    };
    let hold_ms = rng.random_range(hold.0.as_millis() as u64..=hold.1.as_millis() as u64);
    Fault {
        kind,
        target,
        hold: Duration::from_millis(hold_ms),
        loss_percent: rng.random_range(10..=30),
        delay_ms: rng.random_range(50..=200),
        torn_bytes: rng.random_range(1..=64),
    }
}

/// Applies `fault`; returns a note on what was done.
pub async fn apply(hosts: &mut Hosts, fault: &Fault, topic: &str) -> anyhow::Result<String> {
    let target = fault.target;
    let others: Vec<u32> = hosts.ids().filter(|&id| id != target).collect();
    let addr = |hosts: &Hosts, id: u32| hosts.net.address(id as usize);
    match fault.kind {
        FaultKind::KillRestart => hosts.kill(target).await.map(|()| String::new()),
        FaultKind::Pause => hosts.pause(target, true).map(|()| String::new()),
        FaultKind::IsolateOne | FaultKind::IsolateController => {
            let mut peers: Vec<_> = others.iter().map(|&id| addr(hosts, id)).collect();
            peers.push(hosts.net.host_address());
            hosts.net.block(target as usize, &peers)?;
            Ok(String::new())
        }
        FaultKind::Split => {
            let peers: Vec<_> = others.iter().map(|&id| addr(hosts, id)).collect();
            hosts.net.block(target as usize, &peers)?;
            Ok(format!("{}|{target}", others.iter().map(u32::to_string).collect::<Vec<_>>().join(",")))
        }
        FaultKind::Bridge => {
            let (a, b) = (others[0], others[1]);
            hosts.net.block(a as usize, &[addr(hosts, b)])?;
            hosts.net.block(b as usize, &[addr(hosts, a)])?;
            Ok(format!("{a}|{b}, {target} sees both"))
        }
        FaultKind::Netem => hosts.net.degrade(target as usize, fault.loss_percent, fault.delay_ms),
        FaultKind::DiskFull => {
            // Written, not fallocated: tmpfs keeps some room for its own
            // bookkeeping, so a size from `df` may not fit. Chunks halve
            // on ENOSPC until not even 4 KiB fits.
            use std::io::Write;
            let mut ballast = std::fs::File::create(hosts.ballast())?;
            let (mut chunk, mut written) = (1usize << 20, 0u64);
            let zeros = vec![0u8; chunk];
            while chunk >= 4096 {
                match ballast.write(&zeros[..chunk]) {
                    Ok(0) | Err(_) => chunk /= 2,
                    Ok(n) => written += n as u64,
                }
            }
            Ok(format!("ballast {} MiB", written >> 20))
        }
        FaultKind::TornWrite => {
            hosts.kill(target).await?;
            let mut cut = Vec::new();
            for entry in std::fs::read_dir(hosts.data_dir(target))? {
                let dir = entry?.path();
                let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
                if !name.starts_with(&format!("{topic}-")) {
                    continue;
                }
                let mut logs: Vec<_> = std::fs::read_dir(&dir)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "log"))
                    .collect();
                logs.sort();
                if let Some(active) = logs.last() {
                    let len = std::fs::metadata(active)?.len();
                    let new_len = len.saturating_sub(fault.torn_bytes);
                    std::fs::OpenOptions::new().write(true).open(active)?.set_len(new_len)?;
                    cut.push(format!("{name} {len}→{new_len}"));
                }
            }
            Ok(cut.join(", "))
        }
    }
}

/// Undoes `fault` (restarting a killed broker).
pub async fn heal(hosts: &mut Hosts, fault: &Fault) -> anyhow::Result<()> {
    match fault.kind {
        FaultKind::KillRestart | FaultKind::TornWrite => hosts.restart(fault.target).await,
        FaultKind::Pause => hosts.pause(fault.target, false),
        FaultKind::IsolateOne
        | FaultKind::IsolateController
        | FaultKind::Split
        | FaultKind::Bridge
        | FaultKind::Netem => {
            hosts.net.heal_all();
            Ok(())
        }
        FaultKind::DiskFull => {
            let _ = std::fs::remove_file(hosts.ballast());
            if !hosts.is_running(fault.target) {
                hosts.restart(fault.target).await?;
            }
            Ok(())
        }
    }
}
