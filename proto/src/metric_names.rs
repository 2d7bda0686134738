//! Every metric name kmon exports, shared by what exports them (broker,
//! agent) and what reads them (TUI, `kmon report`, tests). The dashboards
//! and alert rules in `dashboards/` use exactly these (see
//! `dashboards/METRICS.md`).
//!
//! - [`broker`]: a broker's `/metrics`, as registered (counters get
//!   `_total` when exposed: the `*_TOTAL` constants).
//! - [`node`]: a node agent's host figures, node_exporter's names as exposed.
//! - [`cluster`]: the cluster sample an agent ships (`kmon_cluster_*`).

/// A counter's registered name and its exposed name (with `_total`).
macro_rules! counter {
    ($name:ident, $exposed:ident, $value:literal) => {
        pub const $name: &str = $value;
        /// As exposed: counters get `_total`.
        pub const $exposed: &str = concat!($value, "_total");
    };
}

/// A broker's `/metrics`.
pub mod broker {
    // BrokerTopicMetrics (JMX exporter names; counters get `_total`).
    counter!(MESSAGES_IN, MESSAGES_IN_TOTAL, "kafka_server_brokertopicmetrics_messagesin");
    counter!(BYTES_IN, BYTES_IN_TOTAL, "kafka_server_brokertopicmetrics_bytesin");
    counter!(BYTES_OUT, BYTES_OUT_TOTAL, "kafka_server_brokertopicmetrics_bytesout");
    pub const FAILED_PRODUCE: &str = "kafka_server_brokertopicmetrics_failedproducerequests";
    pub const FAILED_FETCH: &str = "kafka_server_brokertopicmetrics_failedfetchrequests";
    pub const TOTAL_PRODUCE: &str = "kafka_server_brokertopicmetrics_totalproducerequests";
    pub const TOTAL_FETCH: &str = "kafka_server_brokertopicmetrics_totalfetchrequests";
    pub const REPLICATION_BYTES_IN: &str = "kafka_server_brokertopicmetrics_replicationbytesin";
    pub const REPLICATION_BYTES_OUT: &str = "kafka_server_brokertopicmetrics_replicationbytesout";

    // RequestMetrics.
    pub const REQUESTS: &str = "kafka_network_requestmetrics_requests";
    pub const TOTAL_TIME_MS: &str = "kafka_network_requestmetrics_totaltimems";
    pub const LOCAL_TIME_MS: &str = "kafka_network_requestmetrics_localtimems";
    pub const REMOTE_TIME_MS: &str = "kafka_network_requestmetrics_remotetimems";
    pub const QUEUE_TIME_MS: &str = "kafka_network_requestmetrics_requestqueuetimems";
    pub const RESPONSE_SEND_TIME_MS: &str = "kafka_network_requestmetrics_responsesendtimems";
    pub const REQUEST_HANDLER_IDLE: &str = "kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent";
    /// Open client connections per listener (socket-server-metrics connection-count).
    pub const CONNECTION_COUNT: &str = "kafka_server_socket_server_metrics_connection_count";
    pub const NETWORK_IDLE: &str = "kafka_network_socketserver_networkprocessoravgidlepercent";
    /// [`REQUEST_HANDLER_IDLE`] under the name Strimzi's dashboards query
    /// (its JMX rules split `...AvgIdlePercent` into `avgidle_percent`).
    pub const REQUEST_HANDLER_IDLE_PERCENT: &str = "kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent";
    /// [`NETWORK_IDLE`] under the name Strimzi's dashboards query.
    pub const NETWORK_IDLE_PERCENT: &str = "kafka_network_socketserver_networkprocessoravgidle_percent";

    // The broker itself.
    /// 1, labelled `broker`, `fault_domain`, `update_domain`, `address`
    /// (kafka_exporter's `kafka_broker_info`, with kmon's domains).
    pub const BROKER_INFO: &str = "kafka_broker_info";
    /// Unix time the broker process started, seconds (Prometheus' standard process metric).
    pub const PROCESS_START_TIME: &str = "process_start_time_seconds";
    /// Unix time the certificate a TLS listener presents expires (its
    /// notAfter), labelled `listener`, `subject`.
    pub const TLS_CERTIFICATE_EXPIRY: &str = "kmon_tls_certificate_expiry_timestamp_seconds";
    /// Requests refused by the ACLs, labelled `principal`, `resource_type`
    /// (`topic`, `group`, `cluster`); the registry adds `_total`.
    pub const AUTHORIZER_DENIED: &str = "kmon_authorizer_denied";
    /// SASL authentications on the Kafka listener that failed / succeeded
    /// (Kafka's socket-server-metrics `failed-authentication-total`,
    /// `successful-authentication-total`); the registry adds `_total`.
    pub const FAILED_AUTHENTICATION: &str = "kafka_server_socket_server_metrics_failed_authentication";
    pub const SUCCESSFUL_AUTHENTICATION: &str = "kafka_server_socket_server_metrics_successful_authentication";

    // ReplicaManager and fetchers.
    pub const PARTITION_COUNT: &str = "kafka_server_replicamanager_partitioncount";
    pub const LEADER_COUNT: &str = "kafka_server_replicamanager_leadercount";
    pub const UNDER_REPLICATED: &str = "kafka_server_replicamanager_underreplicatedpartitions";
    pub const UNDER_MIN_ISR: &str = "kafka_server_replicamanager_underminisrpartitioncount";
    pub const OFFLINE_REPLICAS: &str = "kafka_server_replicamanager_offlinereplicacount";
    pub const ISR_SHRINKS: &str = "kafka_server_replicamanager_isrshrinks";
    pub const ISR_EXPANDS: &str = "kafka_server_replicamanager_isrexpands";
    pub const REPLICA_MAX_LAG: &str = "kafka_server_replicafetchermanager_maxlag";

    // Partition MBeans (kafka.cluster:type=Partition; each partition's leader exports them).
    pub const PARTITION_UNDER_MIN_ISR: &str = "kafka_cluster_partition_underminisr";
    pub const PARTITION_AT_MIN_ISR: &str = "kafka_cluster_partition_atminisr";
    pub const PARTITION_REPLICAS_COUNT: &str = "kafka_cluster_partition_replicascount";

    // Log.
    pub const LOG_SIZE: &str = "kafka_log_log_size";
    pub const LOG_START_OFFSET: &str = "kafka_log_log_logstartoffset";
    pub const LOG_END_OFFSET: &str = "kafka_log_log_logendoffset";
    pub const OFFLINE_LOG_DIRS: &str = "kafka_log_logmanager_offlinelogdirectorycount";

    // KafkaController (the active controller only, except the count).
    pub const ACTIVE_CONTROLLER: &str = "kafka_controller_kafkacontroller_activecontrollercount";
    pub const OFFLINE_PARTITIONS: &str = "kafka_controller_kafkacontroller_offlinepartitionscount";
    pub const GLOBAL_PARTITIONS: &str = "kafka_controller_kafkacontroller_globalpartitioncount";
    pub const GLOBAL_TOPICS: &str = "kafka_controller_kafkacontroller_globaltopiccount";
    pub const PREFERRED_IMBALANCE: &str = "kafka_controller_kafkacontroller_preferredreplicaimbalancecount";
    // ControllerStats (counted by the broker that decided them as active controller).
    counter!(LEADER_ELECTIONS, LEADER_ELECTIONS_TOTAL, "kafka_controller_controllerstats_leaderelections");
    counter!(
        UNCLEAN_LEADER_ELECTIONS,
        UNCLEAN_LEADER_ELECTIONS_TOTAL,
        "kafka_controller_controllerstats_uncleanleaderelections"
    );

    // Metadata quorum (KRaft's RaftMetrics names; kmon's own for the rest).
    pub const RAFT_LEADER: &str = "kafka_server_raftmetrics_current_leader";
    pub const RAFT_EPOCH: &str = "kafka_server_raftmetrics_current_epoch";
    pub const RAFT_HIGH_WATERMARK: &str = "kafka_server_raftmetrics_high_watermark";
    pub const RAFT_LOG_END: &str = "kafka_server_raftmetrics_log_end_offset";
    /// 1 on the series of this member's state (labels `state` and, as
    /// Strimzi's JMX rules name it, `current_state`).
    pub const RAFT_STATE: &str = "kafka_server_raftmetrics_current_state";
    pub const RAFT_VOTE: &str = "kafka_server_raftmetrics_current_vote";
    pub const RAFT_COMMIT_LATENCY_AVG: &str = "kafka_server_raftmetrics_commit_latency_avg";
    pub const RAFT_APPLIED: &str = "kmon_raft_applied_index";
    pub const RAFT_ELECTIONS: &str = "kmon_raft_elections";

    // Partitions (kafka_exporter names; each partition's leader exports it).
    pub const TOPIC_PARTITIONS: &str = "kafka_topic_partitions";
    pub const PARTITION_CURRENT_OFFSET: &str = "kafka_topic_partition_current_offset";
    pub const PARTITION_OLDEST_OFFSET: &str = "kafka_topic_partition_oldest_offset";
    pub const PARTITION_IN_SYNC: &str = "kafka_topic_partition_in_sync_replica";
    pub const PARTITION_REPLICAS: &str = "kafka_topic_partition_replicas";
    pub const PARTITION_LEADER: &str = "kafka_topic_partition_leader";
    pub const PARTITION_UNDER_REPLICATED: &str = "kafka_topic_partition_under_replicated_partition";
    pub const PARTITION_LEADER_PREFERRED: &str = "kafka_topic_partition_leader_is_preferred";

    // Consumer groups (kafka_exporter names; the group's coordinator exports them).
    pub const GROUP_CURRENT_OFFSET: &str = "kafka_consumergroup_current_offset";
    pub const GROUP_LAG: &str = "kafka_consumergroup_lag";
    pub const GROUP_LAG_SUM: &str = "kafka_consumergroup_lag_sum";
    pub const GROUP_MEMBERS: &str = "kafka_consumergroup_members";
    pub const GROUP_PARTITION_STATUS: &str = "kmon_consumergroup_partition_status";
    pub const GROUP_STATUS: &str = "kmon_consumergroup_status";

    // Balance (the active controller; bytes by each broker for itself).
    pub const BALANCE_BROKER_REPLICAS: &str = "kmon_balance_broker_replicas";
    pub const BALANCE_BROKER_LEADERS: &str = "kmon_balance_broker_leaders";
    pub const BALANCE_BROKER_BYTES: &str = "kmon_balance_broker_bytes";
    pub const BALANCE_FD_REPLICAS: &str = "kmon_balance_fault_domain_replicas";
    pub const BALANCE_FD_LEADERS: &str = "kmon_balance_fault_domain_leaders";
    pub const BALANCE_UD_REPLICAS: &str = "kmon_balance_update_domain_replicas";
    pub const BALANCE_UD_LEADERS: &str = "kmon_balance_update_domain_leaders";
    pub const BALANCE_REPLICA_SKEW: &str = "kmon_balance_replica_skew_ratio";
    pub const BALANCE_LEADER_SKEW: &str = "kmon_balance_leader_skew_ratio";
    pub const BALANCE_DOMAIN_VIOLATIONS: &str = "kmon_balance_domain_violating_partitions";
    pub const CLUSTER_BROKERS: &str = "kmon_cluster_brokers";

    // Idempotent producers.
    pub const PRODUCER_IDS: &str = "kmon_producer_ids";
    pub const PRODUCER_DUPLICATES: &str = "kmon_producer_duplicate_batches";
    pub const PRODUCER_SEQUENCE_ERRORS: &str = "kmon_producer_sequence_errors";

    // Reassignment progress (partitions: the active controller; bytes: each
    // partition leader for what its new replicas still have to copy).
    pub const REASSIGNMENT_PARTITIONS_PENDING: &str = "kmon_reassignment_partitions_pending";
    pub const REASSIGNMENT_BYTES_LEFT: &str = "kmon_reassignment_bytes_left";
    pub const REASSIGNMENT_THROTTLE: &str = "kmon_reassignment_throttle_bytes_per_second";
}

/// A node agent's host figures: node_exporter's names, as exposed.
pub mod node {
    // File systems: labels device, mountpoint, fstype.
    pub const FILESYSTEM_SIZE: &str = "node_filesystem_size_bytes";
    pub const FILESYSTEM_AVAIL: &str = "node_filesystem_avail_bytes";
    pub const FILESYSTEM_FILES: &str = "node_filesystem_files";
    pub const FILESYSTEM_FILES_FREE: &str = "node_filesystem_files_free";
    pub const FILESYSTEM_READONLY: &str = "node_filesystem_readonly";
    // Block devices (whole disks and dm-N, as in /proc/diskstats): label device.
    pub const DISK_READ: &str = "node_disk_read_bytes_total";
    pub const DISK_WRITTEN: &str = "node_disk_written_bytes_total";
    pub const DISK_READS_COMPLETED: &str = "node_disk_reads_completed_total";
    pub const DISK_WRITES_COMPLETED: &str = "node_disk_writes_completed_total";
    pub const DISK_IO_TIME: &str = "node_disk_io_time_seconds_total";
    // Network devices: label device.
    pub const NET_RX_BYTES: &str = "node_network_receive_bytes_total";
    pub const NET_TX_BYTES: &str = "node_network_transmit_bytes_total";
    pub const NET_RX_PACKETS: &str = "node_network_receive_packets_total";
    pub const NET_TX_PACKETS: &str = "node_network_transmit_packets_total";
    pub const NET_RX_ERRS: &str = "node_network_receive_errs_total";
    pub const NET_TX_ERRS: &str = "node_network_transmit_errs_total";
    pub const NET_RX_DROP: &str = "node_network_receive_drop_total";
    pub const NET_TX_DROP: &str = "node_network_transmit_drop_total";
    pub const NET_SPEED: &str = "node_network_speed_bytes";
    // CPU: labels cpu, mode.
    pub const CPU_SECONDS: &str = "node_cpu_seconds_total";
    // Memory and load: no labels.
    pub const MEM_TOTAL: &str = "node_memory_MemTotal_bytes";
    pub const MEM_AVAILABLE: &str = "node_memory_MemAvailable_bytes";
    pub const LOAD1: &str = "node_load1";
    pub const LOAD5: &str = "node_load5";
    pub const LOAD15: &str = "node_load15";
    // Local `kmon broker` processes: labels pid, broker.
    pub const BROKER_RSS: &str = "kmon_node_broker_resident_memory_bytes";
    pub const BROKER_CPU: &str = "kmon_node_broker_cpu_seconds_total";
}

/// The cluster sample an agent ships (from Metadata, once per cluster): no
/// labels, or `broker`.
pub mod cluster {
    pub const PARTITIONS: &str = "kmon_cluster_partitions";
    pub const UNDER_REPLICATED: &str = "kmon_cluster_underreplicated_partitions";
    pub const OFFLINE: &str = "kmon_cluster_offline_partitions";
    pub const REPLICAS: &str = "kmon_cluster_replicas";
    pub const ISR_REPLICAS: &str = "kmon_cluster_isr_replicas";
    pub const ISR_MIN: &str = "kmon_cluster_isr_size_min";
    pub const BROKER_REPLICAS: &str = "kmon_cluster_broker_replicas";
    pub const BROKER_LEADERS: &str = "kmon_cluster_broker_leaders";
}
