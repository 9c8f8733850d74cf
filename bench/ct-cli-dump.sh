#!/usr/bin/env bash
# CT_DUMP_CMD for ../shared/bench that times the CLI the way the harness times its
# `conntrack` anchor (`conntrack -L -o extended >/dev/null`, count from the stderr
# summary): `portcullis conntrack -L -o extended >/dev/null`, formatting every entry.
#   CT_DUMP_CMD='bash bench/ct-cli-dump.sh' CT_DUMP_LABEL=portcullis-cli \
#     CT_SIZES="250000" RUNS=3 bash bench/run.sh --only ct-dump
# CT_CLI_ARGS replaces "-o extended" (e.g. "--json", "" for the default form).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck disable=SC2086
summary=$(node "$root/bin/portcullis.js" conntrack -L ${CT_CLI_ARGS--o extended} 2>&1 >/dev/null)
n=$(sed -n 's/.*: \([0-9]*\) flow entries have been shown\./\1/p' <<<"$summary")
[ -n "$n" ] || { echo "ct-cli-dump: no summary in: $summary" >&2; exit 1; }
echo "$n"
