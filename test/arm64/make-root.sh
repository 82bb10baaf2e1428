#!/usr/bin/env bash
# Makes an arm64 Debian bookworm root with Node.js for the emulated tests
# (test/arm64/arm64.test.ts): debootstrap's first stage downloads the packages
# (no arm64 code runs, so no binfmt_misc is needed) and every downloaded .deb
# is unpacked into the root. Maintainer scripts never run: qemu-aarch64
# -L <root> only needs the files. Then sharp's arm64 binaries (the versions
# this checkout's sharp asks for) go into <root>/opt/coral-face/node_modules,
# which the tests put on NODE_PATH, so arm64 code can decode photos too.
#   test/arm64/make-root.sh [root]   (default: $CORAL_FACE_ARM64_ROOT or ~/.cache/coral-face/arm64-bookworm)
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
root="${1:-${CORAL_FACE_ARM64_ROOT:-$HOME/.cache/coral-face/arm64-bookworm}}"
mirror="${CORAL_FACE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ ! -x "$root/usr/bin/node" ] || [ ! -f "$root/.coral-face-root" ]; then
  command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
  partial="$root.partial"
  rm -rf "$partial"
  mkdir -p "$partial"
  debootstrap --foreign --arch=arm64 --variant=minbase --include=nodejs bookworm "$partial" "$mirror"
  for deb in "$partial"/var/cache/apt/archives/*.deb; do
    dpkg-deb -x "$deb" "$partial"
  done
  test -x "$partial/usr/bin/node"
  dpkg-deb -f "$(ls "$partial"/var/cache/apt/archives/nodejs_*.deb)" Version > "$partial/.coral-face-root"
  rm -f "$partial"/var/cache/apt/archives/*.deb
  rm -rf "$root"
  mv "$partial" "$root"
fi

# sharp's platform packages, as its package.json pins them.
wanted="$(cd "$repo" && node -p "const o = require('sharp/package.json').optionalDependencies; \
  ['@img/sharp-linux-arm64', '@img/sharp-libvips-linux-arm64'].map((n) => n + '@' + o[n]).join(' ')")"
modules="$root/opt/coral-face"
if [ "$(cat "$modules/.wanted" 2>/dev/null)" != "$wanted" ]; then
  rm -rf "$modules"
  mkdir -p "$modules"
  echo '{"name":"coral-face-arm64-modules","private":true}' > "$modules/package.json"
  # --force: npm refuses packages for another CPU otherwise; nothing of them runs here.
  # shellcheck disable=SC2086
  (cd "$modules" && npm install --no-audit --no-fund --ignore-scripts --no-save --force $wanted >/dev/null)
  echo "$wanted" > "$modules/.wanted"
fi
echo "arm64 root ready: $root (nodejs $(cat "$root/.coral-face-root"); $wanted)"
