#!/usr/bin/env bash
# Makes an arm64 Debian bookworm root with Node.js for the emulated tests:
# debootstrap's first stage downloads the packages (no arm64 code runs, so no
# binfmt_misc is needed), and every downloaded .deb is unpacked into the root.
# Maintainer scripts never run: qemu-aarch64 -L <root> only needs the files.
#   test/arm64/make-root.sh [root]   (default: $CORAL_FACE_ARM64_ROOT or ~/.cache/coral-face/arm64-bookworm)
set -euo pipefail

root="${1:-${CORAL_FACE_ARM64_ROOT:-$HOME/.cache/coral-face/arm64-bookworm}}"
mirror="${CORAL_FACE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ -x "$root/usr/bin/node" ] && [ -f "$root/.coral-face-root" ]; then
  echo "arm64 root ready: $root"
  exit 0
fi
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
rm -rf "$root"
mv "$partial" "$root"
echo "arm64 root ready: $root (nodejs $(cat "$root/.coral-face-root"))"
