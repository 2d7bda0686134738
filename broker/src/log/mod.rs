//! Durable partition logs.
//!
//! On disk, per data directory:
//!
//! ```text
//! <data-dir>/
//!   __cluster_metadata/raft/         the metadata quorum's log, vote and snapshot
//!                                    (first data dir only; see `controller`)
//!   <topic>-<partition>/
//!     00000000000000000000.log       RecordBatch v2 batches, back to back
//!     00000000000000000000.index     (relative offset u32, position u32)*
//!     00000000000000000000.timeindex (max timestamp i64, relative offset u32)*
//!     00000000000000052413.log       next segment, named by its base offset
//!     ...
//!     leader-epoch-checkpoint        `epoch start_offset` per line
//!     high-watermark                 written on flush and close
//!     partition.metadata             the id of the topic the log belongs to
//! ```
//!
//! - [`batch`]: the RecordBatch v2 header: parse, CRC-check, stamp offsets.
//! - [`index`]: sparse offset and time indexes.
//! - [`segment`]: one `.log` file with its indexes; recovery scan.
//! - [`partition`]: a partition's segments: append, read, roll, retention.
//! - [`cleaner`]: compaction of `cleanup.policy=compact` logs.
//! - [`manager`]: every partition of the broker across its data dirs, and
//!   the background flush and retention loops.
//!
//! Durability: with `log_flush_policy = "always"` a produce is acknowledged
//! only after `fdatasync`; with `interval` the active segments are synced on
//! a timer. Sealed segments are synced with their indexes when they roll.
//! On start-up the active segment of every partition is read batch by batch
//! and CRC-checked; a torn or corrupt tail is cut back to the last valid
//! batch and the number of bytes dropped is logged.

pub mod batch;
pub mod cleaner;
pub mod index;
pub mod manager;
pub mod partition;
pub mod producer_state;
pub mod segment;

pub use manager::LogManager;
pub use partition::{AppendInfo, PartitionLog, ReadResult};
