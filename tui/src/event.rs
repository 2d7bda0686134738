//! The one event type the main loop consumes, fed by the input thread and
//! the data task ([`crate::client`]).

use ratatui::crossterm::event::KeyEvent;

use crate::snapshot::Snapshot;

#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    /// Draw again (the terminal was resized).
    Redraw,
    /// A fresh refresh of the cluster.
    Data(Box<Snapshot>),
    /// No known broker answered; the data task keeps trying.
    Disconnected {
        error: String,
        /// The broker addresses it tried.
        tried: Vec<String>,
    },
}
