#!/usr/bin/env bash
# Stops exactly the processes start.sh recorded in STATE_DIR/pids (TERM, then KILL after 10 s).
#   stop.sh STATE_DIR [--purge]   (--purge also deletes STATE_DIR)
set -uo pipefail
dir=${1:?usage: stop.sh STATE_DIR [--purge]}
pids_file="$dir/pids"
[ -f "$pids_file" ] || { echo "stop.sh: no control plane recorded in $dir" >&2; exit 0; }

pids=()
while read -r name pid; do
  [ -n "${pid:-}" ] || continue
  # Never signal ourselves (the reaper runs stop.sh) or a PID reused by an unrelated process.
  [ "$pid" = "$$" ] || [ "$pid" = "$PPID" ] && continue
  if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null && pids+=("$pid"); fi
done < <(tac "$pids_file")

deadline=$(( $(date +%s) + 10 ))
for pid in "${pids[@]}"; do
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
done
: > "$pids_file"
[ "${2:-}" = "--purge" ] && rm -rf "$dir"
exit 0
