#!/usr/bin/env bash
# Builds vessel's guest kernel (an uncompressed vmlinux booted by PVH) from Debian's
# linux-source-6.1 and guest/kernel.config, and caches it by the hash of both: a rebuild
# happens only when the fragment or the source package version changes.
#   usage: guest/build-kernel.sh OUTPUT_VMLINUX
set -euo pipefail
shopt -s lastpipe  # the progress count below outlives its loop

out=$1
here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/kernel.config
tarball=$(ls /usr/src/linux-source-6.1.tar.xz 2>/dev/null) ||
  { echo "guest kernel: /usr/src/linux-source-6.1.tar.xz is missing: run scripts/install-deps.sh" >&2; exit 1; }
version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
patches=$(ls "$here"/*.patch 2>/dev/null | LC_ALL=C sort)
key=$( (cat "$fragment"; echo "$version"; cat "$0"; cat $patches) | sha256sum | cut -c1-16)
cache=${VESSEL_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/vessel}/kernel-$key
mkdir -p "$(dirname "$out")"

if [ -f "$cache/vmlinux" ]; then
  echo "guest kernel: cached ($cache)"
  cp "$cache/vmlinux" "$out"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vessel-kernel.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "guest kernel: building linux-source-6.1 $version with guest/kernel.config (takes ~6 minutes on 2 cores, once)"
echo "guest kernel: unpacking sources"
tar -C "$work" -xf "$tarball"
src=$(echo "$work"/linux-source-6.1)
cd "$src"
# vessel's few changes to Debian's source, each explained at the top of its guest/*.patch.
for patch in $patches; do
  echo "guest kernel: applying $(basename "$patch")"
  patch -s -p1 <"$patch"
done
kmake() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make "$@"; }
kmake -s ARCH=x86_64 tinyconfig >/dev/null
scripts/kconfig/merge_config.sh -m .config "$fragment" >/dev/null
kmake -s ARCH=x86_64 olddefconfig >/dev/null

# Kconfig silently drops options whose dependencies are missing: fail loudly instead.
missing=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_ACPI_BUTTON=y) continue ;; # needs CONFIG_INPUT, which the fragment turns off on purpose
    CONFIG_*=*) grep -qxF "$line" .config || { echo "guest kernel: $line did not survive olddefconfig" >&2; missing=1; } ;;
  esac
done <"$fragment"
[ "$missing" -eq 0 ] || exit 1

# What the build promised not to build (the fragment's "is not set" lines) is not built.
while IFS= read -r line; do
  case "$line" in
    "# CONFIG_"*" is not set")
      option=${line#\# }
      option=${option%% *}
      ! grep -q "^$option=" .config || { echo "guest kernel: $option is still set (selected by another option)" >&2; missing=1; } ;;
  esac
done <"$fragment"
[ "$missing" -eq 0 ] || exit 1

jobs=$(nproc)
echo "guest kernel: compiling with $jobs jobs"
count=0
# Its own make, not a child of CMake's: CMake's -s (silent) would hide the progress below, and
# its jobserver is not passed to custom commands.
kmake ARCH=x86_64 -j"$jobs" vmlinux 2>&1 | while IFS= read -r line; do
  case "$line" in
    *" CC "* | *" AS "* | *" LD "*)
      count=$((count + 1))
      [ $((count % 250)) -eq 0 ] && echo "guest kernel: $count files compiled"
      ;;
    *error* | *Error*) echo "$line" >&2 ;;
  esac
done
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "guest kernel: make failed" >&2; exit 1; }
mkdir -p "$cache.tmp"
cp vmlinux "$cache.tmp/vmlinux"
cp .config "$cache.tmp/config"
rm -rf "$cache"
mv "$cache.tmp" "$cache"
cp "$cache/vmlinux" "$out"
echo "guest kernel: done ($(du -h "$out" | cut -f1), $count files compiled in $SECONDS s)"
