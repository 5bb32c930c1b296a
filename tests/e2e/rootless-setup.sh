#!/usr/bin/env bash
# Prepares the rootless end-to-end tests, as root: installs vessel under PREFIX (readable by
# everyone), and creates USER with subordinate ids and the kvm group, as the reference asks.
# It also applies this sandbox's device modes (/dev/kvm root:kvm 0660, /dev/net/tun 0666),
# which real hosts already have. With --remove it takes the user away again.
#   usage: tests/e2e/rootless-setup.sh BUILD PREFIX USER [--remove]
set -euo pipefail
build=$1 prefix=$2 user=$3

remove_user() {
  if id "$user" >/dev/null 2>&1; then
    pkill -KILL -u "$user" 2>/dev/null || true
    sleep 0.5
    rm -rf "/tmp/podman-run-$(id -u "$user")" "/tmp/containers-user-$(id -u "$user")"
    userdel -r "$user" >/dev/null 2>&1 || true
  fi
}

if [ "${4:-}" = --remove ]; then
  remove_user
  rm -rf "$prefix"
  exit 0
fi

remove_user
cmake --install "$build" --prefix "$prefix" >/dev/null
chmod -R a+rX "$prefix"
getent group kvm >/dev/null || groupadd --system kvm
[ -e /dev/kvm ] && chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
chmod 0666 /dev/net/tun
useradd --create-home --shell /bin/sh "$user"
base=$((200000 + $(id -u "$user") * 65536))
usermod --add-subuids "$base-$((base + 65535))" --add-subgids "$base-$((base + 65535))" "$user"
usermod -aG kvm "$user"
echo "prepared $user with vessel installed in $prefix"
