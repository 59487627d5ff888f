#!/usr/bin/env bash
# Bare quinn probe: what plain quinn 0.11 costs a server per player-second
# with no game logic, to calibrate this host before comparing the node's
# capacity.sh figures (run both on the same cores in the same session). The
# probe server is pinned to one core, its client to another; every player
# sends a 40-byte datagram at 20 Hz and receives a 120-byte one at 20 Hz
# (loadgen/examples/quinn_probe.rs says what mirrors the node's transport).
# Prints, per player count, one JSON line: server CPU per player-second
# (user + system from /proc/<pid>/stat over the steady window), RSS per
# player, UDP packets per player-second, and the client's own summary.
#
#   loadgen/scripts/quinn-probe.sh [PLAYERS...]      # default: 1000
#
# Builds nothing; build the probe first:
#   cargo build --release -p loadgen --example quinn_probe
#
# Env:
#   PROBE_BIN  the probe [target/release/examples/quinn_probe]
#   RAMP       seconds the client gets to connect everyone [20]
#   RATE       connections per second at most [200]
#   SETTLE     wait after the ramp [5]     WINDOW  measured window in seconds [30]
#   NODE_CORE, LOADGEN_CORE  server and client cores [0, 1]
#   QUIC_PORT  the server's UDP port [4633]
#   OUT        where logs go [a new /tmp/quinn-probe.XXXX]
set -euo pipefail
cd "$(dirname "$0")/../.."
PROBE_BIN=${PROBE_BIN:-target/release/examples/quinn_probe}
RAMP=${RAMP:-20}
RATE=${RATE:-200}
SETTLE=${SETTLE:-5}
WINDOW=${WINDOW:-30}
NODE_CORE=${NODE_CORE:-0}
LOADGEN_CORE=${LOADGEN_CORE:-1}
QUIC_PORT=${QUIC_PORT:-4633}
PLAYERS_LIST=("${@:-1000}")
# shellcheck disable=SC2206
PLAYERS_LIST=(${PLAYERS_LIST[*]})
ramp_s=${RAMP%s}

if [ ! -x "$PROBE_BIN" ]; then
  echo "quinn-probe: $PROBE_BIN is missing; this script builds nothing. Build it with:" >&2
  echo "  cargo build --release -p loadgen --example quinn_probe" >&2
  exit 2
fi
OUT=${OUT:-$(mktemp -d /tmp/quinn-probe.XXXXXX)}
mkdir -p "$OUT"

SERVER=
CLIENT=
cleanup() {
  for pid in $CLIENT $SERVER; do kill "$pid" 2>/dev/null || true; done
  for pid in $CLIENT $SERVER; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
# Exiting runs the EXIT trap, so an interrupted run leaves nothing behind.
trap 'exit 130' INT
trap 'exit 143' TERM

clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# Host-wide UDP counters (second "Udp:" line): "OutDatagrams RcvbufErrors".
udp_counters() { awk '/^Udp:/ { n++; if (n == 2) print $5, $6 }' /proc/net/snmp; }

for PLAYERS in "${PLAYERS_LIST[@]}"; do
  if [ $((PLAYERS)) -gt $((ramp_s * RATE)) ]; then
    echo "quinn-probe: $PLAYERS players need more than RAMP=${ramp_s}s at $RATE/s; the window may start mid-ramp" >&2
  fi
  CERT=$OUT/cert-$PLAYERS.der
  SERVER_LOG=$OUT/server-$PLAYERS.log
  taskset -c "$NODE_CORE" "$PROBE_BIN" server "127.0.0.1:$QUIC_PORT" --cert "$CERT" >"$SERVER_LOG" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do
    grep -qx ready "$SERVER_LOG" 2>/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -qx ready "$SERVER_LOG" 2>/dev/null; then
    echo "quinn-probe: the server did not get ready; its log ($SERVER_LOG):" >&2
    cat "$SERVER_LOG" >&2
    exit 1
  fi
  rss0=$(rss_kib "$SERVER")

  # The client stops by itself a little after the window.
  seconds=$((ramp_s + SETTLE + WINDOW + 2))
  taskset -c "$LOADGEN_CORE" "$PROBE_BIN" client "127.0.0.1:$QUIC_PORT" --players "$PLAYERS" \
    --seconds "$seconds" --rate "$RATE" --cert "$CERT" >"$OUT/client-$PLAYERS.json" 2>"$OUT/client-$PLAYERS.log" &
  CLIENT=$!
  sleep "$((ramp_s + SETTLE))"
  c0=$(cpu_ticks "$SERVER"); u0=$(udp_counters); t0=$(date +%s.%N)
  sleep "$WINDOW"
  c1=$(cpu_ticks "$SERVER"); u1=$(udp_counters); t1=$(date +%s.%N)
  rss=$(rss_kib "$SERVER")

  # Its own end, plus its close grace and some slack; then it is stopped.
  for _ in $(seq 100); do kill -0 "$CLIENT" 2>/dev/null || break; sleep 0.1; done
  kill "$CLIENT" 2>/dev/null || true
  wait "$CLIENT" 2>/dev/null || echo "quinn-probe: the client failed; see $OUT/client-$PLAYERS.log" >&2
  CLIENT=
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=

  python3 - "$PLAYERS" "$c0" "$c1" "$t0" "$t1" "$rss0" "$rss" "$u0" "$u1" "$clk_tck" "$OUT/client-$PLAYERS.json" <<'PY'
import json, sys
players, c0, c1, t0, t1, rss0, rss, u0, u1, clk_tck, path = sys.argv[1:]
players = int(players)
(out0, rcvbuf0), (out1, rcvbuf1) = [map(float, u.split()) for u in (u0, u1)]
secs = float(t1) - float(t0)
cpu = (float(c1) - float(c0)) / float(clk_tck)
ps = players * secs
try:
    client = json.load(open(path))
except Exception:
    client = {}
connected = client.get("players_connected")
if connected != players or client.get("players_lost"):
    print(f"quinn-probe: {connected} of {players} players connected, {client.get('players_lost')} lost: "
          "the per-player figures assume all of them", file=sys.stderr)
row = {
    "players": players,
    "window_s": round(secs, 1),
    "server_cpu_us_per_player_s": round(cpu / ps * 1e6, 1) if ps else None,
    "server_cpu_cores": round(cpu / secs, 3) if secs else None,
    "server_rss_kib_per_player": round(float(rss) / players, 1) if players else None,
    "server_rss_idle_mib": round(float(rss0) / 1024, 1),
    # Host-wide OutDatagrams: on loopback that is the server's and the
    # client's sends together (plus anything else on the host).
    "udp_packets_per_player_s_both_directions_loopback": round((out1 - out0) / ps, 1) if ps else None,
    # Host-wide receive-buffer drops in the window; non-zero means overload.
    "udp_rcvbuf_errors": int(rcvbuf1 - rcvbuf0),
    "client": client,
}
print(json.dumps(row))
PY
done
echo "logs in $OUT" >&2
