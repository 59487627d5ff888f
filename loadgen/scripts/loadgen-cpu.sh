#!/usr/bin/env bash
# Measures loadgen's own CPU per bot-second: the node pinned to core 0,
# loadgen to core 1, --direct against a local `trespasser serve`.
#
#   loadgen/scripts/loadgen-cpu.sh [BOTS] [DURATION] [EXTRA LOADGEN FLAGS...]
#
# Env: TARGET_DIR (default target), NODE_CORE (0), LOADGEN_CORE (1).
# Prints the report's loadgen and server sections; the JSON stays in $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
BOTS=${1:-1000}
DURATION=${2:-60s}
shift $(( $# > 2 ? 2 : $# ))
TARGET_DIR=${TARGET_DIR:-target}
NODE_CORE=${NODE_CORE:-0}
LOADGEN_CORE=${LOADGEN_CORE:-1}
DATA=$(mktemp -d /tmp/lgcpu.XXXXXX)
OUT=${OUT:-$DATA}

CARGO_TARGET_DIR=$TARGET_DIR cargo build --release -p loadgen -p trespasser-server --bins
taskset -c "$NODE_CORE" "$TARGET_DIR/release/trespasser" serve --data-dir "$DATA" \
  --quic-addr 127.0.0.1:4433 --http-addr 127.0.0.1:8080 --max-lobbies 2000 >"$DATA/node.log" 2>&1 &
NODE=$!
trap 'kill $NODE 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -f "$DATA/ticket-key" ] && [ -f "$DATA/dev-cert.der" ] && break; sleep 0.1; done
sleep 1
taskset -c "$LOADGEN_CORE" "$TARGET_DIR/release/loadgen" --direct --data-dir "$DATA" --bots "$BOTS" \
  --duration "$DURATION" --ramp 10s --quiet --json "$OUT/report.json" "$@"
python3 - "$OUT/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({k: r.get(k) for k in ["bots_joined", "loadgen", "bandwidth", "snapshots_per_sec", "rtt_ms", "server"]}, indent=1))
PY
