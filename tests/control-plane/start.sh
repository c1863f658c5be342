#!/usr/bin/env bash
# Starts a throwaway Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver (RBAC, static
# admin token, service-account signing keys, audit log) and kube-controller-manager running only
# the garbage-collector and namespace controllers. Waits for /readyz and writes a kubeconfig.
#
#   start.sh STATE_DIR [--owner-pid PID [--purge-with-owner]] [--node]
#
# STATE_DIR receives kubeconfig, env (ports, URLs), pids, logs and data. With --owner-pid the
# control plane stops itself (via stop.sh) once that process has exited, so a test binary that
# is killed does not leave servers behind; --purge-with-owner also deletes STATE_DIR then (a
# test binary's own throwaway control plane: about 270 MB of etcd data and logs each). Stop
# explicitly with: stop.sh STATE_DIR
#
# --node adds a node that runs pods: containerd and runc (Debian's), the kubelet, kube-proxy and
# kube-scheduler (built like the rest), on a bridge this script creates; the API server then
# listens on the bridge's address instead of 127.0.0.1, and kube-controller-manager also runs
# the controllers that Deployments, Services and ServiceAccounts need. See node/lib.sh.
# errtrace: a failure inside a function (node/lib.sh) also runs the ERR trap that stops it all.
set -Eeuo pipefail
here=$(cd "$(dirname "$0")" && pwd)

usage="usage: start.sh STATE_DIR [--owner-pid PID [--purge-with-owner]] [--node]"
dir=${1:?$usage}; shift
owner=""
purge=()
node=0
while [ $# -gt 0 ]; do
  case $1 in
    --owner-pid) owner=${2:?--owner-pid needs a PID}; shift 2 ;;
    --purge-with-owner) purge=(--purge); shift ;;
    --node) node=1; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

node_flag=()
[ "$node" = 1 ] && node_flag=(--node)
"$here/install-deps.sh" "${node_flag[@]}"
bin=$("$here/build.sh" "${node_flag[@]}")

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -s "$dir/pids" ]; then
  echo "start.sh: $dir already holds a control plane (pids file present); stop it first" >&2
  exit 1
fi
mkdir -p "$dir/pki" "$dir/logs"
: > "$dir/pids"

# From here on a failure stops what was started and undoes what was made (the node's bridge
# too). Only in this shell: errtrace also runs the trap in command substitutions.
stop_on_error() {
  [ "$BASHPID" = "$$" ] || return 0
  echo "start.sh: failed; last lines of the logs:" >&2
  tail -n 20 "$dir"/logs/*.log >&2 || true
  "$here/stop.sh" "$dir" >&2 || true
}
trap stop_on_error ERR

free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
read -r etcd_port peer_port api_port < <(free_ports 3)

api_host=127.0.0.1
if [ "$node" = 1 ]; then
  . "$here/node/lib.sh"
  node_net_up
  api_host=$NODE_IP
fi

# --- throwaway PKI: CA, serving cert, service-account key pair, static tokens -----------------
pki=$dir/pki
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sip-operator-test-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
  -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
printf 'subjectAltName=IP:%s,IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' "$api_host" > "$pki/apiserver.ext"
openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
  -days 2 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
admin_token=$(openssl rand -hex 24)
kcm_token=$(openssl rand -hex 24)
# The operator under test gets an identity of its own so the audit log can tell its writes
# apart; its rights come from RBAC (bound by the test harness), not from this file.
operator_token=$(openssl rand -hex 24)
cat > "$pki/tokens.csv" <<CSV
$admin_token,admin,admin-uid,"system:masters"
$kcm_token,system:kube-controller-manager,kcm-uid,"system:masters"
$operator_token,sip-operator,sip-operator-uid,"sip-operator:test"
CSV
chmod 600 "$pki"/*.key "$pki/tokens.csv"

# Audit every write (metadata only: no bodies, so no Secret data) for tests that count writes.
cat > "$dir/audit-policy.yaml" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
YAML

kubeconfig() { # kubeconfig TOKEN FILE
  cat > "$2" <<KC
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://$api_host:$api_port
    certificate-authority-data: $(base64 -w0 < "$pki/ca.crt")
users:
- name: user
  user:
    token: $1
contexts:
- name: test
  context: {cluster: test, user: user, namespace: default}
current-context: test
KC
  chmod 600 "$2"
}
kubeconfig "$admin_token" "$dir/kubeconfig"
kubeconfig "$kcm_token" "$dir/kcm.kubeconfig"
kubeconfig "$operator_token" "$dir/operator.kubeconfig"

start_bg() { # start_bg NAME CMD...: runs CMD in the background, records its PID
  local name=$1; shift
  "$@" > "$dir/logs/$name.log" 2>&1 &
  echo "$name $!" >> "$dir/pids"
}

wait_for() { # wait_for WHAT SECONDS CMD...
  local what=$1 deadline=$(( $(date +%s) + $2 )); shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "start.sh: $what did not become ready in time" >&2
      return 1
    fi
    sleep 0.2
  done
}

start_bg etcd "$bin/etcd" --name default --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "default=http://127.0.0.1:$peer_port" \
  --unsafe-no-fsync --log-level warn
wait_for etcd 60 curl -fsS "http://127.0.0.1:$etcd_port/health"

start_bg kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address "$api_host" --advertise-address "$api_host" --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --token-auth-file "$pki/tokens.csv" \
  --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/logs/audit.log" \
  --audit-log-maxsize 200 --audit-log-maxbackup 1 \
  --v 0
curl_api() { curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $admin_token" "https://$api_host:$api_port$1"; }
wait_for kube-apiserver 120 curl_api /readyz

controllers=garbage-collector-controller,namespace-controller
if [ "$node" = 1 ]; then
  # What running pods from a Helm chart needs: Deployments, Services, ServiceAccounts (and the
  # CA bundle their tokens come with), PodDisruptionBudgets.
  controllers+=,deployment-controller,replicaset-controller,endpointslice-controller
  controllers+=,endpoints-controller,serviceaccount-controller,root-ca-certificate-publisher-controller
  controllers+=,disruption-controller,pod-garbage-collector-controller
  # The kubelet registers the node tainted not-ready; this controller lifts the taint once Ready.
  controllers+=,node-lifecycle-controller
fi
start_bg kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$dir/kcm.kubeconfig" \
  --controllers "$controllers" --root-ca-file "$pki/ca.crt" \
  --leader-elect=false --secure-port 0 --v 0

kube_version=$(curl_api /version | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')
cat > "$dir/env" <<ENV
KUBECONFIG=$dir/kubeconfig
OPERATOR_KUBECONFIG=$dir/operator.kubeconfig
KUBE_API_URL=https://$api_host:$api_port
ETCD_URL=http://127.0.0.1:$etcd_port
AUDIT_LOG=$dir/logs/audit.log
KUBE_VERSION=$kube_version
ENV
if [ "$node" = 1 ]; then node_start; fi
trap - ERR

if [ -n "$owner" ]; then
  # Reaper: stops exactly what this script started once the owner process is gone.
  nohup bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" "$3" ${4:+"$4"}' \
    reaper "$owner" "$here/stop.sh" "$dir" "${purge[@]}" > "$dir/logs/reaper.log" 2>&1 &
  echo "reaper $!" >> "$dir/pids"
fi
echo "start.sh: control plane $(grep KUBE_VERSION "$dir/env" | cut -d= -f2) ready at https://$api_host:$api_port$([ "$node" = 1 ] && echo ", node $NODE_NAME Ready") (state in $dir)" >&2
