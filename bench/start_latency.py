#!/usr/bin/env python3
"""Start latency and idle memory of vessel, side by side in one run.

Interleaves, round by round:
  - podman run --rm --runtime=<build>/vessel IMG true
  - podman run --rm --runtime=runc IMG true
  - a bare QEMU boot of the same guest kernel and initrd to /init (QEMU started with vessel's own
    command line, with neutral backends for its NIC and 9p shares; /init is reached when the agent's first bytes
    arrive on its port)
and reports medians, vessel's added latency (vessel - runc) and its ratio to the bare boot; then
the PSS of QEMU + shim for an idle container beside that of a bare QEMU idling the same guest.
Figures only: nothing here is asserted. Run with `make bench`.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

IMAGE = "localhost/vessel-demo"
# What the bare VM shares instead of a container's root; removed when the benchmark ends.
EMPTY_SHARE = tempfile.TemporaryDirectory(prefix="vessel-bench-")


def podman(*args, check=True, capture=True):
    return subprocess.run(["podman", *args], check=check, text=True,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE if capture else subprocess.DEVNULL)


def timed_run(runtime):
    start = time.monotonic()
    podman("run", "--rm", f"--runtime={runtime}", IMAGE, "true")
    return time.monotonic() - start


def children(pid):
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(c) for c in f.read().split()]
    return found


def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def vessel_qemu_argv(vessel, guest_dir):
    """QEMU's command line as vessel starts it, read from a running container."""
    cid = podman("run", "-d", f"--runtime={vessel}", IMAGE, "sleep", "1000").stdout.strip()
    try:
        shim = int(podman("inspect", "-f", "{{.State.Pid}}", cid).stdout)
        qemu = [c for c in children(shim)][0]
        with open(f"/proc/{qemu}/cmdline", "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0") if a]
    finally:
        podman("rm", "-f", "-t", "0", cid, capture=True)
    # The same virtual hardware with neutral backends: the NIC on an unconnected UDP socket, the
    # shares on an empty directory, the console into /dev/null; the guest image from the build
    # (vessel's paths are those of QEMU's jail). The difference then is what vessel adds: the
    # shim, the jail, the container's processes and their use of the devices.
    empty = EMPTY_SHARE.name
    jail_paths = {"/vessel/kernel": os.path.join(guest_dir, "vmlinux"),
                  "/vessel/initrd": os.path.join(guest_dir, "initrd.img")}
    bare = []
    for arg in argv:
        if arg in jail_paths:
            arg = jail_paths[arg]
        elif arg.startswith("socket,id=console,"):
            arg = "file,id=console,path=/dev/null"
        elif arg.startswith("tap,id="):
            arg = arg.split(",")[1].replace("id=", "socket,id=") + ",udp=127.0.0.1:9,localaddr=127.0.0.1:0"
        elif arg.startswith("local,id=fs"):
            fields = [f if not f.startswith("path=") else "path=" + empty for f in arg.split(",") if f != ""]
            arg = ",".join(fields)
        bare.append(arg)
    return bare


class BareVm:
    """QEMU with vessel's argv and an agent port nobody answers: the agent idles after hello."""

    def __init__(self, argv):
        ours, theirs = socket.socketpair()
        self.socket = ours
        argv = [f"socket,id=agent,fd={theirs.fileno()}" if a.startswith("socket,id=agent,") else a for a in argv]
        start = time.monotonic()
        self.process = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        theirs.close()
        ours.settimeout(60)
        if not ours.recv(1):  # the agent's hello: /init is running
            raise RuntimeError(f"the bare VM stopped before /init (exit {self.process.wait()})")
        self.boot_seconds = time.monotonic() - start

    def close(self):
        self.process.kill()
        self.process.wait()
        self.socket.close()


def median(values):
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--memory-rounds", type=int, default=3)
    args = parser.parse_args()
    vessel = os.path.abspath(os.path.join(args.build, "vessel"))
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ.setdefault("CONTAINERS_CONF", os.path.join(here, "..", "scripts", "podman-sandbox.conf"))
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
        subprocess.run([os.path.join(here, "..", "scripts", "demo.sh"), args.build], check=True,
                       stdout=subprocess.DEVNULL)

    bare_argv = vessel_qemu_argv(vessel, os.path.join(os.path.abspath(args.build), "guest"))
    timed_run(vessel), timed_run("runc")  # warm the page cache and Podman's storage
    times = {"vessel": [], "runc": [], "bare": []}
    for _ in range(args.rounds):
        times["vessel"].append(timed_run(vessel))
        times["runc"].append(timed_run("runc"))
        vm = BareVm(bare_argv)
        times["bare"].append(vm.boot_seconds)
        vm.close()

    memory = {"vessel": [], "bare": []}
    for _ in range(args.memory_rounds):
        cid = podman("run", "-d", f"--runtime={vessel}", IMAGE, "sleep", "1000").stdout.strip()
        time.sleep(2)
        shim = int(podman("inspect", "-f", "{{.State.Pid}}", cid).stdout)
        memory["vessel"].append(pss_kib(shim) + sum(pss_kib(c) for c in children(shim)))
        podman("rm", "-f", "-t", "0", cid)
        vm = BareVm(bare_argv)
        time.sleep(2)
        memory["bare"].append(pss_kib(vm.process.pid))
        vm.close()

    v, r, b = median(times["vessel"]), median(times["runc"]), median(times["bare"])
    added = v - r
    mv, mb = median(memory["vessel"]) / 1024, median(memory["bare"]) / 1024
    print(f"start latency, median of {args.rounds} interleaved rounds")
    print(f"  podman run --rm --runtime=vessel {IMAGE} true   {v:6.3f} s")
    print(f"  podman run --rm --runtime=runc   {IMAGE} true   {r:6.3f} s")
    print(f"  bare QEMU boot of the same kernel+initrd to /init       {b:6.3f} s")
    print(f"  vessel's added latency (vessel - runc)                  {added:6.3f} s"
          f" = {added / b:.2f} x the bare boot (target <= 1.25)")
    print(f"idle memory (PSS), median of {args.memory_rounds}")
    print(f"  vessel: QEMU + shim                                     {mv:6.1f} MiB")
    print(f"  bare QEMU idling the same guest                         {mb:6.1f} MiB")
    print(f"  ratio                                                   {mv / mb:6.2f} (target <= 1.10)")


if __name__ == "__main__":
    sys.exit(main())
