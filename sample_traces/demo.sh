#!/usr/bin/env bash
# make demo: tracedamon's whole pipeline on the sample traces.
# Usage: demo.sh TRACEDAMON OUTDIR
# Running it again replaces its outputs with --force, which replaces only what
# tracedamon wrote: anything else in OUTDIR is left alone (and an output path held
# by a file of yours stops the demo with a one-line message).
set -euo pipefail
TD=${1:-tracedamon}
OUT=${2:-out/demo}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }

step "1. ingest a real perf recording (sample_traces/hotcold.perf.data: 32 hot pages, 256 cold)"
"$TD" ingest "$HERE/hotcold.perf.data" -o "$OUT/hotcold.td" --force

step "2. replay it through DAMON (vaddr, perf-event access check, 10 ms samples, 100 ms aggregations)"
"$TD" replay "$OUT/hotcold.td" --ops vaddr --start auto --sample-us 10000 -o "$OUT/replay-perf.parquet" --force

step "3. the same samples through DAMON's accessed-bit check, emulated"
"$TD" replay "$OUT/hotcold.td" --ops vaddr --start auto --sample-us 10000 --access abit -o "$OUT/replay-abit.parquet" --force

step "4. fixed 4 KiB granularity (the RFC's region_sz min == max)"
"$TD" replay "$OUT/hotcold.td" --ops vaddr --start auto --sample-us 10000 \
    --min-region 4096 --max-region 4096 --accessed-only -o "$OUT/replay-4k.parquet" --force

step "5. compare: perf-based monitoring (A) against the accessed-bit check (B)"
"$TD" compare "$OUT/replay-perf.parquet" "$OUT/replay-abit.parquet" -o "$OUT/perf-vs-abit.json" --force

step "6. heatmaps: the perf replay, and where the two checks differ"
"$TD" report heatmap "$OUT/replay-perf.parquet" --png "$OUT/heatmap-perf.png" --force
"$TD" report heatmap "$OUT/replay-perf.parquet" --diff "$OUT/replay-abit.parquet" --png "$OUT/heatmap-diff.png" --force

step "7. a real DAMON trace of this kind of machine (paddr, accessed bits), ingested from perf.data"
"$TD" ingest "$HERE/damon/live_paddr.perf.data" -o "$OUT/damon.td" --force
"$TD" report wss "$OUT/damon.td"

step "8. export the perf replay as a damo record"
"$TD" export damo "$OUT/replay-perf.parquet" -o "$OUT/replay-perf.damo" --force

step "9. an interactive report: the perf replay, the accessed-bit replay, their difference, the samples"
"$TD" report html "$OUT/replay-perf.parquet" --diff "$OUT/replay-abit.parquet" --samples -o "$OUT/report.html"

step "10. sweep: 12 configurations on Dask (2 workers) over the workload's pages, scored against 4 KiB monitoring"
W=(--ops fvaddr --range 0x200000000000-0x200000120000)
"$TD" replay "$OUT/hotcold.td" "${W[@]}" --min-region 4096 --max-region 4096 -q -o "$OUT/replay-fv4k.parquet"
"$TD" sweep "$OUT/hotcold.td" "${W[@]}" --grid sample-us=5000,10000,20000 --grid min-nr-regions=10,30 \
    --grid access=perf,abit --reference "$OUT/replay-fv4k.parquet" --workers 2 -o "$OUT/sweep.parquet" --png "$OUT/pareto.png"

step "outputs in $OUT"
ls -1 "$OUT"
