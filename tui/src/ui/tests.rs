//! Rendering tests: hand-built snapshots drawn on ratatui's `TestBackend`,
//! and reducer tests (keys → state).

use kmon_client::{
    BalanceGoal, BrokerInfo, ClusterMetadata, GroupDescription, GroupListing, GroupMemberDescription,
    PartitionDescription, PartitionLag, PartitionMove, RebalancePlan, TopicDescription, TopicPartition,
};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::{self, Connection, State, View};
use crate::event::Event;
use crate::snapshot::{Group, NodeStats, Snapshot, Throughput};

fn broker(id: i32, fd: &str, ud: &str, alive: bool) -> BrokerInfo {
    BrokerInfo {
        id,
        address: format!("127.0.0.1:{}", 9090 + id),
        metrics_address: format!("127.0.0.1:{}", 9640 + id),
        kafka_address: String::new(),
        fault_domain: fd.into(),
        update_domain: ud.into(),
        alive,
    }
}

fn partition(partition: u32, leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionDescription {
    PartitionDescription {
        partition,
        leader,
        leader_epoch: 1,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        elr: Vec::new(),
        log_start_offset: 5,
        log_end_offset: 1234,
        high_watermark: 1234,
        size_bytes: 4096,
        data_dir: "/data".into(),
    }
}

fn lag(topic: &str, partition: u32, committed: i64, status: &str) -> PartitionLag {
    PartitionLag {
        topic: topic.into(),
        partition,
        committed_offset: Some(committed),
        log_end_offset: 1234,
        high_watermark: 1234,
        lag: 1234 - committed,
        status: status.into(),
        owner: Some("m-1".into()),
    }
}

fn group(id: &str, status: &str, partitions: Vec<PartitionLag>) -> Group {
    Group {
        listing: GroupListing {
            group_id: id.into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            coordinator_id: 1,
            members: 1,
            status: status.into(),
        },
        description: Ok(GroupDescription {
            group_id: id.into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            status: status.into(),
            generation_id: 3,
            coordinator_id: 1,
            members: vec![GroupMemberDescription {
                member_id: "m-1".into(),
                group_instance_id: None,
                client_id: "billing-app".into(),
                host: "/10.0.0.7".into(),
                assignment: vec![TopicPartition::new("orders", 0)],
            }],
            partitions,
        }),
    }
}

/// 4 brokers on FD0/FD1 × UD0/UD1, broker 4 fenced; `orders` has an
/// under-replicated partition (4 out of the ISR) and one placed in a
/// single fault domain (orders-1 on brokers 1 and 2, both FD0).
fn snapshot() -> Snapshot {
    Snapshot {
        at_ms: 3_723_000,
        source: "127.0.0.1:9091".into(),
        metadata: ClusterMetadata {
            brokers: vec![
                broker(1, "FD0", "UD0", true),
                broker(2, "FD0", "UD1", true),
                BrokerInfo { address: "10.1.1.1:9092".into(), ..broker(3, "FD1", "UD0", true) },
                broker(4, "FD1", "UD1", false),
            ],
            controller_id: 1,
            topics: vec![
                TopicDescription {
                    name: "orders".into(),
                    topic_id: String::new(),
                    replication_factor: 2,
                    configs: vec![("min.insync.replicas".into(), "2".into())],
                    partitions: vec![partition(0, 1, &[1, 4], &[1]), partition(1, 2, &[1, 2], &[1, 2])],
                },
                TopicDescription {
                    name: "payments".into(),
                    topic_id: String::new(),
                    replication_factor: 2,
                    configs: vec![],
                    partitions: vec![partition(0, 3, &[3, 2], &[3, 2])],
                },
            ],
        },
        groups: vec![
            group("billing", "ERR", vec![lag("orders", 0, 1000, "STOP"), lag("orders", 1, 1234, "OK")]),
            group("audit", "OK", vec![lag("payments", 0, 1230, "OK")]),
        ],
        group_gaps: vec![],
        throughput: Some(Throughput { messages_in: 1500.0, bytes_in: 2048.0, bytes_out: 1024.0 }),
        topic_rates: [("orders".to_owned(), 1200.0)].into(),
        nodes: vec![NodeStats {
            node: "node-a".into(),
            metrics_address: "10.1.1.1:9100".into(),
            disk_mount: "/".into(),
            disk_size: 100e9,
            disk_avail: 10e9,
            net_rx_rate: Some(2048.0),
            net_tx_rate: Some(1024.0),
            cpu_busy: Some(0.42),
            mem_total: 8e9,
            mem_available: 2e9,
            ..Default::default()
        }],
        plan: Some(Ok(RebalancePlan {
            moves: vec![PartitionMove {
                topic: "orders".into(),
                partition: 1,
                from_replicas: vec![1, 2],
                to_replicas: vec![1, 3],
                bytes_to_move: 4096,
            }],
            bytes_to_move: 4096,
            goals: vec![BalanceGoal { name: "two_domain_violations".into(), before: 1.0, after: 0.0 }],
            sizes_note: None,
        })),
    }
}

fn state() -> State {
    let mut state = State::new("127.0.0.1:9091");
    app::update(&mut state, Event::Data(Box::new(snapshot())));
    state
}

fn draw(state: &State, width: u16, height: u16) -> Vec<String> {
    super::render_to_text(state, width, height).lines().map(str::to_owned).collect()
}

fn screen(state: &State) -> String {
    draw(state, 80, 24).join("\n")
}

fn key(state: &mut State, code: KeyCode) {
    app::update(state, Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn keys(state: &mut State, text: &str) {
    for c in text.chars() {
        key(state, KeyCode::Char(c));
    }
}

/// Column (in chars) of `needle` in `line`.
fn column(line: &str, needle: &str) -> Option<usize> {
    line.find(needle).map(|byte| line[..byte].chars().count())
}

#[test]
fn overview_places_brokers_in_their_fd_ud_cell() {
    let lines = draw(&state(), 80, 24);
    let text = lines.join("\n");
    assert!(text.contains("topics 2  partitions 3"), "{text}");
    assert!(text.contains("under-replicated 1"), "{text}");
    assert!(text.contains("Brokers 3/4 alive · controller #1"), "{text}");
    let header = lines.iter().find(|l| l.contains("UD0") && l.contains("UD1")).expect(&text);
    let (ud0, ud1) = (column(header, "UD0").unwrap(), column(header, "UD1").unwrap());
    let row = |fd: &str| lines.iter().position(|l| l.contains(fd)).unwrap_or_else(|| panic!("{fd}\n{text}"));
    let (fd0, fd1) = (row("FD0"), row("FD1"));
    let at = |line: usize, id: &str| column(&lines[line], id);
    assert!(at(fd0, "#1").is_some_and(|c| c >= ud0 && c < ud1), "{text}");
    assert!(at(fd0, "#2").is_some_and(|c| c >= ud1), "{text}");
    assert!(at(fd1, "#3").is_some_and(|c| c >= ud0 && c < ud1), "{text}");
    assert!(at(fd1, "#4").is_some_and(|c| c >= ud1), "{text}");
    assert!(lines[fd0].contains("★ctl"), "{text}");
    assert!(lines[fd1].contains("FENCED"), "{text}");
    // Broker 1: replicas of orders-0, orders-1; leads orders-0 (under-replicated).
    assert!(lines[fd0 + 1].contains("P2 L1 U1"), "{text}");
    assert!(text.contains("LIVE"), "{text}");
    assert!(text.contains("1.5k/s"), "{text}");
    assert!(text.contains("under-min-ISR 1"), "orders-0 has 1 in-sync replica of min 2:\n{text}");
    // node-a runs on broker 3's host.
    let disk = lines.iter().position(|l| l.contains("disk 90%")).unwrap_or_else(|| panic!("{text}"));
    assert!(disk > fd1 && column(&lines[disk], "disk").unwrap() < ud1, "{text}");
}

#[test]
fn topics_drill_into_partitions_marks_missing_isr_and_domains() {
    let mut state = state();
    key(&mut state, KeyCode::Char('2'));
    let text = screen(&state);
    assert!(text.contains("orders") && text.contains("payments"), "{text}");
    assert!(text.contains("1.2k"), "{text}");
    key(&mut state, KeyCode::Enter);
    assert_eq!(state.drill.as_deref(), Some("orders"));
    let text = screen(&state);
    assert!(text.contains("orders · 2 partitions"), "{text}");
    assert!(text.contains("1,!4"), "under-replicated partition marked:\n{text}");
    // orders-1 on brokers 1 and 2: both FD0, so it does not span.
    assert!(text.contains("NO"), "{text}");
    assert!(text.contains("spans"), "{text}");
    key(&mut state, KeyCode::Esc);
    assert_eq!(state.drill, None);
}

#[test]
fn groups_show_stop_and_drill_into_lag() {
    let mut state = state();
    key(&mut state, KeyCode::Char('3'));
    let text = screen(&state);
    assert!(text.contains("billing") && text.contains("STOP"), "{text}");
    assert!(text.contains("audit") && text.contains("OK"), "{text}");
    // Sorted by name: audit first; j moves to billing.
    key(&mut state, KeyCode::Char('j'));
    key(&mut state, KeyCode::Enter);
    assert_eq!(state.drill.as_deref(), Some("billing"));
    let text = screen(&state);
    assert!(text.contains("1000") && text.contains("234") && text.contains("billing-app"), "{text}");
}

#[test]
fn balance_shows_skew_and_violations() {
    let mut state = state();
    key(&mut state, KeyCode::Char('4'));
    let text = screen(&state);
    assert!(text.contains("replicas / broker · skew"), "{text}");
    assert!(text.contains("1 violating"), "{text}");
    assert!(text.contains("orders-1"), "{text}");
    assert!(text.contains("1 move(s), 4.0KiB: orders-1"), "{text}");
    assert!(text.contains("two_domain_violations 1.00→0.00"), "{text}");
}

#[test]
fn nodes_show_disk_and_cpu() {
    let mut state = state();
    key(&mut state, KeyCode::Char('5'));
    let text = screen(&state);
    assert!(text.contains("node-a"), "{text}");
    assert!(text.contains("90%"), "{text}");
    assert!(text.contains("42%"), "{text}");
}

#[test]
fn alerts_list_conditions() {
    let mut state = state();
    key(&mut state, KeyCode::Char('6'));
    let text = screen(&state);
    assert!(text.contains("broker 4 down"), "{text}");
    assert!(text.contains("orders: 1 under-replicated"), "{text}");
    assert!(text.contains("group billing: STOP"), "{text}");
    assert!(text.contains("disk / 90% used"), "{text}");
    assert!(text.contains("01:02:03"), "{text}");
}

#[test]
fn disconnect_marks_data_stale_and_keeps_it() {
    let mut state = state();
    app::update(&mut state, Event::Disconnected { error: "refused".into(), tried: vec!["a".into(), "b".into()] });
    app::update(&mut state, Event::Disconnected { error: "refused".into(), tried: vec!["a".into(), "b".into()] });
    assert!(matches!(state.connection, Connection::Stale { attempts: 2, .. }));
    let text = screen(&state);
    assert!(text.contains("STALE · reconnecting (try 2, 2 broker(s))"), "{text}");
    assert!(text.contains("#1"), "the last data stays on screen:\n{text}");
    app::update(&mut state, Event::Data(Box::new(snapshot())));
    assert!(screen(&state).contains("LIVE"));
}

#[test]
fn keys_drive_the_state() {
    let mut state = state();
    key(&mut state, KeyCode::Tab);
    assert_eq!(state.view, View::Topics);
    key(&mut state, KeyCode::BackTab);
    key(&mut state, KeyCode::BackTab);
    assert_eq!(state.view, View::Alerts);
    key(&mut state, KeyCode::Char('2'));
    key(&mut state, KeyCode::Down);
    key(&mut state, KeyCode::Down);
    assert_eq!(state.selected, 1, "clamped to the last topic");
    key(&mut state, KeyCode::Char('l'));
    assert_eq!(state.drill.as_deref(), Some("payments"));
    key(&mut state, KeyCode::Char('h'));
    assert_eq!(state.drill, None);
    keys(&mut state, "/pay");
    assert!(state.editing_filter);
    key(&mut state, KeyCode::Enter);
    assert_eq!(state.filter, "pay");
    assert_eq!(state.topic_rows().len(), 1);
    assert!(!screen(&state).contains("orders"));
    key(&mut state, KeyCode::Esc);
    assert_eq!(state.filter, "");
    key(&mut state, KeyCode::Char('s'));
    assert!(state.sort_by_value);
    key(&mut state, KeyCode::Char('?'));
    assert!(state.help);
    assert!(screen(&state).contains("Help"));
    key(&mut state, KeyCode::Char('?'));
    assert!(!state.help);
    key(&mut state, KeyCode::Char('p'));
    assert!(state.paused);
    let mut newer = snapshot();
    newer.at_ms += 1000;
    app::update(&mut state, Event::Data(Box::new(newer)));
    assert_eq!(state.snapshot.as_ref().unwrap().at_ms, 3_723_000, "paused: the screen keeps its data");
    assert!(screen(&state).contains("PAUSED"));
    key(&mut state, KeyCode::Char('q'));
    assert!(state.quit);
    let mut state = State::new("x");
    app::update(&mut state, Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
    assert!(state.quit);
}

#[test]
fn every_view_draws_at_80x24_and_large() {
    let mut state = state();
    for view in View::ALL {
        state.view = view;
        for (w, h) in [(80, 24), (200, 60), (20, 5)] {
            let lines = draw(&state, w, h);
            assert_eq!(lines.len(), h as usize);
        }
    }
    let empty = State::new("127.0.0.1:1");
    assert!(screen(&empty).contains("Connecting to 127.0.0.1:1"));
}

#[test]
fn lag_growing_raises_an_alert() {
    let mut state = State::new("x");
    for (i, committed) in [1230, 1200, 1100, 1000, 900, 800].into_iter().enumerate() {
        let mut s = snapshot();
        s.at_ms += i as u64 * 1000;
        s.groups = vec![group("audit", "OK", vec![lag("payments", 0, committed, "OK")])];
        app::update(&mut state, Event::Data(Box::new(s)));
    }
    assert!(
        state.alerts.iter().any(|a| a.condition.message.contains("group audit: lag growing")),
        "{:?}",
        state.alerts
    );
}

#[test]
fn only_the_rows_on_screen_are_built() {
    use ratatui::layout::Rect;
    let area = Rect::new(0, 0, 80, 13); // 10 rows under the borders and header
    assert_eq!(super::visible(0, 0, area), (0..0, 0));
    assert_eq!(super::visible(5, 3, area), (0..5, 3));
    assert_eq!(super::visible(10_000, 9, area), (0..10, 9));
    assert_eq!(super::visible(10_000, 10, area), (1..11, 9), "scrolled: the selection on the last line");
    assert_eq!(super::visible(10_000, 20_000, area), (9_990..10_000, 9), "clamped to the last row");
}

/// A topic of 5,000 partitions drilled into far down: the selected
/// partition is on screen and highlighted, as ratatui would scroll it.
#[test]
fn a_large_topic_scrolls_to_the_selection() {
    let mut state = state();
    let mut s = snapshot();
    s.metadata.topics[0].partitions = (0..5_000).map(|p| partition(p, 1, &[1, 2], &[1, 2])).collect();
    app::update(&mut state, Event::Data(Box::new(s)));
    key(&mut state, KeyCode::Char('2'));
    key(&mut state, KeyCode::Enter);
    assert_eq!(state.drill.as_deref(), Some("orders"));
    state.drill_selected = 4_321;
    let lines = draw(&state, 80, 24);
    let last_row = lines[lines.len() - 3].trim_start_matches('│');
    assert!(last_row.trim_start().starts_with("4321 "), "the selection on the last row:\n{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l.trim_start_matches('│').trim_start().starts_with("4304 ")), "{}", lines.join("\n"));
}
