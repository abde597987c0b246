#!/usr/bin/env bash
# Runs `texplain bench` and the PyTorch/HF eager reference (scripts/bench_reference.py) one after the other in the
# same job, with the same arguments and threads, and prints a markdown table: figure, texplain, PyTorch, ratio.
#
# Usage (from the repository root; builds nothing: run `make build` first):
#   PYTHON=/path/to/python-with-torch-and-transformers scripts/bench.sh [bench arguments...]
# e.g.
#   PYTHON=.venv/bin/python scripts/bench.sh --device cpu --threads 2 --steps 20 --warmup 3
#   PYTHON=python3 scripts/bench.sh --device cuda --vit-preset base --lm-preset small --peak-tflops 67
# Every argument goes to both sides (the options of `texplain bench --help`). Environment:
#   PYTHON   interpreter with torch and transformers (required)
#   BIN      the texplain binary (default target/release/texplain)
#   OUT      folder for texplain.json and pytorch.json (default a fresh temporary folder)
# Don't run it next to a build or another heavy job: the timings would be several times off.
set -euo pipefail
: "${PYTHON:?set PYTHON to a python with torch and transformers}"
BIN="${BIN:-target/release/texplain}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
[ -x "$BIN" ] || { echo "bench.sh: $BIN not found; build it first (make build)" >&2; exit 1; }
here="$(cd "$(dirname "$0")" && pwd)"

"$BIN" bench "$@" --json "$OUT/texplain.json"
"$PYTHON" "$here/bench_reference.py" "$@" --json "$OUT/pytorch.json"

"$PYTHON" - "$OUT/texplain.json" "$OUT/pytorch.json" <<'EOF'
import json, sys
ours, ref = (json.load(open(p)) for p in sys.argv[1:3])
rows = [
    ("vit_train", "images_per_s", "ViT train images/s"),
    ("vit_train", "step_ms", "ViT train ms/step"),
    ("vit_train", "mfu", "ViT train MFU"),
    ("sampling", "sentences_per_s", "sampling sentences/s"),
    ("sampling", "tokens_per_s", "sampling tokens/s"),
    ("sampling", "call_ms", "sampling ms/call"),
]
print()
print(f"texplain: {ours['device']}; PyTorch: {ref['implementation']}, {ref['device']}; "
      f"median of {ours['steps']} steps after {ours['warmup']} warmup")
print()
print("| figure | texplain | PyTorch | ratio (texplain / PyTorch; for ms lower is better) |")
print("|---|---:|---:|---:|")
for section, key, label in rows:
    a = (ours.get(section) or {}).get(key)
    b = (ref.get(section) or {}).get(key)
    if a is None or b is None:
        continue
    shape = ours[section]
    if section == "vit_train":
        label += f" ({shape['preset']}, batch {shape['batch']})"
    else:
        label += f" ({shape['preset']}, {shape['images']}x{shape['samples']}x{shape['new_tokens']})"
    print(f"| {label} | {a:.4g} | {b:.4g} | {a / b:.2f}x |")
EOF
echo
echo "JSON: $OUT/texplain.json $OUT/pytorch.json"
