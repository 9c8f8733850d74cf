#!/usr/bin/env bash
# Runs the shared anchor harness (../shared/bench) with Portcullis plugged in,
# so that anchors and our figures come from the same run. Arguments go to
# run-anchors.sh (e.g. --only ct-dump, --quick, --runs 3).
#   bash bench/run.sh --only ct-dump
#   CT_SIZES="250000" RUNS=3 bash bench/run.sh --only ct-dump
#   NFQ_RATES="0 150000" RUNS=1 bash bench/run.sh --only nfq   (batched + per-packet loops)
# The harness is copied to $BENCH_WORK (default /tmp/portcullis-bench) and
# builds its C and Go tools there; results land in $BENCH_WORK/results/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${SHARED_BENCH:-$root/../shared/bench}"
[ -d "$shared" ] || { echo "bench/run.sh: no harness at $shared" >&2; exit 1; }

apt_needed=(build-essential libnetfilter-conntrack-dev libnetfilter-queue-dev libmnl-dev golang-go
  golang-github-vishvananda-netlink-dev golang-github-mdlayher-netlink-dev conntrack iptables python3)
missing=()
for p in "${apt_needed[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The harness writes bin/, .gocache/ and results/ next to itself: never into
# shared/ (root could, despite the read-only bits), always into a copy.
work="${BENCH_WORK:-/tmp/portcullis-bench}"
mkdir -p "$work"
cp -a "$shared/." "$work/"
chmod -R u+w "$work"
make -s -C "$work" >/dev/null

(cd "$root" && npm run -s build:ts)
export SUT_CWD="$root"
export CT_DUMP_CMD="${CT_DUMP_CMD:-node dist/bench/ct-dump.js}" CT_DUMP_LABEL="${CT_DUMP_LABEL:-portcullis}"
export CT_POPULATE_CMD="${CT_POPULATE_CMD:-node dist/bench/ct-populate.js}" CT_POPULATE_LABEL="${CT_POPULATE_LABEL:-portcullis}"
export CT_EVENTS_CMD="${CT_EVENTS_CMD:-node dist/bench/ct-events.js}" CT_EVENTS_LABEL="${CT_EVENTS_LABEL:-portcullis}"
export NFQ_LOOP_CMD="${NFQ_LOOP_CMD:-node dist/bench/nfq-accept.js}"
export NFQ_LOOP_LABEL="${NFQ_LOOP_LABEL:-portcullis}"
export RESULTS_DIR="${RESULTS_DIR:-$work/results/$(date +%Y%m%d-%H%M%S)}"

# The harness takes one NFQUEUE command. The batched loop (label portcullis)
# runs in the main pass next to every anchor; then a second nfq pass measures
# the per-packet loop (label portcullis-pp, one NFQNL_MSG_VERDICT per packet)
# interleaved with the C per-packet anchor (single), appended to the same
# results, and the tables are printed again with both. NFQ_PER_PACKET=0 skips it.
only="ct-dump,ct-events,nfq"
quick=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	case "${args[$i]}" in
	--only) only="${args[$((i + 1))]:-}" ;;
	--quick) quick=1 ;;
	--runs) export RUNS="${args[$((i + 1))]:-}" ;;
	esac
done
rc=0
"$work/run-anchors.sh" "$@" || rc=$?
case ",$only," in *,nfq,*) ;; *) exit $rc ;; esac
[ "${NFQ_PER_PACKET:-1}" = 1 ] || exit $rc
if [ "$quick" = 1 ]; then
	export RUNS="${RUNS:-1}" NFQ_DURATION="${NFQ_DURATION:-2}" NFQ_RT="${NFQ_RT:-5000}"
fi
echo "=== nfq, per-packet verdicts: ${NFQ_PP_CMD:-node dist/bench/nfq-accept.js --per-packet}" >&2
RESULTS="$RESULTS_DIR/results.tsv" NFQ_BASELINE=0 NFQ_ANCHORS="${NFQ_PP_ANCHORS:-single}" \
	NFQ_LOOP_CMD="${NFQ_PP_CMD:-node dist/bench/nfq-accept.js --per-packet}" \
	NFQ_LOOP_LABEL="${NFQ_PP_LABEL:-portcullis-pp}" "$work/nfq/run.sh" || rc=1
python3 "$work/lib/summarize.py" "$RESULTS_DIR/results.tsv" --json "$RESULTS_DIR/summary.json" |
	tee "$RESULTS_DIR/summary.txt"
exit $rc
