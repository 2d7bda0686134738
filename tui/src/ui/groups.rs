//! Consumer groups, and a group's partitions when drilled into.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::{bold, selected, si, spark, status_style, visible};
use crate::app::State;
use crate::snapshot::GroupStatus;

pub(super) fn render(state: &State, frame: &mut Frame, area: Rect) {
    match &state.drill {
        Some(group) => render_partitions(state, group, frame, area),
        None => render_groups(state, frame, area),
    }
}

fn render_groups(state: &State, frame: &mut Frame, area: Rect) {
    let header = Row::new(["GROUP", "STATE", "MEMBERS", "LAG", "TREND", "STATUS"]).style(bold());
    let groups = state.group_rows();
    let rows: Vec<Row> = groups
        .iter()
        .map(|g| {
            let trend = state.history.lag.get(g.id()).map(|h| spark(h.iter().copied(), 12)).unwrap_or_default();
            let status = g.status();
            Row::new(vec![
                Cell::from(g.id().to_owned()),
                Cell::from(g.listing.state.clone()),
                Cell::from(g.listing.members.to_string()),
                Cell::from(si(g.total_lag() as f64)),
                Cell::from(trend),
                Cell::from(Span::styled(status.as_str(), status_style(status))),
            ])
        })
        .collect();
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(20),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(12),
        Constraint::Length(6),
    ];
    let title = format!(" Consumer groups ({}) · Enter: partitions ", groups.len());
    let mut table_state = TableState::default().with_selected(Some(state.selected.min(groups.len().saturating_sub(1))));
    frame.render_stateful_widget(
        Table::new(rows, widths).header(header).row_highlight_style(selected()).block(Block::bordered().title(title)),
        area,
        &mut table_state,
    );
}

fn render_partitions(state: &State, group: &str, frame: &mut Frame, area: Rect) {
    let Some(s) = &state.snapshot else { return };
    let Some(g) = s.groups.iter().find(|g| g.id() == group) else {
        frame.render_widget(Block::bordered().title(format!(" {group}: gone · Esc back ")), area);
        return;
    };
    let description = match &g.description {
        Ok(d) => d,
        Err(error) => {
            frame.render_widget(
                Block::bordered()
                    .title(format!(" {group}: ERR {error} · Esc back "))
                    .title_style(status_style(GroupStatus::Err)),
                area,
            );
            return;
        }
    };
    let header = Row::new(["TOPIC", "P", "COMMITTED", "HW", "LAG", "STATUS", "OWNER"]).style(bold());
    let (shown, selected_row) = visible(description.partitions.len(), state.drill_selected, area);
    let rows: Vec<Row> = description.partitions[shown]
        .iter()
        .map(|p| {
            let status = GroupStatus::parse(&p.status);
            let owner = p.owner.as_deref().map_or("-".to_owned(), |o| {
                description
                    .members
                    .iter()
                    .find(|m| m.member_id == o)
                    .map_or(o.to_owned(), |m| format!("{} {}", m.client_id, m.host))
            });
            Row::new(vec![
                Cell::from(p.topic.clone()),
                Cell::from(p.partition.to_string()),
                Cell::from(p.committed_offset.map_or("-".to_owned(), |o| o.to_string())),
                Cell::from(p.high_watermark.to_string()),
                Cell::from(p.lag.to_string()),
                Cell::from(Span::styled(status.as_str(), status_style(status))),
                Cell::from(owner),
            ])
        })
        .collect();
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(4),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Fill(1),
    ];
    let title = format!(
        " {} · {} · {} member(s) · gen {} · Esc back ",
        description.group_id,
        description.state,
        description.members.len(),
        description.generation_id
    );
    let mut table_state = TableState::default().with_selected(Some(selected_row));
    frame.render_stateful_widget(
        Table::new(rows, widths).header(header).row_highlight_style(selected()).block(Block::bordered().title(title)),
        area,
        &mut table_state,
    );
}
