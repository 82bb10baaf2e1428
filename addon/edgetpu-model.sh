#!/usr/bin/env bash
# Compiles the package's int8 MobileFaceNet for the Edge TPU, for the image's
# edgetpu-model build stage (Dockerfile): takes the model out of the package
# tarball, runs edgetpu_compiler, and fails unless the compiler's operation
# log says every operation is mapped to the Edge TPU (an operation left on
# the CPU would make every later one run there too).
#
#   edgetpu-model.sh <node-red-contrib-coral-face.tgz> <out-dir>
#
# Writes <out-dir>/mobilefacenet_int8_edgetpu.tflite and
# mobilefacenet_int8_edgetpu.log (the compiler's own log, kept in the image).
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: $0 <package.tgz> <out-dir>" >&2
  exit 2
fi
tarball=$1
out=$2
member=package/build/models/mobilefacenet_int8.tflite

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work" "$member"
mkdir -p "$out"
edgetpu_compiler -s -o "$out" "$work/$member"

model="$out/mobilefacenet_int8_edgetpu.tflite"
log="$out/mobilefacenet_int8_edgetpu.log"
if [ ! -s "$model" ] || [ ! -s "$log" ]; then
  echo "edgetpu_compiler wrote no $model or no $log" >&2
  exit 1
fi
# The log's table: "Operator  Count  Status", then one row per operator type.
if ! awk '
  /^[[:space:]]*Operator[[:space:]]+Count[[:space:]]+Status[[:space:]]*$/ { table = 1; next }
  table && NF {
    rows++
    if ($0 !~ /Mapped to Edge TPU[[:space:]]*$/) { unmapped++; print "not mapped to the Edge TPU: " $0 > "/dev/stderr" }
  }
  END { exit (rows > 0 && unmapped == 0) ? 0 : 1 }
' "$log"; then
  echo "$log: not every operation is mapped to the Edge TPU" >&2
  exit 1
fi
echo "every operation is mapped to the Edge TPU: $model"
