//! State metrics, computed at scrape time from the broker's own state (no
//! cache to go stale): logs, hosted partitions, the metadata, the groups
//! this broker coordinates.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Labels;
use super::MetricsSource;
use super::filter::NameFilter;
use super::names::*;
use crate::controller::state::NO_LEADER;
use crate::placement::spans_domains;
use crate::replication::partition::Role;

type IntGauges = Family<Labels, Gauge>;
type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// A gauge family written straight to text: the per-partition families
/// have one series per partition (10,000 partitions → 100,000 lines), so
/// they skip the registry's label hashing and allocations.
struct TextGauges {
    name: &'static str,
    help: &'static str,
    lines: String,
    /// Not asked for by this scrape: nothing is written.
    skipped: bool,
}

impl TextGauges {
    fn set(&mut self, labels: &[(&str, &str)], value: i64) {
        use std::fmt::Write;
        if self.skipped {
            return;
        }
        self.lines.push_str(self.name);
        self.lines.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.lines.push(',');
            }
            self.lines.push_str(k);
            self.lines.push_str("=\"");
            escape_label(&mut self.lines, v);
            self.lines.push('"');
        }
        let _ = writeln!(self.lines, "}} {value}");
    }

    fn write_to(&self, out: &mut String) {
        use std::fmt::Write;
        if self.skipped {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}.", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} gauge", self.name);
        out.push_str(&self.lines);
    }
}

/// Label values escaped as the exposition formats require.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A registry built for one scrape, and the metrics it asked for.
struct Scrape<'a> {
    registry: Registry,
    only: Option<&'a NameFilter>,
}

impl Scrape<'_> {
    fn wants_any(&self, families: &[&str]) -> bool {
        self.only.is_none_or(|only| only.wants_any(families))
    }

    /// A per-partition family, written as text (empty if not asked for).
    fn text(&self, name: &'static str, help: &'static str) -> TextGauges {
        TextGauges { name, help, lines: String::new(), skipped: !self.wants_any(&[name]) }
    }

    fn gauge(&mut self, name: &str, help: &str) -> IntGauges {
        let family = IntGauges::default();
        self.registry.register(name, help, family.clone());
        family
    }

    fn float(&mut self, name: &str, help: &str) -> FloatGauges {
        let family = FloatGauges::default();
        self.registry.register(name, help, family.clone());
        family
    }
}

fn l(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// What the active controller exports (it walks every partition for them).
const CONTROLLER_FAMILIES: [&str; 17] = [
    OFFLINE_PARTITIONS,
    GLOBAL_PARTITIONS,
    GLOBAL_TOPICS,
    CLUSTER_BROKERS,
    TOPIC_PARTITIONS,
    PREFERRED_IMBALANCE,
    BALANCE_BROKER_REPLICAS,
    BALANCE_BROKER_LEADERS,
    BALANCE_FD_REPLICAS,
    BALANCE_FD_LEADERS,
    BALANCE_UD_REPLICAS,
    BALANCE_UD_LEADERS,
    BALANCE_REPLICA_SKEW,
    BALANCE_LEADER_SKEW,
    BALANCE_DOMAIN_VIOLATIONS,
    REASSIGNMENT_PARTITIONS_PENDING,
    REASSIGNMENT_THROTTLE,
];

/// Appends the state metrics to `out` (OpenMetrics, without `# EOF`):
/// every one, or those `only` names (the costly per-partition and
/// per-group families are then not even computed).
pub fn encode_state(broker: &dyn MetricsSource, out: &mut String, only: Option<&NameFilter>) {
    let mut s = Scrape { registry: Registry::default(), only };
    let state = broker.metadata();
    let me = broker.broker_id();
    let is_controller = broker.is_controller();

    // --- This broker's replicas and logs.
    let hosted = broker.hosted();
    let (mut leaders, mut under_replicated, mut under_min_isr, mut offline, mut max_lag) = (0, 0, 0, 0, 0i64);
    let mut producers = 0i64;
    for h in &hosted {
        match &*h.role.lock() {
            Role::Leader(st) => {
                leaders += 1;
                producers += h.log.producer_count() as i64;
                if st.is_under_replicated() {
                    under_replicated += 1;
                }
                if (st.isr.len() as u32) < h.log.config().min_insync_replicas {
                    under_min_isr += 1;
                }
            }
            Role::Follower { .. } => max_lag = max_lag.max(h.follower_lag()),
            Role::Offline { .. } => offline += 1,
        }
    }
    s.gauge(PARTITION_COUNT, "Partitions on this broker (ReplicaManager PartitionCount)")
        .get_or_create(&vec![])
        .set(hosted.len() as i64);
    s.gauge(PRODUCER_IDS, "Idempotent producers known to the partitions this broker leads")
        .get_or_create(&vec![])
        .set(producers);
    s.gauge(LEADER_COUNT, "Partitions this broker leads (ReplicaManager LeaderCount)")
        .get_or_create(&vec![])
        .set(leaders);
    s.gauge(UNDER_REPLICATED, "Led partitions whose ISR is smaller than the replica set (UnderReplicatedPartitions)")
        .get_or_create(&vec![])
        .set(under_replicated);
    s.gauge(
        UNDER_MIN_ISR,
        "Led partitions with fewer in-sync replicas than min.insync.replicas (UnderMinIsrPartitionCount)",
    )
    .get_or_create(&vec![])
    .set(under_min_isr);
    s.gauge(OFFLINE_REPLICAS, "Replicas on this broker whose partition has no leader (OfflineReplicaCount)")
        .get_or_create(&vec![])
        .set(offline);
    s.gauge(
        REPLICA_MAX_LAG,
        "Largest lag in records of a follower replica on this broker (ReplicaFetcherManager MaxLag)",
    )
    .get_or_create(&vec![])
    .set(max_lag);
    // Each ratio is taken once per scrape (taking it starts a new window)
    // and exported under both names.
    let (idle, network_idle) = (broker.metrics().idle_ratio(), broker.metrics().network_idle_ratio());
    for name in [REQUEST_HANDLER_IDLE, REQUEST_HANDLER_IDLE_PERCENT] {
        s.float(name, "Share of request-handling capacity idle since the last scrape (RequestHandlerAvgIdlePercent)")
            .get_or_create(&vec![])
            .set(idle);
    }
    for name in [NETWORK_IDLE, NETWORK_IDLE_PERCENT] {
        s.float(
            name,
            "Share of time not spent sending responses since the last scrape (NetworkProcessorAvgIdlePercent)",
        )
        .get_or_create(&vec![])
        .set(network_idle);
    }
    s.gauge(OFFLINE_LOG_DIRS, "Data directories where a log write, flush, cleaning or retention failed with an I/O error since the broker started (LogManager OfflineLogDirectoryCount)")
        .get_or_create(&vec![])
        .set(broker.offline_log_dirs() as i64);
    let mut size = s.text(LOG_SIZE, "Bytes of a partition's log on this broker (Log Size)");
    let mut start = s.text(LOG_START_OFFSET, "Log start offset (Log LogStartOffset)");
    let mut end = s.text(LOG_END_OFFSET, "Log end offset (Log LogEndOffset)");
    let mut my_bytes = 0u64;
    let logs = if s.wants_any(&[LOG_SIZE, LOG_START_OFFSET, LOG_END_OFFSET, BALANCE_BROKER_BYTES]) {
        broker.logs()
    } else {
        Vec::new()
    };
    for log in logs {
        let p = log.partition.to_string();
        let labels = [("topic", log.topic.as_str()), ("partition", p.as_str())];
        let bytes = log.size_bytes();
        my_bytes += bytes;
        size.set(&labels, bytes as i64);
        start.set(&labels, log.log_start_offset());
        end.set(&labels, log.log_end_offset());
    }
    let mut text_families = vec![size, start, end];

    // --- This broker.
    let info = broker.info();
    s.gauge(BROKER_INFO, "1 for this broker, labelled with its fault and update domains and advertised gRPC address")
        .get_or_create(&l(&[
            ("broker", &me.to_string()),
            ("fault_domain", &info.fault_domain),
            ("update_domain", &info.update_domain),
            ("address", &info.address),
        ]))
        .set(1);
    s.float(PROCESS_START_TIME, "Start time of the broker process since the Unix epoch, seconds")
        .get_or_create(&vec![])
        .set(super::process_start_time_seconds());

    // --- Metadata quorum, as seen by this broker.
    let raft = broker.raft_status();
    s.gauge(
        ACTIVE_CONTROLLER,
        "1 on the active controller, 0 elsewhere: the cluster-wide sum must be 1 (ActiveControllerCount)",
    )
    .get_or_create(&vec![])
    .set(i64::from(is_controller));
    s.gauge(RAFT_LEADER, "Metadata quorum leader id, -1 when none (RaftMetrics current-leader)")
        .get_or_create(&vec![])
        .set(i64::from(raft.leader.unwrap_or(-1)));
    s.gauge(RAFT_EPOCH, "Metadata quorum term (RaftMetrics current-epoch)")
        .get_or_create(&vec![])
        .set(raft.term as i64);
    s.gauge(RAFT_HIGH_WATERMARK, "Committed index of the metadata log (RaftMetrics high-watermark)")
        .get_or_create(&vec![])
        .set(raft.committed_index.map_or(-1, |i| i as i64));
    s.gauge(RAFT_LOG_END, "Last index of the metadata log on this broker (RaftMetrics log-end-offset)")
        .get_or_create(&vec![])
        .set(raft.last_log_index.map_or(-1, |i| i as i64));
    s.gauge(RAFT_APPLIED, "Metadata log index applied to this broker's copy")
        .get_or_create(&vec![])
        .set(raft.applied_index.map_or(-1, |i| i as i64));
    let elections = Counter::<u64>::default();
    elections.inc_by(raft.elections);
    s.registry.register(RAFT_ELECTIONS, "Leader changes of the metadata quorum seen by this broker", elections);
    let state_name = raft.role.kafka_name();
    s.gauge(RAFT_STATE, "1 on the series of this member's quorum state (RaftMetrics current-state)")
        .get_or_create(&l(&[("state", state_name), ("current_state", state_name)]))
        .set(1);
    s.gauge(RAFT_VOTE, "Member this one voted for in the current term, -1 when none (RaftMetrics current-vote)")
        .get_or_create(&vec![])
        .set(i64::from(raft.vote.unwrap_or(-1)));
    s.float(
        RAFT_COMMIT_LATENCY_AVG,
        "Mean time for a metadata command proposed here as leader to commit and apply, ms, over the last 30 to 60 s; NaN when none (RaftMetrics commit-latency-avg)",
    )
    .get_or_create(&vec![])
    .set(raft.commit_latency_avg.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0));
    let leader_elections = Counter::<u64>::default();
    leader_elections.inc_by(raft.leader_elections.all);
    s.registry.register(
        LEADER_ELECTIONS,
        "Partition leader elections decided by this broker as active controller (ControllerStats LeaderElectionRateAndTimeMs)",
        leader_elections,
    );
    let unclean = Counter::<u64>::default();
    unclean.inc_by(raft.leader_elections.unclean);
    s.registry.register(
        UNCLEAN_LEADER_ELECTIONS,
        "Of those, leaders elected from outside the ISR, with unclean.leader.election.enable (ControllerStats UncleanLeaderElectionsPerSec)",
        unclean,
    );

    let me_record = state.brokers.get(&me);
    let (my_fd, my_ud) = me_record.map_or(("", ""), |b| (b.fault_domain.as_str(), b.update_domain.as_str()));
    s.gauge(BALANCE_BROKER_BYTES, "Bytes of log on each broker (each broker reports itself)")
        .get_or_create(&l(&[("broker", &me.to_string()), ("fault_domain", my_fd), ("update_domain", my_ud)]))
        .set(my_bytes as i64);

    // --- Partitions this broker leads (kafka_exporter names).
    let mut current = s.text(PARTITION_CURRENT_OFFSET, "High watermark of a partition (its leader exports it)");
    let mut oldest = s.text(PARTITION_OLDEST_OFFSET, "Log start offset of a partition");
    let mut in_sync = s.text(PARTITION_IN_SYNC, "In-sync replicas of a partition");
    let mut replicas = s.text(PARTITION_REPLICAS, "Replicas of a partition");
    let mut leader_g = s.text(PARTITION_LEADER, "Leader broker id of a partition");
    let mut under_g = s.text(PARTITION_UNDER_REPLICATED, "1 when a partition's ISR is smaller than its replica set");
    let mut preferred_g =
        s.text(PARTITION_LEADER_PREFERRED, "1 when a partition is led by its preferred (first) replica");
    let mut under_min_isr_g = s.text(
        PARTITION_UNDER_MIN_ISR,
        "1 when a partition's ISR is smaller than min.insync.replicas (Partition UnderMinIsr)",
    );
    let mut at_min_isr_g =
        s.text(PARTITION_AT_MIN_ISR, "1 when a partition's ISR is exactly min.insync.replicas (Partition AtMinIsr)");
    let mut replicas_count_g = s.text(PARTITION_REPLICAS_COUNT, "Replicas of a partition (Partition ReplicasCount)");
    let families = [
        &current,
        &oldest,
        &in_sync,
        &replicas,
        &leader_g,
        &under_g,
        &preferred_g,
        &under_min_isr_g,
        &at_min_isr_g,
        &replicas_count_g,
    ];
    let led = if families.iter().all(|f| f.skipped) { &[][..] } else { &hosted[..] };
    for h in led {
        let Role::Leader(st) = &*h.role.lock() else { continue };
        let p = h.partition.to_string();
        let labels = [("topic", h.topic.as_str()), ("partition", p.as_str())];
        current.set(&labels, h.log.high_watermark());
        oldest.set(&labels, h.log.log_start_offset());
        in_sync.set(&labels, st.isr.len() as i64);
        replicas.set(&labels, st.replicas.len() as i64);
        leader_g.set(&labels, i64::from(me));
        under_g.set(&labels, i64::from(st.is_under_replicated()));
        preferred_g.set(&labels, i64::from(st.replicas.first() == Some(&me)));
        let (isr, min_isr) = (st.isr.len() as u64, u64::from(h.log.config().min_insync_replicas));
        under_min_isr_g.set(&labels, i64::from(isr < min_isr));
        at_min_isr_g.set(&labels, i64::from(isr == min_isr));
        replicas_count_g.set(&labels, st.replicas.len() as i64);
    }
    text_families.extend([
        current,
        oldest,
        in_sync,
        replicas,
        leader_g,
        under_g,
        preferred_g,
        under_min_isr_g,
        at_min_isr_g,
        replicas_count_g,
    ]);

    // --- Cluster-wide figures: the active controller only.
    if is_controller && s.wants_any(&CONTROLLER_FAMILIES) {
        let counts = state.partition_counts();
        s.gauge(OFFLINE_PARTITIONS, "Partitions without a leader (KafkaController OfflinePartitionsCount)")
            .get_or_create(&vec![])
            .set(counts.offline as i64);
        s.gauge(GLOBAL_PARTITIONS, "Partitions in the cluster (GlobalPartitionCount)")
            .get_or_create(&vec![])
            .set(counts.partitions as i64);
        s.gauge(GLOBAL_TOPICS, "Topics in the cluster (GlobalTopicCount)")
            .get_or_create(&vec![])
            .set(state.topics.len() as i64);
        let brokers = s.gauge(CLUSTER_BROKERS, "Registered brokers by state");
        let alive = state.brokers.values().filter(|b| !b.fenced).count();
        brokers.get_or_create(&l(&[("state", "alive")])).set(alive as i64);
        brokers.get_or_create(&l(&[("state", "fenced")])).set((state.brokers.len() - alive) as i64);
        let topic_partitions = s.gauge(TOPIC_PARTITIONS, "Partitions of a topic");
        let mut imbalance = 0;
        let mut replicas_of: BTreeMap<i32, i64> = state.brokers.keys().map(|b| (*b, 0)).collect();
        let mut leaders_of: BTreeMap<i32, i64> = replicas_of.clone();
        let mut violations = 0;
        let domain_of: BTreeMap<i32, (&str, &str)> =
            state.brokers.values().map(|b| (b.id, (b.fault_domain.as_str(), b.update_domain.as_str()))).collect();
        let fds = state.brokers.values().map(|b| b.fault_domain.as_str()).collect::<BTreeSet<_>>().len();
        let uds = state.brokers.values().map(|b| b.update_domain.as_str()).collect::<BTreeSet<_>>().len();
        for (name, topic) in &state.topics {
            topic_partitions.get_or_create(&l(&[("topic", name)])).set(topic.partitions.len() as i64);
            for p in &topic.partitions {
                if p.leader != NO_LEADER && p.replicas.first() != Some(&p.leader) {
                    imbalance += 1;
                }
                for r in &p.replicas {
                    *replicas_of.entry(*r).or_default() += 1;
                }
                if p.leader != NO_LEADER {
                    *leaders_of.entry(p.leader).or_default() += 1;
                }
                // A moving partition is judged by where it is going.
                let assigned = p.reassignment.as_ref().map_or(&p.replicas, |r| &r.target);
                if !spans_domains(assigned, &domain_of, fds, uds) {
                    violations += 1;
                }
            }
        }
        s.gauge(PREFERRED_IMBALANCE, "Partitions not led by their preferred replica (PreferredReplicaImbalanceCount)")
            .get_or_create(&vec![])
            .set(imbalance);
        let broker_replicas = s.gauge(BALANCE_BROKER_REPLICAS, "Replicas assigned to each broker");
        let broker_leaders = s.gauge(BALANCE_BROKER_LEADERS, "Partitions led by each broker");
        let mut fd_replicas: BTreeMap<&str, i64> = BTreeMap::new();
        let mut fd_leaders: BTreeMap<&str, i64> = BTreeMap::new();
        let mut ud_replicas: BTreeMap<&str, i64> = BTreeMap::new();
        let mut ud_leaders: BTreeMap<&str, i64> = BTreeMap::new();
        for b in state.brokers.values() {
            let labels = l(&[
                ("broker", &b.id.to_string()),
                ("fault_domain", &b.fault_domain),
                ("update_domain", &b.update_domain),
            ]);
            let (r, ld) = (replicas_of[&b.id], leaders_of[&b.id]);
            broker_replicas.get_or_create(&labels).set(r);
            broker_leaders.get_or_create(&labels).set(ld);
            *fd_replicas.entry(&b.fault_domain).or_default() += r;
            *fd_leaders.entry(&b.fault_domain).or_default() += ld;
            *ud_replicas.entry(&b.update_domain).or_default() += r;
            *ud_leaders.entry(&b.update_domain).or_default() += ld;
        }
        for (name, help, map, label) in [
            (BALANCE_FD_REPLICAS, "Replicas per fault domain", &fd_replicas, "fault_domain"),
            (BALANCE_FD_LEADERS, "Leaders per fault domain", &fd_leaders, "fault_domain"),
            (BALANCE_UD_REPLICAS, "Replicas per update domain", &ud_replicas, "update_domain"),
            (BALANCE_UD_LEADERS, "Leaders per update domain", &ud_leaders, "update_domain"),
        ] {
            let family = s.gauge(name, help);
            for (domain, v) in map {
                family.get_or_create(&l(&[(label, domain)])).set(*v);
            }
        }
        let skew = |values: Vec<i64>| {
            let n = values.len() as f64;
            let total: i64 = values.iter().sum();
            if n == 0.0 || total == 0 {
                return 1.0;
            }
            *values.iter().max().unwrap_or(&0) as f64 / (total as f64 / n)
        };
        s.float(BALANCE_REPLICA_SKEW, "Replicas on the fullest broker ÷ the mean (1 is perfect balance)")
            .get_or_create(&vec![])
            .set(skew(replicas_of.values().copied().collect()));
        s.float(BALANCE_LEADER_SKEW, "Leaders on the busiest broker ÷ the mean (1 is perfect balance)")
            .get_or_create(&vec![])
            .set(skew(leaders_of.values().copied().collect()));
        s.gauge(
            BALANCE_DOMAIN_VIOLATIONS,
            "Partitions whose replicas do not span min(#FD, RF) fault and min(#UD, RF) update domains",
        )
        .get_or_create(&vec![])
        .set(violations);
        let pending = state.pending_reassignments().count();
        s.gauge(REASSIGNMENT_PARTITIONS_PENDING, "Partitions a reassignment is still moving")
            .get_or_create(&vec![])
            .set(pending as i64);
        let throttle = state.reassignment.as_ref().and_then(|r| r.throttle_bytes_per_sec).unwrap_or(0);
        s.gauge(REASSIGNMENT_THROTTLE, "Replication throttle of the running reassignment, bytes/s (0: none)")
            .get_or_create(&vec![])
            .set(throttle as i64);
    }
    let bytes_left: u64 =
        if s.wants_any(&[REASSIGNMENT_BYTES_LEFT]) { hosted.iter().map(|h| h.bytes_left_to_copy()).sum() } else { 0 };
    s.gauge(
        REASSIGNMENT_BYTES_LEFT,
        "Bytes the new replicas of partitions this broker leads still have to copy (estimate)",
    )
    .get_or_create(&vec![])
    .set(bytes_left as i64);

    // --- Consumer groups this broker coordinates.
    let current_offset = s.gauge(GROUP_CURRENT_OFFSET, "Committed offset of a group on a partition");
    let lag = s.gauge(GROUP_LAG, "High watermark minus committed offset");
    let lag_sum = s.gauge(GROUP_LAG_SUM, "Lag of a group summed over a topic's partitions");
    let members = s.gauge(GROUP_MEMBERS, "Members of a group");
    let part_status =
        s.gauge(GROUP_PARTITION_STATUS, "Lag status of a partition: 0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP");
    let group_status = s.gauge(GROUP_STATUS, "Lag status of a group: 0 OK, 1 WARN, 2 ERR");
    let group_families =
        [GROUP_CURRENT_OFFSET, GROUP_LAG, GROUP_LAG_SUM, GROUP_MEMBERS, GROUP_PARTITION_STATUS, GROUP_STATUS];
    let views = if s.wants_any(&group_families) { broker.groups() } else { Vec::new() };
    for view in views {
        let g = view.group_id.as_str();
        members.get_or_create(&l(&[("consumergroup", g)])).set(view.members.len() as i64);
        group_status.get_or_create(&l(&[("consumergroup", g)])).set(view.status as i64);
        let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
        for p in &view.partitions {
            let part = p.partition.to_string();
            let labels = l(&[("consumergroup", g), ("topic", &p.topic), ("partition", &part)]);
            current_offset.get_or_create(&labels).set(p.committed_offset);
            lag.get_or_create(&labels).set(p.lag);
            part_status.get_or_create(&labels).set(p.status.code());
            *sums.entry(&p.topic).or_default() += p.lag;
        }
        for (topic, sum) in sums {
            lag_sum.get_or_create(&l(&[("consumergroup", g), ("topic", topic)])).set(sum);
        }
    }

    encode(out, &s.registry).expect("encoding to a String cannot fail");
    super::strip_eof(out);
    for family in &text_families {
        family.write_to(out);
    }
}
