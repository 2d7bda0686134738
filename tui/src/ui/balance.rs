//! Balance: replicas and leaders per broker, fault domain and update domain
//! as bar charts with their skew (max / mean), and the partitions that
//! violate the two-domain placement rule.

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::{bad, bar, bold, dim, ok};
use crate::app::State;
use crate::snapshot::skew;

pub(super) fn render(state: &State, frame: &mut Frame, area: Rect) {
    let Some(s) = &state.snapshot else { return };
    let mut by_broker: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut by_fd: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut by_ud: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for b in s.metadata.brokers.iter().filter(|b| b.alive) {
        let load = s.load(b.id);
        for (map, key) in [
            (&mut by_broker, format!("#{}", b.id)),
            (&mut by_fd, b.fault_domain.clone()),
            (&mut by_ud, b.update_domain.clone()),
        ] {
            let entry = map.entry(key).or_default();
            entry.0 += load.replicas;
            entry.1 += load.leaders;
        }
    }
    let violations = s.domain_violations();
    let [top, middle, bottom, preview] = Layout::vertical([
        Constraint::Length(by_broker.len() as u16 + 2),
        Constraint::Length(by_fd.len().max(by_ud.len()) as u16 + 2),
        Constraint::Min(3),
        Constraint::Length(4),
    ])
    .areas(area);
    let [replicas, leaders] = Layout::horizontal([Constraint::Fill(1); 2]).areas(top);
    chart(frame, replicas, "replicas / broker", &by_broker, |v| v.0);
    chart(frame, leaders, "leaders / broker", &by_broker, |v| v.1);
    let [fd, ud] = Layout::horizontal([Constraint::Fill(1); 2]).areas(middle);
    chart(frame, fd, "replicas / FD", &by_fd, |v| v.0);
    chart(frame, ud, "replicas / UD", &by_ud, |v| v.0);

    let title = format!(" Two-domain rule: {} violating partition(s) ", violations.len());
    let text = if violations.is_empty() {
        Line::from(Span::styled("every partition spans its fault and update domains", ok()))
    } else {
        // No more than the box can show: there may be thousands.
        let room = (bottom.width as usize * bottom.height as usize).max(1);
        let mut shown = String::new();
        for (i, v) in violations.iter().enumerate() {
            if shown.len() + v.len() + 1 > room {
                shown.push_str(&format!("… and {} more", violations.len() - i));
                break;
            }
            shown.push_str(v);
            shown.push(' ');
        }
        Line::from(Span::styled(shown, bad()))
    };
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).block(Block::bordered().title(title)), bottom);
    render_preview(s, frame, preview);
}

/// What `kmon rebalance plan` would move, and the goals it improves.
fn render_preview(s: &crate::snapshot::Snapshot, frame: &mut Frame, area: Rect) {
    let lines: Vec<Line> = match &s.plan {
        None => vec![Line::styled("not asked yet", dim())],
        Some(Err(error)) => vec![Line::styled(format!("unavailable: {error}"), dim())],
        Some(Ok(plan)) if plan.moves.is_empty() => vec![Line::styled("nothing to move: balanced", ok())],
        Some(Ok(plan)) => {
            let goals: Vec<String> = plan
                .goals
                .iter()
                .filter(|g| (g.before - g.after).abs() > 1e-9)
                .map(|g| format!("{} {:.2}→{:.2}", g.name, g.before, g.after))
                .collect();
            let moves: Vec<String> = plan.moves.iter().map(|m| format!("{}-{}", m.topic, m.partition)).collect();
            vec![
                Line::raw(format!(
                    "{} move(s), {}: {}",
                    plan.moves.len(),
                    super::bytes(plan.bytes_to_move as f64),
                    moves.join(" ")
                )),
                Line::styled(goals.join("  "), dim()),
            ]
        }
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(Block::bordered().title(" Rebalance preview ")),
        area,
    );
}

fn chart(
    frame: &mut Frame,
    area: Rect,
    what: &str,
    values: &BTreeMap<String, (usize, usize)>,
    pick: impl Fn(&(usize, usize)) -> usize,
) {
    let counts: Vec<usize> = values.values().map(&pick).collect();
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let title = format!(" {what} · skew {:.2} ", skew(&counts));
    let block = Block::bordered().title(Span::styled(title, bold()));
    let inner = block.inner(area);
    let label_width = values.keys().map(|k| k.chars().count()).max().unwrap_or(0).min(10);
    let bar_width = (inner.width as usize).saturating_sub(label_width + 8).max(1);
    let lines: Vec<Line> = values
        .iter()
        .map(|(key, v)| {
            let n = pick(v);
            let label: String = key.chars().take(label_width).collect();
            Line::raw(format!("{label:<label_width$} {} {n}", bar(n as f64 / max as f64, bar_width)))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
