#!/usr/bin/env bash
# The user's path end to end, on a kind cluster: build the image, install the Helm chart with
# the bundled Kamailio registrar, apply examples/, create a SipUser "phone" in the chart's
# example SipDomain, wait for everything to go Ready, and register phone with SIPp using the
# password from its credentials Secret (as a provisioning tool would); the REGISTER must get
# 200 and the SipUser must then show the registration. .github/workflows/kind-e2e.yaml runs
# exactly this script.
#
#   scripts/kind-e2e.sh         build, create (or reuse) the cluster, install, test
#   scripts/kind-e2e.sh logs    print the diagnostics it prints on failure
#   scripts/kind-e2e.sh down    delete the cluster
#
# Needs docker (with buildx), kind, helm (v3), kubectl, sipp (Debian/Ubuntu package
# sip-tester) and a Linux host: SIPp reaches Kamailio at the kind node's IP on the Docker
# network through a NodePort, which Docker Desktop (macOS, Windows) does not route to.
#
# Why a NodePort and not `kubectl port-forward`: port-forward connects to localhost inside
# the pod, and the chart's Kamailio listens on the pod IP only (LISTEN_ADDR=$(POD_IP)), so a
# forwarded connection is refused. SIP goes over TCP (-t t1): a reply travels back on the
# client's own connection, whatever the NodePort's source NAT did to the address.
#
# Environment:
#   SIP_E2E_CLUSTER     kind cluster name (default sip-operator)
#   SIP_E2E_IMAGE       image to build and load (default sip-operator:ci)
#   SIP_E2E_SKIP_BUILD  1: the image is already built (CI builds it with its layer cache)
#   SIP_E2E_DIR         scratch directory: kubeconfig, SIPp logs (default .local/kind-e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

cluster=${SIP_E2E_CLUSTER:-sip-operator}
image=${SIP_E2E_IMAGE:-sip-operator:ci}
state=${SIP_E2E_DIR:-$repo/.local/kind-e2e}
release=sip-operator   # the chart's objects are then named sip-operator, sip-operator-registrar, ...
ns=sip-system          # the release namespace, where the chart creates SipDomain "example"
demo_ns=sip-demo       # where examples/ goes
user=phone             # the SipUser registered with SIPp
registrar_service=$release-registrar

log() { echo "kind-e2e: $*" >&2; }
die() { log "$*"; exit 1; }

use_cluster() {
  mkdir -p "$state"
  kind get kubeconfig --name "$cluster" > "$state/kubeconfig"
  export KUBECONFIG="$state/kubeconfig"
}

# What to look at when something failed.
diagnose() {
  set +e
  section() { echo; echo "===== $*"; }
  section "kubectl get sip -A"
  kubectl get sip -A -o wide
  section "workloads in $ns"
  kubectl -n "$ns" get deployments,pods,services,endpointslices -o wide
  section "SipDomain $ns/example"
  kubectl -n "$ns" describe sipdomain example
  section "SipUser $ns/$user"
  kubectl -n "$ns" describe sipuser "$user"
  section "operator logs"
  kubectl -n "$ns" logs --prefix --tail=300 \
    -l "app.kubernetes.io/instance=$release,app.kubernetes.io/component=operator"
  section "Kamailio logs"
  kubectl -n "$ns" logs --prefix --tail=300 \
    -l "app.kubernetes.io/instance=$release,app.kubernetes.io/component=registrar"
  section "events"
  kubectl get events -A --sort-by=.lastTimestamp | tail -n 100
  local f
  for f in sipp.out register.log errors.log messages.log; do
    if [ -s "$state/sipp/$f" ]; then
      section "SIPp $f"
      tail -n 60 "$state/sipp/$f"
    fi
  done
  set -e
}

case "${1:-up}" in
  up) ;;
  down)
    kind delete cluster --name "$cluster"
    rm -rf "$state"
    exit 0
    ;;
  logs)
    use_cluster
    diagnose
    exit 0
    ;;
  *)
    echo "usage: $0 [up|logs|down]" >&2
    exit 2
    ;;
esac

for tool in docker kind helm kubectl sipp ip; do
  command -v "$tool" >/dev/null || die "$tool is required but not on PATH"
done

# 1. The image, and proof that it runs.
if [ "${SIP_E2E_SKIP_BUILD:-}" != 1 ]; then
  log "building $image"
  docker buildx build --load -t "$image" .
fi
docker run --rm "$image" --version

# 2. The cluster (reused when it exists), and the image in it.
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "reusing kind cluster $cluster"
else
  kind create cluster --name "$cluster" --wait 120s
fi
use_cluster
on_exit() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    log "FAILED (exit $status); diagnostics follow"
    diagnose
  fi
}
trap on_exit EXIT
kind load docker-image "$image" --name "$cluster"

# 3. The chart, with the bundled Kamailio and its example SipDomain. The SIP Service is a
# NodePort (see the top of this file). The image ID as a pod annotation makes a re-run with a
# rebuilt image (same tag, pullPolicy Never) roll the operator pods.
image_id=$(docker image inspect -f '{{.Id}}' "$image")
helm upgrade --install "$release" charts/sip-operator \
  --namespace "$ns" --create-namespace \
  --set image.repository="${image%:*}" \
  --set image.tag="${image##*:}" \
  --set image.pullPolicy=Never \
  --set registrar.enabled=true \
  --set registrar.service.type=NodePort \
  --set-string podAnnotations.kind-e2e-image-id="$image_id" \
  --wait --timeout 5m

# 4. examples/ in its own namespace, and a user of the example domain in the release namespace.
kubectl create namespace "$demo_ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n "$demo_ns" -f examples/
kubectl apply -f - <<YAML
apiVersion: sipoperator.io/v1alpha1
kind: SipUser
metadata:
  name: $user
  namespace: $ns
spec:
  domainRef: example
YAML

# 5. Everything Ready (suspended bob included: suspended is a normal state), and phone pushed
# to Kamailio.
kubectl wait --for=condition=Ready --timeout=120s sipdomains,sipprofiles,sipusers --all -A
kubectl -n "$ns" wait --for=condition=RegistrarSynced --timeout=60s "sipuser/$user"

# 6. The phone's account, from its credentials Secret (named in status.secretName).
secret=$(kubectl -n "$ns" get sipuser "$user" -o jsonpath='{.status.secretName}')
secret=${secret:-$user-sip-credentials}
field() { kubectl -n "$ns" get secret "$secret" -o jsonpath="{.data.$1}" | base64 -d; }
username=$(field username)
domain=$(field domain)
password=$(field password)
if [ -z "$username" ] || [ -z "$domain" ] || [ -z "$password" ]; then
  die "Secret $ns/$secret lacks username, domain or password"
fi

# 7. Where SIPp sends: the node's IP and the TCP NodePort of the SIP Service, from the local
# address on the route to the node (for Via and Contact).
node_ip=$(kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
sip_port=$(kubectl -n "$ns" get service "$registrar_service" \
  -o jsonpath='{.spec.ports[?(@.name=="sip-tcp")].nodePort}')
local_ip=$(ip -4 route get "$node_ip" | awk '{for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit }}')
if [ -z "$node_ip" ] || [ -z "$sip_port" ] || [ -z "$local_ip" ]; then
  die "could not find the node IP ($node_ip), the SIP NodePort ($sip_port) or the local IP ($local_ip)"
fi

# 8. REGISTER (challenge, then digest) with Expires 300; tests/support/sipp/register.xml logs
# the final answer as final=<code> in register.log.
sipp_dir="$state/sipp"
rm -rf "$sipp_dir"
mkdir -p "$sipp_dir"
printf 'SEQUENTIAL\n%s;%s;300;\n' "$username" "$domain" > "$sipp_dir/phone.csv"
log "REGISTER sip:$username@$domain at $node_ip:$sip_port (TCP) from $local_ip"
(cd "$sipp_dir" && sipp "$node_ip:$sip_port" -sf "$repo/tests/support/sipp/register.xml" \
  -inf phone.csv -au "$username" -ap "$password" -m 1 -t t1 -i "$local_ip" \
  -timeout 15s -timeout_error -nostdin \
  -trace_logs -log_file register.log -trace_err -error_file errors.log \
  -trace_msg -message_file messages.log \
  > sipp.out 2>&1 < /dev/null) || true
result=$(grep -o 'final=[0-9]*' "$sipp_dir/register.log" 2>/dev/null | tail -n 1 || true)
log "REGISTER answered: ${result:-nothing}"
[ "$result" = final=200 ] || die "the registration failed (expected final=200); SIPp logs in $sipp_dir"

# 9. The operator sees the registration (it reads Kamailio's contacts every check interval).
kubectl -n "$ns" wait --for=condition=Registered --timeout=90s "sipuser/$user"

echo
kubectl get sip -A
cat <<MSG

kind-e2e: passed. Cluster $cluster is still running:
  export KUBECONFIG=$KUBECONFIG
  kubectl -n $ns get sipusers
Delete it with: scripts/kind-e2e.sh down
MSG
