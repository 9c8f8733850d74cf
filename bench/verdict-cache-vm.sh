#!/usr/bin/env bash
# bench/verdict-cache.ts under Debian's stock kernels (test/vm/run-in-vm.sh), which have
# the nfqueue conntrack glue this machine's kernel lacks. Builds the anchor
# (../shared/bench's nfq-accept, as bench/run.sh does) and dist/ on the host first.
#   bash bench/verdict-cache-vm.sh [--connections N] [--rounds R]
# Kernels: PORTCULLIS_VM_KERNELS (default Debian 12's 6.1 and 6.12). Under TCG (no KVM)
# the absolute figures are several times the host's; compare the modes of one run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
work="${BENCH_WORK:-/tmp/portcullis-bench}"
if [ ! -x "$work/bin/nfq-accept" ]; then
  shared="${SHARED_BENCH:-$root/../shared/bench}"
  mkdir -p "$work"
  cp -a "$shared/." "$work/"
  chmod -R u+w "$work"
  make -s -C "$work" >/dev/null
fi
npm run -s build:ts
for kernel in ${PORTCULLIS_VM_KERNELS:-linux-image-amd64 linux-image-6.12.118+deb12-amd64}; do
  bash test/vm/run-in-vm.sh --kernel-deb "$kernel" --timeout 1800 -- \
    node dist/bench/verdict-cache.js --anchor "$work/bin/nfq-accept" "$@"
done
