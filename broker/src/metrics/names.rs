//! Every metric name the broker exports: `kmon_proto::metric_names::broker`,
//! shared with the TUI, the agent and `kmon report`.

pub use kmon_proto::metric_names::broker::*;
