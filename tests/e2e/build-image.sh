#!/usr/bin/env bash
# Builds the test image localhost/vessel-test from Debian's busybox-static (no registry needed):
# busybox and its applets, plus /data/block.bin, 4 MiB of random bytes the stdout test checks.
#   usage: tests/e2e/build-image.sh OUTPUT_DIR
set -euo pipefail
out=$1
rootfs=$out
rm -rf "$rootfs"
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,etc,root,data,run,var}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
head -c $((4 << 20)) /dev/urandom >"$rootfs/data/block.bin"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
tar -C "$rootfs" -cf "$out.tar" .
podman rmi -f localhost/vessel-test >/dev/null 2>&1 || true
podman import --change 'CMD ["/bin/sh"]' "$out.tar" localhost/vessel-test >/dev/null
rm -f "$out.tar"
echo "built localhost/vessel-test"
