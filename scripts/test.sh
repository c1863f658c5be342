#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, builds the real
# control plane once (cached outside the repo), starts one for the run, runs every test
# (unit, API, integration) against it, and stops exactly what it started; then the chart and
# the images as real pods on a node of their own (scripts/node-e2e.sh).
#   scripts/test.sh                      everything
#   scripts/test.sh [cargo test args...] only those cargo tests (no node)
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo go kubectl; do
  command -v "$tool" >/dev/null || { echo "scripts/test.sh: $tool is required but not on PATH" >&2; exit 1; }
done
tests/control-plane/install-deps.sh
# helm for the chart tests, built from the Go module proxy once and cached like the control plane.
SIP_OPERATOR_TEST_HELM=$(tests/tools/helm/build.sh)
export SIP_OPERATOR_TEST_HELM

state=$(mktemp -d "${TMPDIR:-/tmp}/sip-operator-test.XXXXXX")
trap 'tests/control-plane/stop.sh "$state" --purge' EXIT
tests/control-plane/start.sh "$state" --owner-pid $$
export SIP_OPERATOR_TEST_CONTROL_PLANE=$state

cargo test --locked "$@"
if [ $# -eq 0 ]; then
  scripts/node-e2e.sh
fi
