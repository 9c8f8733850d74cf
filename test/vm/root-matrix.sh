#!/usr/bin/env bash
# Runs the root tests whose paths depend on the kernel under Debian's stock kernels
# (run-in-vm.sh: QEMU/TCG, this machine's root shared read-only), one kernel after the
# other. This machine's kernel lacks nft `queue`, the nfqueue conntrack glue and modules;
# every stock kernel has them, and `backend: auto` picks nft there.
#
#   bash test/vm/root-matrix.sh [vitest file filters...]
#
# Kernels: PORTCULLIS_VM_KERNELS (space-separated apt packages or .deb files; default
# Debian 12's 6.1 and 6.12). dist/ and the renderer are built here first, on the host: in
# the guest the tree is read-only and TCG makes tsc minutes slow. Exit status: the first
# kernel's failure, or 0.
set -euo pipefail
cd "$(dirname "$0")/../.."

KERNELS=(${PORTCULLIS_VM_KERNELS:-linux-image-amd64 linux-image-6.12.118+deb12-amd64})
# The files whose behaviour differs between kernels: firewall backends, nfqueue with the
# conntrack glue, SOCK_DESTROY and sock_diag, NFLOG DNS snooping, conntrack accounting,
# and the helper end to end (detection picks nft on these kernels).
DEFAULT_FILES=(
  test/root/firewall.test.ts
  test/root/nfqueue.test.ts
  test/root/nfqueue-attributes.test.ts
  test/root/attribution-sockdiag.test.ts
  test/root/dns-snoop.test.ts
  test/root/helper-daemon.test.ts
  test/root/helper-cli.test.ts
  test/root/helper-conntrack-accounting.test.ts
  test/root/helper-e2e.test.ts
  test/root/ruleset-reload.test.ts
)
FILES=("$@")
[[ ${#FILES[@]} -gt 0 ]] || FILES=("${DEFAULT_FILES[@]}")

npm run --silent build:ts
status=0
for kernel in "${KERNELS[@]}"; do
  echo "== root tests under $kernel"
  start=$(date +%s)
  rc=0
  bash test/vm/run-in-vm.sh --kernel-deb "$kernel" --timeout "${PORTCULLIS_VM_TIMEOUT:-1800}" \
    --env PORTCULLIS_PREBUILT=1 --env PORTCULLIS_IN_VM=1 --env CI -- \
    "echo \"kernel \$(uname -r)\"; npx vitest run --project root ${FILES[*]}" || rc=$?
  echo "== $kernel: exit $rc in $(($(date +%s) - start)) s"
  [[ $rc -eq 0 || $status -ne 0 ]] || status=$rc
done
exit "$status"
