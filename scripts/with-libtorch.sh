#!/usr/bin/env bash
# Runs a command with LIBTORCH pointing at a libtorch 2.11.0, fetching the CPU build first if needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$("$here/fetch-libtorch.sh")
[[ -n "$dir" ]] && export LIBTORCH="$dir"
exec "$@"
