//! [`State`] and its reducer [`update`]: every change of state goes
//! through one [`Event`]. Rendering (`crate::ui`) only reads the state.

use std::collections::{BTreeMap, VecDeque};

use kmon_client::TopicDescription;

use crate::alerts::{self, Alert};
use crate::event::Event;
use crate::input::{self, Action};
use crate::snapshot::{Group, Snapshot};

/// Samples kept for sparklines.
pub const HISTORY_LEN: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Topics,
    Groups,
    Balance,
    Nodes,
    Alerts,
}

impl View {
    pub const ALL: [View; 6] = [View::Overview, View::Topics, View::Groups, View::Balance, View::Nodes, View::Alerts];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Topics => "Topics",
            View::Groups => "Groups",
            View::Balance => "Balance",
            View::Nodes => "Nodes",
            View::Alerts => "Alerts",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// How fresh the data on screen is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// No data yet.
    Connecting,
    Live,
    /// The data shown is stale: no known broker answered.
    Stale {
        error: String,
        tried: Vec<String>,
        attempts: u32,
    },
}

/// Series for the sparklines, newest last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub messages_in: VecDeque<u64>,
    pub bytes_in: VecDeque<u64>,
    pub bytes_out: VecDeque<u64>,
    /// Total lag by group.
    pub lag: BTreeMap<String, VecDeque<u64>>,
    /// CPU busy percent by node.
    pub cpu: BTreeMap<String, VecDeque<u64>>,
    /// NIC receive + transmit bytes/s by node.
    pub net: BTreeMap<String, VecDeque<u64>>,
}

fn push(series: &mut VecDeque<u64>, value: u64) {
    series.push_back(value);
    while series.len() > HISTORY_LEN {
        series.pop_front();
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub bootstrap: String,
    pub view: View,
    /// Selected row of the current list.
    pub selected: usize,
    /// The topic or group drilled into.
    pub drill: Option<String>,
    pub drill_selected: usize,
    pub filter: String,
    pub editing_filter: bool,
    /// Sort by the view's figure (size, lag, ...) instead of by name.
    pub sort_by_value: bool,
    pub paused: bool,
    pub help: bool,
    pub quit: bool,
    pub snapshot: Option<Snapshot>,
    pub connection: Connection,
    pub history: History,
    /// Active alerts, newest first.
    pub alerts: Vec<Alert>,
}

impl State {
    pub fn new(bootstrap: impl Into<String>) -> State {
        State {
            bootstrap: bootstrap.into(),
            view: View::Overview,
            selected: 0,
            drill: None,
            drill_selected: 0,
            filter: String::new(),
            editing_filter: false,
            sort_by_value: false,
            paused: false,
            help: false,
            quit: false,
            snapshot: None,
            connection: Connection::Connecting,
            history: History::default(),
            alerts: Vec::new(),
        }
    }

    fn matches(&self, name: &str) -> bool {
        self.filter.is_empty() || name.to_lowercase().contains(&self.filter.to_lowercase())
    }

    /// The topics listed, filtered and sorted.
    pub fn topic_rows(&self) -> Vec<&TopicDescription> {
        let Some(snapshot) = &self.snapshot else { return Vec::new() };
        let mut rows: Vec<&TopicDescription> =
            snapshot.metadata.topics.iter().filter(|t| self.matches(&t.name)).collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        if self.sort_by_value {
            let size = |t: &TopicDescription| t.partitions.iter().map(|p| p.size_bytes).sum::<u64>();
            rows.sort_by_key(|t| std::cmp::Reverse(size(t)));
        }
        rows
    }

    /// The groups listed, filtered and sorted.
    pub fn group_rows(&self) -> Vec<&Group> {
        let Some(snapshot) = &self.snapshot else { return Vec::new() };
        let mut rows: Vec<&Group> = snapshot.groups.iter().filter(|g| self.matches(g.id())).collect();
        rows.sort_by(|a, b| a.id().cmp(b.id()));
        if self.sort_by_value {
            rows.sort_by_key(|g| std::cmp::Reverse(g.total_lag()));
        }
        rows
    }

    /// Rows of the current list (for moving the selection).
    fn row_count(&self) -> usize {
        match (self.view, &self.drill) {
            (View::Topics, None) => self.topic_rows().len(),
            (View::Groups, None) => self.group_rows().len(),
            (View::Topics, Some(name)) => self
                .snapshot
                .as_ref()
                .and_then(|s| s.metadata.topics.iter().find(|t| &t.name == name))
                .map_or(0, |t| t.partitions.len()),
            (View::Groups, Some(name)) => self
                .snapshot
                .as_ref()
                .and_then(|s| s.groups.iter().find(|g| g.id() == name))
                .and_then(|g| g.description.as_ref().ok())
                .map_or(0, |d| d.partitions.len()),
            (View::Nodes, _) => self.snapshot.as_ref().map_or(0, |s| s.nodes.len()),
            (View::Alerts, _) => self.alerts.len(),
            _ => 0,
        }
    }

    fn selection(&mut self) -> &mut usize {
        if self.drill.is_some() { &mut self.drill_selected } else { &mut self.selected }
    }

    fn show(&mut self, view: View) {
        if self.view != view {
            self.view = view;
            self.selected = 0;
            self.drill = None;
            self.drill_selected = 0;
        }
    }
}

/// The reducer.
pub fn update(state: &mut State, event: Event) {
    match event {
        Event::Key(key) => {
            if let Some(action) = input::action(key, state.editing_filter) {
                apply(state, action);
            }
        }
        Event::Redraw => {}
        Event::Data(snapshot) => {
            state.connection = Connection::Live;
            if !state.paused {
                absorb(state, *snapshot);
            }
        }
        Event::Disconnected { error, tried } => {
            let attempts = match &state.connection {
                Connection::Stale { attempts, .. } => attempts + 1,
                _ => 1,
            };
            state.connection = Connection::Stale { error, tried, attempts };
        }
    }
}

fn absorb(state: &mut State, snapshot: Snapshot) {
    let h = &mut state.history;
    if let Some(t) = snapshot.throughput {
        push(&mut h.messages_in, t.messages_in.round() as u64);
        push(&mut h.bytes_in, t.bytes_in.round() as u64);
        push(&mut h.bytes_out, t.bytes_out.round() as u64);
    }
    h.lag.retain(|id, _| snapshot.groups.iter().any(|g| g.id() == id));
    for g in &snapshot.groups {
        push(h.lag.entry(g.id().to_owned()).or_default(), g.total_lag() as u64);
    }
    h.cpu.retain(|node, _| snapshot.nodes.iter().any(|n| &n.node == node));
    h.net.retain(|node, _| snapshot.nodes.iter().any(|n| &n.node == node));
    for n in &snapshot.nodes {
        if let Some(cpu) = n.cpu_busy {
            push(h.cpu.entry(n.node.clone()).or_default(), (cpu * 100.0).round() as u64);
        }
        if let (Some(rx), Some(tx)) = (n.net_rx_rate, n.net_tx_rate) {
            push(h.net.entry(n.node.clone()).or_default(), (rx + tx).round() as u64);
        }
    }
    let conditions = alerts::evaluate(&snapshot, &state.history.lag);
    state.alerts = alerts::merge(&state.alerts, conditions, snapshot.at_ms);
    state.snapshot = Some(snapshot);
}

fn apply(state: &mut State, action: Action) {
    if state.help && !matches!(action, Action::Quit | Action::Help | Action::Back) {
        state.help = false;
    }
    match action {
        Action::Quit => state.quit = true,
        Action::Show(view) => state.show(view),
        Action::NextView => state.show(View::ALL[(state.view.index() + 1) % View::ALL.len()]),
        Action::PrevView => state.show(View::ALL[(state.view.index() + View::ALL.len() - 1) % View::ALL.len()]),
        Action::Up => {
            let s = state.selection();
            *s = s.saturating_sub(1);
        }
        Action::Down => {
            let last = state.row_count().saturating_sub(1);
            let s = state.selection();
            *s = (*s + 1).min(last);
        }
        Action::Enter | Action::Right => {
            if state.drill.is_none() {
                let name = match state.view {
                    View::Topics => state.topic_rows().get(state.selected).map(|t| t.name.clone()),
                    View::Groups => state.group_rows().get(state.selected).map(|g| g.id().to_owned()),
                    _ => None,
                };
                if name.is_some() {
                    state.drill = name;
                    state.drill_selected = 0;
                }
            }
        }
        Action::Back | Action::Left => {
            if state.help {
                state.help = false;
            } else if state.drill.take().is_none() && action == Action::Back && !state.filter.is_empty() {
                state.filter.clear();
            }
        }
        Action::StartFilter => {
            state.editing_filter = true;
            state.filter.clear();
            state.selected = 0;
        }
        Action::FilterChar(c) => {
            state.filter.push(c);
            state.selected = 0;
        }
        Action::FilterBackspace => {
            state.filter.pop();
        }
        Action::FilterDone => state.editing_filter = false,
        Action::FilterCancel => {
            state.editing_filter = false;
            state.filter.clear();
        }
        Action::Sort => {
            state.sort_by_value = !state.sort_by_value;
            state.selected = 0;
        }
        Action::Pause => state.paused = !state.paused,
        Action::Help => state.help = !state.help,
    }
}
