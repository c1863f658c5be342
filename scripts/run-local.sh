#!/usr/bin/env bash
# Runs sip-operator's main job locally on a fresh machine: a real control plane on 127.0.0.1
# (built once from the Kubernetes Go modules), the CRDs, the operator (built from this
# checkout), and examples/ applied to the namespace sip-demo; waits for the users to go Ready
# and prints `kubectl get sip`. It leaves everything running.
#   scripts/run-local.sh        start (or reuse) and apply
#   scripts/run-local.sh down   stop what it started
# State lives in $SIP_OPERATOR_LOCAL_DIR (default .local/ in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
state=${SIP_OPERATOR_LOCAL_DIR:-$PWD/.local}
ns=sip-demo

stop_operator() {
  if [ -s "$state/operator.pid" ]; then
    pid=$(cat "$state/operator.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$state/operator.pid"
  fi
}

if [ "${1:-}" = "down" ]; then
  stop_operator
  tests/control-plane/stop.sh "$state/control-plane" --purge
  echo "run-local: stopped"
  exit 0
fi

for tool in cargo go kubectl; do
  command -v "$tool" >/dev/null || { echo "run-local: $tool is required but not on PATH" >&2; exit 1; }
done

cp="$state/control-plane"
export KUBECONFIG="$cp/kubeconfig"
if [ -s "$cp/pids" ] && kubectl get --raw /readyz >/dev/null 2>&1; then
  echo "run-local: reusing the control plane in $cp" >&2
else
  [ -d "$cp" ] && tests/control-plane/stop.sh "$cp" --purge
  tests/control-plane/start.sh "$cp"
fi

kubectl apply --server-side --field-manager=run-local -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s \
  crd/sipdomains.sipoperator.io crd/sipprofiles.sipoperator.io crd/sipusers.sipoperator.io >/dev/null
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null

# The operator, as it would run in the cluster: one replica, leader election on, JSON logs.
cargo build --quiet --locked --bin sip-operator
stop_operator
./target/debug/sip-operator --http-addr 127.0.0.1:0 --lease-namespace "$ns" --log-format json \
  >> "$state/operator.log" 2>&1 &
echo $! > "$state/operator.pid"

kubectl -n "$ns" apply --server-side --field-manager=run-local -f examples/
kubectl -n "$ns" wait --for=condition=Ready --timeout=120s sipdomains,sipprofiles,sipusers --all

echo
kubectl -n "$ns" get sip
cat <<MSG

run-local: the control plane and the operator are running (operator log: $state/operator.log).
Read a user's credentials with
  kubectl -n $ns get secret alice-sip-credentials -o jsonpath='{.data.password}' | base64 -d
Use it with
  export KUBECONFIG=$KUBECONFIG
  kubectl -n $ns get sipusers
Stop it with: scripts/run-local.sh down
MSG
