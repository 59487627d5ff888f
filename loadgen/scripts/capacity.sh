#!/usr/bin/env bash
# Node capacity: the node pinned to its cores, loadgen to others, N bots
# (8-player lobbies unless NODE_FLAGS say otherwise) at 20 Hz. Prints node CPU per
# player-second (user + system from /proc/<pid>/stat over the steady window,
# independent of the loadgen version), RSS per player (total, and added over
# the idle node), UDP packets per player-second, and loadgen's own report.
#
#   loadgen/scripts/capacity.sh [BOTS...]            # default: 1000 2500
#
# Env:
#   NODE_BIN, LOADGEN_BIN  binaries to measure (default target/release/...);
#                          point them at an older build to compare versions
#   MODE       direct (tickets minted locally) or api (accounts, matchmaking
#              through the HTTP API) [direct]
#   RAMP       join ramp [30s]     SETTLE  wait after the ramp [10s]
#   WINDOW     measured steady window in seconds [60]
#   NODE_CORES     cores the node may use, a taskset list [0]
#   LOADGEN_CORES  cores for loadgen [1]; with SHARDS > 1 shard i is pinned
#                  to the i-th core of the list (round robin)
#   SHARDS         loadgen processes splitting the bots (--shard i/N, one
#                  start time, reports merged with `loadgen merge`) [1]
#   NODE_FLAGS     extra `trespasser serve` flags (e.g. --quic-shards 2
#                  --players-per-lobby 4)
#   LOADGEN_FLAGS  extra loadgen flags
#   MAX_SHARD_LOAD the node's --max-shard-load [0.9, its default]: past it a
#                  shard refuses new players (counted in the row's
#                  node_connections_refused); 1 measures past saturation
#   CONN_RATE, CONN_BURST  the node's per-address connection limit [1000000
#                  each: every bot comes from 127.0.0.1; the node's defaults
#                  for real players are 50/s, burst 500]
#   OUT        where reports go [a new /tmp/capacity.XXXX]
#   QUIC_PORT, HTTP_PORT  the node's ports [4433, 8080]
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE_BIN=${NODE_BIN:-target/release/trespasser}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/loadgen}
MODE=${MODE:-direct}
RAMP=${RAMP:-30s}
SETTLE=${SETTLE:-10}
WINDOW=${WINDOW:-60}
NODE_CORES=${NODE_CORES:-${NODE_CORE:-0}}
LOADGEN_CORES=${LOADGEN_CORES:-${LOADGEN_CORE:-1}}
SHARDS=${SHARDS:-1}
CONN_RATE=${CONN_RATE:-1000000}
MAX_SHARD_LOAD=${MAX_SHARD_LOAD:-0.9}
CONN_BURST=${CONN_BURST:-1000000}
OUT=${OUT:-$(mktemp -d /tmp/capacity.XXXXXX)}
mkdir -p "$OUT"
QUIC_PORT=${QUIC_PORT:-4433}
HTTP_PORT=${HTTP_PORT:-8080}
HTTP=http://127.0.0.1:$HTTP_PORT
BOTS_LIST=("${@:-1000 2500}")
# shellcheck disable=SC2206
BOTS_LIST=(${BOTS_LIST[*]})
ramp_s=${RAMP%s}

# Expands a taskset list ("2-5,8") into one core per line.
expand_cores() {
  local part
  for part in ${1//,/ }; do
    if [[ $part == *-* ]]; then seq "${part%-*}" "${part#*-}"; else echo "$part"; fi
  done
}
mapfile -t LG_CORES < <(expand_cores "$LOADGEN_CORES")
# Without curl (a bare machine), python fetches.
fetch() {
  if command -v curl >/dev/null; then curl -fsS "$1"
  else python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
  fi
}
players_now() { fetch "$HTTP/metrics" 2>/dev/null | awk '/^trespasser_players /{print $2}'; }
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
udp_out() { awk '/^Udp:/ { n++; if (n == 2) print $5 }' /proc/net/snmp; }
# The node's own packets, from its metrics: "in out".
node_packets() {
  fetch "$HTTP/metrics" | awk '/^trespasser_udp_packets_total\{dir="in"\}/ { i = $2 }
    /^trespasser_udp_packets_total\{dir="out"\}/ { o = $2 } END { print i + 0, o + 0 }'
}

for BOTS in "${BOTS_LIST[@]}"; do
  DATA=$(mktemp -d "$OUT/node-$BOTS.XXXX")
  # Every bot comes from 127.0.0.1: the per-address connection limit meant
  # for real players would hold joins back (CONN_RATE above).
  taskset -c "$NODE_CORES" "$NODE_BIN" serve --data-dir "$DATA" --quic-addr "127.0.0.1:$QUIC_PORT" \
    --http-addr "127.0.0.1:$HTTP_PORT" --max-lobbies 5000 --max-connections 20000 \
    --conn-rate-per-ip "$CONN_RATE" --conn-burst-per-ip "$CONN_BURST" --max-shard-load "$MAX_SHARD_LOAD" ${NODE_FLAGS:-} >"$DATA/node.log" 2>&1 &
  NODE=$!
  LGS=()
  trap 'kill $NODE "${LGS[@]}" 2>/dev/null || true' EXIT
  for _ in $(seq 200); do grep -q ready "$DATA/node.log" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  rss0=$(rss_kib $NODE)
  duration=$((ramp_s + SETTLE + WINDOW + 5))
  if [ "$MODE" = api ]; then
    target=(--api "$HTTP" --account-prefix "cap$BOTS")
  else
    target=(--direct --data-dir "$DATA" --server "127.0.0.1:$QUIC_PORT" --metrics-url "$HTTP/metrics")
  fi
  # Shards share one start time, a little ahead so all are up by then.
  start_at=$(( $(date +%s%3N) + 2000 ))
  for ((i = 0; i < SHARDS; i++)); do
    if [ "$SHARDS" -gt 1 ]; then
      split=(--shard "$i/$SHARDS" --start-at "$start_at" --json "$OUT/report-$BOTS.shard$i.json")
      log=$OUT/loadgen-$BOTS.shard$i.log
    else
      split=(--json "$OUT/report-$BOTS.json" --html "$OUT/report-$BOTS.html")
      log=$OUT/loadgen-$BOTS.log
    fi
    taskset -c "${LG_CORES[$((i % ${#LG_CORES[@]}))]}" timeout -k 5 $((duration + 300)) "$LOADGEN_BIN" \
      "${target[@]}" --bots "$BOTS" --ramp "$RAMP" --duration "${duration}s" --quiet "${split[@]}" \
      ${LOADGEN_FLAGS:-} >"$log" 2>&1 &
    LGS+=($!)
  done
  # API mode signs every bot in before its clock starts: wait for the joins.
  for _ in $(seq 600); do
    players=$(players_now)
    [ "${players:-0}" -ge 1 ] 2>/dev/null && break
    sleep 0.5
  done
  sleep "$((ramp_s + SETTLE))"
  c0=$(cpu_ticks $NODE); u0=$(udp_out); n0=$(node_packets); t0=$(date +%s.%N)
  p0=$(players_now)
  sleep "$WINDOW"
  c1=$(cpu_ticks $NODE); u1=$(udp_out); n1=$(node_packets); t1=$(date +%s.%N)
  p1=$(players_now)
  rss=$(rss_kib $NODE)
  # Connection attempts the node ignored or refused (rate limits, caps,
  # load), and each QUIC shard's connections and load: "reason=n ...",
  # "shard=connections:load ...".
  metrics_end=$(fetch "$HTTP/metrics" 2>/dev/null || true)
  refused=$(awk -F'[" ]' '/^trespasser_connections_refused_total\{/ { printf "%s=%s ", $2, $4 }' <<<"$metrics_end")
  shard_stats=$(awk -F'[" ]' '/^trespasser_quic_shard_connections\{/ { c[$2] = $4 }
    /^trespasser_quic_shard_load\{/ { l[$2] = $4 }
    END { for (s in c) printf "%s=%s:%s ", s, c[s], l[s] }' <<<"$metrics_end")
  for lg in "${LGS[@]}"; do wait "$lg" || true; done
  if [ "$SHARDS" -gt 1 ]; then
    "$LOADGEN_BIN" merge "$OUT"/report-"$BOTS".shard*.json --json "$OUT/report-$BOTS.json" \
      --html "$OUT/report-$BOTS.html" >"$OUT/merge-$BOTS.log" 2>&1 || cat "$OUT/merge-$BOTS.log" >&2
  fi
  # A node that has not stopped 10 s after SIGTERM is killed: a short
  # lease must not hang on one run.
  kill $NODE 2>/dev/null || true
  for _ in $(seq 100); do kill -0 $NODE 2>/dev/null || break; sleep 0.1; done
  kill -9 $NODE 2>/dev/null || true
  wait $NODE 2>/dev/null || true
  python3 - "$BOTS" "$c0" "$c1" "$t0" "$t1" "$p0" "$p1" "$rss" "$u0" "$u1" "$OUT/report-$BOTS.json" "$rss0" "$n0" "$n1" "$(expand_cores "$NODE_CORES" | wc -l)" "$SHARDS" "$refused" "$shard_stats" <<'PY'
import json, sys
bots, c0, c1, t0, t1, p0, p1, rss, u0, u1, path, rss0, n0, n1, node_cores, shards, refused, shard_stats = sys.argv[1:]
refused = {k: int(float(v)) for k, v in (p.split("=") for p in refused.split())}
node_shards = {}
for p in shard_stats.split():
    shard, v = p.split("=")
    conns, load = v.split(":")
    node_shards[shard] = {"connections": int(float(conns)), "load": round(float(load), 3) if load else None}
(in0, out0), (in1, out1) = [map(float, n.split()) for n in (n0, n1)]
secs = float(t1) - float(t0)
players = (float(p0) + float(p1)) / 2
cpu = (float(c1) - float(c0)) / 100.0
ps = players * secs
try:
    r = json.load(open(path))
except Exception:
    r = {}
row = {
    "bots": int(bots),
    "node_cores_allowed": int(node_cores),
    "loadgen_shards": int(shards),
    "players": players,
    "window_s": round(secs, 1),
    "node_cpu_us_per_player_s": round(cpu / ps * 1e6, 1) if ps else None,
    "node_cpu_cores": round(cpu / secs, 3),
    "node_rss_kib_per_player": round(float(rss) / players, 1) if players else None,
    # What the players added: RSS in the window minus RSS of the idle node.
    "node_rss_added_kib_per_player": round((float(rss) - float(rss0)) / players, 1) if players else None,
    "node_rss_idle_mib": round(float(rss0) / 1024, 1),
    "udp_packets_per_player_s": round((float(u1) - float(u0)) / ps, 1) if ps else None,
    # The node's side alone: packets it received and sent per player-second.
    "node_packets_in_per_player_s": round((in1 - in0) / ps, 1) if ps else None,
    "node_packets_out_per_player_s": round((out1 - out0) / ps, 1) if ps else None,
    "snapshots_per_sec": r.get("snapshots_per_sec"),
    "rtt_ms": r.get("rtt_ms"),
    "join_ms": r.get("join_ms"),
    "tick_p99_ms": (r.get("server") or {}).get("tick_p99_ms"),
    # How late lobby ticks started: a starved or overloaded node, or a
    # host that deschedules it, shows here before anywhere else.
    "tick_lateness_p99_ms": (r.get("server") or {}).get("tick_lateness_p99_ms"),
    "errors": r.get("errors"),
    "node_connections_refused": sum(refused.values()),
    "node_connections_refused_by_reason": {k: v for k, v in refused.items() if v},
    # At the end of the window: how evenly the shards share the players.
    "node_shards": dict(sorted(node_shards.items(), key=lambda kv: int(kv[0]))),
    "bandwidth": r.get("bandwidth"),
    "loadgen": r.get("loadgen"),
}
print(json.dumps(row))
PY
  trap - EXIT
done
echo "reports in $OUT" >&2
