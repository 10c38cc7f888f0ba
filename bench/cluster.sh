#!/usr/bin/env bash
# Replication cost, end to end: `gregor perf produce` against a local three-node cluster
# (scripts/local-cluster's layout), to a topic with replication factor 3 (acks=all,
# min.insync.replicas=2) and to one with replication factor 1, 8 partitions each.
#
#   bench/cluster.sh [records] [record-size]     # defaults 200000 and 1024
#
# Prints one `gregor perf` summary line per case (throughput, p50/p99 latency).
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-200000}"
size="${2:-1024}"
cargo build --release -q -p gregor-cli
data=$(mktemp -d)
trap 'kill -TERM $(jobs -p) 2>/dev/null; wait; rm -rf "$data"' EXIT
voters="1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
for n in 1 2 3; do
  client=$((19090 + 2 * n)); controller=$((client + 1))
  target/release/gregor broker --override node.id=$n --override process.roles=broker,controller \
    --override controller.quorum.voters=$voters \
    --override listeners=PLAINTEXT://127.0.0.1:$client,CONTROLLER://127.0.0.1:$controller \
    --override controller.listener.names=CONTROLLER --override log.dirs="$data/node-$n" \
    2>"$data/node-$n.log" &
done
bootstrap=127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096
for _ in $(seq 100); do
  grep -q "ready: listening" "$data"/node-1.log "$data"/node-2.log "$data"/node-3.log 2>/dev/null \
    && [ "$(grep -l 'ready: listening' "$data"/node-*.log | wc -l)" = 3 ] && break
  sleep 0.2
done
gregor() { target/release/gregor "$@" --bootstrap-server "$bootstrap"; }
gregor topics create --topic rf3 --partitions 8 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
gregor topics create --topic rf1 --partitions 8 --replication-factor 1 >/dev/null
sleep 1
for batch in 1000000 16384; do
  for topic in rf1 rf3; do
    echo "== topic $topic, acks=all, batch.size=$batch"
    gregor perf produce --topic $topic --num-records "$records" --record-size "$size" \
      --acks all --producer-property batch.size=$batch | tail -1
  done
done
