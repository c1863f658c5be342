#!/usr/bin/env bash
# Stops exactly the processes start.sh recorded in STATE_DIR/pids (TERM, then KILL after 10 s),
# newest first; then, for start.sh --node, what node/stop.sh removes.
#   stop.sh STATE_DIR [--purge]   (--purge also deletes STATE_DIR)
set -uo pipefail
dir=${1:?usage: stop.sh STATE_DIR [--purge]}
pids_file="$dir/pids"
[ -f "$pids_file" ] || { echo "stop.sh: no control plane recorded in $dir" >&2; exit 0; }

# A process that exited but is not yet reaped by its (re)parent is a zombie: kill -0 still
# succeeds on it, so look at its state too.
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit !($3 == "Z")}' "/proc/$1/stat" 2>/dev/null; }

# In reverse start order, one at a time: the API server shuts down quickly only while etcd
# is still there to talk to.
while read -r name pid; do
  [ -n "${pid:-}" ] || continue
  # Never signal ourselves (the reaper runs stop.sh).
  [ "$pid" = "$$" ] || [ "$pid" = "$PPID" ] && continue
  alive "$pid" || continue
  kill -TERM "$pid" 2>/dev/null || continue
  deadline=$(( $(date +%s) + 10 ))
  while alive "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
  if alive "$pid"; then
    echo "stop.sh: $name ($pid) ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
done < <(tac "$pids_file")
: > "$pids_file"
# start.sh --node: the containers, mounts, network namespaces, bridge and rules it made.
if [ -d "$dir/node" ] && ! "$(dirname "$0")/node/stop.sh" "$dir"; then
  echo "stop.sh: the node's cleanup failed (see above); run stop.sh $dir again to retry" >&2
  exit 1
fi
if [ "${2:-}" = "--purge" ]; then
  # Never delete through a mount (a pod volume, a container's root file system).
  if awk -v d="$(cd "$dir" && pwd)/" 'index($5, d) == 1 {found = 1} END {exit !found}' /proc/self/mountinfo; then
    echo "stop.sh: mounts remain under $dir; not deleting it" >&2
    exit 1
  fi
  rm -rf "$dir"
fi
exit 0
