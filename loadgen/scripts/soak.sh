#!/usr/bin/env bash
# The soak: the node pinned to one core, loadgen to another, BOTS bots in
# 8-player lobbies at 20 Hz for DURATION. loadgen scrapes the node every
# second and reports the fitted trend of its memory after the warm-up
# (`soak` in the JSON report, the `memory_flat` verdict, and the plots of
# the HTML report).
#
#   loadgen/scripts/soak.sh [BOTS]          # default 1000
#
# Env:
#   NODE_BIN, LOADGEN_BIN   binaries (default target/release/...)
#   DURATION [1h]  WARMUP [5m]  RAMP [30s]
#   NODE_CORE, LOADGEN_CORE [0, 1]   NODE_FLAGS, LOADGEN_FLAGS  extra flags
#   OUT  where the reports go [a new /tmp/soak.XXXX]
#   QUIC_PORT, HTTP_PORT  the node's ports [4433, 8080]
#   ROLE  serve (the embedded node: in-process API and SQLite store, whose
#         page cache grows with the match results it records) or game (the
#         production game-node role alone: a throwaway certificate from
#         openssl, results to the Redis directory at REDIS_URL) [serve]
#   REDIS_URL  [redis://127.0.0.1:6379]; the game role writes under a
#         prefix of its own (soak-<pid>)
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE_BIN=${NODE_BIN:-target/release/trespasser}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/loadgen}
BOTS=${1:-1000}
DURATION=${DURATION:-1h}
WARMUP=${WARMUP:-5m}
RAMP=${RAMP:-30s}
NODE_CORE=${NODE_CORE:-0}
LOADGEN_CORE=${LOADGEN_CORE:-1}
OUT=${OUT:-$(mktemp -d /tmp/soak.XXXXXX)}
QUIC_PORT=${QUIC_PORT:-4433}
HTTP_PORT=${HTTP_PORT:-8080}
mkdir -p "$OUT"
DATA=$(mktemp -d "$OUT/node.XXXX")

ROLE=${ROLE:-serve}
common=(--data-dir "$DATA" --quic-addr "127.0.0.1:$QUIC_PORT" --http-addr "127.0.0.1:$HTTP_PORT"
  --max-lobbies 5000 --max-connections 20000)
direct=(--direct --data-dir "$DATA")
case "$ROLE" in
  serve)
    # shellcheck disable=SC2086
    taskset -c "$NODE_CORE" "$NODE_BIN" serve "${common[@]}" ${NODE_FLAGS:-} >"$OUT/node.log" 2>&1 &
    ;;
  game)
    command -v openssl >/dev/null || { echo "ROLE=game needs openssl for a throwaway certificate" >&2; exit 1; }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
      -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE -keyout "$DATA/key.pem" -out "$DATA/cert.pem" 2>/dev/null
    openssl x509 -in "$DATA/cert.pem" -outform der -out "$DATA/cert.der"
    ticket_key=$(openssl rand -hex 32)
    # shellcheck disable=SC2086
    REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379} TRESPASSER_TICKET_KEY=$ticket_key \
      taskset -c "$NODE_CORE" "$NODE_BIN" game "${common[@]}" --tls-cert "$DATA/cert.pem" \
      --tls-key "$DATA/key.pem" --directory-prefix "soak-$$" ${NODE_FLAGS:-} >"$OUT/node.log" 2>&1 &
    direct+=(--cert "$DATA/cert.der" --ticket-key "$ticket_key")
    ;;
  *) echo "ROLE must be serve or game" >&2; exit 1 ;;
esac
NODE=$!
cleanup() {
  kill "$NODE" 2>/dev/null || true
  # The game role's directory entries and recorded results.
  if [ "$ROLE" = game ] && command -v redis-cli >/dev/null; then
    sleep 1
    redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379}" --scan --pattern "soak-$$*" |
      xargs -r redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379}" del >/dev/null || true
  fi
}
trap cleanup EXIT
for _ in $(seq 200); do grep -q ready "$OUT/node.log" 2>/dev/null && break; sleep 0.1; done

# shellcheck disable=SC2086
taskset -c "$LOADGEN_CORE" "$LOADGEN_BIN" "${direct[@]}" --server "127.0.0.1:$QUIC_PORT" \
  --metrics-url "http://127.0.0.1:$HTTP_PORT/metrics" --bots "$BOTS" --ramp "$RAMP" \
  --soak --duration "$DURATION" --soak-warmup "$WARMUP" \
  --json "$OUT/report.json" --html "$OUT/report.html" ${LOADGEN_FLAGS:-} | tee "$OUT/loadgen.log"
echo "reports in $OUT" >&2
