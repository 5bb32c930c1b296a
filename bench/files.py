#!/usr/bin/env python3
"""Files in a volume: reads and metadata in a vessel container beside the host and runc, in one run.

What issue 20 asks of a shared directory, each figure against the host's own, measured here:
  - a sequential read (dd bs=1M) of a --file-mib MiB file in a volume, warm (the host's page cache
    holds it; the container's first read) and cold (page cache dropped before each);
  - `find` over a tree of --files small files, and `tar c` of that tree to /dev/null, in the volume.
The host runs the same busybox binary the image has (find and tar of one implementation), and a
runc container beside it shows what a container costs without a VM. Targets: reads >= 0.8 of the
host's, metadata within 3 x the host's time. (A file in the image: bench/throughput.py.)

Nothing here asserts anything: it prints figures. Run as root (make bench).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib

BUSYBOX = "/bin/busybox"


def make_volume(directory, file_mib, files):
    """A volume with one big file and a tree of `files` small files (100 to a directory)."""
    with open(os.path.join(directory, "big"), "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(file_mib):
            f.write(chunk)
    tree = os.path.join(directory, "tree")
    for index in range(files):
        sub = os.path.join(tree, f"d{index // 100:04d}")
        if index % 100 == 0:
            os.makedirs(sub)
        with open(os.path.join(sub, f"f{index % 100:02d}.c"), "w") as f:
            f.write(f"int f{index}(void) {{ return {index}; }}\n" * 8)


SCRIPT = benchlib.TIMED_SH + (
    'echo "CLOCK $(timed true)"; '
    'echo "READ $(timed dd if=/v/big of=/dev/null bs=1M)"; '
    'echo "FIND $(timed sh -c "find /v/tree | wc -l")"; '
    'echo "TAR $(timed sh -c "tar cf - -C /v tree | wc -c")"')


def container(runtime, volume, image):
    """{READ, FIND, TAR: seconds} timed inside one container (less the timer's own cost)."""
    result = benchlib.podman("run", "--rm", "--name", benchlib.name(), f"--runtime={runtime}", "-v",
                             f"{volume}:/v", image, "sh", "-c", SCRIPT, timeout=900)
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in result.stdout.splitlines() if " " in line}
    clock = benchlib.parse_timed(lines.get("CLOCK")) or 0.0
    times = {}
    for key in ("READ", "FIND", "TAR"):
        seconds = benchlib.parse_timed(lines.get(key))
        if seconds is None:
            raise RuntimeError(f"{runtime}: {key} failed: {result.stdout} {result.stderr}")
        times[key] = max(seconds - clock, 1e-6)
    return times


def host(volume):
    """The same three on the host, with the same busybox."""
    def timed(argv, shell=False):
        start = time.monotonic()
        subprocess.run(argv, shell=shell, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=900)
        return time.monotonic() - start
    return {
        "READ": timed([BUSYBOX, "dd", f"if={volume}/big", "of=/dev/null", "bs=1M"]),
        "FIND": timed(f"{BUSYBOX} find {volume}/tree | wc -l", shell=True),
        "TAR": timed(f"{BUSYBOX} tar cf - -C {volume} tree | wc -c", shell=True),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--file-mib", type=int, default=256)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of each measurement")
    args = parser.parse_args()
    vessel = os.path.abspath(os.path.join(args.build, "vessel"))
    benchlib.setup(args.build)
    image = benchlib.IMAGE
    work = tempfile.mkdtemp(prefix="vessel-bench-files-", dir="/var/tmp")
    benchlib.at_cleanup(lambda: shutil.rmtree(work, ignore_errors=True))
    make_volume(work, args.file_mib, args.files)
    size = args.file_mib << 20

    warm = {"host": [], "vessel": [], "runc": []}
    for _ in range(args.rounds):  # interleaved, the host's cache warm for each
        host(work)
        warm["host"].append(host(work))
        warm["vessel"].append(container(vessel, work, image))
        warm["runc"].append(container("runc", work, image))
    cold = {"host": [], "vessel": []}
    dropped = benchlib.drop_caches()
    for _ in range(args.rounds if dropped else 0):
        benchlib.drop_caches()
        cold["host"].append(host(work))
        benchlib.drop_caches()
        cold["vessel"].append(container(vessel, work, image))

    def med(samples, key):
        return statistics.median(sample[key] for sample in samples)

    def verdict(met):
        return "met" if met else "not met"

    print(f"files in a volume: {args.file_mib} MiB read, a tree of {args.files} files "
          f"(median of {args.rounds}; vessel's VMs {benchlib.accelerator(benchlib.vessel_qemu_argv(vessel))})")
    rows = []
    for label, samples in (("warm", warm), ("cold", cold)):
        if not samples["host"]:
            print(f"  {label}: /proc/sys/vm/drop_caches not writable, skipped")
            continue
        host_rate = benchlib.mib_s(size, med(samples["host"], "READ"))
        vessel_rate = benchlib.mib_s(size, med(samples["vessel"], "READ"))
        line = f"  read, {label}: host {host_rate:.1f} MiB/s, vessel {vessel_rate:.1f}"
        if "runc" in samples:
            line += f", runc {benchlib.mib_s(size, med(samples['runc'], 'READ')):.1f}"
        ratio = vessel_rate / host_rate
        print(f"{line}: vessel / host {ratio:.3f} (target >= 0.8, {verdict(ratio >= 0.8)})")
        rows.append(ratio)
    for key, what in (("FIND", "find over the tree"), ("TAR", "tar c of the tree")):
        host_s, vessel_s, runc_s = (med(warm[side], key) for side in ("host", "vessel", "runc"))
        ratio = vessel_s / host_s
        print(f"  {what}, warm: host {host_s:.3f} s, vessel {vessel_s:.3f} s, runc {runc_s:.3f} s: "
              f"vessel / host {ratio:.2f} x (target <= 3, {verdict(ratio <= 3)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
