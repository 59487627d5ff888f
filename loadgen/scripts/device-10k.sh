#!/usr/bin/env bash
# The 16-core capacity runs (the issue's device machine), as one script so a
# short lease runs them all. Each is a capacity.sh run with loadgen split
# over several processes, one per core, so loadgen is never the bottleneck:
#
#   10k-2core  10,000 bots in 2,500 lobbies (4 players each): the node on
#              cores 0-1 with two QUIC shards (SO_REUSEPORT), 12 loadgen
#              processes on cores 2-13
#   5000-2core 5,000 bots in 8-player lobbies on the same 2 node cores, 10
#              loadgen processes on cores 2-11: where 2 of this machine's
#              cores stand (2026-11-28: 4,000 held, 5,000 saturated them)
#   10k-6core  the same load with the node on cores 0-5 and six QUIC shards,
#              10 loadgen processes on cores 6-15: what 10,000 players cost
#              when the node is not short of cores
#   2500-1core 2,500 bots in 8-player lobbies with the node on core 0, 4
#              loadgen processes on cores 2-5: the per-core figure that the
#              2-core machine cannot measure (its one loadgen core saturates)
#   1000-1core 1,000 bots the same way (2 loadgen processes), and
#   probe-1000 the bare quinn probe (loadgen/examples/quinn_probe.rs) at
#              1,000 players, server on core 0, client on core 2: together
#              they calibrate this host against the issue's reference figure
#              for stock quinn (230-260 us per player-second)
#
#   loadgen/scripts/device-10k.sh [RUN...]      # default: all six, ~7 minutes
#
# The node keeps its load shedding (--max-shard-load 0.9): where a run asks
# more of its cores than they carry, the bots past it are refused and show
# as `overloaded` in the row's node_connections_refused_by_reason.
#
# Build the node with `--profile production` (what ships; the probe stays a
# plain release build, as the issue measured it) and put the three
# binaries in one folder; BENCHMARKS.md "Session 9" has the steps.
#
# Env: BIN_DIR (trespasser, loadgen and quinn_probe) [target/release]; RESULTS,
# where the summary, the merged JSON reports and a tarball of everything go
# [$OUT on the device machine, else a new /tmp dir]; RAMP_10K, WINDOW [40s,
# 30]; BOTS_10K, BOTS_2CORE, BOTS_1CORE, BOTS_PROBE [10000, 5000, 2500, 1000]
# (smaller for a dry run). The device tool brings back at most 8 files, so
# RESULTS holds summary.log, all.tgz and each run's merged JSON report (the
# HTML reports and every shard's report and log are in all.tgz).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN_DIR=${BIN_DIR:-target/release}
RESULTS=${RESULTS:-${OUT:-$(mktemp -d /tmp/device-10k.XXXXXX)}}
RAMP_10K=${RAMP_10K:-40s}
BOTS_10K=${BOTS_10K:-10000}
BOTS_1CORE=${BOTS_1CORE:-2500}
BOTS_PROBE=${BOTS_PROBE:-1000}
BOTS_2CORE=${BOTS_2CORE:-5000}
WINDOW=${WINDOW:-30}
# The most telling run first: a short lease still brings it back.
RUNS=("${@:-10k-2core 5000-2core 10k-6core 2500-1core 1000-1core probe-1000}")
# shellcheck disable=SC2206
RUNS=(${RUNS[*]})
for tool in taskset timeout python3 awk tar; do
  command -v "$tool" >/dev/null || { echo "device-10k.sh needs $tool" >&2; exit 2; }
done
WORK=$(mktemp -d /tmp/device-10k-work.XXXXXX)
mkdir -p "$RESULTS"
SUMMARY=$RESULTS/summary.log

{
  echo "== machine"
  date -u
  uname -r
  echo "cores: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo || true
  free -m | head -2
  # The node asks for 4 MiB UDP buffers; the kernel caps them at rmem_max.
  if [ "$(id -u)" = 0 ]; then
    sysctl -qw net.core.rmem_max=8388608 net.core.wmem_max=8388608 || true
  fi
  sysctl net.core.rmem_max net.core.wmem_max || true
} >>"$SUMMARY" 2>&1

run() {
  local name=$1 bots=$2 ramp=$3
  shift 3
  echo "== $name: $bots bots, $*" >>"$SUMMARY"
  env "$@" NODE_BIN="$BIN_DIR/trespasser" LOADGEN_BIN="$BIN_DIR/loadgen" OUT="$WORK/$name" \
    RAMP="$ramp" SETTLE=8 WINDOW="$WINDOW" QUIC_PORT=4433 HTTP_PORT=8080 \
    loadgen/scripts/capacity.sh "$bots" >>"$SUMMARY" 2>&1 || echo "$name: capacity.sh failed ($?)" >>"$SUMMARY"
  cp "$WORK/$name/report-$bots.json" "$RESULTS/$name.json" 2>/dev/null || true
  # What the node said about itself, last lines (overload shows here first).
  tail -n 5 "$WORK/$name"/node-*/node.log >>"$SUMMARY" 2>/dev/null || true
}

for r in "${RUNS[@]}"; do
  case $r in
    10k-2core)
      run "$r" "$BOTS_10K" "$RAMP_10K" NODE_CORES=0-1 LOADGEN_CORES=2-13 SHARDS=12 \
        NODE_FLAGS="--quic-shards 2 --players-per-lobby 4" LOADGEN_FLAGS="--endpoints 8" ;;
    5000-2core)
      run "$r" "$BOTS_2CORE" 20s NODE_CORES=0-1 LOADGEN_CORES=2-11 SHARDS=10 \
        NODE_FLAGS="--quic-shards 2" LOADGEN_FLAGS="--endpoints 4" ;;
    10k-6core)
      run "$r" "$BOTS_10K" "$RAMP_10K" NODE_CORES=0-5 LOADGEN_CORES=6-15 SHARDS=10 \
        NODE_FLAGS="--quic-shards 6 --players-per-lobby 4" LOADGEN_FLAGS="--endpoints 8" ;;
    2500-1core)
      run "$r" "$BOTS_1CORE" 20s NODE_CORES=0 LOADGEN_CORES=2-5 SHARDS=4 LOADGEN_FLAGS="--endpoints 4" ;;
    1000-1core)
      run "$r" "$BOTS_PROBE" 10s NODE_CORES=0 LOADGEN_CORES=2-3 SHARDS=2 LOADGEN_FLAGS="--endpoints 4" ;;
    probe-1000)
      echo "== $r: $BOTS_PROBE players, bare quinn, server core 0, client core 2" >>"$SUMMARY"
      PROBE_BIN="$BIN_DIR/quinn_probe" NODE_CORE=0 LOADGEN_CORE=2 RAMP=10 RATE=250 SETTLE=5 \
        WINDOW="$WINDOW" OUT="$WORK/$r" loadgen/scripts/quinn-probe.sh "$BOTS_PROBE" >>"$SUMMARY" 2>&1 \
        || echo "$r: quinn-probe.sh failed ($?)" >>"$SUMMARY" ;;
    *) echo "unknown run $r" >&2; exit 2 ;;
  esac
done

# Everything else (shard reports, loadgen and node logs) in one file.
tar -czf "$RESULTS/all.tgz" -C "$WORK" --exclude='*.db*' --exclude='*.sqlite*' . 2>/dev/null || true
# A file over 16 MiB would not come back at all: then only the reports.
if [ "$(stat -c %s "$RESULTS/all.tgz" 2>/dev/null || echo 0)" -gt 15000000 ]; then
  echo "all.tgz over 15 MB: reports only" >>"$SUMMARY"
  (cd "$WORK" && find . \( -name '*.json' -o -name '*.html' -o -name '*.log' -size -200k \) -print0 \
    | tar -czf "$RESULTS/all.tgz" --null -T -) || true
fi
cat "$SUMMARY"
