#!/usr/bin/env bash
# `make demo`: builds a busybox image locally (no registry needed) and runs it in a VM under Podman.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/scripts/podman-sandbox.conf}

if ! podman image exists localhost/vessel-demo; then
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs" "$rootfs.tar"' EXIT
  mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,etc,root}
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"; done
  tar -C "$rootfs" -cf "$rootfs.tar" .
  podman import --change 'CMD ["/bin/sh"]' "$rootfs.tar" localhost/vessel-demo >/dev/null
fi

echo "host kernel: $(uname -r)"
echo "+ podman run --rm --runtime=$build/vessel localhost/vessel-demo sh -c '...'"
podman run --rm --runtime="$build/vessel" localhost/vessel-demo \
  sh -c 'echo "container kernel: $(uname -r) (its own VM: $(grep -c ^processor /proc/cpuinfo) vCPU, $(grep MemTotal /proc/meminfo | tr -s " " | cut -d" " -f2-))"'
