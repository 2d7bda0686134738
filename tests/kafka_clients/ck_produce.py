#!/usr/bin/env python3
"""Produces records with confluent-kafka (librdkafka) and reports each delivery.

Records come from stdin (JSON lines, see kcommon.read_records) or, with
--count N, are generated: values PREFIX0 .. PREFIX{N-1}, no key, one every
--interval-ms. Output, one JSON line each:
  {"event": "delivered", "key", "value", "partition", "offset"}
  {"event": "failed", "key", "value", "code", "error"}     (delivery report with an error)
  {"event": "error", "code", "error", "fatal"}              (librdkafka error callback)
  {"event": "done", "delivered": n, "failed": m}
Exit codes: 0 all delivered (or --allow-failures), 1 failed deliveries or a
fatal client error, 2 deadline passed with records still undelivered.
"""

import argparse
import sys
import time

import confluent_kafka

from kcommon import Deadline, emit, encode, fail, headers_in, read_records, run, text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka listener(s), HOST:PORT[,HOST:PORT]")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--acks", default="all")
    parser.add_argument("--idempotence", action="store_true", help="enable.idempotence=true")
    parser.add_argument("--partitioner", default="murmur2_random", help="librdkafka partitioner")
    parser.add_argument("--count", type=int, help="generate COUNT records instead of reading stdin")
    parser.add_argument("--value-prefix", default="record-")
    parser.add_argument("--interval-ms", type=float, default=0.0, help="pause between generated records")
    parser.add_argument("--config", action="append", default=[], metavar="NAME=VALUE",
                        help="extra librdkafka setting (repeatable)")
    parser.add_argument("--allow-failures", action="store_true",
                        help="exit 0 when every record got a delivery report, even an error")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds before giving up")
    args = parser.parse_args()
    deadline = Deadline(args.deadline)

    if args.count is None:
        records = read_records(sys.stdin)
    else:
        records = [{"key": None, "value": "%s%d" % (args.value_prefix, i)} for i in range(args.count)]

    state = {"delivered": 0, "failed": 0, "fatal": None}

    def on_error(err):
        emit("error", code=err.name(), error=err.str(), fatal=err.fatal())
        if err.fatal():
            state["fatal"] = err

    def on_delivery(err, msg):
        key, value = text(msg.key()), text(msg.value())
        if err is not None:
            state["failed"] += 1
            emit("failed", key=key, value=value, code=err.name(), error=err.str())
        else:
            state["delivered"] += 1
            emit("delivered", key=key, value=value, partition=msg.partition(), offset=msg.offset())

    config = {
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "enable.idempotence": args.idempotence,
        "partitioner": args.partitioner,
        "linger.ms": 5,
        # Below the script's deadline: a record not delivered by then is reported.
        "message.timeout.ms": max(1000, int(args.deadline * 1000) - 5000),
        "error_cb": on_error,
    }
    for setting in args.config:
        name, sep, value = setting.partition("=")
        if not sep:
            fail("--config wants NAME=VALUE, got %r" % setting)
        config[name] = value
    producer = confluent_kafka.Producer(config)

    def check_fatal():
        if state["fatal"] is not None:
            err = state["fatal"]
            fail("fatal client error %s: %s" % (err.name(), err.str()))

    for record in records:
        kwargs = {"key": encode(record.get("key")), "value": encode(record["value"]),
                  "headers": headers_in(record), "on_delivery": on_delivery}
        if record.get("partition") is not None:
            kwargs["partition"] = record["partition"]
        while True:
            check_fatal()
            deadline.check("producing (%d delivered)" % state["delivered"])
            try:
                producer.produce(args.topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if args.interval_ms > 0:
            end = time.monotonic() + args.interval_ms / 1000.0
            while time.monotonic() < end:
                producer.poll(max(0.0, end - time.monotonic()))

    while len(producer) > 0:
        check_fatal()
        deadline.check("waiting for %d delivery reports (%d delivered, %d failed)"
                       % (len(producer), state["delivered"], state["failed"]))
        producer.poll(0.05)
    check_fatal()
    emit("done", delivered=state["delivered"], failed=state["failed"])
    if state["failed"] and not args.allow_failures:
        fail("%d of %d records failed" % (state["failed"], len(records)))


if __name__ == "__main__":
    run(main)
