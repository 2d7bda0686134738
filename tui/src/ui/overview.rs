//! Overview: cluster totals with throughput sparklines, and the brokers as
//! a grid of fault domain (rows) × update domain (columns).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table};

use super::{bad, bold, bytes, dim, ok, si, warn};
use crate::app::State;
use crate::snapshot::Snapshot;

pub(super) fn render(state: &State, frame: &mut Frame, area: Rect) {
    let Some(s) = &state.snapshot else { return };
    let [totals, grid] = Layout::vertical([Constraint::Length(6), Constraint::Min(3)]).areas(area);
    render_totals(state, s, frame, totals);
    render_grid(s, frame, grid);
}

fn render_totals(state: &State, s: &Snapshot, frame: &mut Frame, area: Rect) {
    let block = Block::bordered().title(" Cluster ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [counts, m, bi, bo] = Layout::vertical([Constraint::Length(1); 4]).areas(inner);
    let partitions = s.partitions().count();
    let (urp, offline, under_min_isr) = (s.under_replicated(), s.offline(), s.under_min_isr());
    let count_style = |n: usize, style| if n > 0 { style } else { ok() };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw(format!("topics {}  partitions {partitions}  ", s.metadata.topics.len())),
            Span::raw("under-replicated "),
            Span::styled(urp.to_string(), count_style(urp, warn())),
            Span::raw("  under-min-ISR "),
            Span::styled(under_min_isr.to_string(), count_style(under_min_isr, bad())),
            Span::raw("  offline "),
            Span::styled(offline.to_string(), count_style(offline, bad())),
        ])),
        counts,
    );
    let t = s.throughput.unwrap_or_default();
    let rows = [
        (m, format!("msgs in  {:>8}/s ", si(t.messages_in)), &state.history.messages_in),
        (bi, format!("bytes in {:>8}/s ", bytes(t.bytes_in)), &state.history.bytes_in),
        (bo, format!("bytes out{:>8}/s ", bytes(t.bytes_out)), &state.history.bytes_out),
    ];
    for (area, label, history) in rows {
        let [label_area, spark_area] = Layout::horizontal([Constraint::Length(22), Constraint::Min(1)]).areas(area);
        let label = if s.throughput.is_some() { Span::raw(label) } else { Span::styled(label, dim()) };
        frame.render_widget(Paragraph::new(label), label_area);
        let data: Vec<u64> = history.iter().rev().take(spark_area.width as usize).rev().copied().collect();
        frame.render_widget(Sparkline::default().data(&data), spark_area);
    }
}

fn render_grid(s: &Snapshot, frame: &mut Frame, area: Rect) {
    let (fds, uds) = s.domains();
    let mut header = vec![Cell::from(Span::styled("FD \\ UD", bold()))];
    header.extend(uds.iter().map(|ud| Cell::from(Span::styled(ud.clone(), bold()))));
    let rows: Vec<Row> = fds
        .iter()
        .map(|fd| {
            let mut height = 1;
            let mut cells = vec![Cell::from(Span::styled(fd.clone(), bold()))];
            for ud in &uds {
                let mut lines: Vec<Line> = Vec::new();
                let mut brokers: Vec<_> =
                    s.metadata.brokers.iter().filter(|b| &b.fault_domain == fd && &b.update_domain == ud).collect();
                brokers.sort_by_key(|b| b.id);
                for b in brokers {
                    let load = s.load(b.id);
                    let mut head = vec![Span::styled(format!("#{}", b.id), bold())];
                    if b.id == s.metadata.controller_id {
                        head.push(Span::styled(" ★ctl", bold()));
                    }
                    head.push(Span::raw(" "));
                    head.push(if b.alive { Span::styled("alive", ok()) } else { Span::styled("FENCED", bad()) });
                    lines.push(Line::from(head));
                    let mut figures = vec![Span::raw(format!("P{} L{} ", load.replicas, load.leaders))];
                    let urp = format!("U{}", load.under_replicated);
                    figures.push(if load.under_replicated > 0 { Span::styled(urp, warn()) } else { Span::raw(urp) });
                    lines.push(Line::from(figures));
                    if let Some(node) = s.node_of(b) {
                        let used = node.disk_used_fraction();
                        let style = if used > crate::alerts::DISK_FULL { bad() } else { Style::new() };
                        let rate = |r: Option<f64>| r.map_or("-".to_owned(), si);
                        lines.push(Line::from(vec![
                            Span::styled(format!("disk {:.0}%", used * 100.0), style),
                            Span::raw(format!(" nic {}/{}", rate(node.net_rx_rate), rate(node.net_tx_rate))),
                        ]));
                    }
                }
                height = height.max(lines.len());
                cells.push(Cell::from(Text::from(lines)));
            }
            Row::new(cells).height(height as u16)
        })
        .collect();
    let alive = s.metadata.brokers.iter().filter(|b| b.alive).count();
    let controller = if s.metadata.controller_id >= 0 {
        Span::styled(format!("controller #{}", s.metadata.controller_id), bold())
    } else {
        Span::styled("NO CONTROLLER", bad())
    };
    let title = Line::from(vec![
        Span::raw(format!(" Brokers {alive}/{} alive · ", s.metadata.brokers.len())),
        controller,
        Span::raw(" · P replicas L leaders U URP "),
    ]);
    let mut widths = vec![Constraint::Length(8)];
    widths.extend(uds.iter().map(|_| Constraint::Fill(1)));
    frame.render_widget(Table::new(rows, widths).header(Row::new(header)).block(Block::bordered().title(title)), area);
}
