#!/usr/bin/env python3
"""Kafka-protocol throughput of one kmon broker with third-party clients,
next to kmon's own gRPC client on the same broker in the same run.

Starts `kmon broker` (gRPC, /metrics and Kafka listener on free ports of
127.0.0.1, data in a temporary directory), then for each run and client
produces N records of S bytes into a fresh 1-partition topic and consumes
them back, timing each from process start to its end (kcat) or from the
first call to the last flushed/read record (confluent-kafka), and prints
the median of the runs in records/s.

    $VENV/bin/python kafka/bench/clients.py --kmon target/release/kmon \
        --records 1000000 --record-size 100 --runs 3

kcat is Debian's (librdkafka 2.0.2); confluent-kafka is the pinned wheel of
tests/kafka_clients/requirements.txt (bundled librdkafka 2.x). Both use
their defaults (acks=all, linger.ms=5, no compression) but for
enable.idempotence=false on confluent-kafka.
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(kmon, data):
    grpc, metrics = free_port(), free_port()
    proc = subprocess.Popen(
        [kmon, "broker", "--data-dir", data, "--listen", f"127.0.0.1:{grpc}",
         "--metrics-listen", f"127.0.0.1:{metrics}", "--kafka-listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=open(os.path.join(data, "..", "broker.log"), "w"), text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("kmon broker ready"):
            fields = dict(w.split("=", 1) for w in line.split() if "=" in w)
            return proc, fields["grpc"], fields["kafka"]
    proc.kill()
    sys.exit("the broker did not become ready in 60 s")


def kmon_cmd(kmon, bootstrap, *args):
    out = subprocess.run([kmon, *args], env={**os.environ, "KMON_BOOTSTRAP": bootstrap},
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit(f"kmon {' '.join(args)} failed: {out.stderr}")
    return out.stdout + out.stderr


def rate_of(kmon_output):
    # "... 2.5M records/s ..." or "160.1K records/s"
    for word, nxt in zip(kmon_output.split(), kmon_output.split()[1:]):
        if nxt.startswith("records/s"):
            scale = {"K": 1e3, "M": 1e6}.get(word[-1], 1)
            return float(word.rstrip("KM")) * scale
    sys.exit(f"no records/s in: {kmon_output}")


def timed(cmd, **kw):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, timeout=600, **kw)
    return time.perf_counter() - start


def confluent_produce(kafka, topic, records, size):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": kafka, "enable.idempotence": False, "acks": "all",
                  "queue.buffering.max.messages": 2_000_000})
    value = b"x" * size
    failed = []
    start = time.perf_counter()
    for _ in range(records):
        while True:
            try:
                p.produce(topic, value, on_delivery=lambda err, _m: err and failed.append(err))
                break
            except BufferError:
                p.poll(0.01)
    p.flush(120)
    elapsed = time.perf_counter() - start
    if failed:
        sys.exit(f"confluent-kafka: {len(failed)} deliveries failed, first: {failed[0]}")
    return elapsed


def confluent_consume(kafka, topic, records):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": kafka, "group.id": f"bench-{topic}", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    seen = 0
    start = time.perf_counter()
    deadline = start + 300
    while seen < records and time.perf_counter() < deadline:
        for m in c.consume(10_000, 1.0):
            if m.error() is None:
                seen += 1
    elapsed = time.perf_counter() - start
    c.close()
    if seen < records:
        sys.exit(f"confluent-kafka read {seen} of {records}")
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kmon", default="target/release/kmon")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--record-size", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("kcat"):
        sys.exit("kcat is missing (Debian package kcat)")
    root = tempfile.mkdtemp(prefix="kmon-bench-clients-")
    data = os.path.join(root, "data")
    os.makedirs(data)
    proc, grpc, kafka = start_broker(args.kmon, data)
    n, size = args.records, args.record_size
    lines = os.path.join(root, "records.txt")
    with open(lines, "w") as f:
        # kcat -l: one record per line, without its newline: values of `size` bytes.
        f.write(("y" * size + "\n") * n)
    results = {k: [] for k in ["grpc produce", "grpc consume", "kcat produce", "kcat consume",
                                "confluent-kafka produce", "confluent-kafka consume"]}
    try:
        for run in range(args.runs):
            for client in ["grpc", "kcat", "confluent"]:
                topic = f"bench-{client}-{run}"
                kmon_cmd(args.kmon, grpc, "topic", "create", topic, "--partitions", "1")
                if client == "grpc":
                    out = kmon_cmd(args.kmon, grpc, "bench", "produce", "--topic", topic,
                                   "--records", str(n), "--record-size", str(size))
                    results["grpc produce"].append(rate_of(out))
                    out = kmon_cmd(args.kmon, grpc, "bench", "consume", "--topic", topic, "--records", str(n))
                    results["grpc consume"].append(rate_of(out))
                elif client == "kcat":
                    t = timed(["kcat", "-b", kafka, "-P", "-t", topic, "-l", lines], stderr=subprocess.DEVNULL)
                    results["kcat produce"].append(n / t)
                    t = timed(["kcat", "-b", kafka, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                               "-c", str(n)], stdout=subprocess.DEVNULL)
                    results["kcat consume"].append(n / t)
                else:
                    results["confluent-kafka produce"].append(n / confluent_produce(kafka, topic, n, size))
                    results["confluent-kafka consume"].append(n / confluent_consume(kafka, topic, n))
                print(f"run {run + 1}: {client} done", file=sys.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    print(f"{n} records x {size} B, 1 partition, one broker, {args.runs} runs (median, runs)")
    for name, rates in results.items():
        runs = ", ".join(f"{r / 1e6:.2f}M" for r in rates)
        print(f"{name:26s} {statistics.median(rates) / 1e6:6.2f}M records/s   ({runs})")


if __name__ == "__main__":
    main()
