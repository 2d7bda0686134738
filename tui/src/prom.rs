//! The Prometheus text-format parser and `/metrics` scrape, shared with the
//! node agent: they live in [`kmon_client::prom`].

pub use kmon_client::prom::{Sample, dechunk, metrics_path, parse, scrape};
