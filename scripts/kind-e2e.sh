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

. scripts/lib/e2e.sh
E2E_LOG_PREFIX=kind-e2e

use_cluster() {
  mkdir -p "$state"
  kind get kubeconfig --name "$cluster" > "$state/kubeconfig"
  export KUBECONFIG="$state/kubeconfig"
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
    diagnose "$state/sipp"
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
    diagnose "$state/sipp"
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
create_user "$ns" "$user"

# 5. Everything Ready (suspended bob included: suspended is a normal state), and phone pushed
# to Kamailio.
kubectl wait --for=condition=Ready --timeout=120s sipdomains,sipprofiles,sipusers --all -A
kubectl -n "$ns" wait --for=condition=RegistrarSynced --timeout=60s "sipuser/$user"

# 6. Where SIPp sends: the node's IP and the TCP NodePort of the SIP Service, from the local
# address on the route to the node (for Via and Contact).
node_ip=$(kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
sip_port=$(kubectl -n "$ns" get service "$registrar_service" \
  -o jsonpath='{.spec.ports[?(@.name=="sip-tcp")].nodePort}')
local_ip=$(ip -4 route get "$node_ip" | awk '{for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit }}')
if [ -z "$node_ip" ] || [ -z "$sip_port" ] || [ -z "$local_ip" ]; then
  die "could not find the node IP ($node_ip), the SIP NodePort ($sip_port) or the local IP ($local_ip)"
fi

# 7. REGISTER (challenge, then digest) with Expires 300, with the password from phone's
# credentials Secret (named in status.secretName), as a provisioning tool would.
sipp_register "$ns" "$user" "$node_ip" "$sip_port" "$local_ip" "$state/sipp"

# 8. The operator sees the registration (it reads Kamailio's contacts every check interval).
kubectl -n "$ns" wait --for=condition=Registered --timeout=90s "sipuser/$user"

echo
kubectl get sip -A
cat <<MSG

kind-e2e: passed. Cluster $cluster is still running:
  export KUBECONFIG=$KUBECONFIG
  kubectl -n $ns get sipusers
Delete it with: scripts/kind-e2e.sh down
MSG
