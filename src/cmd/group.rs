//! `kmon group list|describe|reset-offsets|delete`: consumer groups.
//!
//! `describe --json` prints a stable document for scripts (field order is
//! the output order; a partition without a committed offset has
//! `committed_offset` -1, an unowned one `owner` ""):
//! `{"group", "state", "status", "members": [{"member_id", "client_id",
//! "host", "assignment": [{"topic", "partition"}]}], "partitions":
//! [{"topic", "partition", "committed_offset", "high_watermark", "lag",
//! "status", "owner"}]}`.
//!
//! `reset-offsets` is a dry run unless `--execute`: it prints the plan
//! (current → new offset per partition). The coordinator refuses the
//! change while the group has live members (NON_EMPTY_GROUP).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::Subcommand;
use kmon_client::{Admin, ClientError, ErrorCode, GroupDescription, GroupListing, OffsetSpec, TopicPartition};
use serde::Serialize;

use super::ClientArgs;
use super::format::render_rows;

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// List the consumer groups of the cluster.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a group's state, members and per-partition offsets and lag.
    Describe {
        group: String,
        /// Print the stable JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Move a group's committed offsets on a topic (a dry run unless
    /// --execute; refused while the group has live members).
    ResetOffsets(ResetArgs),
    /// Delete an empty group and its committed offsets.
    Delete { group: String },
}

#[derive(Debug, clap::Args)]
pub(crate) struct ResetArgs {
    group: String,
    /// Topic whose partitions are reset (all of them).
    #[arg(long)]
    topic: String,
    #[command(flatten)]
    target: ResetTarget,
    /// Apply the plan (default: only print it).
    #[arg(long)]
    execute: bool,
}

/// Where to move the offsets: exactly one.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct ResetTarget {
    /// The log start offset of each partition.
    #[arg(long)]
    to_earliest: bool,
    /// The log end offset of each partition.
    #[arg(long)]
    to_latest: bool,
    /// This offset in every partition (clamped to each partition's range).
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// The first offset with a timestamp at or after this RFC 3339 time,
    /// e.g. 2026-11-25T10:00:00Z (the log end where none is).
    #[arg(long, value_name = "TIME", value_parser = parse_datetime_ms)]
    to_datetime: Option<i64>,
}

pub(crate) async fn run(client: ClientArgs, command: GroupCommand) -> anyhow::Result<()> {
    let admin = Admin::connect(&client.bootstrap).await?;
    match command {
        GroupCommand::List { json } => {
            let groups = admin.list_groups().await.context("cannot list groups")?;
            if json {
                let listed: Vec<ListingJson> = groups.iter().map(ListingJson::from).collect();
                println!("{}", serde_json::to_string_pretty(&listed)?);
            } else if !groups.is_empty() {
                print!("{}", render_listing(&groups));
            }
        }
        GroupCommand::Describe { group, json } => {
            let description = admin.describe_group(&group).await.map_err(|err| group_error(&group, err))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&GroupJson::from(&description))?);
            } else {
                print!("{}", render_description(&description));
            }
        }
        GroupCommand::ResetOffsets(args) => reset_offsets(&admin, args).await?,
        GroupCommand::Delete { group } => {
            admin.delete_group(&group).await.map_err(|err| group_error(&group, err))?;
            println!("deleted group {group}");
        }
    }
    Ok(())
}

/// A clear message for the group errors an operator meets.
fn group_error(group: &str, err: ClientError) -> anyhow::Error {
    let reason = match err.code() {
        Some(ErrorCode::GroupIdNotFound) => format!("no consumer group named {group:?}"),
        Some(ErrorCode::NonEmptyGroup) => {
            format!("group {group:?} has live members (NON_EMPTY_GROUP): stop its consumers first ({err})")
        }
        _ => return anyhow::Error::new(err).context(format!("group {group:?}")),
    };
    anyhow::anyhow!(reason)
}

async fn reset_offsets(admin: &Admin, args: ResetArgs) -> anyhow::Result<()> {
    let ResetArgs { group, topic, target, execute } = args;
    let description = admin.describe_topic(&topic).await.with_context(|| format!("cannot read topic {topic:?}"))?;
    let partitions: Vec<TopicPartition> =
        description.partitions.iter().map(|p| TopicPartition::new(topic.clone(), p.partition)).collect();
    let current: BTreeMap<u32, i64> = admin
        .fetch_offsets(&group, &partitions)
        .await
        .map_err(|err| group_error(&group, err))?
        .into_iter()
        .filter(|c| c.topic == topic)
        .filter_map(|c| c.offset.map(|offset| (c.partition, offset)))
        .collect();
    let offsets = |spec: OffsetSpec| {
        let request: Vec<(&str, u32, OffsetSpec)> =
            partitions.iter().map(|tp| (tp.topic.as_str(), tp.partition, spec)).collect();
        async move {
            admin.list_offsets(&request).await.map(|resolved| {
                resolved.into_iter().map(|o| (o.partition, o.offset)).collect::<BTreeMap<u32, Option<i64>>>()
            })
        }
    };
    let earliest = offsets(OffsetSpec::Earliest).await?;
    let latest = offsets(OffsetSpec::Latest).await?;
    let by_time = match target.to_datetime {
        Some(ms) => Some(offsets(OffsetSpec::Timestamp(ms)).await?),
        None => None,
    };
    let mut plan = Vec::new();
    for tp in &partitions {
        let low = earliest.get(&tp.partition).copied().flatten().unwrap_or(0);
        let high = latest.get(&tp.partition).copied().flatten().unwrap_or(0);
        let new = if target.to_earliest {
            low
        } else if target.to_latest {
            high
        } else if let Some(offset) = target.to_offset {
            offset.clamp(low, high.max(low))
        } else {
            by_time.as_ref().and_then(|found| found.get(&tp.partition).copied().flatten()).unwrap_or(high)
        };
        plan.push(PlanRow { partition: tp.partition, current: current.get(&tp.partition).copied(), new });
    }

    let members = match admin.describe_group(&group).await {
        Ok(description) => description.members.len(),
        Err(err) if err.code() == Some(ErrorCode::GroupIdNotFound) => 0,
        Err(err) => return Err(group_error(&group, err)),
    };
    print!("{}", render_plan(&group, &topic, &plan));
    if !execute {
        if members > 0 {
            println!(
                "\nwarning: group {group} has {members} live member(s): --execute will be refused until they stop"
            );
        }
        println!("\ndry run: nothing changed (add --execute to apply)");
        return Ok(());
    }
    let offsets: BTreeMap<TopicPartition, i64> =
        plan.iter().map(|row| (TopicPartition::new(topic.clone(), row.partition), row.new)).collect();
    match admin.reset_offsets(&group, &offsets).await {
        Ok(()) => {
            println!("\nreset the offsets of group {group} on {} partition(s) of {topic}", plan.len());
            Ok(())
        }
        Err(err) if err.code() == Some(ErrorCode::NonEmptyGroup) => {
            bail!("refused: group {group:?} has live members (NON_EMPTY_GROUP): {err}")
        }
        Err(err) => Err(group_error(&group, err)),
    }
}

/// One partition of a reset plan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlanRow {
    partition: u32,
    current: Option<i64>,
    new: i64,
}

fn render_plan(group: &str, topic: &str, plan: &[PlanRow]) -> String {
    let mut rows = vec![[
        "GROUP".to_owned(),
        "TOPIC".to_owned(),
        "PARTITION".to_owned(),
        "CURRENT-OFFSET".to_owned(),
        "NEW-OFFSET".to_owned(),
    ]];
    for row in plan {
        rows.push([
            group.to_owned(),
            topic.to_owned(),
            row.partition.to_string(),
            row.current.map_or_else(|| "-".to_owned(), |offset| offset.to_string()),
            row.new.to_string(),
        ]);
    }
    render_rows(&rows)
}

/// Milliseconds since the Unix epoch of an RFC 3339 time (`Z` or a
/// `±HH:MM` offset; fractional seconds allowed).
fn parse_datetime_ms(text: &str) -> Result<i64, String> {
    let invalid = || format!("expected an RFC 3339 time like 2026-11-25T10:00:00Z, got {text:?}");
    let (base, offset_seconds) = if let Some(base) = text.strip_suffix(['Z', 'z']) {
        (base, 0i64)
    } else {
        let split = text.len().checked_sub(6).filter(|&i| text.is_char_boundary(i)).ok_or_else(invalid)?;
        let (base, offset) = text.split_at(split);
        let sign = match offset.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(invalid()),
        };
        let (hours, minutes) = offset[1..].split_once(':').ok_or_else(invalid)?;
        let hours: i64 = hours.parse().map_err(|_| invalid())?;
        let minutes: i64 = minutes.parse().map_err(|_| invalid())?;
        (base, sign * (hours * 3600 + minutes * 60))
    };
    if !base.contains('T') && !base.contains('t') {
        return Err(invalid());
    }
    let time = humantime::parse_rfc3339_weak(base).map_err(|_| invalid())?;
    let since_epoch = time.duration_since(std::time::UNIX_EPOCH).map_err(|_| invalid())?;
    Ok(since_epoch.as_millis() as i64 - offset_seconds * 1000)
}

/// `group list --json`.
#[derive(Debug, Serialize)]
struct ListingJson<'a> {
    group: &'a str,
    state: &'a str,
    members: u32,
    status: &'a str,
    coordinator_id: i32,
    protocol_type: &'a str,
}

impl<'a> From<&'a GroupListing> for ListingJson<'a> {
    fn from(g: &'a GroupListing) -> Self {
        ListingJson {
            group: &g.group_id,
            state: &g.state,
            members: g.members,
            status: &g.status,
            coordinator_id: g.coordinator_id,
            protocol_type: &g.protocol_type,
        }
    }
}

/// `group describe --json`: see the module docs; field order is the output
/// order.
#[derive(Debug, Serialize)]
struct GroupJson<'a> {
    group: &'a str,
    state: &'a str,
    status: &'a str,
    members: Vec<MemberJson<'a>>,
    partitions: Vec<PartitionJson<'a>>,
}

#[derive(Debug, Serialize)]
struct MemberJson<'a> {
    member_id: &'a str,
    client_id: &'a str,
    host: &'a str,
    assignment: Vec<TopicPartitionJson<'a>>,
}

#[derive(Debug, Serialize)]
struct TopicPartitionJson<'a> {
    topic: &'a str,
    partition: u32,
}

#[derive(Debug, Serialize)]
struct PartitionJson<'a> {
    topic: &'a str,
    partition: u32,
    /// -1 when nothing was committed.
    committed_offset: i64,
    high_watermark: i64,
    lag: i64,
    status: &'a str,
    /// "" when unowned.
    owner: &'a str,
}

impl<'a> From<&'a GroupDescription> for GroupJson<'a> {
    fn from(g: &'a GroupDescription) -> Self {
        GroupJson {
            group: &g.group_id,
            state: &g.state,
            status: &g.status,
            members: g
                .members
                .iter()
                .map(|m| MemberJson {
                    member_id: &m.member_id,
                    client_id: &m.client_id,
                    host: &m.host,
                    assignment: m
                        .assignment
                        .iter()
                        .map(|tp| TopicPartitionJson { topic: &tp.topic, partition: tp.partition })
                        .collect(),
                })
                .collect(),
            partitions: g
                .partitions
                .iter()
                .map(|p| PartitionJson {
                    topic: &p.topic,
                    partition: p.partition,
                    committed_offset: p.committed_offset.unwrap_or(-1),
                    high_watermark: p.high_watermark,
                    lag: p.lag,
                    status: &p.status,
                    owner: p.owner.as_deref().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

fn render_listing(groups: &[GroupListing]) -> String {
    let mut rows = vec![[
        "GROUP".to_owned(),
        "STATE".to_owned(),
        "MEMBERS".to_owned(),
        "STATUS".to_owned(),
        "COORDINATOR".to_owned(),
    ]];
    for g in groups {
        rows.push([
            g.group_id.clone(),
            g.state.clone(),
            g.members.to_string(),
            g.status.clone(),
            g.coordinator_id.to_string(),
        ]);
    }
    render_rows(&rows)
}

fn render_description(g: &GroupDescription) -> String {
    let dash = |text: &str| if text.is_empty() { "-".to_owned() } else { text.to_owned() };
    let mut out = format!(
        "Group: {}  State: {}  Protocol: {}  Status: {}  Generation: {}  Coordinator: {}\n",
        g.group_id,
        g.state,
        dash(&g.protocol),
        dash(&g.status),
        g.generation_id,
        g.coordinator_id
    );
    if !g.partitions.is_empty() {
        let mut rows = vec![[
            "TOPIC".to_owned(),
            "PARTITION".to_owned(),
            "COMMITTED".to_owned(),
            "LOG-END".to_owned(),
            "HIGH-WATERMARK".to_owned(),
            "LAG".to_owned(),
            "STATUS".to_owned(),
            "OWNER".to_owned(),
        ]];
        for p in &g.partitions {
            rows.push([
                p.topic.clone(),
                p.partition.to_string(),
                p.committed_offset.map_or_else(|| "-".to_owned(), |o| o.to_string()),
                p.log_end_offset.to_string(),
                p.high_watermark.to_string(),
                p.lag.to_string(),
                dash(&p.status),
                p.owner.clone().unwrap_or_else(|| "-".to_owned()),
            ]);
        }
        out.push('\n');
        out.push_str(&render_rows(&rows));
    }
    if !g.members.is_empty() {
        let mut rows = vec![[
            "MEMBER-ID".to_owned(),
            "INSTANCE-ID".to_owned(),
            "CLIENT-ID".to_owned(),
            "HOST".to_owned(),
            "ASSIGNMENT".to_owned(),
        ]];
        for m in &g.members {
            let assignment: Vec<String> = m.assignment.iter().map(ToString::to_string).collect();
            rows.push([
                m.member_id.clone(),
                m.group_instance_id.clone().unwrap_or_else(|| "-".to_owned()),
                m.client_id.clone(),
                m.host.clone(),
                if assignment.is_empty() { "-".to_owned() } else { assignment.join(",") },
            ]);
        }
        out.push('\n');
        out.push_str(&render_rows(&rows));
    } else {
        out.push_str("\nno active members\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use kmon_client::{GroupMemberDescription, PartitionLag};

    use super::*;

    fn description() -> GroupDescription {
        GroupDescription {
            group_id: "g".into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            status: "OK".into(),
            generation_id: 3,
            coordinator_id: 2,
            members: vec![GroupMemberDescription {
                member_id: "m-1".into(),
                group_instance_id: None,
                client_id: "kmon-consume".into(),
                host: "127.0.0.1".into(),
                assignment: vec![TopicPartition::new("t", 0)],
            }],
            partitions: vec![
                PartitionLag {
                    topic: "t".into(),
                    partition: 0,
                    committed_offset: Some(5),
                    log_end_offset: 9,
                    high_watermark: 9,
                    lag: 4,
                    status: "OK".into(),
                    owner: Some("m-1".into()),
                },
                PartitionLag {
                    topic: "t".into(),
                    partition: 1,
                    committed_offset: None,
                    log_end_offset: 2,
                    high_watermark: 2,
                    lag: 2,
                    status: "STOP".into(),
                    owner: None,
                },
            ],
        }
    }

    #[test]
    fn describe_json_is_the_stable_document() {
        let text = serde_json::to_string(&GroupJson::from(&description())).unwrap();
        assert_eq!(
            text,
            r#"{"group":"g","state":"Stable","status":"OK","members":[{"member_id":"m-1","client_id":"kmon-consume","host":"127.0.0.1","assignment":[{"topic":"t","partition":0}]}],"partitions":[{"topic":"t","partition":0,"committed_offset":5,"high_watermark":9,"lag":4,"status":"OK","owner":"m-1"},{"topic":"t","partition":1,"committed_offset":-1,"high_watermark":2,"lag":2,"status":"STOP","owner":""}]}"#
        );
    }

    #[test]
    fn describe_text_has_partitions_and_members() {
        let text = render_description(&description());
        assert!(text.contains("Group: g  State: Stable  Protocol: range  Status: OK"), "{text}");
        assert!(text.contains("HIGH-WATERMARK"), "{text}");
        assert!(text.contains("STOP"), "{text}");
        assert!(text.contains("t-0"), "{text}");
    }

    #[test]
    fn datetimes_are_rfc3339() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(parse_datetime_ms("2026-11-25T10:00:00Z").unwrap(), 1_795_600_800_000);
        assert_eq!(parse_datetime_ms("2026-11-25T11:00:00+01:00").unwrap(), 1_795_600_800_000);
        assert_eq!(parse_datetime_ms("2026-11-25T09:30:00-00:30").unwrap(), 1_795_600_800_000);
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00.250Z").unwrap(), 250);
        assert!(parse_datetime_ms("yesterday").is_err());
        assert!(parse_datetime_ms("2026-11-25").is_err());
    }

    #[test]
    fn plan_shows_current_and_new() {
        let plan =
            [PlanRow { partition: 0, current: Some(3), new: 0 }, PlanRow { partition: 1, current: None, new: 7 }];
        let text = render_plan("g", "t", &plan);
        assert!(text.contains("CURRENT-OFFSET"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].split_whitespace().eq(["g", "t", "0", "3", "0"]), "{text}");
        assert!(lines[2].split_whitespace().eq(["g", "t", "1", "-", "7"]), "{text}");
    }
}
