#!/usr/bin/env python3
"""Many idle containers at once: start time as they pile up, and their memory, in one run.

Starts --count idle containers (`podman run -d --runtime=R IMG sleep 1000`) one after another,
timing each `podman run -d`, first with R = runc (for reference; start times only), then, with
those removed, with R = <build>/vessel. With all vessel containers up (and --settle seconds
later) it reads the PSS (/proc/PID/smaps_rollup) of each container's shim (`podman inspect -f
{{.State.Pid}}`) and the shim's descendants (QEMU), and the CPU they use while idle, over
--idle-seconds. PSS splits pages shared between VMs (the kernel file QEMU maps, QEMU's binary
and libraries), so the total is what the host pays for them together. Then `podman rm -f -t 0`
removes them all at once, timed, and the script checks that none of their processes (shims,
QEMUs) is left.
Figures only: nothing here is asserted. Run with `make bench`, or alone: python3 bench/scale.py --count 5
"""
import argparse
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import benchlib  # noqa: E402
from benchlib import IMAGE, podman  # noqa: E402


def start_all(runtime, count):
    """[(name, seconds of its `podman run -d`)] for count containers started one after another."""
    started = []
    for _ in range(count):
        name = benchlib.name()
        start = time.monotonic()
        podman("run", "-d", "--name", name, f"--runtime={runtime}", IMAGE, "sleep", "1000", timeout=180)
        started.append((name, time.monotonic() - start))
    return started


def remove_all(names):
    start = time.monotonic()
    podman("rm", "-f", "-t", "0", *names, timeout=600)
    return time.monotonic() - start


def describe(times):
    values = [t for _, t in times]
    return (f"first {values[0]:6.3f} s, last {values[-1]:6.3f} s, median {statistics.median(values):6.3f} s, "
            f"max {max(values):6.3f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between the last start and PSS")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="seconds over which idle CPU is read")
    parser.add_argument("--skip-runc", action="store_true")
    args = parser.parse_args()
    vessel = os.path.abspath(os.path.join(args.build, "vessel"))
    benchlib.setup(args.build)
    podman("run", "--rm", f"--runtime={vessel}", IMAGE, "true", timeout=180)  # warm caches (and a template)
    podman("run", "--rm", "--runtime=runc", IMAGE, "true", timeout=180)
    benchlib.wait_for_template_builders()

    runc_times = None
    if not args.skip_runc:
        runc_times = start_all("runc", args.count)
        remove_all([n for n, _ in runc_times])

    vessel_times = start_all(vessel, args.count)
    names = [n for n, _ in vessel_times]
    time.sleep(args.settle)
    qemus = [p for p in benchlib.descendants(benchlib.shim_pid(names[0]))
             if (benchlib.comm(p) or "").startswith("qemu")]
    with open(f"/proc/{qemus[0]}/cmdline", "rb") as f:
        accel = benchlib.accelerator([a.decode() for a in f.read().split(b"\0") if a])
    processes = {}  # pid -> comm, for the check after removal
    pss = {"shim": 0, "qemu": 0, "other": 0}
    for name in names:
        shim = benchlib.shim_pid(name)
        conmon = int(podman("inspect", "-f", "{{.State.ConmonPid}}", name, timeout=60).stdout)
        tree = [shim] + benchlib.descendants(shim)
        # anything else of vessel's under the container's conmon (a subreaper): a template builder
        others = [p for p in benchlib.descendants(conmon) if p not in tree]
        for pid in tree + others:
            comm = benchlib.comm(pid)
            if comm is None:
                continue
            processes[pid] = comm
            if pid in others:
                kind = "other"
            else:
                kind = "shim" if pid == shim else "qemu" if comm.startswith("qemu") else "other"
            pss[kind] += benchlib.pss_kib(pid)
    builders = benchlib.template_builders()
    ticks_before = {pid: benchlib.cpu_ticks(pid) for pid in processes}
    idle_start = time.monotonic()
    time.sleep(args.idle_seconds)
    idle_cpu = (sum(benchlib.cpu_ticks(pid) - before for pid, before in ticks_before.items())
                / os.sysconf("SC_CLK_TCK") / (time.monotonic() - idle_start))
    removal = remove_all(names)
    deadline = time.monotonic() + 10  # a shim may still be stopping its QEMU as `rm` returns
    while True:
        left = {pid: comm for pid, comm in processes.items() if benchlib.running(pid, comm)}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    listed = podman("ps", "-a", "-q", "--filter", f"name=^{benchlib.PREFIX}-", timeout=60).stdout.split()
    for pid in left:  # reported below; not left running
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass

    total = sum(pss.values()) / 1024
    n = args.count
    print(f"{n} idle containers (sleep 1000), started one after another; vessel's VMs under {accel.upper()}")
    if runc_times:
        print(f"  podman run -d --runtime=runc:   {describe(runc_times)}")
    print(f"  podman run -d --runtime=vessel: {describe(vessel_times)}")
    print("  each vessel start, in order (s): " + " ".join(f"{t:.2f}" for _, t in vessel_times))
    print(f"  vessel, start {n} / start 1                     {vessel_times[-1][1] / vessel_times[0][1]:6.2f}")
    if runc_times:
        median_v = statistics.median(t for _, t in vessel_times)
        median_r = statistics.median(t for _, t in runc_times)
        print(f"  vessel / runc, median start                     {median_v / median_r:6.2f}")
    print(f"memory of the {n} vessel containers (PSS, {args.settle:.0f} s after the last start)")
    print(f"  QEMU, all                                       {pss['qemu'] / 1024:8.1f} MiB")
    print(f"  vessel-shim, all                                {pss['shim'] / 1024:8.1f} MiB")
    if pss["other"]:
        print(f"  other processes under the shims and conmons     {pss['other'] / 1024:8.1f} MiB")
    if builders:
        print(f"  note: {len(builders)} template builder(s) running (vessel-shim --build-template)")
    print(f"  total                                           {total:8.1f} MiB")
    print(f"  per container                                   {total / n:8.1f} MiB")
    print(f"  idle CPU of all of them, over {args.idle_seconds:.0f} s             {idle_cpu:8.2f} cores"
          f" (host has {os.cpu_count()})")
    print(f"  podman rm -f -t 0 of all {n}                      {removal:8.2f} s")
    print(f"  left 10 s after removal: {len(left)} processes, {len(listed)} containers"
          + (f" ({', '.join(f'{p} {c}' for p, c in sorted(left.items()))}: killed)" if left else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
