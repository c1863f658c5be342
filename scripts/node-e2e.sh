#!/usr/bin/env bash
# The user's path end to end on a real node, without Docker or a registry: the same steps as
# scripts/kind-e2e.sh, on the test control plane with a node (tests/control-plane/start.sh
# --node: kubelet, kube-proxy, kube-scheduler, containerd, runc) and images built locally
# (tests/images). Every step prints what it saw; scripts/test.sh runs this after the cargo tests.
#
#   scripts/node-e2e.sh          start a node, run every step, stop the node
#   scripts/node-e2e.sh --keep   leave the node running afterwards
#   scripts/node-e2e.sh --up     only install and register a phone, and leave it all running
#                                (scripts/run-local.sh --node)
#
# Steps: images (and their runtime contract) → helm install with the bundled Kamailio →
# rollout → two operator replicas Ready, one leader → NetworkPolicy selectors → examples/
# Ready → SIPp REGISTER through the NodePort (200, CONTACTS 1) → leader pod deleted, the other
# leads, a new user goes Ready → helm upgrade (no password changed, no Secret rewritten) →
# helm uninstall (what remains is what the README says).
#
# Environment: SIP_NODE_E2E_DIR (state; default a new temp dir), SIP_OPERATOR_TEST_HELM (a
# helm binary; default tests/tools/helm/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
. scripts/lib/e2e.sh
. scripts/lib/node-checks.sh

keep=0
up=0
case ${1:-} in
  "") ;;
  --keep) keep=1 ;;
  --up) keep=1; up=1 ;;
  *) echo "usage: $0 [--keep|--up]" >&2; exit 2 ;;
esac
state=${SIP_NODE_E2E_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/sip-node-e2e.XXXXXX")}
mkdir -p "$state"
state=$(cd "$state" && pwd)
cluster=$state/cluster
release=sip-operator
ns=sip-system
demo_ns=sip-demo
invite_host=invites.sip.test
user=phone
device_user=two-phones
E2E_LOG_PREFIX=node-e2e

for tool in kubectl sipp curl python3; do
  command -v "$tool" >/dev/null || die "$tool is required but not on PATH"
done

on_exit() {
  local status=$?
  set +e  # diagnostics may fail; the cleanup below must still run
  if [ "$status" -ne 0 ] && [ -s "$cluster/kubeconfig" ]; then
    log "FAILED (exit $status); diagnostics follow"
    diagnose "$state/sipp"
    echo "===== kubelet log"; tail -n 40 "$cluster/logs/kubelet.log"
    echo "===== containerd log"; tail -n 40 "$cluster/logs/containerd.log"
  fi
  if [ "$keep" = 0 ]; then
    if tests/control-plane/stop.sh "$cluster" --purge; then
      [ -n "${SIP_NODE_E2E_DIR:-}" ] || rm -rf "$state"
    else
      log "stopping the node failed; its state stays in $cluster"
      [ "$status" -ne 0 ] || status=1
    fi
  fi
  exit "$status"
}
trap on_exit EXIT

# --- the node ---------------------------------------------------------------------------------
step "a node for the test control plane"
started=$(date +%s)
if [ "$keep" = 1 ]; then
  tests/control-plane/start.sh "$cluster" --node
else
  tests/control-plane/start.sh "$cluster" --node --owner-pid $$
fi
set -a; . "$cluster/env"; set +a
export KUBECONFIG
see "node $NODE_NAME Ready at $NODE_IP ($(kubectl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.containerRuntimeVersion}, kubelet {.status.nodeInfo.kubeletVersion}')) after $(( $(date +%s) - started )) s"
check_listeners "$cluster"
helm=${SIP_OPERATOR_TEST_HELM:-$(tests/tools/helm/build.sh)}

# --- the images -------------------------------------------------------------------------------
step "images, built locally and imported into containerd (k8s.io)"
images=$(tests/images/import.sh "$CONTAINERD_ADDRESS" operator kamailio)
operator_image=$(awk '$1 == "operator" {print $2}' <<<"$images")
kamailio_image=$(awk '$1 == "kamailio" {print $2}' <<<"$images")
[ -n "$operator_image" ] && [ -n "$kamailio_image" ] || die "tests/images/import.sh named no images: $images"
see "operator $operator_image"
see "kamailio $kamailio_image"
tests/images/check-contract.sh "$CONTAINERD_ADDRESS" "$images"

# --- helm install -----------------------------------------------------------------------------
step "a TLS Secret for the invite page (self-signed here; cert-manager's would do)"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$invite_host" \
  -addext "subjectAltName=DNS:$invite_host" -keyout "$state/invite-tls.key" -out "$state/invite-tls.crt" 2>/dev/null \
  || die "openssl could not make the invite page's certificate"
kubectl -n "$ns" create secret tls invite-tls --cert "$state/invite-tls.crt" --key "$state/invite-tls.key" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
see "Secret $ns/invite-tls for $invite_host"

step "helm install $release (registrar.enabled=true, invites.enabled=true, local images, SIP and the invite page on NodePorts)"
"$helm" upgrade --install "$release" charts/sip-operator \
  --namespace "$ns" --create-namespace \
  --set image.repository="${operator_image%:*}" --set image.tag="${operator_image##*:}" \
  --set image.pullPolicy=Never \
  --set registrar.enabled=true \
  --set registrar.image.repository="${kamailio_image%:*}" --set registrar.image.tag="${kamailio_image##*:}" \
  --set registrar.image.pullPolicy=Never \
  --set registrar.service.type=NodePort \
  --set invites.enabled=true --set invites.url="https://$invite_host" --set invites.tlsSecretName=invite-tls \
  --set invites.service.type=NodePort \
  --wait --timeout 5m
for d in "$release" "$release-registrar"; do
  kubectl -n "$ns" rollout status "deployment/$d" --timeout 3m
done

# What the chart's securityContext means for the running process, read from the kernel:
# user and group 65532, no capabilities, no_new_privs, a seccomp filter (mode 2).
want_process_status="Uid 65532 Gid 65532 CapEff 0000000000000000 NoNewPrivs 1 Seccomp 2"
operator_selector="app.kubernetes.io/instance=$release,app.kubernetes.io/component=operator"
registrar_selector="app.kubernetes.io/instance=$release,app.kubernetes.io/component=registrar"

step "two operator replicas Running and Ready through their probes, exactly one leader"
wait_until 120 "2 operator pods Running and Ready" operator_pods_ready 2
read -r -a pods <<<"$(running_pods "$operator_selector")"
for p in "${pods[@]}"; do
  see "$p: $(kubectl -n "$ns" get pod "$p" -o jsonpath='{.status.phase}, ready={.status.containerStatuses[0].ready}, restarts={.status.containerStatuses[0].restartCount}, user={.spec.securityContext.runAsUser}, readOnlyRootFilesystem={.spec.containers[0].securityContext.readOnlyRootFilesystem}')"
done
wait_until 60 "a leader in the Lease" lease_holder_in "${pods[@]}"
leader=$(lease_holder)
wait_until 30 "the Lease holder $leader, and only it, reporting sip_operator_leader 1" only_leader_is "$leader" "${pods[@]}"
see "Lease $ns/$release held by $leader, the only one of ${#pods[@]} pods with sip_operator_leader 1"
for p in "${pods[@]}"; do
  see "$p's operator process: $(container_process_status "$p")"
  [ "$(container_process_status "$p")" = "$want_process_status" ] \
    || die "$p's process does not run as the chart's securityContext says ($want_process_status)"
done

wait_until 60 "the PodDisruptionBudget to count 2 healthy pods" pdb_is "$release" 2,1
see "PodDisruptionBudget $release: currentHealthy 2, disruptionsAllowed 1"

step "NetworkPolicy: accepted, and its selectors match the pods they mean"
check_network_policy "$release-registrar"

# --- examples and a phone ---------------------------------------------------------------------
step "examples/ applied to $demo_ns, and SipUser $user of the chart's example domain"
kubectl create namespace "$demo_ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n "$demo_ns" -f examples/
create_user "$ns" "$user"
kubectl wait --for=condition=Ready --timeout=120s sipdomains,sipprofiles,sipusers --all -A
kubectl -n "$ns" wait --for=condition=RegistrarSynced --timeout=60s "sipuser/$user"
kubectl get sip -A >&2

step "SIPp registers $user through the registrar's NodePort"
sip_port=$(kubectl -n "$ns" get service "$release-registrar" -o jsonpath='{.spec.ports[?(@.name=="sip-tcp")].nodePort}')
[ -n "$sip_port" ] || die "the Service $release-registrar has no sip-tcp NodePort"
sipp_register "$ns" "$user" "$NODE_IP" "$sip_port" "$NODE_IP" "$state/sipp"
kubectl -n "$ns" wait --for=condition=Registered --timeout=90s "sipuser/$user"
wait_until 30 "CONTACTS 1 for $user" contacts_are "$ns" "$user" 1
kubectl -n "$ns" get sipuser "$user" >&2

step "SipUser $device_user with two devices: each registers with its own credentials"
create_user "$ns" "$device_user" "  devices: [{name: desk}, {name: soft}]"
kubectl -n "$ns" wait --for=condition=RegistrarSynced --timeout=60s "sipuser/$device_user"
for device in desk soft; do
  sipp_register "$ns" "$device_user" "$NODE_IP" "$sip_port" "$NODE_IP" "$state/sipp-$device" "$device"
done
wait_until 30 "status.devices of $device_user: desk=1 soft=1" devices_are "$ns" "$device_user" "desk=1 soft=1"
wait_until 30 "CONTACTS 2 for $device_user" contacts_are "$ns" "$device_user" 2
kubectl -n "$ns" get sipuser "$device_user" -o wide >&2

step "the invite page through its Service: examples/ SipUserInvite alice-welcome's link opens over verified TLS"
kubectl -n "$demo_ns" wait --for=condition=Ready --timeout=60s sipuserinvite/alice-welcome
invite_url=$(kubectl -n "$demo_ns" get sipuserinvite alice-welcome -o jsonpath='{.status.url}')
case $invite_url in "https://$invite_host/invite/"?*) ;; *) die "status.url of alice-welcome is not a link on https://$invite_host";; esac
invite_port=$(kubectl -n "$ns" get service "$release-invites" -o jsonpath='{.spec.ports[0].nodePort}')
[ -n "$invite_port" ] || die "the Service $release-invites has no NodePort"
# GET only: the link stays unused. The URL (with its token) is never printed.
page=$(curl -sS --fail --max-time 10 --cacert "$state/invite-tls.crt" \
  --connect-to "$invite_host:443:$NODE_IP:$invite_port" "$invite_url") \
  || die "GET of alice-welcome's link through NodePort $invite_port failed"
grep -q 'alice' <<<"$page" || die "the invite page does not name alice"
[ "$(kubectl -n "$demo_ns" get sipuserinvite alice-welcome -o jsonpath='{.status.phase}')" = Issued ] \
  || die "opening the page used the link up"
see "alice-welcome's link through NodePort $invite_port: 200 over TLS verified against invite-tls, names alice, still Issued"
if [ "$up" = 1 ]; then
  log "up: the chart runs on the node, $user is registered"
  log "  export KUBECONFIG=$KUBECONFIG; kubectl get sip -A"
  log "  stop it: tests/control-plane/stop.sh $cluster --purge (or scripts/run-local.sh down)"
  exit 0
fi

# --- failover ---------------------------------------------------------------------------------
step "the leader pod deleted: the other pod leads"
other=""
for p in "${pods[@]}"; do [ "$p" = "$leader" ] || other=$p; done
t0=$(date +%s.%N)
kubectl -n "$ns" delete pod "$leader" --wait=false >/dev/null
wait_until 60 "a new leader" lease_holder_is_not "$leader"
t1=$(date +%s.%N)
new_leader=$(lease_holder)
see "$new_leader leads $(python3 -c "print(f'{$t1 - $t0:.1f}')") s after the deletion of $leader"
[ "$new_leader" = "$other" ] || die "expected the standby $other to lead, but $new_leader does"
create_user "$ns" after-failover
kubectl -n "$ns" wait --for=condition=Ready --timeout=60s sipuser/after-failover
see "SipUser after-failover Ready ($(python3 -c "import time; print(f'{time.time() - $t0:.1f}')") s after the deletion)"
wait_until 120 "2 operator pods Running and Ready" operator_pods_ready 2

# --- helm upgrade -----------------------------------------------------------------------------
step "helm upgrade with a changed value (logLevel): no password changes, no Secret rewritten"
users=$(kubectl get sipusers -A --no-headers | wc -l)
# Taken once the failover's leader has reconciled every user, so that nothing it still had
# to write is blamed on the upgrade.
wait_until 120 "the leader reconciling all $users users" leader_reconciled "$new_leader" "$users"
kubectl wait --for=condition=Ready --timeout=60s sipusers --all -A >/dev/null
before=$(credentials_fingerprint)
[ "$(grep -c . <<<"$before")" = "$users" ] || die "expected one credentials Secret per SipUser ($users), found: $before"
"$helm" upgrade "$release" charts/sip-operator --namespace "$ns" --reuse-values \
  --set logLevel=debug --wait --timeout 5m
kubectl -n "$ns" rollout status "deployment/$release" --timeout 3m
wait_until 120 "2 upgraded operator pods Running and Ready" operator_pods_ready 2
read -r -a pods <<<"$(running_pods "$operator_selector")"
wait_until 60 "a leader among the upgraded pods" lease_holder_in "${pods[@]}"
leader=$(lease_holder)
# The new leader has reconciled every user once it counts as many SipUser reconciles.
wait_until 120 "the new leader reconciling all $users users" leader_reconciled "$leader" "$users"
kubectl wait --for=condition=Ready --timeout=60s sipusers --all -A
after=$(credentials_fingerprint)
see "$(grep -c . <<<"$before") credentials Secrets before, $(grep -c . <<<"$after") after; new leader $leader"
if [ "$before" != "$after" ]; then
  diff <(echo "$before") <(echo "$after") >&2 || true
  die "a credentials Secret changed across the upgrade (name resourceVersion sha256(password))"
fi
see "every credentials Secret has the same resourceVersion and password"

# --- helm uninstall ---------------------------------------------------------------------------
step "helm uninstall: what remains is what the README says remains"
"$helm" uninstall "$release" --namespace "$ns" --wait --timeout 3m
check_uninstalled "$release" "$ns" "$demo_ns"

echo
log "passed in $(( $(date +%s) - started )) s"
if [ "$keep" = 1 ]; then
  log "the node is still running: export KUBECONFIG=$KUBECONFIG; stop it with tests/control-plane/stop.sh $cluster --purge"
fi
