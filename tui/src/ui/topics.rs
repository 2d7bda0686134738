//! Topics, and a topic's partitions when drilled into.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::{bad, bold, bytes, ok, selected, si, visible, warn};
use crate::app::State;
use crate::snapshot::is_under_replicated;

pub(super) fn render(state: &State, frame: &mut Frame, area: Rect) {
    match &state.drill {
        Some(topic) => render_partitions(state, topic, frame, area),
        None => render_topics(state, frame, area),
    }
}

fn render_topics(state: &State, frame: &mut Frame, area: Rect) {
    let Some(s) = &state.snapshot else { return };
    let header = Row::new(["TOPIC", "PARTS", "RF", "MSGS/S", "URP", "OFFLINE", "SIZE"]).style(bold());
    let topics = state.topic_rows();
    let (shown, selected_row) = visible(topics.len(), state.selected, area);
    let rows: Vec<Row> = topics[shown]
        .iter()
        .map(|t| {
            let urp = t.partitions.iter().filter(|p| is_under_replicated(p)).count();
            let offline = t.partitions.iter().filter(|p| p.leader < 0).count();
            let size: u64 = t.partitions.iter().map(|p| p.size_bytes).sum();
            let rate = s.topic_rates.get(&t.name).map_or("-".to_owned(), |r| si(*r));
            Row::new(vec![
                Cell::from(t.name.clone()),
                Cell::from(t.partitions.len().to_string()),
                Cell::from(t.replication_factor.to_string()),
                Cell::from(rate),
                Cell::from(Span::styled(urp.to_string(), if urp > 0 { warn() } else { ok() })),
                Cell::from(Span::styled(offline.to_string(), if offline > 0 { bad() } else { ok() })),
                Cell::from(bytes(size as f64)),
            ])
        })
        .collect();
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(6),
        Constraint::Length(3),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Length(10),
    ];
    let title = format!(" Topics ({}) · Enter: partitions ", topics.len());
    let mut table_state = TableState::default().with_selected(Some(selected_row));
    frame.render_stateful_widget(
        Table::new(rows, widths).header(header).row_highlight_style(selected()).block(Block::bordered().title(title)),
        area,
        &mut table_state,
    );
}

fn render_partitions(state: &State, topic: &str, frame: &mut Frame, area: Rect) {
    let Some(s) = &state.snapshot else { return };
    let Some(t) = s.metadata.topics.iter().find(|t| t.name == topic) else {
        frame.render_widget(Block::bordered().title(format!(" {topic}: gone · Esc back ")), area);
        return;
    };
    let header =
        Row::new(["P", "LEADER", "REPLICAS", "ISR (!missing)", "START", "END", "SIZE", "DOMAINS"]).style(bold());
    let rule = s.domain_rule();
    let (shown, selected_row) = visible(t.partitions.len(), state.drill_selected, area);
    let rows: Vec<Row> = t.partitions[shown]
        .iter()
        .map(|p| {
            let leader = if p.leader < 0 { Span::styled("none", bad()) } else { Span::raw(p.leader.to_string()) };
            let mut isr: Vec<Span> = Vec::new();
            for (i, r) in p.replicas.iter().enumerate() {
                if i > 0 {
                    isr.push(Span::raw(","));
                }
                if p.isr.contains(r) {
                    isr.push(Span::styled(r.to_string(), ok()));
                } else {
                    isr.push(Span::styled(format!("!{r}"), bad()));
                }
            }
            let spans = rule.spans(&p.replicas);
            Row::new(vec![
                Cell::from(p.partition.to_string()),
                Cell::from(leader),
                Cell::from(join(&p.replicas)),
                Cell::from(Line::from(isr)),
                Cell::from(p.log_start_offset.to_string()),
                Cell::from(p.log_end_offset.to_string()),
                Cell::from(bytes(p.size_bytes as f64)),
                Cell::from(if spans { Span::styled("spans", ok()) } else { Span::styled("NO", bad()) }),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(4),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Fill(1),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(7),
    ];
    let title = format!(" {} · {} partitions · RF {} · Esc back ", t.name, t.partitions.len(), t.replication_factor);
    let mut table_state = TableState::default().with_selected(Some(selected_row));
    frame.render_stateful_widget(
        Table::new(rows, widths).header(header).row_highlight_style(selected()).block(Block::bordered().title(title)),
        area,
        &mut table_state,
    );
}

fn join(ids: &[i32]) -> String {
    ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}
