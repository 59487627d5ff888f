#!/usr/bin/env bash
# Paired A/B of two node builds: both nodes run at once on the same core,
# each with its own loadgen (both on the loadgen core) and the same number
# of bots, so whatever the host does during the window (its speed drifts by
# 10 % within minutes here, and by 3x between days) it does to both. Each
# round prints one JSON line with both nodes' CPU per player-second and the
# ratio B/A; the sides swap ports every round. Compare ratios, not the
# absolute figures: two nodes sharing a core also share its caches, so each
# costs more than it would alone.
#
#   loadgen/scripts/pair-ab.sh NAME_A=BIN_A NAME_B=BIN_B   # e.g. base=/tmp/base/trespasser new=target/release/trespasser
#
# A side may carry environment for its node: NAME=BIN:VAR=VALUE,VAR2=VALUE.
#
# Env:
#   BOTS     bots per node [750]     ROUNDS  rounds [3]
#   RAMP, SETTLE, WINDOW  as for capacity.sh [20s, 5, 40]
#   NODE_CORES, LOADGEN_CORES  as for capacity.sh [0, 1]
#   OUT      where each side's capacity.sh output goes [a new /tmp/pair-ab.XXXX]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -ne 2 ]; then
  sed -n '2,19p' "$0" >&2
  exit 2
fi
BOTS=${BOTS:-750}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$(mktemp -d /tmp/pair-ab.XXXXXX)}
mkdir -p "$OUT"

# One side: capacity.sh on its own ports with its own node binary.
side() {
  local spec=$1 quic=$2 http=$3 out=$4
  local rest=${spec#*=}
  local bin=${rest%%:*} envs=()
  if [[ $rest == *:* ]]; then IFS=, read -r -a envs <<<"${rest#*:}"; fi
  env "${envs[@]}" RAMP="${RAMP:-20s}" SETTLE="${SETTLE:-5}" WINDOW="${WINDOW:-40}" \
    NODE_CORES="${NODE_CORES:-0}" LOADGEN_CORES="${LOADGEN_CORES:-1}" \
    QUIC_PORT="$quic" HTTP_PORT="$http" OUT="$out" NODE_BIN="$bin" \
    loadgen/scripts/capacity.sh "$BOTS" >"$out.log" 2>&1
}

for r in $(seq 1 "$ROUNDS"); do
  first=$1 second=$2
  if ((r % 2 == 0)); then first=$2 second=$1; fi
  side "$first" 5543 8190 "$OUT/${first%%=*}-$r" &
  a=$!
  # Started together, one node failed to bind its UDP port in each of
  # three tries here (cause not found); two seconds apart they never did.
  sleep 2
  side "$second" 5544 8191 "$OUT/${second%%=*}-$r" &
  b=$!
  wait "$a" "$b" || true
  python3 - "$OUT" "$r" "${1%%=*}" "${2%%=*}" <<'PY'
import json, sys
out, r, a, b = sys.argv[1:]
def row(name):
    try:
        lines = [l for l in open(f"{out}/{name}-{r}.log") if l.startswith('{"bots"')]
        return json.loads(lines[-1])
    except (OSError, IndexError, ValueError):
        return None
ra, rb = row(a), row(b)
if not ra or not rb:
    print(json.dumps({"round": int(r), "error": f"a side produced no row; see {out}/{a}-{r}.log and {out}/{b}-{r}.log"}))
    sys.exit(0)
def side(x):
    return {"cpu_us_per_player_s": x["node_cpu_us_per_player_s"], "players": x["players"],
            "rtt_p99_ms": (x.get("rtt_ms") or {}).get("p99"), "errors": x.get("errors"),
            "packets_out_per_player_s": x.get("node_packets_out_per_player_s")}
ca, cb = ra["node_cpu_us_per_player_s"], rb["node_cpu_us_per_player_s"]
print(json.dumps({"round": int(r), a: side(ra), b: side(rb), "ratio_b_over_a": round(cb / ca, 3) if ca and cb else None}))
PY
done
echo "outputs in $OUT" >&2
