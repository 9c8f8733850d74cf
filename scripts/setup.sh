#!/usr/bin/env bash
# Sets up a fresh Debian machine for Portcullis: Debian packages, npm packages,
# the native addon and the compiled TypeScript. Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential python3 git ca-certificates
  iproute2 iptables nftables conntrack strace procps
  # packaging tests (docs/packaging.md): dpkg-deb, lintian, strip, xmllint,
  # systemd-analyze, a private dbus-daemon + polkitd, 7za for electron-builder
  dpkg-dev lintian binutils libxml2-utils systemd dbus-daemon polkitd p7zip-full
  pkexec # the package's elevation, tried on a real system in the VM (test/system/)
  chromium # the UI end-to-end tests (test/root/web-e2e.test.ts, playwright-core)
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci runs the install script (node-gyp builds native/) and prepare (tsc).
# Skip it when node_modules was installed from this very lockfile.
stamp=node_modules/.portcullis-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
addon=native/build/Release/portcullis_native.node
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$addon" ]; then
  echo "setup.sh: node_modules matches package-lock.json"
  # Rebuild only what changed since the last build.
  if [ -n "$(find native/src native/binding.gyp -newer "$addon" -print -quit)" ]; then
    npm run --silent build:native
  fi
  if [ ! -f dist/helper/cli.js ] ||
    [ -n "$(find helper src-main bench tsconfig.*.json -name '*.ts' -newer dist/helper/cli.js -print -quit 2>/dev/null)" ] ||
    [ -n "$(find tsconfig.base.json tsconfig.node.json -newer dist/helper/cli.js -print -quit)" ]; then
    npm run --silent build:ts
  fi
else
  ELECTRON_SKIP_BINARY_DOWNLOAD=1 npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi
echo "setup.sh: ready"
