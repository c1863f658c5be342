# shellcheck shell=bash disable=SC2154  # sourced: the caller sets the globals named below
# Steps the end-to-end scripts share (scripts/node-e2e.sh; scripts/kind-e2e.sh's SIP part is
# the same): logging, polling with a deadline, SipUsers, a SIPp registration, diagnostics.
# Sourced; the caller sets $repo, $ns (the release namespace), $release and E2E_LOG_PREFIX.

log() { echo "${E2E_LOG_PREFIX:-e2e}: $*" >&2; }
die() { log "$*"; exit 1; }
step() { echo >&2; log "== $*"; }
see() { log "   $*"; }

# wait_until SECONDS WHAT CMD...: polls CMD every 0.5 s until it succeeds or the deadline passes.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for $what"
    sleep 0.5
  done
}

# create_user NAMESPACE NAME [SPEC_LINES]: a SipUser of the chart's example domain.
create_user() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: sipoperator.io/v1alpha1
kind: SipUser
metadata:
  name: $2
  namespace: $1
spec:
  domainRef: example
${3:-}
YAML
}

# secret_field NAMESPACE USER KEY: a key of the user's credentials Secret (status.secretName).
secret_field() {
  local secret
  secret=$(kubectl -n "$1" get sipuser "$2" -o jsonpath='{.status.secretName}')
  kubectl -n "$1" get secret "${secret:-$2-sip-credentials}" -o jsonpath="{.data.$3}" | base64 -d
}

# sipp_register NAMESPACE USER HOST PORT LOCAL_IP DIR [DEVICE]: REGISTER (challenge, then
# digest) over TCP with the password from the user's Secret, as a provisioning tool would;
# must get 200. With DEVICE, as that device of the user: its own digest username and password
# (Secret keys devices.<DEVICE>.username and .password), to the user's address, from a local
# port of its own (so each device is a contact of its own).
# tests/support/sipp/register.xml logs the final answer as final=<code>.
sipp_register() {
  local username domain auth password dir=$6 result prefix="" port=()
  username=$(secret_field "$1" "$2" username)
  domain=$(secret_field "$1" "$2" domain)
  if [ -n "${7:-}" ]; then
    prefix="devices\\.$7\\."
    port=(-p "$((20000 + RANDOM % 20000))")
  fi
  auth=$(secret_field "$1" "$2" "${prefix}username")
  password=$(secret_field "$1" "$2" "${prefix}password")
  [ -n "$username" ] && [ -n "$domain" ] && [ -n "$auth" ] && [ -n "$password" ] \
    || die "the credentials Secret of $1/$2 lacks username, domain, ${prefix}username or ${prefix}password"
  rm -rf "$dir"
  mkdir -p "$dir"
  printf 'SEQUENTIAL\n%s;%s;300;\n' "$username" "$domain" > "$dir/phone.csv"
  see "REGISTER sip:$username@$domain as $auth at $3:$4 (TCP) from $5"
  (cd "$dir" && sipp "$3:$4" -sf "$repo/tests/support/sipp/register.xml" \
    -inf phone.csv -au "$auth" -ap "$password" -m 1 -t t1 -i "$5" "${port[@]}" \
    -timeout 15s -timeout_error -nostdin \
    -trace_logs -log_file register.log -trace_err -error_file errors.log \
    -trace_msg -message_file messages.log \
    > sipp.out 2>&1 < /dev/null) || true
  result=$(grep -o 'final=[0-9]*' "$dir/register.log" 2>/dev/null | tail -n 1 || true)
  see "REGISTER answered: ${result:-nothing}"
  [ "$result" = final=200 ] || die "the registration failed (expected final=200); SIPp logs in $dir"
}

# devices_are NAMESPACE USER "NAME=N ...": status.devices lists exactly these registered
# contact counts.
devices_are() {
  [ "$(kubectl -n "$1" get sipuser "$2" -o jsonpath='{range .status.devices[*]}{.name}={.contacts} {end}')" = "$3 " ]
}

# contacts_are NAMESPACE USER N: the CONTACTS column of `kubectl get sipusers` shows N.
contacts_are() {
  [ "$(kubectl -n "$1" get sipuser "$2" --no-headers -o custom-columns=C:.status.registration.contacts)" = "$3" ]
}

# What to look at when something failed ($1: the SIPp directory).
diagnose() {
  set +e
  section() { echo; echo "===== $*"; }
  section "kubectl get sip -A"
  kubectl get sip -A -o wide
  section "workloads in $ns"
  kubectl -n "$ns" get deployments,pods,services,endpointslices,leases -o wide
  section "SipDomains"
  kubectl describe sipdomains -A
  section "operator logs"
  kubectl -n "$ns" logs --prefix --tail=200 \
    -l "app.kubernetes.io/instance=$release,app.kubernetes.io/component=operator"
  section "Kamailio logs"
  kubectl -n "$ns" logs --prefix --tail=200 \
    -l "app.kubernetes.io/instance=$release,app.kubernetes.io/component=registrar"
  section "events"
  kubectl get events -A --sort-by=.lastTimestamp | tail -n 60
  local f
  for f in sipp.out register.log errors.log messages.log; do
    if [ -s "${1:-/nonexistent}/$f" ]; then
      section "SIPp $f"
      tail -n 60 "$1/$f"
    fi
  done
  set -e
}
