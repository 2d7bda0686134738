//! Local kmon clusters made of `kmon broker` child processes, the home of
//! what `kmon up` and `kmon bench ...` both need (issue 12, item 1):
//!
//! - [`layout`]: ids, ports and fault × update domain cells of the brokers,
//!   kept in `DIR/cluster.toml` (restart, scale-up, refused scale-down).
//! - [`process`]: spawning a broker, waiting for its ready line and for the
//!   cluster to be up, noticing exits, stopping with a bounded grace.
//! - [`secure`]: a local CA and certificates for a cluster with mutual TLS
//!   and ACLs (`kmon up --secure`, `kmon bench tls`).
//!
//! A tool library: its errors are reports for the person at the terminal
//! (`anyhow`), not cases a caller matches on.

pub mod layout;
pub mod process;
pub mod secure;

pub use layout::{BrokerLayout, ClusterLayout, HOST, LAYOUT_FILE, Layout, LayoutRequest, MAX_VOTERS, domains};
pub use process::{
    BrokerChild, ReadyLine, START_DEADLINE, STOP_GRACE, broker_command, log_tail, member_args, ready_field, spawn,
    start_child, stop_all, wait_until_up,
};
pub use secure::Secure;
