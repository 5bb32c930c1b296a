#!/usr/bin/env bash
# Runs a command under real KVM on a host that has none: in an "L1" VM booted under QEMU's TCG,
# whose emulated AMD SVM lets Debian's kernel load kvm_amd (nested virtualization). The command
# sees this host's whole tree (read-only over 9p, its writes kept in L1's memory by an overlay),
# as root, with L1's /dev/kvm; its output comes back as it is made, and its exit code is ours.
#   usage: tests/kvm/l1.sh [--timeout SECONDS] [--tries N] [--smp N] [--memory MIB] COMMAND [ARGS...]
# --tries: boot L1 again (and run the command again from the start) when L1 itself hung.
# L1's kernel is Debian's linux-image-*-amd64, taken with apt-get download and unpacked into
# ${VESSEL_L1_CACHE:-~/.cache/vessel/l1}, never installed. Exit 125: L1 itself failed.
set -euo pipefail

# One vCPU by default: with two, L1 stalled for good twice in about ten runs (a soft lockup,
# each time while an L2 guest ran; docs/testing.md).
timeout=1800 smp=1 memory=3072 tries=1
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout=$2; shift 2 ;;
    --tries) tries=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--timeout S] [--tries N] [--smp N] [--memory MIB] COMMAND [ARGS...]" >&2; exit 2; }

say() { echo "l1: $*" >&2; }
package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$package" ]; then
  apt-get update -qq
  package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
version=$(apt-cache policy "$package" | awk '/Candidate:/ {print $2}')
release=${package#linux-image-}
cache=${VESSEL_L1_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/vessel/l1}/$package-$version
modules=$cache/lib/modules/$release
if [ ! -f "$cache/ready" ]; then
  say "unpacking $package $version (once)"
  rm -rf "$cache" && mkdir -p "$cache"
  (cd "$cache" && apt-get download -qq "$package=$version" 2>/dev/null && dpkg -x ./*.deb . && rm ./*.deb)
  depmod -b "$cache" "$release"
  touch "$cache/ready"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vessel-l1.XXXXXX")
qemu_pid=
cleanup() {
  [ -z "$qemu_pid" ] || kill -9 -- "-$qemu_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The initramfs: busybox, what it takes to mount the host's tree (virtio-pci and 9p are modules
# in Debian's kernel), and /init. The rest (kvm_amd, tun, veth, tc's) modprobe loads from there.
mkdir -p "$work/initramfs"/{bin,modules,proc,sys,dev,host,rw,root}
cp /bin/busybox "$work/initramfs/bin/busybox"
for module in virtio_pci 9pnet_virtio 9p; do
  modprobe -d "$cache" -S "$release" --show-depends "$module" | awk '{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  cp "$ko" "$work/initramfs/modules/"
  basename "$ko" >>"$work/initramfs/modules/order"
done
cat >"$work/run" <<EOF
# PID 1 of L1 once its root is the host's tree: runs the job, says its exit code, powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
ip link set lo up
bash $work/job </dev/null
echo "l1: exit \$?"
echo 1 >/proc/sys/kernel/sysrq && echo o >/proc/sysrq-trigger
sleep 60
EOF
printf '%q ' cd "$PWD" >"$work/job"
printf '&& exec' >>"$work/job"
printf ' %q' "$@" >>"$work/job"
cat >"$work/initramfs/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev
echo 1 >/proc/sys/kernel/printk
for ko in \$(cat /modules/order); do insmod /modules/\$ko || echo "l1: insmod \$ko failed"; done
fail() { dmesg | tail -n 15 | sed "s/^/l1: /"; echo "l1: \$*"; echo "l1: exit 125"; poweroff -f; }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose host /host ||
  fail "the host's tree cannot be mounted over 9p"
mount -t tmpfs -o size=80% l1 /rw && mkdir -p /rw/upper /rw/work
insmod /host$modules/kernel/fs/overlayfs/overlay.ko
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work l1 /root ||
  fail "no overlay over the host's tree"
mount -t proc proc /root/proc && mount -t sysfs sys /root/sys && mount -t devtmpfs dev /root/dev
mkdir -p /root/dev/pts /root/dev/shm && mount -t devpts devpts /root/dev/pts
mount -t tmpfs shm /root/dev/shm && mount -t tmpfs run /root/run && mount -t tmpfs tmp /root/tmp
mount -t cgroup2 cgroup2 /root/sys/fs/cgroup
mkdir -p /root/lib/modules/$release && mount --bind /root$modules /root/lib/modules/$release
chroot /root modprobe -a kvm_amd tun veth sch_ingress act_mirred cls_u32 || fail "modprobe failed"
[ -c /root/dev/kvm ] || fail "kvm_amd loaded, but there is no /dev/kvm"
# The test's temporary directory reached through the overlay (it holds the job).
mkdir -p /root$work && mount --bind /host$work /root$work
# switch_root, not chroot: a chrooted process may not make user namespaces (QEMU's jail does).
exec switch_root /root /bin/bash $work/run
EOF
chmod 755 "$work/initramfs/init"
(cd "$work/initramfs" && find . | cpio -o -H newc --quiet) >"$work/initramfs.img"

# One boot of L1 running the job; sets `code`: the job's exit code, or 125 when L1 itself failed,
# and `hung` when L1's kernel said its CPUs were stuck.
boot_l1() {
  local started line
  started=$(date +%s)
  rm -f "$work/console" && mkfifo "$work/console"
  # In a process group of its own (setsid), so that killing the group stops QEMU too, not only
  # the `timeout` above it.
  setsid timeout -k 10 "$timeout" qemu-system-x86_64 -accel tcg -cpu max -M pc -m "$memory" -smp "$smp" \
    -nodefaults -no-user-config -display none -no-reboot -serial "file:$work/console" \
    -kernel "$cache/boot/vmlinuz-$release" -initrd "$work/initramfs.img" \
    -append "console=ttyS0 quiet loglevel=1 panic=-1 kvm_amd.nested=1" \
    -fsdev local,id=host,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=host,mount_tag=host </dev/null >"$work/qemu.log" 2>&1 &
  qemu_pid=$!
  # The console, line by line: L1's own lines kept for a failure, the command's passed on.
  code=125 hung=
  while IFS= read -r line; do
    line=${line%$'\r'}
    case "$line" in
      "l1: exit "*) code=${line#l1: exit }; break ;;
      "l1: "*) say "${line#l1: }" ;;
      *"BUG: soft lockup"*)
        # TCG's emulation of nested SVM has, once in a while, stalled L1's vCPUs for good.
        say "L1 hung: $line"
        hung=1
        break ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$work/console"
  kill -9 -- "-$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
  if [ "$code" = 125 ]; then
    say "L1 ended without the command's exit code after $(($(date +%s) - started)) s; QEMU said:"
    tail -n 20 "$work/qemu.log" >&2
  fi
}

for try in $(seq "$tries"); do
  boot_l1
  [ -n "$hung" ] && [ "$try" -lt "$tries" ] || break
  say "booting L1 again, and running the command again from the start (try $((try + 1)) of $tries)"
done
exit "$code"
