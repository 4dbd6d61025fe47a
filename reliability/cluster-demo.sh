#!/usr/bin/env bash
# Cluster mode on one machine (make cluster-demo): three nats-server
# processes forming a JetStream cluster (client ports 4222-4224, cluster
# ports 6222-6224) and two API nodes (8001, 8002), each with its own store,
# over one R3 stream. Everything lives under $DEMO_DIR (default
# data/cluster-demo); Ctrl-C stops it all. Try, in another shell:
#
#   curl -s -X POST localhost:8001/ingest -H 'Content-Type: application/json' \
#     -H 'Idempotency-Key: demo-1' -d '{"type":"plate_read","frame_source_id":"gate","payload":{"plate_text":"AB123","confidence":0.9}}'
#   curl -s localhost:8002/events          # the other node has it
#   curl -s localhost:8002/health          # "cluster": {..., "lag": 0, ...}
#   kill -9 $(cat data/cluster-demo/n1.pid)   # lose one NATS server: writes go on
set -euo pipefail
BIN=${BIN:-bin/securevision}
NATS=${NATS_SERVER:-$(command -v nats-server || echo "$(go env GOPATH)/bin/nats-server")}
DIR=${DEMO_DIR:-data/cluster-demo}
[ -x "$BIN" ] || { echo "cluster-demo: $BIN missing: run make build"; exit 1; }
[ -x "$NATS" ] || { echo "cluster-demo: nats-server missing: go build -o bin/nats-server github.com/nats-io/nats-server/v2 (make cluster-demo does), or go install github.com/nats-io/nats-server/v2@v2.15.2 (make deps does)"; exit 1; }
mkdir -p "$DIR"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
routes="nats://127.0.0.1:6222,nats://127.0.0.1:6223,nats://127.0.0.1:6224"
for i in 1 2 3; do
  "$NATS" --name "n$i" --addr 127.0.0.1 --port $((4221 + i)) --jetstream --store_dir "$DIR/n$i" \
    --cluster_name securevision-demo --cluster "nats://127.0.0.1:$((6221 + i))" --routes "$routes" \
    >"$DIR/n$i.log" 2>&1 &
  pids+=($!); echo $! >"$DIR/n$i.pid"
done
urls="nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"
for node in 1 2; do
  SECUREVISION__CLUSTER__NATS_URL=$urls SECUREVISION__API__PORT=$((8000 + node)) \
    SECUREVISION__EVENTS__DB_URL="pebble://$DIR/api$node" SECUREVISION__EVENTS__BACKUP_DIR="$DIR/backups$node" \
    "$BIN" serve >"$DIR/api$node.log" 2>&1 &
  pids+=($!); echo $! >"$DIR/api$node.pid"
done
for port in 8001 8002; do
  for _ in $(seq 1 100); do curl -sf "localhost:$port/health" >/dev/null && break; sleep 0.3; done
  curl -sf "localhost:$port/health" >/dev/null || { echo "API node on $port did not start; see $DIR/api*.log"; exit 1; }
done
echo "cluster demo up: NATS $urls; API http://127.0.0.1:8001 and http://127.0.0.1:8002; logs and pids in $DIR. Ctrl-C stops."
wait
