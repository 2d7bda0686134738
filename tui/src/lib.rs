//! `kmon tui`: the operator's live terminal view of a kmon cluster.
//!
//! - [`snapshot`]: the data one refresh gathers ([`Snapshot`]), plain
//!   values that tests build by hand.
//! - [`client`]: the data task: every refresh it asks one broker for
//!   `Metadata`, every group in one `DescribeGroups` and the node agents
//!   (`ListAgents`), scrapes the series it shows from the brokers' and
//!   agents' `/metrics` ([`prom::scrape`]) into rates, and sends a
//!   [`Snapshot`]; when its broker fails it tries every other known
//!   broker and reports [`Event::Disconnected`] meanwhile.
//! - [`event`]: the one [`Event`] enum fed by the input thread and the
//!   data task.
//! - [`input`]: keys → [`input::Action`]s.
//! - [`app`]: [`State`] and the reducer [`app::update`]; [`alerts`]
//!   evaluates the alert conditions from a snapshot.
//! - [`ui`]: pure rendering, `ui::render(&State, &mut Frame)`, one module
//!   per view.
//! - [`terminal`]: raw mode + alternate screen behind a guard that, with a
//!   panic hook, always restores the terminal.
//! - [`timings`]: the optional log of key-to-frame, draw and refresh
//!   times that `kmon bench tui` reads.
//!
//! Data flow: input thread / data task → `Event` channel →
//! `app::update` → `ui::render` (drawn after each batch of events).

pub mod alerts;
pub mod app;
pub mod client;
pub mod event;
pub mod input;
pub mod prom;
mod run;
pub mod snapshot;
pub mod terminal;
pub mod timings;
pub mod ui;

pub use app::State;
pub use event::Event;
pub use run::{Config, TuiError, run};
pub use snapshot::Snapshot;
