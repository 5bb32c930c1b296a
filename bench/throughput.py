#!/usr/bin/env python3
"""Stdio and 9p throughput of vessel, side by side with runc and the raw devices, in one run.

Measures, each once per round (rounds interleaved, medians reported):
  - stdout: `podman run --rm --runtime=R IMG dd if=/dev/zero bs=64k count=N` piped to this script,
    which counts the bytes (and checks they are zeros); the rate runs from the first byte to EOF,
    so the VM's start is not in it. R = <build>/vessel, then runc for reference. Then the same
    without Podman: `R run --bundle B` of an OCI bundle of the image, its stdio this script's
    pipes, which measures the runtime's own path (through Podman, conmon and Podman copy every
    byte twice more: runc's rate through Podman is the ceiling there).
  - stdin: `podman run --rm -i --runtime=R IMG sh -c 'echo ready; dd of=/dev/null bs=64k
    iflag=fullblock'`, fed N bytes once "ready" arrives; the rate runs from the first byte
    written to dd's "records in" line (which also shows that every byte arrived); then the same
    from an OCI bundle without Podman.
  - the raw virtio-serial port of the same QEMU and guest kernel: QEMU started with vessel's own
    command line (read from a running container; neutral backends for its NIC and shares) but a
    busybox initrd whose /init runs dd on the agent's port (vessel.0, the same virtserialport on
    the same virtio-serial-device), one way then the other. This is the ceiling for vessel's
    framed, credit-based streams over that port.
  - 9p: a file of --file-mib MiB in an image layer (an image imported for this run, removed at
    the end), read with `dd bs=1M` inside the container (timed by the guest itself, so the VM's
    start is not in it; then a second read in the same guest), beside the host reading the same
    file from the image's mount (after dropping the page cache, then warm) and runc's container
    reading it. Then the same file shared by a bare QEMU (vessel's argv, busybox initrd) mounted
    with each msize and cache mode, to show what the 9p options change.
Figures only: nothing here is asserted. Run with `make bench`, or alone with smaller sizes:
  python3 bench/throughput.py --bytes 67108864 --file-mib 64
"""
import argparse
import json
import os
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import benchlib  # noqa: E402
from benchlib import IMAGE, podman  # noqa: E402

BS = 65536
CHUNK = 1 << 20
ZEROS = bytes(CHUNK)


def deadline_for(nbytes, min_rate_mib):
    return 120 + nbytes / (min_rate_mib * (1 << 20))


def stdout_command(nbytes):
    return ["dd", "if=/dev/zero", f"bs={BS}", f"count={nbytes // BS}"]


def stdin_command():
    return ["sh", "-c", f"echo ready; dd of=/dev/null bs={BS} iflag=fullblock 2>&1"]


def podman_run(runtime, command, interactive=False):
    return (["podman", "run", "--rm"] + (["-i"] if interactive else []) +
            ["--name", benchlib.name(), f"--runtime={runtime}", IMAGE] + command)


def label(argv):
    """The runtime an argv runs, for messages."""
    return next((a[len("--runtime="):] for a in argv if a.startswith("--runtime=")), argv[0])


class Bundle:
    """An OCI bundle of the image's root filesystem (a copy), run by a runtime without Podman:
    the container's stdio is this script's pipe, so only the runtime's own path is measured."""

    def __init__(self, directory):
        self.directory = directory
        mounted = podman("image", "mount", IMAGE, timeout=120).stdout.strip()
        try:
            shutil.copytree(mounted, os.path.join(directory, "rootfs"), symlinks=True)
        finally:
            podman("image", "unmount", IMAGE, check=False, timeout=120)
        subprocess.run(["runc", "spec"], cwd=directory, check=True, timeout=30)
        with open(os.path.join(directory, "config.json")) as f:
            self.config = json.load(f)
        self.config["root"] = {"path": os.path.join(directory, "rootfs"), "readonly": False}
        self.config["process"]["terminal"] = False

    def argv(self, runtime, command):
        self.config["process"]["args"] = command
        with open(os.path.join(self.directory, "config.json"), "w") as f:
            json.dump(self.config, f)
        return [runtime, "run", "--bundle", self.directory, benchlib.name()]


def stdout_run(argv, nbytes, timeout):
    """(MiB/s from first byte to EOF, bytes, all zeros?, wall seconds) of a container's stdout."""
    runtime = label(argv)
    with tempfile.TemporaryFile() as errors:
        start = time.monotonic()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        got, zeros, first, last = 0, True, None, None
        fd = process.stdout.fileno()
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        try:
            while True:
                left = start + timeout - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{runtime}: stdout still running after {timeout:.0f} s ({got} bytes)")
                if not selector.select(left):
                    continue
                data = os.read(fd, CHUNK)
                if not data:
                    last = time.monotonic()
                    break
                if first is None:
                    first = time.monotonic()
                got += len(data)
                if zeros and data.count(0) != len(data):
                    zeros = False
            process.wait(timeout=max(1, start + timeout - time.monotonic()))
        finally:
            selector.close()
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
        if process.returncode != 0 or got != nbytes:
            errors.seek(0)
            raise RuntimeError(f"{runtime}: stdout gave {got} of {nbytes} bytes, exit {process.returncode}: "
                               f"{errors.read().decode(errors='replace')[-500:]}")
        return benchlib.mib_s(got, last - first), got, zeros, time.monotonic() - start


def stdin_run(argv, nbytes, timeout):
    """(MiB/s from the first byte written to dd's summary, dd's summary, wall seconds)."""
    expected = f"{nbytes // BS}+0 records in"
    runtime = label(argv)
    with tempfile.TemporaryFile() as errors:
        start = time.monotonic()
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
        out_fd, in_fd = process.stdout.fileno(), process.stdin.fileno()
        os.set_blocking(in_fd, False)
        selector = selectors.DefaultSelector()
        selector.register(out_fd, selectors.EVENT_READ)
        output, sent, first, done, pending = b"", 0, None, None, b""
        try:
            while done is None:
                left = start + timeout - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{runtime}: stdin still running after {timeout:.0f} s ({sent} bytes sent)")
                for key, _ in selector.select(left):
                    if key.fd == out_fd:
                        data = os.read(out_fd, 65536)
                        if not data:
                            raise RuntimeError(f"{runtime}: the container's stdout ended: {output!r}")
                        output += data
                        if first is None and b"ready\n" in output:
                            selector.register(in_fd, selectors.EVENT_WRITE)
                            first = time.monotonic()
                        if b"records in" in output:
                            done = time.monotonic()
                    else:
                        if not pending:
                            pending = ZEROS[:min(CHUNK, nbytes - sent)]
                        try:
                            written = os.write(in_fd, pending)
                        except BlockingIOError:
                            continue
                        sent += written
                        pending = pending[written:]
                        if sent == nbytes:
                            selector.unregister(in_fd)
                            process.stdin.close()
            # the rest of dd's summary, then the exit
            while True:
                left = start + timeout - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{runtime}: stdin: the container did not end in {timeout:.0f} s")
                if selector.select(left):
                    data = os.read(out_fd, 65536)
                    if not data:
                        break
                    output += data
            process.wait(timeout=max(1, start + timeout - time.monotonic()))
        finally:
            selector.close()
            if process.poll() is None:
                process.kill()
                process.wait()
        summary = " / ".join(line for line in output.decode(errors="replace").splitlines()
                             if "records" in line)
        if process.returncode != 0 or expected not in summary:
            errors.seek(0)
            raise RuntimeError(f"{runtime}: stdin: {summary!r} (expected {expected!r}), exit "
                               f"{process.returncode}: {errors.read().decode(errors='replace')[-500:]}")
        return benchlib.mib_s(nbytes, done - first), summary, time.monotonic() - start


def raw_port(vessel_argv, kernel, initrd, direction, nbytes, timeout):
    """MiB/s through the raw agent port of a bare VM: guest -> host ("out") or host -> guest ("in")."""
    params = {"bench_mode": direction, "bench_port": "vessel.0", "bench_bs": BS, "bench_count": nbytes // BS}
    with benchlib.BareVm(vessel_argv, kernel, initrd, params) as vm:
        vm.wait_line("BENCH-READY port=/dev/", 60)
        vm.agent.settimeout(timeout)
        if direction == "out":
            got, first = 0, None
            while got < nbytes:
                data = vm.agent.recv(CHUNK)
                if not data:
                    raise RuntimeError(f"raw port: the VM closed it after {got} bytes: {vm.tail()}")
                if first is None:
                    first = time.monotonic()
                got += len(data)
            last = time.monotonic()
            line = vm.wait_line("BENCH-DD", timeout)
            if benchlib.parse_timed(line) is None:
                raise RuntimeError(f"raw port: guest dd failed: {line}")
            return benchlib.mib_s(got, last - first)
        first = time.monotonic()
        sent = 0
        while sent < nbytes:
            vm.agent.sendall(ZEROS[:min(CHUNK, nbytes - sent)])
            sent += min(CHUNK, nbytes - sent)
        line, done = vm.wait_line("BENCH-DD", timeout, with_time=True)
        if benchlib.parse_timed(line) is None:
            raise RuntimeError(f"raw port: guest dd failed: {line}")
        return benchlib.mib_s(nbytes, done - first)


def build_big_image(directory, file_mib):
    """An image of busybox and /big (file_mib MiB of random bytes), imported for this run."""
    image = f"localhost/vessel-bench-9p:{os.getpid()}"
    rootfs = os.path.join(directory, "rootfs")
    for sub in ("bin", "proc", "sys", "dev", "tmp", "etc", "root"):
        os.makedirs(os.path.join(rootfs, sub))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    applets = subprocess.run(["/bin/busybox", "--list"], check=True, text=True, stdout=subprocess.PIPE,
                             timeout=30).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    with open("/dev/urandom", "rb") as source, open(os.path.join(rootfs, "big"), "wb") as big:
        for _ in range(file_mib):
            big.write(source.read(1 << 20))
    tar = os.path.join(directory, "rootfs.tar")
    subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True, timeout=300)
    shutil.rmtree(rootfs)

    @benchlib.at_cleanup
    def remove_image():
        podman("rmi", "-f", image, check=False, timeout=120)

    podman("import", "--change", 'CMD ["/bin/sh"]', tar, image, timeout=600)
    os.unlink(tar)
    return image


def host_read(path):
    """MiB/s of the host reading path sequentially in 1 MiB reads."""
    buffer = bytearray(CHUNK)
    total = 0
    with open(path, "rb", buffering=0) as f:
        start = time.monotonic()
        while True:
            count = f.readinto(buffer)
            if not count:
                break
            total += count
        return benchlib.mib_s(total, time.monotonic() - start)


def container_reads(runtime, image, size):
    """MiB/s of two `dd if=/big bs=1M` in one container (timed inside it) and its / mount line."""
    script = (benchlib.TIMED_SH + 'echo "CLOCK $(timed true)"; echo "R1 $(timed dd if=/big of=/dev/null bs=1M)"; '
              'echo "R2 $(timed dd if=/big of=/dev/null bs=1M)"; grep " / " /proc/mounts | sed "s/^/MOUNT /"')
    result = podman("run", "--rm", "--name", benchlib.name(), f"--runtime={runtime}", image, "sh", "-c",
                    script, timeout=600)
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in result.stdout.splitlines() if " " in line}
    clock = benchlib.parse_timed(lines.get("CLOCK")) or 0.0
    rates = []
    for key in ("R1", "R2"):
        seconds = benchlib.parse_timed(lines.get(key))
        if seconds is None:
            raise RuntimeError(f"{runtime}: the read failed: {result.stdout} {result.stderr}")
        rates.append(benchlib.mib_s(size, max(seconds - clock, 1e-6)))
    return rates, lines.get("MOUNT", "?")


def bare_9p(vessel_argv, kernel, initrd, share_dir, options, size):
    """(read 1, read 2 MiB/s, the mount line, kernel notes) of the bare VM mounting share_dir."""
    params = {"bench_mode": "9p", "bench_port": "vessel.0", "bench_tag": "rootfs", "bench_opts": options,
              "bench_file": "big"}
    with benchlib.BareVm(vessel_argv, kernel, initrd, params, shares={"rootfs": share_dir}) as vm:
        vm.wait_line("BENCH-END", 600)
        lines = [line for line in vm.lines if line]
    found = {}
    notes = []
    for line in lines:
        key, _, rest = line.partition(" ")
        if key == "BENCH-DMESG":
            notes.append(rest.split("] ", 1)[-1])
        else:
            found.setdefault(key, rest)
    clock = benchlib.parse_timed(found.get("BENCH-CLOCK")) or 0.0
    rates = []
    for key in ("BENCH-DD1", "BENCH-DD2"):
        seconds = benchlib.parse_timed(found.get(key))
        rates.append(None if seconds is None else benchlib.mib_s(size, max(seconds - clock, 1e-6)))
    return rates, found.get("BENCH-MOUNT", "?"), notes


def median(values):
    return statistics.median(values)


def row(label, value, unit="", ratio=False):
    print(f"  {label:<58} {value:9.3f} {unit}" if ratio else f"  {label:<58} {value:9.1f} {unit}")


def mount_options(mount_line):
    fields = mount_line.split()
    return fields[3] if len(fields) > 3 else mount_line


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--bytes", type=int, default=1 << 30, help="bytes through stdout, stdin and the raw port")
    parser.add_argument("--file-mib", type=int, default=256, help="size of the file read over 9p")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the stdio transfers")
    parser.add_argument("--min-rate", type=float, default=2.0,
                        help="MiB/s below which a transfer is given up (bounds each run's time)")
    parser.add_argument("--msizes", default="131072,524288,1048576")
    parser.add_argument("--caches", default="none,mmap,loose,fscache")
    parser.add_argument("--cold-rounds", type=int, default=2, help="host/vessel reads after dropping caches")
    parser.add_argument("--options-rounds", type=int, default=3, help="VMs per 9p option set")
    parser.add_argument("--skip-9p", action="store_true")
    args = parser.parse_args()
    nbytes = args.bytes - args.bytes % BS
    vessel = os.path.abspath(os.path.join(args.build, "vessel"))
    guest = os.path.join(os.path.abspath(args.build), "guest")
    kernel = os.path.join(guest, "vmlinux")
    benchlib.setup(args.build)
    work = tempfile.mkdtemp(prefix="vessel-bench-throughput-", dir="/var/tmp")
    benchlib.at_cleanup(lambda: shutil.rmtree(work, ignore_errors=True))
    timeout = deadline_for(nbytes, args.min_rate)

    vessel_argv = benchlib.vessel_qemu_argv(vessel)
    initrd = benchlib.busybox_initrd(work, benchlib.BENCH_INIT)
    fsdev = next((v for v in benchlib.option(vessel_argv, "-fsdev") if ",id=fs0," in v), "?")

    bundle = Bundle(os.path.join(work, "bundle"))
    kinds = ("vessel out", "runc out", "vessel direct out", "runc direct out", "raw out",
             "vessel in", "runc in", "vessel direct in", "runc direct in", "raw in")
    rates = {k: [] for k in kinds}
    notes = []
    for _ in range(args.rounds):
        for kind, argv in (("vessel out", podman_run(vessel, stdout_command(nbytes))),
                           ("runc out", podman_run("runc", stdout_command(nbytes))),
                           ("vessel direct out", bundle.argv(vessel, stdout_command(nbytes))),
                           ("runc direct out", bundle.argv("runc", stdout_command(nbytes)))):
            rate, _, zeros, _ = stdout_run(argv, nbytes, timeout)
            rates[kind].append(rate)
            if not zeros:
                notes.append(f"{kind}: the stream carried bytes other than zeros")
        rates["raw out"].append(raw_port(vessel_argv, kernel, initrd, "out", nbytes, timeout))
        for kind, argv in (("vessel in", podman_run(vessel, stdin_command(), interactive=True)),
                           ("runc in", podman_run("runc", stdin_command(), interactive=True)),
                           ("vessel direct in", bundle.argv(vessel, stdin_command())),
                           ("runc direct in", bundle.argv("runc", stdin_command()))):
            rates[kind].append(stdin_run(argv, nbytes, timeout)[0])
        rates["raw in"].append(raw_port(vessel_argv, kernel, initrd, "in", nbytes, timeout))
    m = {k: median(v) for k, v in rates.items()}

    mib = nbytes / (1 << 20)
    accel = benchlib.accelerator(vessel_argv)
    print(f"stdio throughput, {mib:.0f} MiB each way, median of {args.rounds} interleaved round(s);"
          f" vessel's and the raw port's VMs under {accel.upper()}")
    row("stdout, podman run --runtime=vessel IMG dd ...", m["vessel out"], "MiB/s")
    row("stdout, podman run --runtime=runc   IMG dd ...", m["runc out"], "MiB/s")
    row("stdout, vessel run (an OCI bundle, no Podman)", m["vessel direct out"], "MiB/s")
    row("stdout, runc run   (the same bundle)", m["runc direct out"], "MiB/s")
    row("raw virtio-serial port, guest -> host (same QEMU)", m["raw out"], "MiB/s")
    row("stdin,  podman run -i --runtime=vessel ...", m["vessel in"], "MiB/s")
    row("stdin,  podman run -i --runtime=runc   ...", m["runc in"], "MiB/s")
    row("stdin,  vessel run (an OCI bundle, no Podman)", m["vessel direct in"], "MiB/s")
    row("stdin,  runc run   (the same bundle)", m["runc direct in"], "MiB/s")
    row("raw virtio-serial port, host -> guest (same QEMU)", m["raw in"], "MiB/s")
    row("vessel stdout / raw port, without Podman", m["vessel direct out"] / m["raw out"],
        "(target >= 0.50)", ratio=True)
    row("vessel stdin  / raw port, without Podman", m["vessel direct in"] / m["raw in"],
        "(target >= 0.50)", ratio=True)
    row("vessel stdout / raw port, through Podman", m["vessel out"] / m["raw out"], ratio=True)
    row("vessel stdin  / raw port, through Podman", m["vessel in"] / m["raw in"], ratio=True)
    row("runc stdout through Podman / raw port (Podman's own ceiling)", m["runc out"] / m["raw out"],
        ratio=True)
    row("runc stdin  through Podman / raw port (Podman's own ceiling)", m["runc in"] / m["raw in"],
        ratio=True)
    row("vessel stdout / runc stdout, through Podman", m["vessel out"] / m["runc out"], ratio=True)
    row("vessel stdin  / runc stdin, through Podman", m["vessel in"] / m["runc in"], ratio=True)
    for note in notes:
        print(f"  note: {note}")
    sys.stdout.flush()
    if args.skip_9p:
        return 0

    size = args.file_mib << 20
    image = build_big_image(work, args.file_mib)
    mounted = podman("image", "mount", image, timeout=120).stdout.strip()
    benchlib.at_cleanup(lambda: podman("image", "unmount", image, check=False, timeout=120))
    big = os.path.join(mounted, "big")
    # The first read after the file was written comes from the disk; this machine's disk is
    # virtual and cached by its own host, so after that "page cache dropped" is this machine's
    # cache only: the same condition for the host's and the container's reads, interleaved.
    dropped = benchlib.drop_caches()
    host_first = host_read(big) if dropped else None
    host_cold, vessel_cold = [], []
    for _ in range(args.cold_rounds if dropped else 0):
        benchlib.drop_caches()
        host_cold.append(host_read(big))
        benchlib.drop_caches()
        vessel_cold.append(container_reads(vessel, image, size)[0][0])
    host_read(big)
    host_warm = host_read(big)
    (vessel_r1, vessel_r2), vessel_mount = container_reads(vessel, image, size)
    (runc_r1, runc_r2), _ = container_reads("runc", image, size)

    print(f"9p sequential read of a {args.file_mib} MiB file in the image (dd bs=1M, timed where it runs)")
    if dropped:
        row("host, first read after the file was written", host_first, "MiB/s")
        row(f"host, page cache dropped (median of {len(host_cold)})", median(host_cold), "MiB/s")
        row(f"vessel container, page cache dropped (median of {len(vessel_cold)})", median(vessel_cold),
            "MiB/s")
    else:
        print("  host, page cache dropped: /proc/sys/vm/drop_caches not writable, skipped")
    row("host, warm", host_warm, "MiB/s")
    row("vessel container, host warm, first read", vessel_r1, "MiB/s")
    row("vessel container, same guest, second read", vessel_r2, "MiB/s")
    row("runc container, first read", runc_r1, "MiB/s")
    if dropped:
        row("vessel / host, page cache dropped", median(vessel_cold) / median(host_cold), ratio=True)
    row("vessel / host, both warm", vessel_r1 / host_warm, ratio=True)
    print(f"  vessel's root: -fsdev {fsdev}")
    print(f"  vessel's VM: {'restored from a template (-incoming)' if '-incoming' in vessel_argv else 'booted'}")
    print(f"  mounted in the guest as: {mount_options(vessel_mount)}")
    sys.stdout.flush()

    host_read(big)  # warm for the table
    print("9p options: a bare QEMU (vessel's argv, busybox initrd) mounting the same share, host warm")
    print(f"  {'options given (median of ' + str(args.options_rounds) + ' VMs each)':<44} "
          f"{'msize in effect':>15} {'read 1':>12} {'read 2':>12}")
    msizes = [int(s) for s in args.msizes.split(",") if s]
    caches = [c for c in args.caches.split(",") if c]
    clamped, results = set(), {}
    for _ in range(args.options_rounds):
        for cache in caches:
            for msize in msizes:
                options = f"trans=virtio,version=9p2000.L,msize={msize},cache={cache}"
                (r1, r2), mount, kernel_notes = bare_9p(vessel_argv, kernel, initrd, mounted, options, size)
                entry = results.setdefault((cache, msize), {"r1": [], "r2": [], "mount": mount, "notes": set()})
                entry["r1"] += [r1] if r1 is not None else []
                entry["r2"] += [r2] if r2 is not None else []
                entry["notes"] |= set(kernel_notes)
    for (cache, msize), entry in results.items():
        given = f"msize={msize},cache={cache}"
        mount = entry["mount"]
        in_effect = mount_options(mount).split(",")
        effective = next((f[6:] for f in in_effect if f.startswith("msize=")),
                         "default" if mount not in ("?", "failed") else "-")
        show = lambda rates: f"{median(rates):6.1f} MiB/s" if rates else "failed"
        print(f"  {given:<44} {effective:>15} {show(entry['r1']):>12} {show(entry['r2']):>12}")
        for note in sorted(entry["notes"]):
            if "Limiting" in note:
                clamped.add(note)
            else:
                print(f"      guest kernel: {note}")
        if mount in ("?", "failed"):
            print("      the mount failed")
        elif cache != "none" and cache not in in_effect:
            print(f"      mounted as {mount_options(mount)}")
    for note in sorted(clamped):
        print(f"  guest kernel: {note}")
    memory = int(benchlib.option(vessel_argv, "-m")[0])
    print("  (msize \"default\": /proc/mounts leaves out an msize equal to the kernel's default)")
    if args.file_mib >= memory // 2:
        print(f"  (read 2: the same file again in the same guest, whose {memory} MiB cannot cache it whole)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
