#!/usr/bin/env bash
# Stops exactly the processes start.sh recorded in STATE_DIR/pids (TERM, then KILL after 10 s),
# newest first.
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
[ "${2:-}" = "--purge" ] && rm -rf "$dir"
exit 0
