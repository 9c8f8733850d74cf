#!/usr/bin/env bash
# Runs the shared OpenSnitch peer benchmark (../shared/bench/peer-opensnitch) with
# `portcullis helper` plugged in as the system under test, so that none, ct-only,
# nfq-c, opensnitch(-1k) and portcullis(-1k) come from the same run. Arguments go to
# its run.sh (e.g. --quick, --runs 3, --only lat,rate, --variants "nfq-c sut").
#   bash bench/peer-opensnitch.sh --quick
#   RUNS=1 bash bench/peer-opensnitch.sh
# The harness is copied to $BENCH_WORK (default /tmp/portcullis-peer-bench) and built
# there; results land in $BENCH_WORK/peer-opensnitch/results/<timestamp>/.
# PEER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") go to the helper's node.
#
# Internal: `bench/peer-opensnitch.sh --exec-helper STATE_DIR` is the daemon command
# the harness starts (in its namespace); with FW_RULES_DIR set, it first converts
# those OpenSnitch rules into STATE_DIR/rules.json, then execs the helper (same PID).
# `--exec-interceptor` runs bench/peer-interceptor.ts instead: the verdict loop alone,
#   FW_DAEMON_CMD="$PWD/bench/peer-opensnitch.sh --exec-interceptor" FW_DAEMON_LABEL=loop \
#     bash bench/peer-opensnitch.sh --quick --variants "nfq-c sut"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

if [ "${1:-}" = "--exec-helper" ]; then
  state="$2"
  mkdir -p "$state"
  # The harness runs us under `ip netns exec`, whose fresh sysfs hides the cgroup v2
  # mount, and the helper would fall back from eBPF attribution to /proc (it needs the
  # cgroup root to attach to). `portcullis helper --netns` keeps the mounts, so mount
  # cgroup2 again, in this private mount namespace only, to measure what users run.
  if [ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] &&
    ! grep -q ' - cgroup2 ' /proc/self/mountinfo; then
    mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || true
  fi
  if [ -n "${FW_RULES_DIR:-}" ]; then
    node "$root/bin/portcullis.js" rules convert-opensnitch "$FW_RULES_DIR" \
      --out "$state/rules.json" >"$state/convert.log" 2>&1
  else
    rm -f "$state/rules.json"
  fi
  # shellcheck disable=SC2086
  exec node ${PEER_NODE_ARGS:-} "$root/bin/portcullis.js" helper --queue "${FW_QUEUE:-0}" \
    --state-dir "$state" --socket "$state/helper.sock" --default-action allow ${PEER_HELPER_ARGS:-}
fi

if [ "${1:-}" = "--exec-interceptor" ]; then
  # shellcheck disable=SC2086
  exec node ${PEER_NODE_ARGS:-} "$root/dist/bench/peer-interceptor.js"
fi

shared="${SHARED_BENCH:-$root/../../shared/bench}"
[ -d "$shared" ] || shared="$root/../shared/bench"
[ -d "$shared/peer-opensnitch" ] || { echo "bench/peer-opensnitch.sh: no harness at $shared" >&2; exit 1; }

apt_needed=(opensnitch build-essential libnetfilter-queue-dev libnetfilter-conntrack-dev libmnl-dev
  iptables nftables python3)
missing=()
for p in "${apt_needed[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Never build or write results inside shared/: always in a copy.
work="${BENCH_WORK:-/tmp/portcullis-peer-bench}"
mkdir -p "$work"
cp -a "$shared/." "$work/"
chmod -R u+w "$work"
make -s -C "$work/peer-opensnitch" >/dev/null

(cd "$root" && npm run -s build:ts)
export SUT_CWD="$root"
export FW_DAEMON_LABEL="${FW_DAEMON_LABEL:-portcullis}"
export FW_DAEMON_CMD="${FW_DAEMON_CMD:-$root/bench/peer-opensnitch.sh --exec-helper $work/state}"
export FW_DAEMON_1K_CMD="${FW_DAEMON_1K_CMD:-$root/bench/peer-opensnitch.sh --exec-helper $work/state-1k}"
cd "$work/peer-opensnitch"
exec ./run.sh "$@"
