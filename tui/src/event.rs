//! The one event type the main loop consumes, fed by the input thread, the
//! data task ([`crate::client`]) and the tick.

use ratatui::crossterm::event::KeyEvent;

use crate::snapshot::Snapshot;

#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    /// Periodic redraw.
    Tick,
    /// A fresh refresh of the cluster.
    Data(Box<Snapshot>),
    /// No known broker answered; the data task keeps trying.
    Disconnected {
        error: String,
        /// The broker addresses it tried.
        tried: Vec<String>,
    },
}
