//! `kmon rebalance plan`: the reassignment the planner proposes (moves,
//! bytes to move, each goal's skew before and after). Nothing moves.
//!
//! `kmon rebalance execute`: plans, then has the cluster carry the plan out
//! as Kafka reassigns partitions (new replicas copy the log at the
//! throttle, join the ISR, old replicas go, the preferred replica leads),
//! with a progress bar until done. The reassignment runs in the cluster:
//! interrupting this command does not stop it (`kmon rebalance cancel`
//! does), and `kmon rebalance status` shows it from anywhere.
//!
//! `--json` prints one stable object:
//! `{"moves": [{"topic", "partition", "from_replicas", "to_replicas",
//! "bytes_to_move"}], "bytes_to_move", "goals": [{"name", "before",
//! "after"}], "sizes_note"}` (`sizes_note` is null unless some partition
//! sizes are estimates).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kmon_client::{Admin, ReassignmentStatus, RebalancePlan};
use serde::Serialize;

use super::ClientArgs;
use kmon_client::admin::parse_rate;

use super::format::{human_bytes, render_rows};

#[derive(Debug, Subcommand)]
pub(crate) enum RebalanceCommand {
    /// Compute a reassignment that spreads every partition over distinct
    /// fault and update domains, then balances replicas, bytes and leaders,
    /// moving as few bytes as possible. Changes nothing.
    Plan {
        /// Only these topics may move (comma-separated); default: every
        /// topic. Balance is measured over the whole cluster either way.
        #[arg(long, value_delimiter = ',')]
        topics: Vec<String>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Plan, then execute the plan: new replicas copy the data (throttled),
    /// join the ISR, old replicas are removed, preferred replicas lead.
    Execute(ExecuteArgs),
    /// The reassignment in progress: partitions pending, bytes left.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revert every pending move to its original replicas.
    Cancel,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ExecuteArgs {
    /// Only these topics may move (comma-separated); default: every topic.
    #[arg(long, value_delimiter = ',')]
    pub topics: Vec<String>,
    /// Replication throttle for the moving replicas, per broker and
    /// direction, e.g. 50MB/s, 512KiB/s or a number of bytes/s. Default:
    /// unthrottled. Given with a reassignment in progress (and nothing new
    /// to move), it changes that reassignment's throttle.
    #[arg(long, value_parser = parse_rate)]
    pub throttle: Option<u64>,
    /// Start the reassignment and return without waiting for it.
    #[arg(long)]
    pub no_wait: bool,
}

pub(crate) async fn run(client: ClientArgs, command: RebalanceCommand) -> anyhow::Result<()> {
    let admin = Admin::connect(&client.bootstrap).await?;
    match command {
        RebalanceCommand::Plan { topics, json } => {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            let plan = admin.plan_rebalance(&names).await.context("cannot plan a rebalance")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&PlanJson::from(&plan))?);
            } else {
                if let Some(note) = &plan.sizes_note {
                    eprintln!("warning: {note}");
                }
                print!("{}", render_plan(&plan));
            }
        }
        RebalanceCommand::Execute(args) => execute(&admin, &args).await?,
        RebalanceCommand::Status { json } => {
            let status = admin.reassignment_status().await.context("cannot read the reassignment status")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&StatusJson::from(&status))?);
            } else {
                print!("{}", render_status(&status));
            }
        }
        RebalanceCommand::Cancel => {
            let (reverted, kept) = admin.cancel_reassignment().await.context("cannot cancel the reassignment")?;
            println!("cancelled: {reverted} partition(s) back on their original replicas");
            if kept > 0 {
                println!(
                    "{kept} partition(s) keep moving: none of their original replicas is in sync and alive to lead them"
                );
            }
        }
    }
    Ok(())
}

/// Plans and executes a rebalance; waits for it with a progress bar unless
/// `--no-wait`. Also used by `kmon up --rebalance`.
pub(crate) async fn execute(admin: &Admin, args: &ExecuteArgs) -> anyhow::Result<()> {
    let names: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    let current = admin.reassignment_status().await.context("cannot read the reassignment status")?;
    if current.in_progress {
        if let Some(rate) = args.throttle {
            admin.execute_reassignment(&[], Some(rate)).await.context("cannot change the throttle")?;
            println!("throttle of the reassignment in progress set to {}/s", human_bytes(rate));
        } else {
            println!("a reassignment is already in progress: following it (`kmon rebalance cancel` reverts it)");
        }
    } else {
        let plan = admin.plan_rebalance(&names).await.context("cannot plan a rebalance")?;
        if let Some(note) = &plan.sizes_note {
            eprintln!("warning: {note}");
        }
        print!("{}", render_plan(&plan));
        if plan.moves.is_empty() {
            return Ok(());
        }
        let (partitions, bytes) = admin
            .execute_reassignment(&plan.moves, args.throttle)
            .await
            .context("the cluster refused to start the reassignment")?;
        let throttle = args.throttle.map_or("unthrottled".to_owned(), |r| format!("throttled to {}/s", human_bytes(r)));
        println!("\nreassignment started: {partitions} partition(s) to copy, {}, {throttle}", human_bytes(bytes));
    }
    if args.no_wait {
        println!("follow it with `kmon rebalance status`");
        return Ok(());
    }
    wait_for_reassignment(admin).await
}

/// Polls the status until nothing is pending, drawing a progress bar of
/// bytes copied. Survives a controller failover (the status call is retried).
async fn wait_for_reassignment(admin: &Admin) -> anyhow::Result<()> {
    let started = Instant::now();
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let mut last_error: Option<(Instant, String)> = None;
    loop {
        match admin.reassignment_status().await {
            Ok(status) if !status.in_progress => break,
            Ok(status) => {
                last_error = None;
                bar.set_length(status.bytes_total.max(1));
                bar.set_position(status.bytes_total.saturating_sub(status.bytes_left));
                bar.set_message(format!("{}/{} partition(s) pending", status.pending.len(), status.partitions_total));
            }
            Err(err) => {
                // A broker or the controller may be failing over: keep asking.
                let since = last_error.get_or_insert_with(|| (Instant::now(), err.to_string())).0;
                if since.elapsed() > Duration::from_secs(60) {
                    bar.abandon();
                    bail!("lost track of the reassignment for 60 s (it keeps running in the cluster): {err}");
                }
                bar.set_message(format!("waiting for the cluster: {err}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bar.finish_and_clear();
    println!("reassignment complete in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Broker ids as `1,2,3`.
fn ids(replicas: &[i32]) -> String {
    replicas.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    in_progress: bool,
    partitions_total: u32,
    partitions_pending: usize,
    bytes_total: u64,
    bytes_left: u64,
    throttle_bytes_per_sec: Option<u64>,
    started_ms: i64,
    pending: Vec<PendingJson<'a>>,
}

#[derive(Debug, Serialize)]
struct PendingJson<'a> {
    topic: &'a str,
    partition: u32,
    original: &'a [i32],
    target: &'a [i32],
    adding: &'a [i32],
    removing: &'a [i32],
    isr: &'a [i32],
    leader: i32,
    bytes: u64,
    bytes_left: u64,
}

impl<'a> From<&'a ReassignmentStatus> for StatusJson<'a> {
    fn from(s: &'a ReassignmentStatus) -> Self {
        StatusJson {
            in_progress: s.in_progress,
            partitions_total: s.partitions_total,
            partitions_pending: s.pending.len(),
            bytes_total: s.bytes_total,
            bytes_left: s.bytes_left,
            throttle_bytes_per_sec: s.throttle_bytes_per_sec,
            started_ms: s.started_ms,
            pending: s
                .pending
                .iter()
                .map(|p| PendingJson {
                    topic: &p.topic,
                    partition: p.partition,
                    original: &p.original,
                    target: &p.target,
                    adding: &p.adding,
                    removing: &p.removing,
                    isr: &p.isr,
                    leader: p.leader,
                    bytes: p.bytes,
                    bytes_left: p.bytes_left,
                })
                .collect(),
        }
    }
}

fn render_status(status: &ReassignmentStatus) -> String {
    if !status.in_progress {
        return "no reassignment in progress\n".into();
    }
    let throttle = status.throttle_bytes_per_sec.map_or("unthrottled".to_owned(), |r| format!("{}/s", human_bytes(r)));
    let mut out = format!(
        "reassignment in progress: {}/{} partition(s) pending, {} of {} left to copy, {throttle}\n",
        status.pending.len(),
        status.partitions_total,
        human_bytes(status.bytes_left),
        human_bytes(status.bytes_total),
    );
    let mut rows = vec![[
        "TOPIC".to_owned(),
        "PARTITION".into(),
        "FROM".into(),
        "TO".into(),
        "ADDING".into(),
        "ISR".into(),
        "LEFT".into(),
    ]];
    rows.extend(status.pending.iter().map(|p| {
        [
            p.topic.clone(),
            p.partition.to_string(),
            ids(&p.original),
            ids(&p.target),
            ids(&p.adding),
            ids(&p.isr),
            human_bytes(p.bytes_left),
        ]
    }));
    out.push_str(&render_rows(&rows));
    out
}

#[derive(Debug, Serialize)]
struct PlanJson<'a> {
    moves: Vec<MoveJson<'a>>,
    bytes_to_move: u64,
    goals: Vec<GoalJson<'a>>,
    sizes_note: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct MoveJson<'a> {
    topic: &'a str,
    partition: u32,
    from_replicas: &'a [i32],
    to_replicas: &'a [i32],
    bytes_to_move: u64,
}

#[derive(Debug, Serialize)]
struct GoalJson<'a> {
    name: &'a str,
    before: f64,
    after: f64,
}

impl<'a> From<&'a RebalancePlan> for PlanJson<'a> {
    fn from(plan: &'a RebalancePlan) -> Self {
        PlanJson {
            moves: plan
                .moves
                .iter()
                .map(|m| MoveJson {
                    topic: &m.topic,
                    partition: m.partition,
                    from_replicas: &m.from_replicas,
                    to_replicas: &m.to_replicas,
                    bytes_to_move: m.bytes_to_move,
                })
                .collect(),
            bytes_to_move: plan.bytes_to_move,
            goals: plan.goals.iter().map(|g| GoalJson { name: &g.name, before: g.before, after: g.after }).collect(),
            sizes_note: plan.sizes_note.as_deref(),
        }
    }
}

fn render_plan(plan: &RebalancePlan) -> String {
    let mut out = String::new();
    if plan.moves.is_empty() {
        out.push_str("balanced: nothing to move\n");
    } else {
        out.push_str(&format!(
            "{} partition(s) to reassign, {} to copy\n",
            plan.moves.len(),
            human_bytes(plan.bytes_to_move)
        ));
        let mut rows = vec![["TOPIC".to_owned(), "PARTITION".into(), "FROM".into(), "TO".into(), "BYTES".into()]];
        rows.extend(plan.moves.iter().map(|m| {
            [
                m.topic.clone(),
                m.partition.to_string(),
                ids(&m.from_replicas),
                ids(&m.to_replicas),
                human_bytes(m.bytes_to_move),
            ]
        }));
        out.push_str(&render_rows(&rows));
    }
    out.push('\n');
    let mut rows = vec![["GOAL".to_owned(), "BEFORE".into(), "AFTER".into()]];
    rows.extend(plan.goals.iter().map(|g| {
        let value = |v: f64| if g.name == "two_domain_violations" { format!("{v:.0}") } else { format!("{v:.3}") };
        [g.name.clone(), value(g.before), value(g.after)]
    }));
    out.push_str(&render_rows(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmon_client::{BalanceGoal, PartitionMove};

    fn sample() -> RebalancePlan {
        RebalancePlan {
            moves: vec![PartitionMove {
                topic: "t".into(),
                partition: 0,
                from_replicas: vec![1, 2, 3],
                to_replicas: vec![4, 2, 3],
                bytes_to_move: 2048,
            }],
            bytes_to_move: 2048,
            goals: vec![
                BalanceGoal { name: "two_domain_violations".into(), before: 1.0, after: 0.0 },
                BalanceGoal { name: "replicas_per_broker_skew".into(), before: 1.3333, after: 1.0 },
            ],
            sizes_note: None,
        }
    }

    #[test]
    fn the_table_shows_moves_bytes_and_goals() {
        let text = render_plan(&sample());
        assert!(text.starts_with("1 partition(s) to reassign, 2.0 KiB to copy\n"), "{text}");
        assert!(text.contains("1,2,3") && text.contains("4,2,3"), "{text}");
        assert!(
            text.contains("replicas_per_broker_skew") && text.contains("1.333") && text.contains("1.000"),
            "{text}"
        );
    }

    #[test]
    fn json_field_order_is_stable() {
        let json = serde_json::to_string(&PlanJson::from(&sample())).unwrap();
        assert_eq!(
            json,
            r#"{"moves":[{"topic":"t","partition":0,"from_replicas":[1,2,3],"to_replicas":[4,2,3],"bytes_to_move":2048}],"bytes_to_move":2048,"goals":[{"name":"two_domain_violations","before":1.0,"after":0.0},{"name":"replicas_per_broker_skew","before":1.3333,"after":1.0}],"sizes_note":null}"#
        );
    }
}
