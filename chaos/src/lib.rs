//! Fault injection with real network partitions (issue 16): a cluster of
//! `kmon broker` processes, each in a network namespace of its own, under
//! seeded random faults, while acks=all producers record every
//! acknowledgement; then a checker proves nothing acknowledged was lost.
//!
//! Data flow of one run ([`run::run`]):
//!
//! - [`net`]: a bridge `kmonbr<N>`, one namespace `kmonc<N>-<i>` per broker
//!   on `10.77.<N>.<i>/24` (the host is `.254`), partitions as nftables drop
//!   rules inside a namespace, netem on its veth; removed on drop, and
//!   leftovers of dead runs swept at start.
//! - [`hosts`]: `ip netns exec NS kmon broker ...` per broker (kmon_cluster's
//!   command and ready line), SIGKILL/restart, SIGSTOP/SIGCONT, a small
//!   tmpfs data directory for the disk-full fault.
//! - [`faults`]: the fault kinds, the seeded choice, the history.
//! - [`workload`]: one idempotent acks=all producer per partition writing
//!   numbered records, every acknowledgement recorded; a concurrent consumer.
//! - [`checker`]: after healing: every acknowledged record readable exactly
//!   once at its offset, order per partition, replicas byte-identical up to
//!   the high watermark, leader epochs never decreasing, metrics agree.
//! - [`availability`]: share of 100 ms windows with a successful acks=all
//!   produce, per fault kind; recovery time after each heal.

pub mod availability;
pub mod checker;
pub mod faults;
pub mod hosts;
pub mod net;
pub mod run;
pub mod workload;

pub use faults::FaultKind;
pub use run::{ChaosConfig, ChaosReport, run};
