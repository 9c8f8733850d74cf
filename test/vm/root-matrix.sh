#!/usr/bin/env bash
# Runs the root tests whose paths depend on the kernel under Debian's stock kernels
# (run-in-vm.sh: QEMU/TCG, this machine's root shared read-only), one kernel after the
# other. This machine's kernel lacks nft `queue`, the nfqueue conntrack glue and modules;
# every stock kernel has them, and `backend: auto` picks nft there. Then, per kernel, the
# package on a real system (test/system/): a second boot with systemd as PID 1, where the
# staged .deb is installed, started, used, stopped and purged.
#
#   bash test/vm/root-matrix.sh [vitest file filters...]
#
# Kernels: PORTCULLIS_VM_KERNELS (space-separated apt packages or .deb files; default
# Debian 12's 6.1 and 6.12). Parts: PORTCULLIS_VM_PARTS (default "root system"). dist/,
# the renderer and the .deb are built here first, on the host: in the guest the tree is
# read-only and TCG makes tsc minutes slow. Exit status: the first failure, or 0.
set -euo pipefail
cd "$(dirname "$0")/../.."

KERNELS=(${PORTCULLIS_VM_KERNELS:-linux-image-amd64 linux-image-6.12.118+deb12-amd64})
# The files whose behaviour differs between kernels: firewall backends, nfqueue with the
# conntrack glue, SOCK_DESTROY and sock_diag, the eBPF owner records (attribution
# accuracy), NFLOG DNS snooping, conntrack accounting, and the helper end to end
# (detection picks nft on these kernels).
DEFAULT_FILES=(
  test/root/firewall.test.ts
  test/root/deny-reject.test.ts
  test/root/nfqueue.test.ts
  test/root/nfqueue-attributes.test.ts
  test/root/attribution-sockdiag.test.ts
  test/root/attribution-accuracy.test.ts
  test/root/ebpf-owners.test.ts
  test/root/helper-attribution.test.ts
  test/root/dns-snoop.test.ts
  test/root/helper-daemon.test.ts
  test/root/helper-cli.test.ts
  test/root/helper-conntrack-accounting.test.ts
  test/root/helper-e2e.test.ts
  test/root/ruleset-reload.test.ts
)
FILES=("$@")
[[ ${#FILES[@]} -gt 0 ]] || FILES=("${DEFAULT_FILES[@]}")

PARTS=" ${PORTCULLIS_VM_PARTS:-root system} "

npm run --silent build:ts
if [[ $PARTS == *" system "* ]]; then
  node scripts/stage-linux.mjs release/vm-stage >/dev/null
  DEB=$(ls "$PWD"/release/vm-stage/portcullis_*_amd64.deb)
fi
status=0
run() { # what kernel run-in-vm-args...
  local what=$1 kernel=$2 start rc=0
  shift 2
  echo "== $what under $kernel"
  start=$(date +%s)
  bash test/vm/run-in-vm.sh --kernel-deb "$kernel" --timeout "${PORTCULLIS_VM_TIMEOUT:-1800}" \
    --env PORTCULLIS_PREBUILT=1 --env PORTCULLIS_IN_VM=1 --env CI "$@" || rc=$?
  echo "== $what under $kernel: exit $rc in $(($(date +%s) - start)) s"
  [[ $rc -eq 0 || $status -ne 0 ]] || status=$rc
}
for kernel in "${KERNELS[@]}"; do
  if [[ $PARTS == *" root "* ]]; then
    run "root tests" "$kernel" -- \
      "echo \"kernel \$(uname -r)\"; npx vitest run --project root ${FILES[*]}"
  fi
  if [[ $PARTS == *" system "* ]]; then
    run "the package under systemd" "$kernel" --init systemd --env "PORTCULLIS_DEB=$DEB" -- \
      "echo \"kernel \$(uname -r), PID 1 \$(cat /proc/1/comm)\"; npx vitest run -c test/system/vitest.config.ts"
  fi
done
exit "$status"
