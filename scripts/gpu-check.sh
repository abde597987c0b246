#!/usr/bin/env bash
# The GPU check of issue 15 in one job (at most ~10 minutes on an H100), building nothing:
#   1. ViT-B/16 at 384 px, one training step at batch 64, f32 and bf16: images/s and MFU, `texplain bench` beside the
#      PyTorch eager + HF ViT (sdpa) reference (scripts/bench_reference.py; bf16 = torch.autocast) in the same job;
#   2. nucleus sampling with GPT-2 small (10-token prefix, 30 new tokens, top-p 0.95), f32 and bf16: sentences/s beside
#      HF `generate`, and the projected time for the paper's 4795 x 1000 sentences;
#   3. the quickstart with `--device cuda`, its table beside the committed CPU run's (results/reference/quickstart/);
# then prints the markdown table for BENCHMARKS.md.
#
# Usage (from the repository root):
#   scripts/gpu-check.sh              on a machine with PyTorch 2.11 + CUDA and transformers, running the CUDA binary
#                                     built beforehand with `make build-cuda` (target/cuda/release/texplain)
#   scripts/gpu-check.sh --dry-run    (or DRY_RUN=1) the same steps on the CPU at tiny sizes, in seconds, with the CPU
#                                     binary (target/release/texplain); without torch/transformers the PyTorch side is
#                                     skipped with a message saying what it would run; the quickstart is only validated
#                                     and its command printed. tests/gpu_check.rs runs this in the test suite.
# Environment:
#   PYTHON         interpreter with torch and transformers (default python3)
#   BIN            the texplain binary (default target/cuda/release/texplain; dry run target/release/texplain)
#   OUT            folder for the JSON figures, the quickstart run and table.md (default a fresh temporary folder)
#   PEAK_F32       peak dense TFLOP/s for the f32 MFU (default 67, H100 SXM / H200 fp32; 51 on an H100 PCIe)
#   PEAK_BF16      peak dense TFLOP/s for the bf16 MFU (default 989, H100 SXM / H200 bf16; 756 on an H100 PCIe)
#   QUICKSTART_TIMEOUT  seconds the quickstart may take (default 300)
# Don't run it next to a build or another heavy job: the timings would be several times off.
set -euo pipefail

dry_run="${DRY_RUN:-0}"
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument $arg (only --dry-run)" >&2; exit 2 ;;
  esac
done
[ "$dry_run" = 0 ] || dry_run=1

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
PYTHON="${PYTHON:-python3}"
OUT="${OUT:-$(mktemp -d)}"
QUICKSTART_TIMEOUT="${QUICKSTART_TIMEOUT:-300}"
mkdir -p "$OUT"
start=$(date +%s)

if [ "$dry_run" = 1 ]; then
  BIN="${BIN:-$root/target/release/texplain}"
  device=cpu
  # Tiny shapes, one timed step: seconds on a CPU.
  vit_args=(--vit-preset tiny --batch 4 --steps 1 --warmup 0 --threads 2)
  lm_args=(--lm-preset tiny --images 2 --samples 3 --new-tokens 5 --steps 1 --warmup 0 --threads 2)
else
  BIN="${BIN:-$root/target/cuda/release/texplain}"
  device=cuda
  vit_args=(--vit-preset base --batch 64 --steps 10 --warmup 3)
  lm_args=(--lm-preset small --images 10 --samples 100 --new-tokens 30 --steps 5 --warmup 2)
fi
[ -x "$BIN" ] || {
  echo "gpu-check.sh: $BIN not found; build it first ($([ "$dry_run" = 1 ] && echo 'make build' || echo 'make build-cuda'))" >&2
  exit 1
}

# The PyTorch side: needs torch and transformers (and CUDA unless dry).
have_python=0
command -v "$PYTHON" > /dev/null 2>&1 && have_python=1
have_torch=0
if [ "$have_python" = 1 ] && "$PYTHON" -c "import torch, transformers" > /dev/null 2>&1; then
  have_torch=1
fi
if [ "$dry_run" = 0 ]; then
  [ "$have_torch" = 1 ] || { echo "gpu-check.sh: $PYTHON lacks torch or transformers" >&2; exit 1; }
  "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
    echo "gpu-check.sh: PyTorch sees no CUDA device" >&2
    exit 1
  }
  # The CUDA binary resolves libtorch_cuda and the CUDA libraries through this PyTorch's lib/ (README "GPU").
  torch_lib="$("$PYTHON" -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")"
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  card="$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -1 || true)"
  case "$card" in
    *PCIe*) PEAK_F32="${PEAK_F32:-51}" PEAK_BF16="${PEAK_BF16:-756}" ;;
  esac
  echo "card: ${card:-unknown}; $("$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'transformers', transformers.__version__)")"
elif [ "$have_torch" = 0 ]; then
  echo "gpu-check.sh: dry run without torch/transformers ($PYTHON): skipping the PyTorch reference; it would run" \
    "$here/bench_reference.py with the same arguments as texplain bench below"
fi

PEAK_F32="${PEAK_F32:-67}"
PEAK_BF16="${PEAK_BF16:-989}"
echo "MFU against peaks of $PEAK_F32 (f32) and $PEAK_BF16 (bf16) TFLOP/s"

# One benchmark on both sides: texplain, then the reference with the same arguments. A failure (e.g. out of
# memory) is reported and counted, and the other figures are still taken: the table shows it as a gap.
failures=0
bench() { # name, precision, bench arguments...
  local name="$1" precision="$2"
  shift 2
  local peak="$PEAK_F32"
  [ "$precision" = bf16 ] && peak="$PEAK_BF16"
  local args=(--device "$device" --precision "$precision" --peak-tflops "$peak" "$@")
  echo "+ texplain bench ${args[*]}"
  "$BIN" bench "${args[@]}" --json "$OUT/$name-$precision-texplain.json" || {
    echo "gpu-check.sh: texplain bench failed ($name, $precision)" >&2
    failures=$((failures + 1))
  }
  if [ "$have_torch" = 1 ]; then
    echo "+ bench_reference.py ${args[*]}"
    "$PYTHON" "$here/bench_reference.py" "${args[@]}" --json "$OUT/$name-$precision-pytorch.json" || {
      echo "gpu-check.sh: the PyTorch reference failed ($name, $precision)" >&2
      failures=$((failures + 1))
    }
  else
    echo "(would run: $PYTHON $here/bench_reference.py ${args[*]} --json $OUT/$name-$precision-pytorch.json)"
  fi
}

for precision in f32 bf16; do
  bench vit "$precision" --what vit-train "${vit_args[@]}"
done
for precision in f32 bf16; do
  bench sampling "$precision" --what sampling "${lm_args[@]}"
done

# The quickstart on the GPU (the dry run only validates its config: a run takes minutes).
qs_cmd=("$BIN" run "$root/configs/quickstart.yaml" --device "$device" --out "$OUT/quickstart-$device")
qs_seconds=""
if [ "$dry_run" = 1 ]; then
  "$BIN" config "$root/configs/quickstart.yaml" > /dev/null
  echo "(would run: timeout $QUICKSTART_TIMEOUT ${qs_cmd[*]})"
else
  echo "+ ${qs_cmd[*]}"
  qs_start=$(date +%s)
  if timeout "$QUICKSTART_TIMEOUT" "${qs_cmd[@]}"; then
    qs_seconds=$(($(date +%s) - qs_start))
  else
    echo "gpu-check.sh: the quickstart failed or ran past ${QUICKSTART_TIMEOUT} s; the benchmarks above still count" >&2
    failures=$((failures + 1))
  fi
fi

# The table (standard-library Python only; without any Python the JSON files are the result).
if [ "$have_python" = 0 ]; then
  echo "gpu-check.sh: no $PYTHON to print the table; the figures are in $OUT/*.json"
  exit "$((failures > 0))"
fi
"$PYTHON" - "$OUT" "$dry_run" "${qs_seconds:-}" "$root/results/reference/quickstart/table.md" <<'EOF'
import json, os, sys

out, dry, qs_seconds, cpu_table = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
PAPER_SENTENCES = 4795 * 1000


def load(name, precision, impl):
    path = os.path.join(out, f"{name}-{precision}-{impl}.json")
    return json.load(open(path)) if os.path.exists(path) else None


def fmt(x, spec):
    return "—" if x is None else format(x, spec)


def ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:.2f}x"


def get(fig, section, key):
    return None if fig is None or fig.get(section) is None else fig[section].get(key)


def first(impl):
    figs = [load(n, p, impl) for n in ("vit", "sampling") for p in ("f32", "bf16")]
    return next((f for f in figs if f), None)


ours0, ref0 = first("texplain"), first("pytorch")
print()
print(f"texplain: {ours0['device'] if ours0 else 'failed'}; "
      f"PyTorch: {ref0['implementation'] + ', ' + ref0['device'] if ref0 else 'not run'}"
      + (" (dry run: tiny shapes on the CPU, not the issue's figures)" if dry else ""))
print()
print("| figure | precision | texplain | PyTorch | texplain / PyTorch |")
print("|---|---|---:|---:|---:|")
rows = []
for precision in ("f32", "bf16"):
    ours, theirs = load("vit", precision, "texplain"), load("vit", precision, "pytorch")
    v = (ours or theirs or {}).get("vit_train")
    shape = f"ViT {v['preset']} {v['image_size']} px, batch {v['batch']}" if v else "ViT (failed)"
    a, b = get(ours, "vit_train", "images_per_s"), get(theirs, "vit_train", "images_per_s")
    rows.append((f"{shape}: train images/s", precision, fmt(a, ".1f"), fmt(b, ".1f"), ratio(a, b)))
    a, b = get(ours, "vit_train", "mfu"), get(theirs, "vit_train", "mfu")
    pct = lambda x: None if x is None else 100 * x
    rows.append((f"{shape}: MFU %", precision, fmt(pct(a), ".1f"), fmt(pct(b), ".1f"), ratio(a, b)))
for precision in ("f32", "bf16"):
    ours, theirs = load("sampling", precision, "texplain"), load("sampling", precision, "pytorch")
    s = (ours or theirs or {}).get("sampling")
    shape = (f"GPT-2 {s['preset']}, prefix {s['prefix_len']}, {s['new_tokens']} new tokens, "
             f"{s['images']}x{s['samples']}" if s else "GPT-2 sampling (failed)")
    a, b = get(ours, "sampling", "sentences_per_s"), get(theirs, "sampling", "sentences_per_s")
    rows.append((f"{shape}: sentences/s", precision, fmt(a, ".1f"), fmt(b, ".1f"), ratio(a, b)))
    minutes = lambda x: None if x is None else PAPER_SENTENCES / x / 60
    rows.append((f"{shape}: projected minutes for 4795 x 1000 sentences", precision,
                 fmt(minutes(a), ".1f"), fmt(minutes(b), ".1f"), ratio(minutes(a), minutes(b))))
for row in rows:
    print("| " + " | ".join(row) + " |")
print()
print("bf16 speed-up over f32 (same implementation, same job):")
for impl in ("texplain", "pytorch"):
    parts = []
    for name, section, key in (("vit", "vit_train", "images_per_s"), ("sampling", "sampling", "sentences_per_s")):
        a, b = get(load(name, "bf16", impl), section, key), get(load(name, "f32", impl), section, key)
        parts.append(f"{name} {ratio(a, b)}")
    print(f"- {impl}: " + ", ".join(parts))

qs = os.path.join(out, f"quickstart-{'cpu' if dry else 'cuda'}", "table.md")
if os.path.exists(qs):
    print()
    print(f"Quickstart on the GPU ({qs_seconds} s):")
    print()
    print(open(qs).read())
    if os.path.exists(cpu_table):
        print("Committed CPU run (results/reference/quickstart/table.md):")
        print()
        print(open(cpu_table).read())
elif not dry:
    print()
    print("The quickstart did not finish: no table.")
EOF
echo
echo "figures: $OUT/*.json; total $(($(date +%s) - start)) s; $failures failed step(s)"
exit "$((failures > 0))"
