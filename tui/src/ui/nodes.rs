//! Nodes: the node agents' figures: disk used/free, disk and NIC rates,
//! errors and drops, CPU (with a sparkline) and memory.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::{bad, bar, bold, bytes, ok, selected, spark, warn};
use crate::alerts::DISK_FULL;
use crate::app::State;

pub(super) fn render(state: &State, frame: &mut Frame, area: Rect) {
    let Some(s) = &state.snapshot else { return };
    if s.nodes.is_empty() {
        frame.render_widget(
            Paragraph::new("No node agent reports to the cluster (run `kmon agent`).")
                .block(Block::bordered().title(" Nodes ")),
            area,
        );
        return;
    }
    let rate =
        |r: Option<f64>| r.map_or("-".to_owned(), |r| bytes(r).trim_end_matches("iB").trim_end_matches('B').to_owned());
    let header =
        Row::new(["NODE", "DISK USED", "FREE", "RD/WR B/s", "RX/TX B/s", "ERR/DRP", "CPU", "MEM"]).style(bold());
    let rows: Vec<Row> = s
        .nodes
        .iter()
        .map(|n| {
            if let Some(error) = &n.error {
                return Row::new(vec![
                    Cell::from(n.node.clone()),
                    Cell::from(Span::styled(format!("unreachable: {error}"), bad())),
                ]);
            }
            let used = n.disk_used_fraction();
            let disk_style = if used > DISK_FULL {
                bad()
            } else if used > 0.7 {
                warn()
            } else {
                ok()
            };
            let cpu = n.cpu_busy.map_or("-".to_owned(), |c| format!("{:>3.0}%", c * 100.0));
            let trend = state.history.cpu.get(&n.node).map(|h| spark(h.iter().copied(), 4)).unwrap_or_default();
            Row::new(vec![
                Cell::from(n.node.clone()),
                Cell::from(Line::from(vec![
                    Span::styled(format!("{} ", bar(used, 5)), disk_style),
                    Span::styled(format!("{:>4.0}%", used * 100.0).trim_start().to_owned(), disk_style),
                ])),
                Cell::from(bytes(n.disk_avail)),
                Cell::from(format!("{}/{}", rate(n.disk_read_rate), rate(n.disk_write_rate))),
                Cell::from(format!("{}/{}", rate(n.net_rx_rate), rate(n.net_tx_rate))),
                Cell::from(format!("{:.0}/{:.0}", n.net_errors, n.net_drops)),
                Cell::from(format!("{cpu} {trend}")),
                Cell::from(format!("{:.0}%", n.mem_used_fraction() * 100.0)),
            ])
        })
        .collect();
    let widths = [
        Constraint::Min(6),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(13),
        Constraint::Length(13),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(4),
    ];
    let mut table_state =
        TableState::default().with_selected(Some(state.selected.min(s.nodes.len().saturating_sub(1))));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(header)
            .row_highlight_style(selected())
            .block(Block::bordered().title(format!(" Nodes ({}) ", s.nodes.len()))),
        area,
        &mut table_state,
    );
}
