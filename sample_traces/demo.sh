#!/usr/bin/env bash
# make demo: the main jobs of tracedamon on the sample traces. Usage: demo.sh TRACEDAMON OUTDIR
set -euo pipefail
TD=${1:-tracedamon}
OUT=${2:-out/demo}
HERE=$(cd "$(dirname "$0")" && pwd)
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== ingest: sample_traces/hotcold.perf.data -> $OUT/hotcold.td"
"$TD" ingest "$HERE/hotcold.perf.data" -o "$OUT/hotcold.td"
