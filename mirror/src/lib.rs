//! kmon-mirror: `kmon mirror`, MirrorMaker 2's job on kmon's client: copy
//! the topics of a source cluster that match a regex to a target cluster,
//! renamed `<source-alias>.<topic>`, keeping every record's partition,
//! key, value, headers and timestamp; translate consumer-group offsets so
//! a group can move to the target.
//!
//! - [`policy`]: which topics and groups are mirrored, the target's names
//!   (MM2's DefaultReplicationPolicy) and the cycle guard (pure).
//! - `replicator`: the copy loop: plain consumer on the source → one
//!   idempotent acks=all producer to the target; per commit round it waits
//!   for the acknowledgements, writes offset syncs, then commits its
//!   position in its own group on the source (resume point after a crash).
//! - [`sync`]: MM2's offset-sync and checkpoint records and the store that
//!   translates a source offset to the target (pure).
//! - `checkpoint`: per interval, each group's source offsets translated,
//!   written as checkpoints, and committed to the group on the target when
//!   it is not active there.
//! - `metrics`: `/metrics` with MM2's names where MM2 has the figure.
//! - `run`: flags ([`MirrorArgs`]), start-up, shutdown ([`run()`]).
//! - [`error`]: the crate's one error enum, [`MirrorError`].

mod checkpoint;
pub mod error;
mod metrics;
pub mod policy;
mod replicator;
mod run;
pub mod sync;

pub use error::MirrorError;
pub use run::{MirrorArgs, READY_PREFIX, run};
