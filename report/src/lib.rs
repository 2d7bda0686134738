//! `kmon report`: one image of time charts drawn from the history the node
//! agents ship to the cluster.
//!
//! Data flow:
//!
//! ```text
//! __kmon_node_metrics ─▶ read (from ListOffsets by timestamp) ─▶ history::decode, dedupe
//!   ─▶ extract::charts (rates from counter deltas, sums per group/broker/node)
//!   ─▶ draw (plotters: PNG or SVG by extension, bundled DejaVu font)
//! ```
//!
//! - [`history`]: the stored sample format and its decoding.
//! - [`read`]: reading the window's samples from the cluster.
//! - [`extract`]: pure functions from samples to [`extract::Chart`]s (one
//!   per panel, in layout order); which series feed which panel.
//! - [`draw`]: the layout (sizes and panel rectangles, public for tests)
//!   and the drawing.
//! - [`error`]: [`ReportError`], naming what was wrong.

pub mod draw;
pub mod error;
pub mod extract;
pub mod history;
pub mod read;

pub use draw::{Format, draw};
pub use error::ReportError;
pub use extract::{Chart, charts};
