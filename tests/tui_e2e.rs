//! `kmon tui` against real brokers, driven under tmux: keys go in with
//! `tmux send-keys`, the screen comes out with `tmux capture-pane -p`.
//! Skipped (with a note) when tmux is not installed.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;

const SCREEN_DEADLINE: Duration = Duration::from_secs(30);

/// A private tmux server (its own socket) with one session running `sh`;
/// killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// `None` when tmux is not installed.
    fn start(name: &str) -> Option<Tmux> {
        if !Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()) {
            eprintln!("note: tmux is not installed; skipping the kmon tui smoke test");
            return None;
        }
        let tmux = Tmux { socket: format!("kmon-tui-{name}-{}", std::process::id()) };
        let out = tmux.run(&["new-session", "-d", "-s", "t", "-x", "100", "-y", "30", "env PS1='$ ' sh"]);
        assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("run tmux")
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        assert!(self.run(&args).status.success(), "send-keys {keys:?}");
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn display(&self, format: &str) -> String {
        String::from_utf8_lossy(&self.run(&["display-message", "-p", "-t", "t", format]).stdout).trim().to_owned()
    }

    /// Waits until the screen satisfies `check`.
    fn wait_screen(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let end = std::time::Instant::now() + SCREEN_DEADLINE;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(std::time::Instant::now() < end, "timed out waiting for {what}; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `kmon tui` in the session's shell; the shell prints its exit
    /// status afterwards.
    fn start_tui(&self, bootstrap: &str) {
        let line = format!("{KMON} tui --bootstrap {bootstrap} --refresh 300ms; echo kmon-exit=$?");
        self.send(&["-l", &line]);
        self.send(&["Enter"]);
    }

    /// Quits with `q` and asserts a clean exit on a restored terminal.
    fn quit_cleanly(&self) {
        self.send(&["q"]);
        let screen = self.wait_screen("the shell after q", |s| s.lines().any(|l| l.starts_with("kmon-exit=")));
        assert!(screen.lines().any(|l| l == "kmon-exit=0"), "kmon tui exit status:\n{screen}");
        assert_eq!(self.display("#{alternate_on}"), "0", "alternate screen left");
        assert!(screen.lines().any(|l| l.starts_with("$ ")), "shell prompt back:\n{screen}");
        // Raw mode is off: the shell's line discipline echoes typed text.
        self.send(&["-l", "echo cooked-$((40+2))"]);
        self.send(&["Enter"]);
        self.wait_screen("the shell to run a command", |s| s.contains("cooked-42"));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn broker_id(bootstrap: &str) -> i64 {
    let status: serde_json::Value = serde_json::from_str(&kmon_ok(bootstrap, &["status", "--json"], "")).unwrap();
    status["brokers"][0]["id"].as_i64().expect("a broker id")
}

#[test]
fn tui_shows_the_cluster_goes_stale_when_its_broker_dies_and_quits_cleanly() {
    let Some(tmux) = Tmux::start("single") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    kmon_ok(&broker.bootstrap(), &["topic", "create", "tui-orders", "--partitions", "2"], "");
    let id = broker_id(&broker.bootstrap());

    tmux.start_tui(&broker.bootstrap());
    let cell = format!("#{id}");
    tmux.wait_screen("the overview with the broker", |s| {
        s.contains("LIVE") && s.contains(&cell) && s.contains("alive")
    });
    tmux.send(&["2"]);
    tmux.wait_screen("the topics view", |s| s.contains("Topics (1)") && s.contains("tui-orders"));
    tmux.send(&["Enter"]);
    tmux.wait_screen("the partitions of the topic", |s| s.contains("tui-orders · 2 partitions"));
    tmux.send(&["Escape"]);

    broker.kill();
    let screen = tmux.wait_screen("the stale marker", |s| s.contains("STALE"));
    assert!(screen.contains("tui-orders"), "the last data stays on screen:\n{screen}");
    assert_eq!(tmux.display("#{pane_current_command}"), "kmon", "kmon tui still runs:\n{screen}");
    assert_eq!(tmux.display("#{alternate_on}"), "1");

    tmux.quit_cleanly();
}

#[test]
fn tui_fails_over_to_another_broker() {
    let Some(tmux) = Tmux::start("cluster") else { return };
    let mut cluster = Cluster::start(3, &[]);
    let bootstrap = cluster.broker(1).bootstrap();
    kmon_ok(&bootstrap, &["topic", "create", "tui-failover", "--partitions", "3", "--replication-factor", "3"], "");

    tmux.start_tui(&bootstrap);
    tmux.wait_screen("three live brokers", |s| {
        s.contains("Brokers 3/3 alive") && s.contains(&format!("via {bootstrap}"))
    });
    cluster.broker(1).kill();
    tmux.wait_screen("broker 1 fenced", |s| s.contains("FENCED") && s.contains("Brokers 2/3 alive"));
    let others = [cluster.broker(2).bootstrap(), cluster.broker(3).bootstrap()];
    let screen = tmux.wait_screen("data from another broker", |s| {
        s.contains("LIVE") && others.iter().any(|a| s.contains(&format!("via {a}")))
    });
    assert!(!screen.contains("STALE"), "{screen}");
    tmux.quit_cleanly();
}

/// The views drawn on ratatui's `TestBackend` from live data of a real
/// cluster: a killed broker shows fenced, its partitions under-replicated
/// (missing from the ISR), and a group with lag.
#[test]
fn views_render_live_cluster_data() {
    use kmon_tui::app::{self, State};
    use kmon_tui::client::Poller;
    use kmon_tui::snapshot::GroupStatus;
    use kmon_tui::{Event, ui};

    // A group without commits for 2 s while it lags is STOP (Burrow's rule).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(&config, "group_lag_stop_after_ms = 2000\n").unwrap();
    let mut cluster = Cluster::start(3, &["--config", config.to_str().unwrap()]);
    let bootstrap = cluster.broker(1).bootstrap();
    kmon_ok(&bootstrap, &["topic", "create", "live", "--partitions", "3", "--replication-factor", "3"], "");
    let records: String = (0..10).map(|i| format!("record-{i}\n")).collect();
    kmon_ok(&bootstrap, &["produce", "--topic", "live"], &records);
    kmon_ok(
        &bootstrap,
        &["consume", "--topic", "live", "--group", "tui-group", "--from-beginning", "--max-records", "4"],
        "",
    );
    cluster.broker(3).kill();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut poller = Poller::new(bootstrap.clone());
    let mut last = String::new();
    let end = std::time::Instant::now() + SCREEN_DEADLINE;
    let snapshot = loop {
        assert!(std::time::Instant::now() < end, "broker 3 fenced, live under-replicated, the group STOP: {last}");
        let snapshot = match runtime.block_on(poller.poll()) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                last = format!("{error:?}");
                continue;
            }
        };
        let fenced = snapshot.metadata.brokers.iter().any(|b| b.id == 3 && !b.alive);
        let grouped = snapshot.groups.iter().any(|g| g.id() == "tui-group" && g.status() == GroupStatus::Stop);
        let live_urp = snapshot.partitions().filter(|(t, p)| *t == "live" && p.isr.len() == 2).count();
        last = format!("fenced {fenced} group STOP {grouped} live under-replicated {live_urp}");
        if fenced && grouped && live_urp == 3 {
            break snapshot;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut state = State::new(bootstrap);
    app::update(&mut state, Event::Data(Box::new(snapshot)));

    let screen = ui::render_to_text(&state, 80, 24);
    let fd2 = screen.lines().find(|l| l.contains("FD2")).unwrap_or_else(|| panic!("{screen}"));
    assert!(fd2.contains("#3") && fd2.contains("FENCED"), "{screen}");
    assert!(screen.contains("Brokers 2/3 alive"), "{screen}");

    state.view = app::View::Topics;
    state.drill = Some("live".into());
    let screen = ui::render_to_text(&state, 80, 24);
    assert_eq!(screen.matches("!3").count(), 3, "broker 3 marked out of every ISR:\n{screen}");

    state.view = app::View::Groups;
    state.drill = None;
    let screen = ui::render_to_text(&state, 80, 24);
    let row = screen.lines().find(|l| l.contains("tui-group")).unwrap_or_else(|| panic!("{screen}"));
    assert!(row.contains("STOP"), "the stopped group shows STOP:\n{screen}");

    state.view = app::View::Balance;
    let screen = ui::render_to_text(&state, 80, 24);
    assert!(screen.contains("Rebalance preview") && !screen.contains("not asked yet"), "{screen}");

    state.view = app::View::Alerts;
    let screen = ui::render_to_text(&state, 80, 24);
    assert!(screen.contains("broker 3 down") && screen.contains("live: 3 under-replicated"), "{screen}");
}

/// A refresh costs the same few RPCs however many groups there are —
/// `Metadata`, one `DescribeGroups`, `ListAgents` per live broker and, every
/// `PLAN_EVERY` refreshes, `PlanRebalance` — counted by the client library
/// as they are sent, not one or two per group.
#[test]
fn a_refresh_takes_a_few_rpcs_whatever_the_number_of_groups() {
    use kmon_client::{Admin, TopicPartition};
    use kmon_tui::client::Poller;

    let mut cluster = Cluster::start(3, &[]);
    let bootstrap = cluster.broker(1).bootstrap();
    kmon_ok(&bootstrap, &["topic", "create", "rpcs", "--partitions", "3"], "");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut poller = Poller::new(bootstrap.clone());
    // RPCs of `refreshes` refreshes in a row, once `groups` groups show.
    let mut counts = |groups: usize, refreshes: usize| -> Vec<u64> {
        let mut counts = Vec::new();
        let end = std::time::Instant::now() + SCREEN_DEADLINE;
        while counts.len() < refreshes {
            assert!(std::time::Instant::now() < end, "{groups} groups never showed");
            match runtime.block_on(poller.poll()) {
                Ok(snapshot) if snapshot.groups.len() == groups && snapshot.group_gaps.is_empty() => {
                    counts.push(poller.last_poll_rpcs())
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        counts
    };
    let (brokers, with_plan) = (3, 1);
    let without_groups = counts(0, 12);

    let admin = runtime.block_on(Admin::connect(&bootstrap)).unwrap();
    for g in 0..25 {
        let offsets = (0..3).map(|p| (TopicPartition::new("rpcs", p), 0)).collect();
        runtime.block_on(admin.reset_offsets(&format!("rpc-group-{g}"), &offsets)).unwrap();
    }
    let with_groups = counts(25, 12);

    for counts in [&without_groups, &with_groups] {
        let (least, most) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
        assert_eq!(least, 2 + brokers, "Metadata + DescribeGroups + ListAgents per broker: {counts:?}");
        assert!(most <= least + with_plan, "at most a PlanRebalance more: {counts:?}");
        assert!(counts.contains(&(least + with_plan)), "a plan is asked every PLAN_EVERY refreshes: {counts:?}");
    }
}
