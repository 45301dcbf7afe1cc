#!/usr/bin/env bash
# Seconds from `./dev run` in a fresh clone to its "ready" line (issue 16: under 90 s),
# pip's cache off so that every wheel is downloaded, as on a new machine. Give a baseline
# commit too and both are measured back to back in the same run (compare them as a ratio:
# this machine's load and PyPI's speed move both).
#   bench/first_start.sh [REF] [BASELINE_REF]      e.g. bench/first_start.sh HEAD d6fc83e
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

measure() {
  local ref=$1 dir
  dir=$(mktemp -d /tmp/orderflow-first-start.XXXXXX)
  git clone --quiet "$repo" "$dir/clone" && git -C "$dir/clone" checkout --quiet "$ref"
  cd "$dir/clone"
  local start end pid
  start=$(date +%s.%N)
  PIP_NO_CACHE_DIR=1 ./dev run >run.log 2>&1 &
  pid=$!
  until grep -q ' ready: ' run.log; do
    kill -0 "$pid" 2>/dev/null || { echo "$ref: ./dev run exited"; tail -n 20 run.log; return 1; }
    sleep 0.5
  done
  end=$(date +%s.%N)
  printf '%s: ready after %.1f s (%s lines printed before)\n' "$ref" "$(echo "$end - $start" | bc)" \
    "$(grep -c '' run.log)"
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  cd "$repo"; rm -rf "$dir"
}

measure "${1:-HEAD}"
[ -z "${2:-}" ] || measure "$2"
