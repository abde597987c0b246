# Two commands do all the set-up on a fresh machine: `make demo` (the main job: a run, then its check against the
# committed reference results/reference/<name>/, ending with the path of the run's report.html) and `make test` (the tests).
# Both fetch a CPU libtorch 2.11.0 into ~/.cache/texplain on first use (scripts/fetch-libtorch.sh); a LIBTORCH
# that is already set wins. Everything is built in release mode, once, for the binary and the tests alike.
WITH_LIBTORCH := scripts/with-libtorch.sh
CONFIG ?= configs/quickstart.yaml
# The run directory of CONFIG (results/<name>, the config's `name` being its file name) and its committed reference.
RUN_DIR ?= results/$(basename $(notdir $(CONFIG)))

.PHONY: build demo test test-slurm lint fmt libtorch build-cuda gpu-check

libtorch:
	@scripts/fetch-libtorch.sh

build:
	$(WITH_LIBTORCH) cargo build --release

demo: build
	target/release/texplain run $(CONFIG)
	target/release/texplain check-reference $(RUN_DIR)
	@echo "report: $(RUN_DIR)/report.html"

test:
	$(WITH_LIBTORCH) cargo test --release

# The plan on a real Slurm (tests/slurm.rs): scripts/install-slurm.sh installs and starts a one-node cluster once
# (root, apt-get); here a missing cluster fails the test instead of skipping it. SLURM_LOG=PATH keeps what it printed.
test-slurm:
	TEXPLAIN_REQUIRE_SLURM=1 TEXPLAIN_SLURM_LOG=$(SLURM_LOG) $(WITH_LIBTORCH) cargo test --release --test slurm -- --nocapture

lint:
	cargo fmt --all -- --check
	$(WITH_LIBTORCH) cargo clippy --release --all-targets -- -D warnings

fmt:
	cargo fmt --all

# A GPU build: links the whole wheel's libtorch (libtorch_cuda included) into target/cuda/release/texplain.
# Run it where PyTorch 2.11 with CUDA is installed, with that PyTorch's lib/ on LD_LIBRARY_PATH (README "GPU").
build-cuda:
	LIBTORCH=$$(scripts/fetch-libtorch.sh --cuda) CARGO_TARGET_DIR=target/cuda cargo build --release

# The GPU check (issue 15): the CUDA binary and the PyTorch reference side by side, f32 and bf16, and the quickstart
# on the GPU; builds nothing (run `make build-cuda` first). `scripts/gpu-check.sh --dry-run` is its CPU rehearsal.
gpu-check:
	scripts/gpu-check.sh
