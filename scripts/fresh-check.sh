#!/usr/bin/env bash
# Proves the README's quick start on a fresh Debian bookworm system (slow: 30-70 min on 2 cores; not part of CI).
#   1. builds a clean bookworm root from Debian's packages with mmdebstrap (minbase + git + ca-certificates: what a
#      new user who cloned the repository has; the README's scripts must install everything else),
#   2. clones the repository into it with git (a commit, not the working tree: uncommitted changes are NOT tested),
#   3. runs the README's two commands in the chroot, as root with a clean environment: scripts/demo.sh, then
#      scripts/test.sh, timing each (the demo split into install / build / selftest / train / eval),
#   4. prints a summary (commit, spvit info, ctest count, times, the demo's Dice) and exits non-zero if a step failed.
# Nothing of the host is mounted in the chroot except /proc, /sys and /dev (with a fresh /dev/pts and a tmpfs
# /dev/shm, which Open MPI needs); only downloaded .deb files are cached between runs.
#
# Usage: scripts/fresh-check.sh [--keep]      (as root)
#   --keep        keep the chroot at the end (default: delete it; the .deb cache and the logs are always kept)
# Environment:
#   REPO          repository to clone (default: the one this script lives in)
#   REF           commit/branch/tag to test (default: REPO's HEAD, resolved once at the start)
#   FRESH_DIR     work folder (default /var/tmp/spvit-fresh): debs/ (apt cache), logs/<run>/, run lock
#   FRESH_ROOT    the chroot, removed and rebuilt every run (default $FRESH_DIR/root)
#   MIRROR        Debian mirror (default http://deb.debian.org/debian), SECURITY_MIRROR likewise
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fresh-check: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-check: must run as root (it builds a chroot with mmdebstrap and mounts /proc, /sys, /dev in it);" \
       "try: sudo $0 $*" >&2
  exit 1
fi

# Run in a private mount namespace: every mount made below stays invisible to the host and disappears with the
# script even if it is killed with SIGKILL (the EXIT trap unmounts them anyway).
if [ -z "${SPVIT_FRESH_NS:-}" ] && command -v unshare >/dev/null; then
  export SPVIT_FRESH_NS=1
  exec unshare --mount --propagation private -- "$BASH" "$0" "$@"
fi

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=${REPO:-$(git -C "$SCRIPT_DIR" rev-parse --show-toplevel)}
REPO=$(cd "$REPO" && pwd)
FRESH_DIR=${FRESH_DIR:-/var/tmp/spvit-fresh}
FRESH_ROOT=${FRESH_ROOT:-$FRESH_DIR/root}
DEB_CACHE=$FRESH_DIR/debs
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
INCLUDE=git,ca-certificates
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

case "$FRESH_ROOT" in
  /*) ;;
  *) echo "fresh-check: FRESH_ROOT must be an absolute path, not '$FRESH_ROOT'" >&2; exit 2 ;;
esac
FRESH_ROOT=$(realpath -m "$FRESH_ROOT")
case "$FRESH_ROOT" in
  /|/bin|/boot|/dev|/etc|/home|/lib*|/opt|/proc|/root|/run|/sbin|/srv|/sys|/tmp|/usr|/usr/*|/var|/var/tmp)
    echo "fresh-check: refusing FRESH_ROOT=$FRESH_ROOT (it is removed and rebuilt every run)" >&2; exit 2 ;;
esac

T_START=$(date +%s)
mkdir -p "$FRESH_DIR" "$DEB_CACHE" "$FRESH_DIR/logs"
exec 9>"$FRESH_DIR/.lock"
flock -n 9 || { echo "fresh-check: another run holds $FRESH_DIR/.lock" >&2; exit 1; }

COMMIT=$(git -C "$REPO" rev-parse --verify "${REF:-HEAD}^{commit}")
LOG_DIR=$FRESH_DIR/logs/$(date +%Y%m%d-%H%M%S)-${COMMIT:0:10}
mkdir -p "$LOG_DIR"
ln -sfn "$LOG_DIR" "$FRESH_DIR/logs/latest"

say() { echo "fresh-check: $*"; }
elapsed() { echo $(( $(date +%s) - T_START )); }

# ---- mounts and cleanup ---------------------------------------------------------------------------------------
mounts_under_root() {  # mount points at or below $FRESH_ROOT, deepest first
  awk -v r="$FRESH_ROOT" '{ gsub(/\\040/, " ", $5); if ($5 == r || index($5, r "/") == 1) print $5 }' \
    /proc/self/mountinfo | sort -r
}
kill_chroot_processes() {  # processes left running inside the chroot (e.g. an MPI daemon after a failure)
  local p root
  for p in /proc/[0-9]*; do
    root=$(readlink "$p/root" 2>/dev/null) || continue
    if [ "$root" = "$FRESH_ROOT" ]; then kill -KILL "${p#/proc/}" 2>/dev/null || true; fi
  done
}
unmount_all() {
  local m
  kill_chroot_processes
  for m in $(mounts_under_root); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
remove_root() {
  unmount_all
  if [ -n "$(mounts_under_root)" ]; then
    echo "fresh-check: NOT removing $FRESH_ROOT, still mounted: $(mounts_under_root | tr '\n' ' ')" >&2
    return 1
  fi
  rm -rf --one-file-system "$FRESH_ROOT"
}
STEP="start"     # what is running, for the message when the script stops early (a failure, Ctrl-C, SIGTERM)
on_exit() {
  local rc=$?
  set +e
  if [ "$rc" -ne 0 ] && [ "$STEP" != summary ]; then say "FAILED during $STEP (exit $rc)"; fi
  unmount_all
  if [ "$KEEP" -eq 0 ] && [ -d "$FRESH_ROOT" ]; then
    say "removing $FRESH_ROOT (use --keep to keep it)"
    remove_root
  elif [ -d "$FRESH_ROOT" ]; then
    say "kept the chroot: chroot $FRESH_ROOT /bin/bash"
  fi
  say "logs: $LOG_DIR"
  exit "$rc"
}
trap on_exit EXIT
trap 'say "interrupted (SIGINT)"; exit 130' INT
trap 'say "received SIGTERM"; exit 143' TERM

mount_chroot() {
  local r=$FRESH_ROOT
  mount -t proc proc "$r/proc"
  mount -t sysfs sysfs "$r/sys"
  # A booted bookworm machine has its cgroup hierarchy mounted (systemd); slurmd (the slurm_* tests) needs it.
  mount --rbind /sys/fs/cgroup "$r/sys/fs/cgroup"
  mount --bind /dev "$r/dev"                  # not recursive: the host's /dev/pts and /dev/shm stay outside
  mkdir -p "$r/dev/pts" "$r/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$r/dev/shm"
  # The one host folder allowed in: downloaded .deb files only, so a rerun need not download them again.
  mkdir -p "$r/var/cache/apt/archives"
  mount --bind "$DEB_CACHE" "$r/var/cache/apt/archives"
}

# Runs a command in the chroot's clone as a new user would (root, clean environment); every output line is
# written to LOG prefixed with its epoch second and clock time, and echoed with the time since the step began.
# The chroot's processes get a session of their own (setsid), so a signal sent to their process group cannot also
# end this script (it then reports the step's exit status); the step runs in the background and is waited for, so
# that Ctrl-C or SIGTERM to this script is handled at once (on_exit then ends the chroot's processes).
run_in_chroot() {
  local log=$1 cmd=$2 t0 rcfile=$LOG_DIR/.step-rc
  t0=$(date +%s)
  rm -f "$rcfile"
  (
    set +e
    setsid --wait chroot "$FRESH_ROOT" /usr/bin/env -i HOME=/root PATH="$CHROOT_PATH" TERM=dumb LANG=C.UTF-8 \
        /bin/bash -c "cd /root/spvit && $cmd" </dev/null 2>&1 |
      while IFS= read -r line || [ -n "$line" ]; do
        printf '%(%s)T %(%H:%M:%S)T %s\n' -1 -1 "$line" >>"$log"
        printf '[+%4ss] %s\n' $(( $(printf '%(%s)T' -1) - t0 )) "$line"
      done
    echo "${PIPESTATUS[0]}" >"$rcfile"
  ) &
  wait $! || true
  [ -s "$rcfile" ] || { say "no exit status from: $cmd"; return 1; }
  return "$(cat "$rcfile")"
}

# ---- 1. the fresh root ------------------------------------------------------------------------------------------
say "repository $REPO, testing commit $COMMIT"
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  say "note: $REPO has uncommitted changes; they are NOT tested (only commit ${COMMIT:0:10} is)"
fi
if ! command -v mmdebstrap >/dev/null; then
  say "installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mmdebstrap \
    >"$LOG_DIR/mmdebstrap-install.log" 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mmdebstrap \
        >>"$LOG_DIR/mmdebstrap-install.log" 2>&1; }
fi

STEP="mmdebstrap"
if [ -e "$FRESH_ROOT" ]; then
  say "removing the previous root $FRESH_ROOT"
  remove_root
fi
mkdir -p "$(dirname "$FRESH_ROOT")"
say "mmdebstrap $SUITE (minbase + $INCLUDE) into $FRESH_ROOT; log $LOG_DIR/mmdebstrap.log"
t0=$(date +%s)
# --skip=essential/unlink keeps the downloaded .debs in the chroot's apt cache, which the hooks copy in from and
# back out to $DEB_CACHE (the documented mmdebstrap cache recipe).
# shellcheck disable=SC2016  # "$1" is expanded by mmdebstrap's hook, not here
if ! mmdebstrap --mode=root --variant=minbase --include="$INCLUDE" --skip=essential/unlink \
      --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
      --setup-hook="sync-in '$DEB_CACHE' /var/cache/apt/archives/" \
      --customize-hook="sync-out /var/cache/apt/archives '$DEB_CACHE'" \
      "$SUITE" "$FRESH_ROOT" \
      "deb $MIRROR $SUITE main" \
      "deb $MIRROR $SUITE-updates main" \
      "deb $SECURITY_MIRROR $SUITE-security main" >"$LOG_DIR/mmdebstrap.log" 2>&1; then
  tail -n 30 "$LOG_DIR/mmdebstrap.log" >&2
  say "FAILED: mmdebstrap (log $LOG_DIR/mmdebstrap.log)"
  exit 1
fi
T_BOOTSTRAP=$(( $(date +%s) - t0 ))
rm -f "$FRESH_ROOT/etc/resolv.conf"
cp -L /etc/resolv.conf "$FRESH_ROOT/etc/resolv.conf"
say "root ready in ${T_BOOTSTRAP} s ($(du -sh --one-file-system "$FRESH_ROOT" | cut -f1))"

# ---- 2. the code, from git ----------------------------------------------------------------------------------
STEP="git clone"
git clone --quiet --no-local "file://$REPO" "$FRESH_ROOT/root/spvit" >"$LOG_DIR/clone.log" 2>&1
git -C "$FRESH_ROOT/root/spvit" -c advice.detachedHead=false checkout --quiet "$COMMIT" >>"$LOG_DIR/clone.log" 2>&1
TESTED=$(git -C "$FRESH_ROOT/root/spvit" rev-parse HEAD)
TESTED_SUBJECT=$(git -C "$FRESH_ROOT/root/spvit" log -1 --format=%s | cut -c1-100)
say "cloned $TESTED ($TESTED_SUBJECT)"

mount_chroot

# ---- 3. the README's two commands -------------------------------------------------------------------------------
DEMO_LOG=$LOG_DIR/demo.log
TEST_LOG=$LOG_DIR/test.log
STEP="scripts/demo.sh"
say "scripts/demo.sh (log $DEMO_LOG)"
DEMO_T0=$(date +%s)
DEMO_RC=0
run_in_chroot "$DEMO_LOG" scripts/demo.sh || DEMO_RC=$?
DEMO_T1=$(date +%s)
say "scripts/demo.sh exited $DEMO_RC after $(( DEMO_T1 - DEMO_T0 )) s"

STEP="scripts/test.sh"
say "scripts/test.sh (log $TEST_LOG)"
TEST_T0=$(date +%s)
TEST_RC=0
run_in_chroot "$TEST_LOG" scripts/test.sh || TEST_RC=$?
TEST_T1=$(date +%s)
say "scripts/test.sh exited $TEST_RC after $(( TEST_T1 - TEST_T0 )) s"

STEP="spvit info"
INFO_RC=0
run_in_chroot "$LOG_DIR/info.log" \
  'OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 build/bin/spvit info' >/dev/null || INFO_RC=$?

# ---- 4. summary ---------------------------------------------------------------------------------------------
# The demo's phases, from the timestamps of known lines in its log (each boundary is where the next phase's
# first, or this phase's last, known line appeared; "n/a" when a marker is missing):
#   install: start .. first cmake/ninja line;  build: .. last ninja/make progress line;
#   selftest: .. "PASSED";  train: .. "trained N steps";  eval: .. end of demo.sh.
demo_split() {
  awk -v t0="$DEMO_T0" -v t1="$DEMO_T1" '
    { t = $1; line = substr($0, length($1 " " $2 " ") + 1) }
    b == "" && line ~ /^(-- |CMake |\[ *[0-9]+\/[0-9]+\] |\[ *[0-9]+%\] |ninja: )/ { b = t }
    b != "" && p == "" && line ~ /^(\[ *[0-9]+\/[0-9]+\] |\[ *[0-9]+%\] |ninja: )/ { be = t }
    be != "" && p == "" && line ~ /(^| )PASSED( |$)/ { p = t }
    p != "" && tr == "" && line ~ /trained [0-9]+ steps/ { tr = t }
    function d(a, z) { return (a == "" || z == "") ? "n/a" : (z - a) " s" }
    END {
      if (be == "") be = b
      printf "install %s, build %s, selftest %s, train %s, eval %s", d(t0, b), d(b, be), d(be, p), d(p, tr), d(tr, t1)
    }' "$DEMO_LOG" 2>/dev/null || echo "n/a"
}
strip_stamp() { sed -E 's/^[0-9]+ [0-9:]{8} //' "$1" 2>/dev/null || true; }

STEP="summary"
SPLIT=$(demo_split)
DEMO_OWN=$(strip_stamp "$DEMO_LOG" | grep -E '^demo: .*[0-9]+(\.[0-9]+)? ?s\b' || true)
DICE=$(strip_stamp "$DEMO_LOG" | grep -oE 'mean foreground Dice [0-9.]+' | tail -n1 | awk '{print $4}' || true)
CTEST=$(strip_stamp "$TEST_LOG" | grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' | tail -n1 || true)
CTEST_FAILED=$(strip_stamp "$TEST_LOG" | sed -n '/The following tests FAILED/,$p' | grep -E '^\s+[0-9]+ - ' || true)
INFO=$(strip_stamp "$LOG_DIR/info.log")
STATUS=PASSED
if [ "$DEMO_RC" -ne 0 ] || [ "$TEST_RC" -ne 0 ] || [ "$INFO_RC" -ne 0 ] || [ -z "$CTEST" ] || [ -z "$DICE" ]; then
  STATUS=FAILED
fi

{
  echo
  echo "================ fresh-system check: $STATUS ================"
  echo "commit tested:   $TESTED ($TESTED_SUBJECT)"
  echo "system:          Debian $SUITE from $MIRROR (mmdebstrap minbase + $INCLUDE), $(nproc) cores; root in ${T_BOOTSTRAP} s"
  echo "scripts/demo.sh: exit $DEMO_RC, $(( DEMO_T1 - DEMO_T0 )) s wall: $SPLIT"
  if [ -n "$DEMO_OWN" ]; then echo "$DEMO_OWN" | sed 's/^/  demo printed:  /'; fi
  echo "  mean foreground Dice: ${DICE:-n/a (no 'mean foreground Dice' line)}"
  echo "scripts/test.sh: exit $TEST_RC, $(( TEST_T1 - TEST_T0 )) s wall: ${CTEST:-no ctest summary line}"
  if [ -n "$CTEST_FAILED" ]; then echo "$CTEST_FAILED" | sed 's/^\s*/  FAILED test:   /'; fi
  echo "spvit info (exit $INFO_RC):"
  echo "$INFO" | sed 's/^/  /'
  echo "total:           $(elapsed) s"
  echo "logs:            $LOG_DIR"
  echo "============================================================"
} | tee "$LOG_DIR/summary.txt"

if [ "$STATUS" != PASSED ]; then
  for f in "$DEMO_LOG" "$TEST_LOG"; do
    if [ -s "$f" ]; then echo "--- last lines of $f"; strip_stamp "$f" | tail -n 25; fi
  done >&2
  exit 1
fi
