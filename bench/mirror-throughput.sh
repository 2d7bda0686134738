#!/usr/bin/env bash
# Mirror throughput: two one-broker clusters, N records of 100 B produced
# to the source first, then `kmon mirror` timed from its ready line until
# its record count reaches N. Usage: bench/mirror-throughput.sh KMON PARTITIONS RECORDS
# (KMON: a release build, e.g. target/release/kmon). Prints one line.
set -euo pipefail
K=$1; P=$2; N=$3
D=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf $D' EXIT
$K broker --data-dir $D/s --listen 127.0.0.1:29092 --metrics-listen 127.0.0.1:29644 --kafka-listen 127.0.0.1:29093 2>$D/s.log >$D/s.out &
$K broker --data-dir $D/t --listen 127.0.0.1:39092 --metrics-listen 127.0.0.1:39644 --kafka-listen 127.0.0.1:39093 2>$D/t.log >$D/t.out &
# A broker prints its ready line once it is registered.
until grep -q "kmon broker ready" $D/s.out 2>/dev/null && grep -q "kmon broker ready" $D/t.out 2>/dev/null; do sleep 0.1; done
$K topic create m --partitions $P --bootstrap 127.0.0.1:29092 >/dev/null
$K bench produce --topic m --records $N --bootstrap 127.0.0.1:29092 >/dev/null
$K mirror --source 127.0.0.1:29092 --target 127.0.0.1:39092 --topics m --metrics-listen 127.0.0.1:29755 2>$D/m.log > $D/m.out &
until grep -q "ready" $D/m.out; do sleep 0.01; done
start=$(date +%s.%N)
while :; do
  c=$(curl -s 127.0.0.1:29755/metrics | awk '/^kafka_connect_mirror_source_connector_record_count\{/ {s+=$2} END {print s+0}')
  [ "$c" -ge "$N" ] && break
  sleep 0.05
done
end=$(date +%s.%N)
echo "partitions=$P records=$N seconds=$(echo "$end - $start" | bc) records_per_s=$(echo "$N / ($end - $start)" | bc)"
