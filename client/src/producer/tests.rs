//! Accumulator logic, without a broker.

use super::*;
use crate::batch::decode_batches;

fn shared(config: ProducerConfig) -> Shared {
    let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
    let client = crate::connection::client(channel);
    Shared::new(Router::from_client(client), config)
}

fn with_topic(shared: &Shared, name: &str, partitions: usize) {
    shared.lock().topics.insert(
        name.to_owned(),
        TopicState {
            name: name.into(),
            partitions: (0..partitions).map(|_| PartitionState::default()).collect(),
            sticky: StickyPartitioner::default(),
        },
    );
}

fn no_leader(_: &str, _: u32) -> Option<i32> {
    None
}

fn config() -> ProducerConfig {
    let mut config = ProducerConfig::new("127.0.0.1:1");
    config.linger = Duration::from_secs(3600);
    config.batch_size = 1000;
    config
}

#[tokio::test]
async fn keyed_records_use_kafkas_partition() {
    let shared = shared(config());
    with_topic(&shared, "t", 10);
    let mut acc = shared.lock();
    let handle = acc.append(&shared, "t", None, 1, Some(b"foobar"), b"v").unwrap();
    assert_eq!(handle.partition(), 6);
    assert!(handle.is_first_in_batch());
    let second = acc.append(&shared, "t", None, 2, Some(b"foobar"), b"w").unwrap();
    assert!(!second.is_first_in_batch());
    assert!(handle.try_result().is_none());
}

#[tokio::test]
async fn batches_close_at_batch_size_and_sticky_moves_on() {
    let shared = shared(config());
    with_topic(&shared, "t", 4);
    let mut acc = shared.lock();
    let value = [0u8; 100];
    let first = acc.append(&shared, "t", None, 1, None, &value).unwrap();
    let sticky = first.partition();
    let mut same = 1;
    loop {
        let handle = acc.append(&shared, "t", None, 1, None, &value).unwrap();
        if handle.partition() != sticky {
            break;
        }
        same += 1;
    }
    // 61-byte header + ~107 bytes per record: 8 fit in 1000 bytes.
    assert_eq!(same, 8);
    let slot = &acc.topics["t"].partitions[sticky as usize];
    assert!(slot.open.is_none());
    assert_eq!(slot.queued.len(), 1);
    let data = Bytes::from(slot.queued[0].builder.clone().finish());
    assert_eq!(decode_batches(&data).unwrap().len(), 8);
    assert!(data.len() <= 1000);
}

#[tokio::test]
async fn collect_keeps_one_batch_per_partition_in_flight() {
    let mut config = config();
    config.batch_size = 200;
    config.max_request_size = 250;
    let shared = shared(config.clone());
    with_topic(&shared, "t", 2);
    let mut acc = shared.lock();
    for _ in 0..3 {
        for p in 0..2 {
            acc.append(&shared, "t", Some(p), 1, None, &[1u8; 150]).unwrap();
        }
    }
    // Each record fills its own batch: 3 queued per partition.
    assert_eq!(acc.topics["t"].partitions[0].queued.len(), 3);
    let (requests, _) = acc.collect(&config, 5, false, &no_leader);
    // One batch per partition; the request size limit splits them.
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.len() == 1));
    // Nothing more until those complete.
    let (again, _) = acc.collect(&config, 5, false, &no_leader);
    assert!(again.is_empty());
    for slot in &mut acc.topics.get_mut("t").unwrap().partitions {
        slot.in_flight.clear();
    }
    let (third, _) = acc.collect(&config, 1, false, &no_leader);
    assert_eq!(third.len(), 1, "max_requests bounds the requests");
}

#[tokio::test]
async fn idempotent_batches_carry_the_producer_and_consecutive_sequences_up_to_five_in_flight() {
    let mut config = config();
    config.batch_size = 200;
    let shared = shared(config.clone());
    with_topic(&shared, "t", 1);
    let mut acc = shared.lock();
    acc.producer = Some(ProducerIdentity { id: 42, epoch: 3 });
    // Batches of 1, 2, ... records (each batch closes on the next record
    // that would not fit): 7 batches queued.
    for records in 1..=7usize {
        for _ in 0..records {
            acc.append(&shared, "t", Some(0), 1, None, &[7u8; 10]).unwrap();
        }
        acc.topics.get_mut("t").unwrap().partitions[0].close_open();
    }
    // One batch of a partition per request, as Kafka's producer sends them;
    // each pass of the sender makes another request, up to five.
    let mut sent = Vec::new();
    for _ in 0..7 {
        let (requests, _) = acc.collect(&config, 5, false, &no_leader);
        assert!(requests.iter().all(|r| r.len() <= 1));
        sent.extend(requests.into_iter().flatten());
    }
    assert_eq!(sent.len(), MAX_IN_FLIGHT_IDEMPOTENT, "five of one partition in flight");
    let mut expected_sequence = 0;
    for (i, outgoing) in sent.iter().enumerate() {
        let header = crate::batch::validate(&outgoing.batch.data).unwrap();
        assert_eq!((header.producer_id, header.producer_epoch), (42, 3));
        assert_eq!(header.base_sequence, expected_sequence, "batch {i}");
        expected_sequence += header.records_count;
    }
    assert_eq!(acc.topics["t"].partitions[0].next_sequence, 1 + 2 + 3 + 4 + 5);
    // The four later batches complete, the first is still being retried:
    // nothing more goes out (it must stay among the last five the leader
    // remembers), until it completes too.
    acc.topics.get_mut("t").unwrap().partitions[0].in_flight.truncate(1);
    let (held, _) = acc.collect(&config, 5, false, &no_leader);
    assert!(held.is_empty(), "the window counts from the oldest batch in flight");
    acc.topics.get_mut("t").unwrap().partitions[0].in_flight.clear();
    let (next, _) = acc.collect(&config, 5, false, &no_leader);
    assert_eq!(next.len(), 1);
    assert_eq!(next_sequence(i32::MAX - 1, 3), 1, "sequences wrap past i32::MAX");
}

#[tokio::test]
async fn linger_closes_open_batches_and_reports_the_deadline() {
    let mut config = config();
    config.linger = Duration::from_millis(50);
    let shared = shared(config.clone());
    with_topic(&shared, "t", 1);
    let mut acc = shared.lock();
    acc.append(&shared, "t", None, 1, None, b"x").unwrap();
    let (requests, deadline) = acc.collect(&config, 5, false, &no_leader);
    assert!(requests.is_empty());
    assert!(deadline.is_some());
    std::thread::sleep(Duration::from_millis(60));
    let (requests, deadline) = acc.collect(&config, 5, false, &no_leader);
    assert_eq!(requests.len(), 1);
    assert!(deadline.is_none());
}

#[tokio::test]
async fn a_failed_batch_fails_the_unsent_ones_of_its_partition() {
    let shared = shared(config());
    with_topic(&shared, "t", 1);
    let mut acc = shared.lock();
    let queued = acc.append(&shared, "t", None, 1, None, &[0u8; 950]).unwrap();
    let open = acc.append(&shared, "t", None, 1, None, b"small").unwrap();
    let cause = ClientError::Timeout(Duration::from_secs(1));
    let slot = &mut acc.topics.get_mut("t").unwrap().partitions[0];
    assert_eq!(slot.queued.len(), 1);
    slot.fail_unsent("t", 0, &cause);
    for handle in [queued, open] {
        let err = handle.try_result().unwrap().unwrap_err();
        assert!(matches!(err, ClientError::EarlierBatchFailed { .. }), "{err}");
        assert!(err.to_string().contains("t-0"), "{err}");
    }
}

#[tokio::test]
async fn handles_resolve_to_base_plus_index() {
    let shared = shared(config());
    with_topic(&shared, "t", 1);
    let (a, b) = {
        let mut acc = shared.lock();
        let a = acc.append(&shared, "t", None, 1, None, b"a").unwrap();
        let b = acc.append(&shared, "t", None, 1, None, b"b").unwrap();
        (a, b)
    };
    a.batch.complete(Ok(100));
    assert_eq!(b.await.unwrap(), RecordMetadata { partition: 0, offset: 101 });
    assert!(a.batch_latency().is_some());
}
