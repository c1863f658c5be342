#!/usr/bin/env bash
# Checks that the local images keep the runtime contract the Dockerfile and the chart rely on,
# in a running containerd: tests/images/check-contract.sh CONTAINERD_ADDRESS [IMAGES]
# (IMAGES: what import.sh printed for operator and kamailio; without it, import.sh runs here)
#   operator  the image config has the Dockerfile's final-stage USER, ENTRYPOINT, EXPOSE and
#             LABELs; its entrypoint runs read-only and --version names Cargo.toml's version
#   kamailio  runs as the chart's runAsUser:runAsGroup, `kamailio` is on PATH, the chart's
#             kamailio.cfg parses with every module it loads (-c), and Kamailio started as the
#             chart starts it (read-only root, config read-only, only /run/kamailio writable)
#             answers JSON-RPC with the token from the environment, and only with it
# Prints each check; exits 1 after all of them if any failed.
#
# ctr 1.6 `run` has no --user: the processes run as the image's own User, which is checked
# against the Dockerfile and the chart first (and, for Kamailio, seen from inside by `id`).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
chart=$repo/charts/sip-operator
[ $# -eq 1 ] || [ $# -eq 2 ] || { echo "usage: check-contract.sh CONTAINERD_ADDRESS [IMAGES]" >&2; exit 2; }
ctr=(ctr --address "$1" --namespace k8s.io)
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

failed=0
pass() { echo "ok    $*"; }
fail() { echo "FAIL  $*"; failed=$((failed + 1)); }
# same WHAT EXPECTED ACTUAL
same() { if [ "$2" = "$3" ]; then pass "$1: $3"; else fail "$1: expected $2, found $3"; fi; }

images=${2:-$("$here/import.sh" "$1" operator kamailio)}
read -r _ op_ref op_tar <<<"$(grep '^operator ' <<<"$images")"
read -r _ km_ref km_tar <<<"$(grep '^kamailio ' <<<"$images")"
[ -n "${op_tar:-}" ] && [ -n "${km_tar:-}" ] || { echo "check-contract.sh: no operator or kamailio image in: $images" >&2; exit 2; }

# The image config, straight from the archive that was imported.
blob() { tar -xOf "$1" "blobs/${2/://}"; }
config_of() {
  local manifest
  manifest=$(blob "$1" "$(tar -xOf "$1" index.json | jq -r '.manifests[0].digest')")
  blob "$1" "$(jq -r .config.digest <<<"$manifest")"
}

# Containers get unique names and are removed however this script ends.
ids=() log=""
cleanup() {
  local id
  [ -z "$log" ] || rm -f "$log"
  for id in "${ids[@]}"; do
    "${ctr[@]}" task kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    "${ctr[@]}" task delete "$id" >/dev/null 2>&1 || true
    "${ctr[@]}" container delete "$id" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
new_id() { id="check-$$-$RANDOM"; ids+=("$id"); }
# Under the test node's cgroup (ctr's default is /k8s.io/ID, which nothing would remove), so
# that node/stop.sh also kills a container this script left behind when it was killed.
cgroup() { if [ -d /sys/fs/cgroup/pids/sipnode ]; then echo "/sipnode/$id"; else echo "/sip-operator-check/$id"; fi; }
run() { # REF ARGS...: runs ARGS (not after the entrypoint: ctr replaces the whole command)
  local ref=$1; shift
  new_id
  "${ctr[@]}" run --rm --read-only --cgroup "$(cgroup)" "${mounts[@]}" "$ref" "$id" "$@" 2>&1
}

echo "== operator: $op_ref"
op_config=$(config_of "$op_tar")
# The Dockerfile's final stage, continuation lines joined, comments dropped.
final=$(awk '/^[[:space:]]*#/ { next }
             { line = line $0 } /\\$/ { sub(/\\$/, "", line); next }
             toupper(line) ~ /^FROM[[:space:]]/ { stage = "" }
             { stage = stage line "\n"; line = "" }
             END { printf "%s", stage }' "$repo/Dockerfile")
instr() { awk -v i="$1" 'toupper($1) == i { sub(/^[^[:space:]]+[[:space:]]+/, ""); v = $0 } END { print v }' <<<"$final"; }

user=$(instr USER)
same "USER" "$user" "$(jq -r '.config.User // ""' <<<"$op_config")"
# runAsNonRoot can only verify a numeric, non-zero user.
if [[ $user =~ ^[1-9][0-9]*(:[0-9]+)?$ ]]; then pass "USER is numeric and not root"
else fail "USER '$user' is not a numeric non-root user"; fi
if entry=$(jq -c . <<<"$(instr ENTRYPOINT)" 2>/dev/null) && [ -n "$entry" ]; then
  same "ENTRYPOINT" "$entry" "$(jq -c '.config.Entrypoint' <<<"$op_config")"
else
  fail "the Dockerfile's ENTRYPOINT is not in exec (JSON) form: $(instr ENTRYPOINT)"
fi
ports=$(for p in $(instr EXPOSE); do [[ $p == */* ]] && echo "$p" || echo "$p/tcp"; done | sort | xargs)
same "EXPOSE" "$ports" "$(jq -r '.config.ExposedPorts // {} | keys | join(" ")' <<<"$op_config")"
# LABEL key="value" pairs: every key must be there, with the same value unless the Dockerfile's
# comes from a build argument.
while IFS= read -r kv; do
  k=${kv%%=*}; v=${kv#*=}; v=${v#\"}; v=${v%\"}
  actual=$(jq -r --arg k "$k" '.config.Labels[$k] // "<missing>"' <<<"$op_config")
  if [[ $v == *'$'* ]]; then
    if [ "$actual" != "<missing>" ]; then pass "LABEL $k: $actual"; else fail "LABEL $k: missing from the image"; fi
  else
    same "LABEL $k" "$v" "$actual"
  fi
done < <(grep -E '^LABEL' <<<"$final" | grep -oE '[A-Za-z0-9._-]+="[^"]*"')

version=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && $1 ~ /^version *= *$/ { print $2; exit }' "$repo/Cargo.toml")
mounts=()
mapfile -t entry_args < <(jq -r '.config.Entrypoint[]' <<<"$op_config")
if ! out=$(run "$op_ref" "${entry_args[@]}" --version); then
  fail "entrypoint --version failed: $out"
elif grep -qwF "$version" <<<"$out"; then
  pass "entrypoint --version, read-only: $out"
else
  fail "entrypoint --version printed '$out', not Cargo.toml's version $version"
fi

echo "== kamailio: $km_ref"
km_config=$(config_of "$km_tar")
deploy=$chart/templates/registrar-deployment.yaml
# The pod's user, from the container's securityContext (the last runAsUser/runAsGroup).
pod_user=$(awk '$1 == "runAsUser:" { u = $2 } $1 == "runAsGroup:" { g = $2 } END { print u ":" g }' "$deploy")
same "User (chart runAsUser:runAsGroup)" "$pod_user" "$(jq -r '.config.User // ""' <<<"$km_config")"
# shellcheck disable=SC2016 # expanded inside the container
same "id -u:id -g inside" "$pod_user" "$(run "$km_ref" sh -c 'echo "$(id -u):$(id -g)"')"
# The chart's command, and the config file it names: the ConfigMap key of files/<name>.
cmd0=$(awk '/command:/ { getline; print $2; exit }' "$deploy")
cfg=$(awk '$1 == "-" && $2 == "-f" { getline; print $2; exit }' "$deploy")
if out=$(run "$km_ref" sh -c "command -v $cmd0"); then pass "$cmd0 on PATH: $out"
else fail "$cmd0 is not on the image's PATH"; fi
cfgname=${cfg##*/}
cm=$chart/templates/registrar-configmap.yaml
if grep -qF "$cfgname: |" "$cm" && grep -qF "Files.Get \"files/$cfgname\"" "$cm"; then
  pass "the ConfigMap's $cfgname is files/$cfgname, mounted at ${cfg%/*}"
else
  fail "the ConfigMap does not hold files/$cfgname as $cfgname"
fi

# As the pod has it: the ConfigMap read-only at the config's directory, an emptyDir (tmpfs,
# world-writable) at /run/kamailio, the root filesystem read-only, a network namespace of its
# own. The arguments are the chart's command with the chart's default values; LISTEN_ADDR, the
# pod IP there, is the container's loopback here.
mounts=(--mount "type=bind,src=$chart/files,dst=${cfg%/*},options=rbind:ro"
  --mount "type=tmpfs,src=tmpfs,dst=/run/kamailio,options=nosuid:nodev:mode=0777")
value() { awk -v k="$1:" '$1 == k { print $2; exit }' "$chart/values.yaml"; }
rpc_port=$(value rpcPort)
kargs=(-DD -E -f "$cfg" -m "$(value sharedMemoryMiB)" -M "$(value privateMemoryMiB)"
  -w /run/kamailio -A LISTEN_ADDR=127.0.0.1 -A "SIP_PORT=$(value sipPort)"
  -A "RPC_PORT=$rpc_port" -A 'RUN_DIR="/run/kamailio"')
modules=$(grep -oE '^loadmodule "[^"]+"' "$chart/files/$cfgname" | cut -d'"' -f2 | xargs)
if out=$(run "$km_ref" "$cmd0" -c "${kargs[@]}") && grep -q 'config file ok' <<<"$out"; then
  pass "kamailio -c: $cfgname parses, modules loaded: $modules"
else
  fail "kamailio -c rejects $cfgname: $(tail -n 5 <<<"$out")"
fi

# -c neither initialises the modules nor listens: start it for real and ask it over JSON-RPC,
# from inside its network namespace (curl from the host, through nsenter).
token="check-$RANDOM$RANDOM"
new_id
log=$(mktemp)
"${ctr[@]}" run --rm --read-only --cgroup "$(cgroup)" --env "SIP_OPERATOR_RPC_TOKEN=$token" "${mounts[@]}" \
  "$km_ref" "$id" "$cmd0" "${kargs[@]}" >"$log" 2>&1 &
runner=$!
rpc() { # TOKEN: core.version's answer, then its HTTP status
  nsenter --target "$pid" --net curl -s -m 2 -H "Authorization: Bearer $1" \
    -H 'Content-Type: application/json' -d '{"jsonrpc":"2.0","method":"core.version","id":1}' \
    -w ' HTTP %{http_code}' "http://127.0.0.1:$rpc_port/RPC"
}
answer="" pid=""
for _ in $(seq 50); do
  kill -0 "$runner" 2>/dev/null || break
  [ -n "$pid" ] || pid=$("${ctr[@]}" task ls | awk -v id="$id" '$1 == id && $2 > 0 { print $2 }')
  if [ -n "$pid" ] && answer=$(rpc "$token"); then break; fi
  sleep 0.2
done
if [[ $answer == *'"result"'*'HTTP 200' ]]; then
  pass "kamailio started read-only; RPC with the env token: ${answer%% HTTP*}"
  same "running kamailio's uid:gid" "$pod_user" \
    "$(awk '$1 == "Uid:" { u = $2 } $1 == "Gid:" { g = $2 } END { print u ":" g }' "/proc/$pid/status")"
  if [[ $(rpc wrong) == *'HTTP 401' ]]; then pass "RPC with a wrong token: 401"
  else fail "RPC with a wrong token was not refused"; fi
else
  fail "kamailio did not answer RPC (${answer:-no answer}); its log: $(tail -n 5 "$log")"
fi
"${ctr[@]}" task kill -s SIGTERM "$id" >/dev/null 2>&1 || true
wait "$runner" || true

if [ "$failed" -gt 0 ]; then
  echo "check-contract.sh: $failed check(s) failed" >&2
  exit 1
fi
echo "check-contract.sh: all checks passed"
