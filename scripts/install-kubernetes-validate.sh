#!/usr/bin/env bash
# Installs kubernetes-validate (PyPI; the Kubernetes API's JSON schemas, checked offline) into a virtual environment
# under ~/.cache/texplain/kubernetes-validate, once, for the test of the emitted Indexed Jobs (tests/k8s.rs), and
# prints the path of its `kubernetes-validate` command. Exits non-zero, saying why, where it cannot (no python3, no
# venv module, pip cannot reach PyPI); the test then skips with that message.
set -euo pipefail

VERSION=1.37.0
venv="${XDG_CACHE_HOME:-$HOME/.cache}/texplain/kubernetes-validate"
bin="$venv/bin/kubernetes-validate"

if [[ -x "$bin" ]] && [[ "$("$bin" --version 2>/dev/null)" == *"$VERSION"* ]]; then
  echo "$bin"
  exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "install-kubernetes-validate: no python3 on this machine" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! python3 -m venv "$venv" >"$log" 2>&1; then
  echo "install-kubernetes-validate: python3 -m venv $venv failed:" >&2
  tail -n 3 "$log" >&2
  exit 1
fi
if ! "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$VERSION" >"$log" 2>&1; then
  echo "install-kubernetes-validate: pip could not install kubernetes-validate==$VERSION:" >&2
  tail -n 3 "$log" >&2
  exit 1
fi
[[ -x "$bin" ]] || { echo "install-kubernetes-validate: installed, but $bin is missing" >&2; exit 1; }
echo "$bin"
