#!/usr/bin/env bash
# Runs sip-operator's main job locally on a fresh machine: a real control plane on 127.0.0.1
# (built once from the Kubernetes Go modules), the CRDs, Kamailio running the shipped
# charts/sip-operator/files/kamailio.cfg, the operator (built from this checkout), and
# examples/ applied to the namespace sip-demo with the acme domain pointed at that Kamailio;
# waits for everything to go Ready, registers alice's "phone" (SIPp) with the password from her
# Secret and shows the registration in `kubectl get sipusers`. It leaves everything running.
#   scripts/run-local.sh        start (or reuse) and apply
#   scripts/run-local.sh --node the same as pods: the Helm chart on the test node (root;
#                               scripts/node-e2e.sh --up), left running
#   scripts/run-local.sh down   stop what it started
# State lives in $SIP_OPERATOR_LOCAL_DIR (default .local/ in the repository). Kamailio listens
# on 127.0.0.1 only: SIP on $SIP_OPERATOR_LOCAL_SIP_PORT (default 35060, UDP and TCP), JSON-RPC
# on $SIP_OPERATOR_LOCAL_RPC_PORT (default 35071).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
state=${SIP_OPERATOR_LOCAL_DIR:-$PWD/.local}
ns=sip-demo
sip_port=${SIP_OPERATOR_LOCAL_SIP_PORT:-35060}
rpc_port=${SIP_OPERATOR_LOCAL_RPC_PORT:-35071}
invite_port=${SIP_OPERATOR_LOCAL_INVITE_PORT:-38443}

# Stops a process group we started (Kamailio forks its workers into it) by its leader's PID.
stop_group() {
  local pidfile=$1
  [ -s "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
}

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

if [ "${1:-}" = "--node" ]; then
  # The same job as the chart on a real node (root needed): scripts/node-e2e.sh's install steps.
  SIP_NODE_E2E_DIR=$state/node exec scripts/node-e2e.sh --up
fi

if [ "${1:-}" = "down" ]; then
  if [ -d "$state/node/cluster" ]; then tests/control-plane/stop.sh "$state/node/cluster" --purge && rm -rf "$state/node"; fi
  stop_operator
  stop_group "$state/kamailio.pid"
  tests/control-plane/stop.sh "$state/control-plane" --purge
  echo "run-local: stopped"
  exit 0
fi

for tool in cargo go kubectl; do
  command -v "$tool" >/dev/null || { echo "run-local: $tool is required but not on PATH" >&2; exit 1; }
done
tests/control-plane/install-deps.sh   # also Kamailio and SIPp (sip-tester)

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
  crd/sipdomains.sipoperator.io crd/sipprofiles.sipoperator.io crd/sipusers.sipoperator.io \
  crd/sipuserinvites.sipoperator.io >/dev/null
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null

# The invite page's certificate: self-signed for 127.0.0.1 (a browser asks once to accept it).
if [ ! -s "$state/invite-tls.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$state/invite-tls.key" -out "$state/invite-tls.crt" 2>/dev/null
fi

# The operator, as it would run in the cluster: one replica, leader election on, JSON logs,
# the invite page on 127.0.0.1.
cargo build --quiet --locked --bin sip-operator
stop_operator
./target/debug/sip-operator --http-addr 127.0.0.1:0 --lease-namespace "$ns" --log-format json \
  --registrar-check-interval-seconds 5 \
  --invite-listen "127.0.0.1:$invite_port" --invite-url "https://127.0.0.1:$invite_port" \
  --invite-tls-cert "$state/invite-tls.crt" --invite-tls-key "$state/invite-tls.key" \
  >> "$state/operator.log" 2>&1 &
echo $! > "$state/operator.pid"

# Kamailio with the shipped config, as the chart's bundled registrar runs it: the RPC token
# from the environment, the users only from the operator.
mkdir -p "$state/kamailio/run"
[ -s "$state/kamailio/token" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/kamailio/token"
token=$(cat "$state/kamailio/token")
rpc_url="http://127.0.0.1:$rpc_port/RPC"
kamailio_up() {
  curl -sf -H "Authorization: Bearer $token" -d '{"jsonrpc":"2.0","method":"core.uptime","id":1}' \
    "$rpc_url" >/dev/null 2>&1
}
if [ -s "$state/kamailio.pid" ] && kill -0 "$(cat "$state/kamailio.pid")" 2>/dev/null && kamailio_up; then
  echo "run-local: reusing Kamailio (pid $(cat "$state/kamailio.pid"))" >&2
else
  stop_group "$state/kamailio.pid"
  kamailio=$(command -v kamailio || echo /usr/sbin/kamailio)
  SIP_OPERATOR_RPC_TOKEN=$token setsid "$kamailio" -DD -E -f charts/sip-operator/files/kamailio.cfg \
    -n 2 -N 2 -m 64 -M 8 -w "$state/kamailio" \
    -A "SIP_PORT=$sip_port" -A "RPC_PORT=$rpc_port" -A "RUN_DIR=\"$state/kamailio/run\"" \
    >> "$state/kamailio.log" 2>&1 < /dev/null &
  echo $! > "$state/kamailio.pid"
  for _ in $(seq 100); do kamailio_up && break; sleep 0.1; done
  kamailio_up || { echo "run-local: Kamailio did not answer on $rpc_url; see $state/kamailio.log" >&2; exit 1; }
fi

# examples/, with the example domain's phones pointed at the local Kamailio (its connection
# is what the credentials Secrets and the invite page tell a softphone).
for f in examples/*.yaml; do
  echo ---
  sed -e 's/^    host: sip\.example\.net$/    host: 127.0.0.1/' -e "s/^    port: 5060\$/    port: $sip_port/" "$f"
done | kubectl -n "$ns" apply --server-side --field-manager=run-local -f -
# Point the example domain at the local Kamailio (its own field manager, so re-applying
# examples/ leaves it alone), with the RPC token in a Secret.
kubectl -n "$ns" create secret generic kamailio-rpc --from-literal=token="$token" \
  --dry-run=client -o yaml | kubectl -n "$ns" apply --server-side --field-manager=run-local -f - >/dev/null
kubectl -n "$ns" apply --server-side --field-manager=run-local-registrar -f - <<YAML
apiVersion: sipoperator.io/v1alpha1
kind: SipDomain
metadata: {name: acme}
spec:
  domain: acme.sip.example.com
  registrar:
    kamailio:
      urls: ["$rpc_url"]
      tokenSecretRef: {name: kamailio-rpc, key: token}
YAML
kubectl -n "$ns" wait --for=condition=Ready --timeout=120s sipdomains,sipprofiles,sipusers --all
kubectl -n "$ns" wait --for=condition=RegistrarSynced --timeout=60s sipuser/alice

# alice's phone: SIPp registers with the password from her Secret, as a provisioning tool would.
password=$(kubectl -n "$ns" get secret alice-sip-credentials -o jsonpath='{.data.password}' | base64 -d)
sipp_dir="$state/sipp"
rm -rf "$sipp_dir" && mkdir -p "$sipp_dir"
printf 'SEQUENTIAL\nalice;acme.sip.example.com;300\n' > "$sipp_dir/alice.csv"
(cd "$sipp_dir" && sipp "127.0.0.1:$sip_port" -sf "$repo/tests/support/sipp/register.xml" \
  -inf alice.csv -au alice -ap "$password" -m 1 -t u1 -i 127.0.0.1 -bind_local -ci 127.0.0.1 -mi 127.0.0.1 \
  -timeout 10s -timeout_error \
  -nostdin -trace_logs -log_file register.log >/dev/null 2>&1) || true
result=$(grep -o 'final=[0-9]*' "$sipp_dir/register.log" 2>/dev/null | tail -1)
echo "run-local: alice REGISTER at 127.0.0.1:$sip_port: ${result:-no answer}"
[ "$result" = "final=200" ] || { echo "run-local: the registration failed; see $sipp_dir and $state/kamailio.log" >&2; exit 1; }
kubectl -n "$ns" wait --for=condition=Registered --timeout=60s sipuser/alice >/dev/null
# examples/25: a one-time link for the person using alice.
kubectl -n "$ns" wait --for=condition=Ready --timeout=60s sipuserinvite/alice-welcome >/dev/null

echo
kubectl -n "$ns" get sip
cat <<MSG

run-local: the control plane, Kamailio (SIP 127.0.0.1:$sip_port) and the operator are running
(logs: $state/operator.log, $state/kamailio.log). alice's phone is registered: see CONTACTS above.
Read a user's credentials with
  kubectl -n $ns get secret alice-sip-credentials -o jsonpath='{.data.password}' | base64 -d
or, as the person using alice would without kubectl, open the invite page (https://127.0.0.1:$invite_port,
self-signed certificate $state/invite-tls.crt) at the one-time link
  kubectl -n $ns get sipuserinvite alice-welcome -o jsonpath='{.status.url}'
Use it with
  export KUBECONFIG=$KUBECONFIG
  kubectl -n $ns get sipusers
Stop it with: scripts/run-local.sh down
MSG
