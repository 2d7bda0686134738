//! `kmon rebalance plan`: the reassignment the planner proposes (moves,
//! bytes to move, each goal's skew before and after). Nothing moves.
//!
//! `--json` prints one stable object:
//! `{"moves": [{"topic", "partition", "from_replicas", "to_replicas",
//! "bytes_to_move"}], "bytes_to_move", "goals": [{"name", "before",
//! "after"}], "sizes_note"}` (`sizes_note` is null unless some partition
//! sizes are estimates).

use anyhow::Context;
use clap::Subcommand;
use kmon_client::{Admin, RebalancePlan};
use serde::Serialize;

use super::ClientArgs;
use super::status::render_rows;
use super::topic::human_bytes;

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
    }
    Ok(())
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
    let ids = |r: &[i32]| r.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
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
