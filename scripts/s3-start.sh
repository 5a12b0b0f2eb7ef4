#!/usr/bin/env bash
# s3-start.sh — start a throw-away Ceph RADOS Gateway (S3) on 127.0.0.1 for buquet's tests.
#
#   eval "$(bash scripts/s3-start.sh)"   # prints `export S3_ENDPOINT=…` lines on stdout
#   bash scripts/s3-stop.sh              # stops exactly what this started, wipes the state dir
#
# Installs radosgw, ceph-mon, ceph-osd and curl from Debian's packages when missing, builds a
# single-node cluster (1 mon, 1 memstore OSD, no mgr, cephx off, pool size 1) in $S3_STATE_DIR,
# starts radosgw, creates an S3 user and two buckets:
#   $S3_BUCKET            (buquet-test)            UNVERSIONED: the queue's bucket. Conditional
#                                                  writes are only enforced by RGW here.
#   $S3_BUCKET_VERSIONED  (buquet-test-versioned)  VERSIONED: for tests of how buquet detects it.
# Idempotent: when the cluster recorded in the state dir is healthy it only re-prints its exports;
# when it is half-dead it is stopped and rebuilt. Everything but the exports goes to stderr.
#
# Settings (env, optional): S3_STATE_DIR (default /tmp/buquet-rgw-$UID), S3_PORT (default 7480,
# or a free port when 7480 is busy; "auto" = a free port), S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${S3_STATE_DIR:-/tmp/buquet-rgw-$(id -u)}"
BUCKET="${S3_BUCKET:-buquet-test}"
BUCKET_V="${BUCKET}-versioned"
AK="${S3_ACCESS_KEY:-buquet-test}"
SK="${S3_SECRET_KEY:-buquet-test-secret}"
CONF="$STATE/ceph.conf"
ENVFILE="$STATE/env.sh"
BUILDING=0
export CEPH_CONF="$CONF"

log() { echo "[s3-start] $*" >&2; }
die() {
  echo "[s3-start] ERROR: $*" >&2
  if [ "$BUILDING" = 1 ]; then # leave nothing running behind a failed start; keep the logs
    log "stopping the partial cluster (logs kept in $STATE/log)"
    S3_STATE_DIR="$STATE" S3_KEEP_STATE=1 bash "$HERE/s3-stop.sh" >&2 || true
    rm -f "$ENVFILE"
  fi
  exit 1
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 30000))
    port_busy "$p" || { echo "$p"; return 0; }
  done
  die "no free port on 127.0.0.1"
}
# a PID file that names a live, non-zombie process
pid_alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true; }
# SigV4-signed request with curl; prints the HTTP status
s3req() {
  local method="$1" path="$2"; shift 2
  curl -s -o "$STATE/last-response" -m 20 -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$AK:$SK" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X "$method" "$@" "$URL$path"
}
# Ceph daemons fork into the background: close every inherited descriptor above 2 so they
# never hold the caller's pipes (which would hang `$(…)`, CI log pipes or our flock).
daemon() {
  ( for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    exec "$@" </dev/null >>"$STATE/log/daemons.log" 2>&1 )
}
ms() { date +%s%3N; }

# One start at a time per state dir: parallel callers (test runners) wait and then reuse it.
mkdir -p "$(dirname "$STATE")"
exec 9>"$STATE.lock"
flock -w 600 9 || die "timed out waiting for $STATE.lock"

# ---------- already running? ----------
if [ -f "$ENVFILE" ] && [ -f "$STATE/ports" ]; then
  # shellcheck disable=SC1091
  . "$STATE/ports"
  if pid_alive "$STATE/run/mon.a.pid" && pid_alive "$STATE/run/osd.0.pid" && pid_alive "$STATE/run/client.rgw.a.pid" \
    && [ "$(http_code "http://127.0.0.1:$RGW_PORT/")" = 200 ]; then
    log "already running on http://127.0.0.1:$RGW_PORT (state $STATE)"
    cat "$ENVFILE"
    exit 0
  fi
  log "stale cluster in $STATE: stopping it and rebuilding"
  S3_STATE_DIR="$STATE" bash "$HERE/s3-stop.sh" >&2 || true
fi

# ---------- install when missing ----------
missing=0
for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool curl; do
  command -v "$b" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 1 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  command -v apt-get >/dev/null || die "radosgw is not installed and there is no apt-get"
  t0=$(ms)
  if ! apt-cache policy radosgw 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    log "apt-get update"
    $SUDO apt-get update -qq >&2 || die "apt-get update failed"
  fi
  APTLOG="${TMPDIR:-/tmp}/buquet-s3-apt.log"
  log "installing radosgw ceph-mon ceph-osd curl from apt (log $APTLOG)"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    radosgw ceph-mon ceph-osd curl </dev/null >"$APTLOG" 2>&1 || { tail -n 20 "$APTLOG" >&2; die "apt-get install failed"; }
  log "installed in $((($(ms) - t0) / 1000)) s"
fi

# ---------- build a fresh cluster ----------
T0=$(ms)
case "${S3_PORT:-}" in
  "") RGW_PORT=7480; port_busy "$RGW_PORT" && RGW_PORT=$(free_port) ;;
  auto | 0) RGW_PORT=$(free_port) ;;
  *) RGW_PORT="$S3_PORT"; port_busy "$RGW_PORT" && die "S3_PORT=$RGW_PORT is in use" ;;
esac
MON_PORT=$(free_port)
[ "$MON_PORT" != "$RGW_PORT" ] || MON_PORT=$(free_port)
URL="http://127.0.0.1:$RGW_PORT"
if [ -d "$STATE" ] && [ -n "$(ls -A "$STATE" 2>/dev/null)" ] && [ ! -f "$CONF" ]; then
  die "$STATE is not empty and is not a cluster of ours: refusing to wipe it (set S3_STATE_DIR)"
fi
rm -rf "$STATE"
mkdir -p "$STATE"/{run,log,mon.a,osd.0,rgw}
FSID=$(cat /proc/sys/kernel/random/uuid)

cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = $STATE/keyring
run dir = $STATE/run
admin socket = $STATE/run/\$name.asok
pid file = $STATE/run/\$name.pid
log file = $STATE/log/\$name.log
log to stderr = false
err to stderr = false
crash dir = $STATE/crash
debug ms = 0/0
# fail in seconds, not the default 5 minutes, when a daemon cannot reach the monitor
client mount timeout = 30
rgw init timeout = 60
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
# fast map commits: pool creation at start-up waits on them
paxos propose interval = 0.05
paxos min wait = 0.01

[mon]
mon data = $STATE/mon.\$id

[osd]
osd data = $STATE/osd.\$id
osd objectstore = memstore
# memstore keeps PG log entries in RAM: keep them short
osd min pg log entries = 100
osd max pg log entries = 500
osd pg log dups tracked = 500
memstore device bytes = 4294967296

[client]
# without this the clients' mon auth fails (-13) with cephx off
ms mon client mode = crc secure
debug rgw = 0/5

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $STATE/rgw
EOF
printf 'RGW_PORT=%s\nMON_PORT=%s\n' "$RGW_PORT" "$MON_PORT" >"$STATE/ports"

BUILDING=1
ceph-authtool --create-keyring "$STATE/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$STATE/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$STATE/monmap" >>"$STATE/log/daemons.log" 2>&1 || die "ceph-mon --mkfs failed"
daemon ceph-mon -c "$CONF" -i a || die "ceph-mon did not start"
for _ in $(seq 1 100); do
  ceph --connect-timeout 2 mon stat >/dev/null 2>&1 && break
  pid_alive "$STATE/run/mon.a.pid" || die "ceph-mon died (see $STATE/log/mon.a.log)"
  sleep 0.2
done
ceph --connect-timeout 5 mon stat >/dev/null 2>&1 || die "ceph-mon does not answer"

OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
[ "$(ceph --connect-timeout 10 osd new "$OSD_UUID")" = 0 ] || die "unexpected OSD id"
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$STATE/log/daemons.log" 2>&1 || die "ceph-osd --mkfs failed"
daemon ceph-osd -c "$CONF" -i 0 || die "ceph-osd did not start"
for _ in $(seq 1 150); do
  ceph --connect-timeout 2 osd dump 2>/dev/null | grep -q '^osd.0 up' && break
  pid_alive "$STATE/run/osd.0.pid" || die "ceph-osd died (see $STATE/log/osd.0.log)"
  sleep 0.2
done
ceph --connect-timeout 2 osd dump 2>/dev/null | grep -q '^osd.0 up' || die "osd.0 did not come up"

daemon radosgw -c "$CONF" -n client.rgw.a || die "radosgw did not start"
for _ in $(seq 1 240); do
  [ "$(http_code "$URL/")" = 200 ] && break
  # radosgw writes its PID file a moment after forking
  pid_alive "$STATE/run/client.rgw.a.pid" || { sleep 0.5; pid_alive "$STATE/run/client.rgw.a.pid" || die "radosgw died (see $STATE/log/client.rgw.a.log)"; }
  sleep 0.25
done
[ "$(http_code "$URL/")" = 200 ] || die "radosgw does not answer on $URL"

radosgw-admin -c "$CONF" user create --uid=buquet-test --display-name="buquet tests" \
  --access-key="$AK" --secret-key="$SK" >/dev/null 2>>"$STATE/log/daemons.log" || die "radosgw-admin user create failed"
for b in "$BUCKET" "$BUCKET_V"; do
  c=$(s3req PUT "/$b")
  [ "$c" = 200 ] || die "CreateBucket $b: HTTP $c $(cat "$STATE/last-response")"
done
c=$(s3req PUT "/$BUCKET_V?versioning=" -H 'Content-Type: application/xml' --data-binary \
  '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>')
[ "$c" = 200 ] || die "PutBucketVersioning: HTTP $c $(cat "$STATE/last-response")"
# self-check: the queue's bucket must refuse a second create-only PUT
c1=$(s3req PUT "/$BUCKET/.s3-start-probe" -H 'If-None-Match: *' --data-binary 1)
c2=$(s3req PUT "/$BUCKET/.s3-start-probe" -H 'If-None-Match: *' --data-binary 2)
s3req DELETE "/$BUCKET/.s3-start-probe" >/dev/null || true
[ "$c1" = 200 ] && [ "$c2" = 412 ] || die "conditional PUT self-check failed ($c1/$c2)"
BUILDING=0

cat >"$ENVFILE" <<EOF
export S3_ENDPOINT=$URL
export AWS_ACCESS_KEY_ID=$AK
export AWS_SECRET_ACCESS_KEY=$SK
export AWS_REGION=us-east-1
export S3_FORCE_PATH_STYLE=true
export S3_BUCKET=$BUCKET
export S3_BUCKET_VERSIONED=$BUCKET_V
export S3_SERVER=ceph-radosgw-$(radosgw --version 2>/dev/null | awk '{print $3}')
export S3_STATE_DIR=$STATE
EOF
log "ready in $(($(ms) - T0)) ms on $URL: $BUCKET (unversioned), $BUCKET_V (versioned)"
cat "$ENVFILE"
