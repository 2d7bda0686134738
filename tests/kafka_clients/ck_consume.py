#!/usr/bin/env python3
"""Reads every partition of a topic with confluent-kafka (librdkafka), no group.

Assigns all partitions from the beginning and reads until each has reached
its end (partition EOF) and at least --min-records were read. Output, one
JSON line each:
  {"event": "record", "partition", "offset", "key", "value", "headers": [[name, value], ...]}
  {"event": "eof", "records": n}
Exit codes: 0 done, 1 client error, 2 deadline passed.
"""

import argparse

import confluent_kafka

from kcommon import Deadline, emit, fail, headers_out, run, text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka listener(s), HOST:PORT[,HOST:PORT]")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--min-records", type=int, default=0, help="keep reading until this many")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds before giving up")
    parser.add_argument("--config", action="append", default=[], metavar="NAME=VALUE",
                        help="extra librdkafka setting (repeatable)")
    args = parser.parse_args()
    deadline = Deadline(args.deadline)

    errors = []
    config = {
        "bootstrap.servers": args.bootstrap,
        # Required by the API; no subscribe(), so the group is never joined.
        "group.id": "kmon-test-ck-consume",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "error_cb": lambda err: errors.append(err),
    }
    for setting in args.config:
        name, sep, value = setting.partition("=")
        if not sep:
            fail("--config wants NAME=VALUE, got %r" % setting)
        config[name] = value
    consumer = confluent_kafka.Consumer(config)
    try:
        metadata = consumer.list_topics(args.topic, timeout=max(1.0, deadline.left()))
        topic = metadata.topics.get(args.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            fail("topic %s not readable: %s" % (args.topic, topic.error if topic else "absent"))
        partitions = sorted(topic.partitions)
        consumer.assign([confluent_kafka.TopicPartition(args.topic, p, confluent_kafka.OFFSET_BEGINNING)
                         for p in partitions])
        at_end = set()
        count = 0
        while len(at_end) < len(partitions) or count < args.min_records:
            deadline.check("reading (%d records, %d of %d partitions at their end)"
                           % (count, len(at_end), len(partitions)))
            for err in errors:
                if err.fatal():
                    fail("fatal client error %s: %s" % (err.name(), err.str()))
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    continue
                fail("consume error on partition %s: %s" % (msg.partition(), msg.error()))
            at_end.discard(msg.partition())
            count += 1
            emit("record", partition=msg.partition(), offset=msg.offset(), key=text(msg.key()),
                 value=text(msg.value()), headers=headers_out(msg.headers()))
        emit("eof", records=count)
    finally:
        consumer.close()


if __name__ == "__main__":
    run(main)
