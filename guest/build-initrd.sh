#!/usr/bin/env bash
# Packs the guest initrd: an uncompressed cpio whose /init is the static vessel-agent
# (uncompressed boots faster under TCG than gzip'ed).
#   usage: guest/build-initrd.sh VESSEL_AGENT OUTPUT
set -euo pipefail
agent=$1
out=$2
stage=$(mktemp -d "${TMPDIR:-/tmp}/vessel-initrd.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{dev,proc,sys,run,tmp} "$(dirname "$out")"
install -s -m 0755 "$agent" "$stage/init"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --owner=0:0) >"$out.tmp"
chmod 0644 "$out.tmp"
mv "$out.tmp" "$out"
