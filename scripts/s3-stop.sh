#!/usr/bin/env bash
# s3-stop.sh — stop the RGW cluster that scripts/s3-start.sh started, and wipe its state dir.
#
# Stops only the PIDs recorded in $S3_STATE_DIR/run/*.pid, and only after checking that each
# still is that ceph daemon running with this state dir's ceph.conf: never kills by name.
#   S3_STATE_DIR    (default /tmp/buquet-rgw-$UID)
#   S3_KEEP_STATE=1 keeps the state dir (for its logs)
set -uo pipefail
STATE="${S3_STATE_DIR:-/tmp/buquet-rgw-$(id -u)}"
log() { echo "[s3-stop] $*" >&2; }
[ -d "$STATE" ] || { log "nothing to stop ($STATE does not exist)"; exit 0; }

alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# ours NAME BINARY: prints the PID from NAME's pid file when it is our live daemon
ours() {
  local pid cmd
  pid=$(cat "$STATE/run/$1.pid" 2>/dev/null) || return 1
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  alive "$pid" || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
  if [[ "$cmd" != *"$2"* || "$cmd" != *"$STATE/ceph.conf"* ]]; then
    log "pid $pid ($cmd) is not our $2: leaving it alone"
    return 1
  fi
  echo "$pid"
}

# radosgw first (it needs RADOS to shut down cleanly), then the OSD, then the monitor
for spec in client.rgw.a:radosgw osd.0:ceph-osd mon.a:ceph-mon; do
  name=${spec%%:*}
  pid=$(ours "$name" "${spec##*:}") || continue
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 200); do alive "$pid" || break; sleep 0.05; done
  if alive "$pid"; then
    log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    for _ in $(seq 1 40); do alive "$pid" || break; sleep 0.05; done
  fi
  log "stopped $name (pid $pid)"
done
rm -f "$STATE"/run/*.pid "$STATE/env.sh"
if [ "${S3_KEEP_STATE:-0}" != 1 ]; then
  if [ -f "$STATE/ceph.conf" ] || [ -z "$(ls -A "$STATE" 2>/dev/null)" ]; then
    rm -rf "$STATE"
    log "removed $STATE"
  else
    log "$STATE holds no ceph.conf: not removing it"
  fi
fi
exit 0
