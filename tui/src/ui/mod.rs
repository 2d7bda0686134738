//! Pure rendering: [`render`] draws a [`State`] and never changes it. One
//! module per view; the header (views, freshness) and footer (keys) are
//! here.
//!
//! Colours: the terminal's own named colours (green / yellow / red) with
//! bold, reversed and dim modifiers, no fixed backgrounds, so the screen
//! reads on dark and light themes alike.

mod alerts;
mod balance;
mod groups;
mod nodes;
mod overview;
mod topics;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::app::{Connection, State, View};
use crate::snapshot::GroupStatus;

/// Draws the whole screen.
pub fn render(state: &State, frame: &mut Frame) {
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(3), Constraint::Length(1)]).areas(frame.area());
    render_header(state, frame, header);
    match &state.snapshot {
        None => {
            let text = match &state.connection {
                Connection::Stale { error, .. } => format!("Cannot reach the cluster: {error}"),
                _ => format!("Connecting to {}…", state.bootstrap),
            };
            frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).block(Block::bordered()), body);
        }
        Some(_) => match state.view {
            View::Overview => overview::render(state, frame, body),
            View::Topics => topics::render(state, frame, body),
            View::Groups => groups::render(state, frame, body),
            View::Balance => balance::render(state, frame, body),
            View::Nodes => nodes::render(state, frame, body),
            View::Alerts => alerts::render(state, frame, body),
        },
    }
    render_footer(state, frame, footer);
    if state.help {
        render_help(frame, body);
    }
}

fn render_header(state: &State, frame: &mut Frame, area: Rect) {
    let mut tabs = vec![Span::styled("kmon ", bold())];
    for view in View::ALL {
        let label = format!(" {} {} ", view.index() + 1, view.title());
        let style = if view == state.view { bold().add_modifier(Modifier::REVERSED) } else { Style::new() };
        tabs.push(Span::styled(label, style));
        if view == View::Alerts && !state.alerts.is_empty() {
            tabs.push(Span::styled(format!("({})", state.alerts.len()), bad()));
        }
    }
    let mut status: Vec<Span> = Vec::new();
    match &state.connection {
        Connection::Connecting => status.push(Span::styled("CONNECTING", warn())),
        Connection::Live => status.push(Span::styled("LIVE", ok())),
        Connection::Stale { tried, attempts, .. } => status.push(Span::styled(
            format!("STALE · reconnecting (try {attempts}, {} broker(s))", tried.len()),
            bad().add_modifier(Modifier::REVERSED),
        )),
    }
    if let Some(s) = &state.snapshot {
        status.push(Span::raw(format!(" data {} via {}", clock(s.at_ms), s.source)));
    }
    if state.paused {
        status.push(Span::styled(" PAUSED", warn().add_modifier(Modifier::REVERSED)));
    }
    if state.editing_filter || !state.filter.is_empty() {
        let cursor = if state.editing_filter { "▏" } else { "" };
        status.push(Span::styled(format!(" /{}{cursor}", state.filter), bold()));
    }
    if state.sort_by_value {
        status.push(Span::styled(" sort:value", dim()));
    }
    frame.render_widget(Paragraph::new(vec![Line::from(tabs), Line::from(status)]), area);
}

fn render_footer(state: &State, frame: &mut Frame, area: Rect) {
    let keys = if state.editing_filter {
        "type to filter · Enter keep · Esc clear"
    } else if state.drill.is_some() {
        "↑↓/jk move · Esc back · / filter · s sort · p pause · ? help · q quit"
    } else {
        "1-6/Tab views · ↑↓/jk move · Enter drill · / filter · s sort · p pause · ? help · q quit"
    };
    frame.render_widget(Paragraph::new(Span::styled(keys, dim())), area);
}

fn render_help(frame: &mut Frame, area: Rect) {
    let lines = [
        "1-6, Tab, Shift-Tab   switch view",
        "↑ ↓ ← →, h j k l      move; → / Enter drill in",
        "Enter / Esc           drill in / out",
        "/                     filter by name (Enter keeps, Esc clears)",
        "s                     sort by name / by figure",
        "p                     pause updates",
        "?                     this help",
        "q, Ctrl-C             quit",
    ];
    let width = 62.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines.iter().map(|l| Line::raw(*l)).collect::<Vec<_>>())
            .block(Block::bordered().title(" Help ").borders(Borders::ALL)),
        popup,
    );
}

/// The screen as text, drawn on ratatui's `TestBackend` (`height` lines of
/// `width` cells): for tests and snapshots.
pub fn render_to_text(state: &State, width: u16, height: u16) -> String {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))
        .expect("a TestBackend terminal cannot fail");
    let mut lines = Vec::new();
    if terminal.draw(|frame| render(state, frame)).is_ok() {
        let buffer = terminal.backend().buffer();
        for y in 0..height {
            lines.push((0..width).map(|x| buffer[(x, y)].symbol()).collect::<String>());
        }
    }
    lines.join("\n")
}

pub(crate) fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub(crate) fn dim() -> Style {
    Style::new().add_modifier(Modifier::DIM)
}

pub(crate) fn ok() -> Style {
    Style::new().fg(Color::Green)
}

pub(crate) fn warn() -> Style {
    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
}

pub(crate) fn bad() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

pub(crate) fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub(crate) fn status_style(status: GroupStatus) -> Style {
    match status {
        GroupStatus::Ok => ok(),
        GroupStatus::Warn | GroupStatus::Rewind => warn(),
        GroupStatus::Stall | GroupStatus::Stop | GroupStatus::Err => bad(),
    }
}

/// `HH:MM:SS` (UTC) of a Unix time in ms.
pub(crate) fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// 1234567 → "1.2M".
pub(crate) fn si(value: f64) -> String {
    let units = ["", "k", "M", "G", "T", "P"];
    let mut v = value;
    let mut i = 0;
    while v.abs() >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 { format!("{v:.0}") } else { format!("{v:.1}{}", units[i]) }
}

/// Bytes in binary units: 1536 → "1.5KiB".
pub(crate) fn bytes(value: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = value;
    let mut i = 0;
    while v.abs() >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{v:.0}B") } else { format!("{v:.1}{}", units[i]) }
}

/// A sparkline as text (for table cells): the last `width` values.
pub(crate) fn spark(values: impl DoubleEndedIterator<Item = u64> + ExactSizeIterator, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values: Vec<u64> = values.rev().take(width).collect::<Vec<_>>().into_iter().rev().collect();
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    values.iter().map(|v| BARS[((*v as f64 / max as f64) * 7.0).round() as usize]).collect()
}

/// Of a list of `total` rows with `selected` highlighted, drawn as a
/// table in `area` (borders and a header line): the rows on screen, and
/// the selection's index among them. Scrolls as ratatui's table does from
/// a fresh state (the selection on the last line once past the first
/// screen), so only the visible rows need building: a topic can have
/// thousands of partitions.
pub(crate) fn visible(total: usize, selected: usize, area: Rect) -> (std::ops::Range<usize>, usize) {
    let height = (area.height as usize).saturating_sub(3).max(1);
    let selected = selected.min(total.saturating_sub(1));
    let start = (selected + 1).saturating_sub(height);
    (start..(start + height).min(total), selected - start)
}

/// A horizontal bar of `width` cells filled to `fraction`.
pub(crate) fn bar(fraction: f64, width: usize) -> String {
    let filled = ((fraction.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

#[cfg(test)]
mod tests;
