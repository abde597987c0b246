#!/usr/bin/env bash
# Copies a finished run directory into results/reference/<name>/, the committed reference that
# `texplain check-reference` and `make demo` compare against: every table, summary, curve, figure and stage
# record, without the weights (*.safetensors), the sampled sentences (*.jsonl), the per-image word lists and the
# run's lock. Usage: scripts/save-reference.sh results/quickstart
set -euo pipefail
run=${1:?usage: scripts/save-reference.sh RUN_DIR}
[[ -f "$run/run.json" && -f "$run/results.csv" ]] || { echo "save-reference: $run is not a finished run" >&2; exit 1; }
name=$(basename "$run")
dest=results/reference/$name
tmp=$(mktemp -d "results/reference/.$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -a "$run/." "$tmp/"
find "$tmp" -depth \( -name '*.safetensors' -o -name '*.jsonl' -o -name 'words-train.csv' -o -name 'words-test.csv' \
  -o -name '.lock' -o -name '*.partial' \) -exec rm -rf {} +
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "saved $run -> $dest ($(du -sh "$dest" | cut -f1))"
