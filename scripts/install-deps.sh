#!/usr/bin/env bash
# Installs everything vessel needs to build, test and run on Debian 12, from Debian's archive only.
# Used by `make test` and .ci/run; `make demo` runs it with --demo, for what the demo needs alone.
# Safe to run again: it installs only what is missing.
set -euo pipefail

# What `make demo` needs: building vessel and its guest, and running a container under Podman.
packages=(
  # build
  cmake g++ make pkg-config
  libexpected-dev nlohmann-json3-dev libtomlplusplus-dev libseccomp-dev libcap-dev
  googletest libgtest-dev
  # guest kernel and initrd
  linux-source-6.1 bc bison flex libelf-dev libssl-dev xz-utils lz4 cpio patch
  # running containers in VMs under Podman
  qemu-system-x86 podman runc conmon slirp4netns passt uidmap iproute2
  busybox-static procps python3
)
# What the tests, the fuzzers and the benchmarks add (everything but `--demo`).
test_packages=(
  clang-format
  # fuzzing (make fuzz): libFuzzer comes with libclang-rt-14-dev, which clang only recommends
  clang libclang-rt-14-dev
  # Docker and containerd drive vessel too (tests start private daemons)
  docker.io containerd
  # containerd's CRI as a kubelet drives it (tests/cri): pod networks, vessel's own CRI client
  containernetworking-plugins protobuf-compiler python3-grpcio python3-protobuf python3-websocket
  psmisc curl tmux
  # podman run --init
  catatonit
  # the KVM tests' nested L1 VM (tests/kvm/l1.sh): depmod and modprobe for Debian's kernel
  kmod
  # man vessel
  man-db groff-base
)
[ "${1:-}" = --demo ] || packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}: run 'sudo $0' once" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The tests start private dockerd and containerd daemons: installing the packages must not start
# the host's (a host dockerd would change the firewall under Podman's networks).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
