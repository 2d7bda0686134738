#!/usr/bin/env python3
"""One member of a consumer group, with kafka-python.

Subscribes to a topic, prints its assignment after every rebalance and every
record it reads, and commits (synchronously) after each non-empty poll. A
line "close" on stdin, or stdin's end, makes it call close() (leaving the
group) and exit 0. Output, one JSON line each:
  {"event": "assigned", "member", "partitions": [...]}   (the whole assignment)
  {"event": "revoked", "member", "partitions": [...]}
  {"event": "record", "member", "partition", "offset", "key", "value"}
  {"event": "committed", "member", "offsets": {"partition": next offset}}
  {"event": "commit_failed", "member", "error"}           (a rebalance was under way)
  {"event": "closed", "member"}
Exit codes: 0 closed, 1 client error, 2 deadline passed before "close".
"""

import argparse
import sys
import threading

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import CommitFailedError, RebalanceInProgressError

from kcommon import Deadline, emit, fail, run, text


class Listener(ConsumerRebalanceListener):
    def __init__(self, member):
        self.member = member

    def on_partitions_revoked(self, revoked):
        emit("revoked", member=self.member, partitions=sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned):
        emit("assigned", member=self.member, partitions=sorted(tp.partition for tp in assigned))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka listener(s), HOST:PORT[,HOST:PORT]")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--member", required=True, help="client.id, echoed in every line")
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=500)
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds before giving up")
    args = parser.parse_args()
    deadline = Deadline(args.deadline)

    stop = threading.Event()

    def watch_stdin():
        for line in sys.stdin:
            if line.strip() == "close":
                break
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap.split(","),
        group_id=args.group,
        client_id=args.member,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
    )
    consumer.subscribe([args.topic], listener=Listener(args.member))
    while not stop.is_set():
        deadline.check("consuming in group %s (no close command)" % args.group)
        batch = consumer.poll(timeout_ms=200)
        if not batch:
            continue
        offsets = {}
        for tp, messages in sorted(batch.items()):
            for msg in messages:
                emit("record", member=args.member, partition=msg.partition, offset=msg.offset,
                     key=text(msg.key), value=text(msg.value))
                offsets[str(msg.partition)] = msg.offset + 1
        try:
            consumer.commit()
            emit("committed", member=args.member, offsets=offsets)
        except (CommitFailedError, RebalanceInProgressError) as err:
            # The partitions moved; their new owner reads from the last commit.
            emit("commit_failed", member=args.member, error="%s: %s" % (type(err).__name__, err))
    consumer.close()
    emit("closed", member=args.member)


if __name__ == "__main__":
    run(main)
