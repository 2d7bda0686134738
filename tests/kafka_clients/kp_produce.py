#!/usr/bin/env python3
"""Produces records with kafka-python (its default, Java-compatible murmur2
partitioner) and reports where each landed.

Records come from stdin (JSON lines, see kcommon.read_records). Output, one
JSON line each:
  {"event": "delivered", "key", "value", "partition", "offset"}
  {"event": "done", "delivered": n}
Exit codes: 0 all delivered, 1 a record failed, 2 deadline passed.
"""

import argparse
import sys

from kafka import KafkaProducer

from kcommon import Deadline, emit, encode, fail, headers_in, read_records, run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka listener(s), HOST:PORT[,HOST:PORT]")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--acks", default="all")
    parser.add_argument("--idempotence", action="store_true",
                        help="enable_idempotence=True (kafka-python's default; off otherwise)")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds before giving up")
    args = parser.parse_args()
    deadline = Deadline(args.deadline)
    records = read_records(sys.stdin)

    acks = args.acks if args.acks == "all" else int(args.acks)
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap.split(","),
        acks=acks,
        # kafka-python 3 turns idempotence on by default; kmon has no
        # idempotent producer yet.
        enable_idempotence=args.idempotence,
        request_timeout_ms=max(1000, int(args.deadline * 1000) // 2),
        max_block_ms=max(1000, int(args.deadline * 1000) // 2),
    )
    try:
        futures = []
        for record in records:
            deadline.check("sending")
            futures.append((record, producer.send(args.topic, key=encode(record.get("key")),
                                                  value=encode(record["value"]),
                                                  headers=headers_in(record),
                                                  partition=record.get("partition"))))
        producer.flush(timeout=max(0.1, deadline.left()))
        for record, future in futures:
            deadline.check("waiting for acknowledgements")
            try:
                meta = future.get(timeout=max(0.1, deadline.left()))
            except Exception as err:  # noqa: BLE001 - any client error fails the run
                fail("record %r failed: %s: %s" % (record, type(err).__name__, err))
            emit("delivered", key=record.get("key"), value=record["value"],
                 partition=meta.partition, offset=meta.offset)
        emit("done", delivered=len(futures))
    finally:
        producer.close(timeout=5)


if __name__ == "__main__":
    run(main)
