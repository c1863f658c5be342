# shellcheck shell=bash disable=SC2154  # sourced: the caller sets the globals named below
# The checks of scripts/node-e2e.sh that read the release's pods, Lease, metrics and Secrets.
# Sourced after scripts/lib/e2e.sh; uses $ns, $release, $operator_selector, $registrar_selector.
# The pods' IPs are reachable from this machine (the node's bridge), so metrics are read
# straight from each pod's port 8080.

# running_pods SELECTOR: the names of the Running pods (not terminating), space-separated.
running_pods() {
  kubectl -n "$ns" get pods -l "$1" -o json | python3 -c '
import json, sys
pods = json.load(sys.stdin)["items"]
print(" ".join(sorted(p["metadata"]["name"] for p in pods
    if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))))'
}

# operator_pods_ready N: exactly N operator pods, all Running, Ready and not terminating.
operator_pods_ready() {
  kubectl -n "$ns" get pods -l "$operator_selector" -o json | python3 -c '
import json, sys
pods = json.load(sys.stdin)["items"]
ready = [p for p in pods if not p["metadata"].get("deletionTimestamp")
    and p["status"].get("phase") == "Running"
    and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
sys.exit(0 if len(ready) == len(pods) == int(sys.argv[1]) else 1)' "$1"
}

# pdb_is NAME HEALTHY,ALLOWED: the disruption controller's view of the PodDisruptionBudget.
pdb_is() {
  [ "$(kubectl -n "$ns" get pdb "$1" -o jsonpath='{.status.currentHealthy},{.status.disruptionsAllowed}')" = "$2" ]
}

lease_holder() { kubectl -n "$ns" get lease "$release" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
lease_holder_in() { local h; h=$(lease_holder); [ -n "$h" ] && [[ " $* " == *" $h "* ]]; }
lease_holder_is_not() { local h; h=$(lease_holder); [ -n "$h" ] && [ "$h" != "$1" ]; }

# pod_metric POD NAME [LABEL_FILTER]: the sum of a metric's samples on that pod's /metrics.
pod_metric() {
  local ip
  ip=$(kubectl -n "$ns" get pod "$1" -o jsonpath='{.status.podIP}')
  curl -fsS --max-time 5 "http://$ip:8080/metrics" | python3 -c '
import sys
name, filt = sys.argv[1], sys.argv[2]
total = 0.0
for line in sys.stdin:
    if line.startswith("#"):
        continue
    key, _, value = line.rpartition(" ")
    if (key == name or key.startswith(name + "{")) and filt in key:
        total += float(value)
print(int(total) if total.is_integer() else total)' "$2" "${3:-}"
}

# only_leader_is LEADER POD...: LEADER reports sip_operator_leader 1 and every other pod 0.
only_leader_is() {
  local leader=$1 p want
  shift
  for p in "$@"; do
    want=0
    [ "$p" = "$leader" ] && want=1
    [ "$(pod_metric "$p" sip_operator_leader)" = "$want" ] || return 1
  done
}

# container_process_status POD: Uid, Gid, CapEff, NoNewPrivs and Seccomp of the pod's first
# container's main process, from /proc (its PID from containerd, by the container ID).
container_process_status() {
  local id pid
  id=$(kubectl -n "$ns" get pod "$1" -o jsonpath='{.status.containerStatuses[0].containerID}')
  pid=$(ctr --address "$CONTAINERD_ADDRESS" -n k8s.io tasks ls | awk -v id="${id#containerd://}" '$1 == id {print $2}')
  [ -n "$pid" ] || { echo "no task for container ${id:-?}"; return; }
  awk '$1 == "Uid:" || $1 == "Gid:" {printf "%s %s ", substr($1, 1, 3), $2}
       $1 == "CapEff:" || $1 == "NoNewPrivs:" || $1 == "Seccomp:" {printf "%s %s ", substr($1, 1, length($1) - 1), $2}' \
    "/proc/$pid/status" | sed 's/ $//'
}

# leader_reconciled POD N: POD has run at least N SipUser reconciles.
leader_reconciled() {
  [ "$(pod_metric "$1" sip_operator_reconciles_total 'kind="SipUser"')" -ge "$2" ]
}

# credentials_fingerprint: "namespace/name resourceVersion sha256(password)" of every Secret a
# SipUser owns, sorted (no password is printed).
credentials_fingerprint() {
  kubectl get secrets -A -o json | python3 -c '
import base64, hashlib, json, sys
for s in sorted(json.load(sys.stdin)["items"], key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])):
    m = s["metadata"]
    if not any(o.get("kind") == "SipUser" for o in m.get("ownerReferences", [])):
        continue
    password = base64.b64decode(s.get("data", {}).get("password", ""))
    print(m["namespace"] + "/" + m["name"], m["resourceVersion"], hashlib.sha256(password).hexdigest()[:16])'
}

# selector_pods LABEL_SELECTOR_JSON: the pods in $ns a NetworkPolicy selector (matchLabels and
# matchExpressions) selects, as a sorted, space-separated list.
selector_pods() {
  local selector
  selector=$(python3 -c '
import json, sys
s = json.loads(sys.argv[1])
parts = [f"{k}={v}" for k, v in sorted(s.get("matchLabels", {}).items())]
for e in s.get("matchExpressions", []):
    op = {"In": "in", "NotIn": "notin"}.get(e["operator"])
    if op:
        parts.append(e["key"] + " " + op + " (" + ",".join(e["values"]) + ")")
    elif e["operator"] == "Exists":
        parts.append(e["key"])
    else:
        parts.append("!" + e["key"])
print(",".join(parts))' "$1")
  [ -n "$selector" ] || { echo "<everything>"; return; }
  running_pods "$selector"
}

# check_network_policy NAME: the API server accepted it, its podSelector selects exactly the
# Kamailio pods, and the RPC rule's peer selects exactly the operator pods. Nothing here
# enforces it (Debian ships no CNI plugin that does); see the README.
check_network_policy() {
  local np want_registrar want_operator got_registrar got_operator rpc_peer
  np=$(kubectl -n "$ns" get networkpolicy "$1" -o json) || die "NetworkPolicy $ns/$1 not found"
  want_registrar=$(running_pods "$registrar_selector")
  want_operator=$(running_pods "$operator_selector")
  got_registrar=$(selector_pods "$(python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["spec"]["podSelector"]))' <<<"$np")")
  rpc_peer=$(python3 -c '
import json, sys
for rule in json.load(sys.stdin)["spec"]["ingress"]:
    for peer in rule.get("from", []):
        if "podSelector" in peer:
            print(json.dumps(peer["podSelector"]))' <<<"$np")
  [ "$(wc -l <<<"$rpc_peer")" = 1 ] && [ -n "$rpc_peer" ] || die "NetworkPolicy $1: expected one podSelector peer (the operator), got: $rpc_peer"
  got_operator=$(selector_pods "$rpc_peer")
  see "podSelector selects: $got_registrar (the Kamailio pods: $want_registrar)"
  see "the RPC port's peer selects: $got_operator (the operator pods: $want_operator)"
  [ -n "$want_registrar" ] && [ -n "$want_operator" ] || die "no running Kamailio or operator pods to compare the NetworkPolicy with"
  [ "$got_registrar" = "$want_registrar" ] || die "the NetworkPolicy's podSelector does not select exactly the Kamailio pods"
  [ "$got_operator" = "$want_operator" ] || die "the NetworkPolicy's RPC peer does not select exactly the operator pods"
}

# check_uninstalled RELEASE NAMESPACE DEMO_NAMESPACE: after helm uninstall, nothing of the
# release's own objects is left, and what the README's "Uninstalling" lists is: the CRDs, the
# SipDomains, SipProfiles, SipUsers and SipUserInvites you created with the users' credentials
# Secrets (the chart's
# example SipDomain goes with the release), the Lease, and the namespace.
check_uninstalled() {
  local resources crds
  resources=$(kubectl api-resources --verbs=list -o name | grep -v -E '^(events|events.events.k8s.io|componentstatuses)$' | paste -sd, -) \
    || die "kubectl api-resources failed"
  [ -n "$resources" ] || die "kubectl api-resources listed nothing"
  # Pods, EndpointSlices and ReplicaSets go through the garbage collector: poll.
  wait_until 90 "no object labelled app.kubernetes.io/instance=$1 (kubectl get $resources -A -l app.kubernetes.io/instance=$1)" \
    release_objects_gone "$resources" "$1"
  see "no object labelled app.kubernetes.io/instance=$1 remains"
  crds=$(kubectl get crds -o name) || die "kubectl get crds failed"
  [ "$(grep -c 'sipoperator.io' <<<"$crds")" = 4 ] || die "expected the 4 sipoperator.io CRDs to remain (Helm keeps CRDs): $crds"
  see "the 4 CRDs remain"
  local example
  example=$(kubectl -n "$2" get sipdomain example -o name --ignore-not-found) || die "kubectl get sipdomain failed"
  [ -z "$example" ] || die "the chart's example SipDomain remains"
  see "the chart's SipDomain example is gone"
  local objects users secrets
  objects=$(kubectl get sipdomains,sipprofiles,sipusers,sipuserinvites -A --no-headers) || die "kubectl get sip objects failed"
  users=$(kubectl get sipusers -A --no-headers) || die "kubectl get sipusers failed"
  secrets=$(credentials_fingerprint) || die "reading the credentials Secrets failed"
  [ "$(grep -c . <<<"$users")" -gt 0 ] && [ "$(grep -c . <<<"$secrets")" = "$(grep -c . <<<"$users")" ] \
    || die "expected every SipUser and its credentials Secret to remain: $users / $secrets"
  see "$(grep -c . <<<"$objects") SipDomains/SipProfiles/SipUsers/SipUserInvites and $(grep -c . <<<"$secrets") credentials Secrets remain"
  kubectl -n "$2" get lease "$1" >/dev/null || die "expected the leader Lease $2/$1 to remain"
  kubectl get namespace "$2" >/dev/null || die "expected the namespace $2 to remain"
  see "the Lease $2/$1 and the namespace $2 remain"
}

# release_objects_gone RESOURCES RELEASE: the query succeeds and finds nothing.
release_objects_gone() {
  local left
  left=$(kubectl get "$1" -A -l "app.kubernetes.io/instance=$2" -o name) || return 1
  [ -z "$left" ]
}

# check_listeners STATE_DIR: every socket the control plane and the node listen on (the PIDs
# start.sh recorded) is bound to 127.0.0.1 or the node IP, never to all addresses. Pods listen
# in their own network namespaces, reachable only through the bridge.
check_listeners() {
  local report
  report=$(ss -H -ltnup | python3 -c '
import re, sys
pids, node_ip = {}, sys.argv[2]
for line in open(sys.argv[1]):
    name, _, pid = line.strip().partition(" ")
    if pid:
        pids[pid] = name
seen, bad = [], []
for line in sys.stdin:
    fields = line.split()
    local = fields[4]
    for pid in re.findall(r"pid=(\d+)", line):
        if pid in pids:
            host = local.rsplit(":", 1)[0].strip("[]")
            (seen if host in ("127.0.0.1", "::1", node_ip) else bad).append(f"{pids[pid]} {fields[0]} {local}")
print("ok", len(seen), "listening sockets on 127.0.0.1 or", node_ip + ":", ", ".join(sorted(set(seen))))
for b in bad:
    print("bad", b)' "$1/pids" "$NODE_IP") || die "reading the listening sockets failed"
  see "$(grep '^ok' <<<"$report" | cut -d' ' -f2-)"
  if grep -q '^bad' <<<"$report"; then
    die "listening beyond 127.0.0.1 and $NODE_IP: $(grep '^bad' <<<"$report" | cut -d' ' -f2- | paste -sd, -)"
  fi
}
