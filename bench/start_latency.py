#!/usr/bin/env python3
"""Start latency and idle memory of vessel, side by side in one run.

Interleaves, round by round:
  - podman run --rm --runtime=<build>/vessel IMG true, its VM restored from a template
  - the same with templates off ([factory] enable_template = false): the VM boots
  - podman run --rm --runtime=runc IMG true
  - a bare QEMU boot of the same guest kernel and initrd to /init (QEMU started with vessel's own
    command line, with neutral backends for its NIC and 9p shares; /init is reached when the agent's first bytes
    arrive on its port)
and reports medians, vessel's added latency (vessel - runc) for both and its ratio to the bare
boot; then the PSS of QEMU + shim for an idle container (restored, and booted) beside that of a
bare QEMU of the same configuration (restoring the same template without a jail or a shim, and
booting). Every QEMU here runs without transparent huge pages, as vessel starts its own.
Each figure says which accelerator its VMs ran under: where vessel finds a KVM that runs its
guest, everything is measured under KVM and again under TCG (`accel = "tcg"`), side by side.
Figures only: nothing here is asserted. Run with `make bench`.
"""
import argparse
import ctypes
import glob
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


PR_SET_THP_DISABLE = 41


def no_huge_pages():
    """As vessel's jail does for QEMU: guest RAM in 4 KiB pages."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)


def configured_runtime(vessel, settings):
    """A --runtime for Podman that is vessel with `settings` (TOML) as its configuration."""
    directory = tempfile.mkdtemp(prefix="vessel-bench-runtime-")
    config = os.path.join(directory, "configuration.toml")
    with open(config, "w") as f:
        f.write(settings)
    wrapper = os.path.join(directory, "vessel")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nVESSEL_CONFIG={config} exec {vessel} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    return wrapper


def template_files():
    return glob.glob("/run/vessel/templates/*.vm")


def shape(argv):
    """What a template's key says of QEMU command line `argv`: machine, accelerator, size."""
    def value(flag):
        return argv[argv.index(flag) + 1]
    return f"-machine {value('-machine')} -accel {value('-accel')} -m {value('-m')} -smp {value('-smp')} "


def accelerator(argv):
    """kvm or tcg: what the VM of QEMU command line `argv` runs under."""
    return argv[argv.index("-accel") + 1].split(",")[0]


def templates_of(argv):
    """The templates for the shape of `argv`, newest first (earlier runs may have left others)."""
    found = []
    for path in sorted(template_files(), key=os.path.getmtime, reverse=True):
        with open(path, "rb") as f:
            if shape(argv) in f.readline().decode(errors="replace"):
                found.append(path)
    return found


def wait_for_template(argv):
    """The first container of a shape boots and starts a builder; wait until it saved."""
    for _ in range(600):
        builders = subprocess.run(["pgrep", "-f", "--build-template"], capture_output=True).stdout
        if templates_of(argv) and not builders:
            return
        time.sleep(0.1)
    raise RuntimeError(f"no VM template for {shape(argv)}was made in /run/vessel/templates")


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


def vessel_qemu_argv(vessel, guest_dir, template=None):
    """QEMU's command line as vessel starts it, read from a running container; with `template`,
    as it restores that template (the restore reads the file on fd `template`)."""
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
        elif arg.startswith("local,id="):
            fields = [f if not f.startswith("path=") else "path=" + empty for f in arg.split(",") if f != ""]
            arg = ",".join(fields)
        elif arg.startswith("fd:") and template is not None:
            arg = f"fd:{template}"
        bare.append(arg)
    return bare


def open_template(argv):
    """The template a container with QEMU command line `argv` was restored from, at the start of
    QEMU's stream (after vessel's one-line header holding the key)."""
    paths = templates_of(argv)
    if not paths:
        raise RuntimeError(f"no template in /run/vessel/templates for {shape(argv)}")
    f = open(paths[0], "rb", buffering=0)
    f.readline()
    return f


class BareVm:
    """QEMU with vessel's argv and an agent port nobody answers: the agent idles after hello (or,
    restored from a template, waits for a resume that never comes)."""

    def __init__(self, argv, restored=False):
        ours, theirs = socket.socketpair()
        self.socket = ours
        argv = [f"socket,id=agent,fd={theirs.fileno()}" if a.startswith("socket,id=agent,") else a for a in argv]
        fds = [theirs.fileno()]
        template = None
        if restored:
            template = open_template(argv)
            os.dup2(template.fileno(), 100)
            argv = [a if not a.startswith("fd:") else "fd:100" for a in argv]
            fds.append(100)
        errors = tempfile.TemporaryFile()
        start = time.monotonic()
        self.process = subprocess.Popen(argv, pass_fds=fds, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=errors,
                                        preexec_fn=no_huge_pages)
        theirs.close()
        if template:
            template.close()
            os.close(100)
        ours.settimeout(60)
        if not restored and not ours.recv(1):  # the agent's hello: /init is running
            code = self.process.wait()
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip()[-500:]
            raise RuntimeError(f"the bare VM stopped before /init (exit {code}): {said}\n{' '.join(argv)}")
        errors.close()
        self.boot_seconds = time.monotonic() - start

    def close(self):
        self.process.kill()
        self.process.wait()
        self.socket.close()


def median(values):
    return statistics.median(values)


def measure(vessel, accel, build, rounds, memory_rounds):
    """Every figure of one accelerator: vessel restored and booted, runc, the bare boot, memory."""
    restoring = configured_runtime(vessel, f'[hypervisor.qemu]\naccel = "{accel}"\n')
    booting = configured_runtime(
        vessel, f'[hypervisor.qemu]\naccel = "{accel}"\n[factory]\nenable_template = false\n')
    guest = os.path.join(os.path.abspath(build), "guest")
    bare_argv = vessel_qemu_argv(booting, guest)
    timed_run(restoring)  # the first of its shape boots, and has its template made
    wait_for_template(bare_argv)
    restored_argv = vessel_qemu_argv(restoring, guest, template=0)
    timed_run(restoring), timed_run(booting), timed_run("runc")  # warm the page cache and storage
    times = {"vessel": [], "boot": [], "runc": [], "bare": []}
    for _ in range(rounds):
        times["vessel"].append(timed_run(restoring))
        times["boot"].append(timed_run(booting))
        times["runc"].append(timed_run("runc"))
        vm = BareVm(bare_argv)
        times["bare"].append(vm.boot_seconds)
        vm.close()

    def idle_container(runtime):
        cid = podman("run", "-d", f"--runtime={runtime}", IMAGE, "sleep", "1000").stdout.strip()
        time.sleep(3)
        shim = int(podman("inspect", "-f", "{{.State.Pid}}", cid).stdout)
        kib = pss_kib(shim) + sum(pss_kib(c) for c in children(shim))
        podman("rm", "-f", "-t", "0", cid)
        return kib

    def idle_bare(argv, restored):
        vm = BareVm(argv, restored)
        time.sleep(3)
        kib = pss_kib(vm.process.pid)
        vm.close()
        return kib

    memory = {"vessel": [], "boot": [], "bare restored": [], "bare": []}
    for _ in range(memory_rounds):
        memory["vessel"].append(idle_container(restoring))
        memory["bare restored"].append(idle_bare(restored_argv, True))
        memory["boot"].append(idle_container(booting))
        memory["bare"].append(idle_bare(bare_argv, False))
    return ({k: median(v) for k, v in times.items()},
            {k: median(v) / 1024 for k, v in memory.items()})


def report(accel, times, memory, rounds, memory_rounds):
    v, vb, r, b = (times[k] for k in ("vessel", "boot", "runc", "bare"))
    m = memory
    a = f"[{accel}]"
    print(f"start latency, median of {rounds} interleaved rounds; [{accel}]: the VMs ran under {accel.upper()}")
    print(f"  podman run --rm --runtime=vessel {IMAGE} true   {v:6.3f} s   {a} (restored from a template)")
    print(f"  the same with templates off                           {vb:6.3f} s   {a} (booted)")
    print(f"  podman run --rm --runtime=runc   {IMAGE} true   {r:6.3f} s   [no VM]")
    print(f"  bare QEMU boot of the same kernel+initrd to /init       {b:6.3f} s   {a}")
    print(f"  vessel's added latency, template (vessel - runc)        {v - r:6.3f} s   {a}"
          f" = {(v - r) / b:.2f} x the bare boot (target <= 0.5)")
    print(f"  vessel's added latency, booted                          {vb - r:6.3f} s   {a}"
          f" = {(vb - r) / b:.2f} x the bare boot")
    print(f"idle memory (PSS), median of {memory_rounds}")
    print(f"  vessel restored: QEMU + shim                            {m['vessel']:6.1f} MiB {a} (target <= 64)")
    print(f"  bare QEMU restoring the same template                   {m['bare restored']:6.1f} MiB {a}"
          f"   ratio {m['vessel'] / m['bare restored']:.2f} (target <= 1.10)")
    print(f"  vessel booted: QEMU + shim                              {m['boot']:6.1f} MiB {a}")
    print(f"  bare QEMU booting the same guest                        {m['bare']:6.1f} MiB {a}"
          f"   ratio {m['boot'] / m['bare']:.2f} (target <= 1.10)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--memory-rounds", type=int, default=3)
    parser.add_argument("--accel", choices=["kvm", "tcg"],
                        help="measure this accelerator alone (default: what vessel chooses, and TCG beside KVM)")
    args = parser.parse_args()
    vessel = os.path.abspath(os.path.join(args.build, "vessel"))
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ.setdefault("CONTAINERS_CONF", os.path.join(here, "..", "scripts", "podman-sandbox.conf"))
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
        subprocess.run([os.path.join(here, "..", "scripts", "demo.sh"), args.build], check=True,
                       stdout=subprocess.DEVNULL)

    # What vessel chooses on this host; where that is KVM, TCG is measured beside it.
    chosen = accelerator(vessel_qemu_argv(configured_runtime(vessel, ""), ""))
    accels = ["kvm", "tcg"] if chosen == "kvm" else ["tcg"]
    if chosen != "kvm":
        print("accelerator: TCG (vessel found no KVM that runs its guest here: `vessel check` says why)")
    if args.accel:
        accels = [args.accel]
    for accel in accels:
        times, memory = measure(vessel, accel, args.build, args.rounds, args.memory_rounds)
        report(accel, times, memory, args.rounds, args.memory_rounds)


if __name__ == "__main__":
    sys.exit(main())
