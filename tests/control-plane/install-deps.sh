#!/usr/bin/env bash
# Installs what the control-plane scripts need beyond Go and kubectl, idempotently (--node: also
# what start.sh --node needs). Not helm:
# whoever needs it runs tests/tools/helm/build.sh, which builds and caches it and prints its path.
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
command -v flock >/dev/null && command -v unshare >/dev/null || need+=(util-linux)
# The registrar end-to-end tests run a real Kamailio (Debian's base package holds every module
# the shipped config loads) and real SIP clients (SIPp, from sip-tester).
command -v kamailio >/dev/null || [ -x /usr/sbin/kamailio ] || need+=(kamailio)
command -v sipp >/dev/null || need+=(sip-tester)
# The invite page's end-user test drives a real headless Chromium over WebDriver, and reads the
# QR code it shows with zbarimg.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v zbarimg >/dev/null || need+=(zbar-tools)
# The softphone test provisions a real Linphone (linphonec) from a credentials Secret.
command -v linphonec >/dev/null || need+=(linphone-cli)
# The scale-out test gives one operator a hosts file of its own (EndpointSlices refuse
# loopback IPs): unshare (util-linux, above) and mount.
command -v mount >/dev/null || need+=(mount)
# start.sh --node: the container runtime, the pod network's CNI plugins, and what kube-proxy
# programs Services with (iptables, and conntrack to flush UDP flows of a moved endpoint).
if [ "${1:-}" = "--node" ]; then
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "install-deps.sh: installing ${need[*]}" >&2
sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd=sudo
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
