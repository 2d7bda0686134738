//! Alerts: the conditions of the Prometheus rules, evaluated live, newest
//! first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::{bad, bold, clock, ok, selected, warn};
use crate::alerts::Severity;
use crate::app::State;

pub(super) fn render(state: &State, frame: &mut Frame, area: Rect) {
    if state.alerts.is_empty() {
        frame.render_widget(Block::bordered().title(Span::styled(" Alerts: none firing ", ok())), area);
        return;
    }
    let rows: Vec<Row> = state
        .alerts
        .iter()
        .map(|a| {
            let severity = match a.condition.severity {
                Severity::Critical => Span::styled("CRIT", bad()),
                Severity::Warning => Span::styled("WARN", warn()),
            };
            Row::new(vec![Cell::from(clock(a.since_ms)), Cell::from(severity), Cell::from(a.condition.message.clone())])
        })
        .collect();
    let widths = [Constraint::Length(8), Constraint::Length(4), Constraint::Fill(1)];
    let mut table_state =
        TableState::default().with_selected(Some(state.selected.min(state.alerts.len().saturating_sub(1))));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(Row::new(["SINCE", "SEV", "CONDITION"]).style(bold()))
            .row_highlight_style(selected())
            .block(Block::bordered().title(format!(" Alerts ({}) · newest first ", state.alerts.len()))),
        area,
        &mut table_state,
    );
}
