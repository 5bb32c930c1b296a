"""What bench/throughput.py and bench/scale.py share: Podman with a time limit, containers named for
this run (all removed at the end, even on error), the process tree and PSS of a container's shim,
and bare QEMU VMs booted with vessel's own command line but a busybox initrd of our own.

Nothing here asserts anything: the scripts print figures.
"""
import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

IMAGE = "localhost/vessel-demo"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Every container a benchmark starts is named PREFIX-N, so that cleanup finds them even when a
# `podman run` was killed before it printed an id.
PREFIX = f"vessel-bench-{os.getpid()}"
_counter = 0
_cleanups = []  # callables run at exit, last registered first


def setup(build):
    """Podman's sandbox settings, the image, and cleanup on exit and on TERM/INT/HUP."""
    os.environ.setdefault("CONTAINERS_CONF", os.path.join(ROOT, "scripts", "podman-sandbox.conf"))
    if subprocess.run(["podman", "image", "exists", IMAGE], timeout=60).returncode != 0:
        subprocess.run([os.path.join(ROOT, "scripts", "demo.sh"), build], check=True,
                       stdout=subprocess.DEVNULL, timeout=300)
    atexit.register(cleanup)

    def on_signal(number, _frame):
        for other in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(other, signal.SIG_IGN)  # a second signal must not cut the cleanup short
        sys.exit(128 + number)  # runs the finally blocks and atexit

    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, on_signal)


def at_cleanup(function):
    _cleanups.append(function)
    return function


def cleanup():
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception as error:  # keep cleaning
            print(f"cleanup: {error}", file=sys.stderr)
    remove_containers()


def podman(*args, check=True, timeout=120, **kwargs):
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(["podman", *args], check=check, text=True, timeout=timeout, **kwargs)


def name():
    """A fresh container name of this run."""
    global _counter
    _counter += 1
    return f"{PREFIX}-{_counter}"


def remove_containers():
    """Removes every container of this run; returns how many there were."""
    listed = podman("ps", "-a", "-q", "--filter", f"name=^{PREFIX}-", check=False, timeout=60)
    ids = listed.stdout.split()
    if ids:
        podman("rm", "-f", "-t", "0", *ids, check=False, timeout=300)
    remove_orphans()
    return len(ids)


def remove_orphans():
    """Containers of this run that Podman no longer knows (a `podman run` killed while it created
    one): found by their conmon (`-n NAME`), deleted with their runtime, conmon then ended."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if not argv or os.path.basename(argv[0]) != "conmon" or "-n" not in argv:
            continue
        values = dict(zip(argv, argv[1:]))
        if not values.get("-n", "").startswith(PREFIX + "-") or "-c" not in values or "-r" not in values:
            continue
        globals_ = [v for f, v in zip(argv, argv[1:]) if f == "--runtime-arg" and not v.startswith("--log")]
        subprocess.run([values["-r"], *globals_, "delete", "--force", values["-c"]], timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        podman("rm", "-f", "-t", "0", "--storage", values["-c"], check=False, timeout=120)
        try:
            os.kill(int(entry), signal.SIGTERM)
        except ProcessLookupError:
            pass
        print(f"cleanup: removed {values['-n']}, which Podman had lost", file=sys.stderr)


def kill_on_parent_death():
    """For preexec_fn: the child gets KILL when this benchmark dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def descendants(pid):
    """pid's child processes, their children, and so on (not threads)."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(c) for c in f.read().split()]
            except FileNotFoundError:
                continue
            found += kids
            queue += kids
    return found


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_ticks(pid):
    """utime + stime of pid, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (FileNotFoundError, ProcessLookupError):
        return 0


def running(pid, name):
    """pid is still a live process (not a zombie) running the program (comm) name."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    program, state = stat.split("(", 1)[1].rsplit(")", 1)
    return program == name and state.split()[0] not in ("Z", "X")


def template_builders():
    """PIDs of `vessel-shim --build-template` processes (vessel making a VM template in the
    background after a start that found none, e.g. after a rebuild)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"--build-template" in argv:
                found.append(int(entry))
    return found


def wait_for_template_builders(timeout=300):
    """Waits until no template builder runs, so that it does not share the CPUs with a measurement."""
    deadline = time.monotonic() + timeout
    while template_builders():
        if time.monotonic() > deadline:
            raise TimeoutError(f"vessel's template builder still runs after {timeout} s")
        time.sleep(0.5)


def shim_pid(container):
    return int(podman("inspect", "-f", "{{.State.Pid}}", container, timeout=60).stdout)


def vessel_qemu_argv(vessel):
    """QEMU's command line as vessel starts it, read from a running container."""
    container = name()
    podman("run", "-d", "--name", container, f"--runtime={vessel}", IMAGE, "sleep", "1000")
    try:
        shim = shim_pid(container)
        qemus = [p for p in descendants(shim) if (comm(p) or "").startswith("qemu")]
        with open(f"/proc/{qemus[0]}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    finally:
        podman("rm", "-f", "-t", "0", container, check=False)
        wait_for_template_builders()


def accelerator(argv):
    """What a VM of QEMU command line `argv` runs under, for each figure's label: kvm or tcg."""
    return argv[argv.index("-accel") + 1].split(",")[0] if "-accel" in argv else "?"


def option(argv, flag, prefix=""):
    """The values that follow flag in argv (those starting with prefix)."""
    return [v for f, v in zip(argv, argv[1:]) if f == flag and v.startswith(prefix)]


def host_tsc_khz():
    """The host's TSC rate as vessel found it (its cache for this boot), else as the host kernel
    logged it."""
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot = f.read().strip()
    for cache in ("/run/vessel/tsc-khz",):
        try:
            with open(cache) as f:
                lines = f.read().split()
            if len(lines) == 2 and lines[0] == boot:
                return int(lines[1])
        except (OSError, ValueError):
            pass
    log = subprocess.run(["dmesg"], text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         timeout=30).stdout
    for marker in ("Refined TSC clocksource calibration:", "tsc: Detected"):
        for line in log.splitlines():
            if marker in line:
                return int(float(line.split(marker)[1].split("MHz")[0]) * 1000)
    raise RuntimeError("cannot tell the host's TSC rate (no /run/vessel/tsc-khz, nothing in dmesg)")


def bootable(vessel_argv, kernel, initrd):
    """vessel's argv made to boot kernel+initrd: a VM restored from a template (-incoming) has no
    -kernel/-initrd/-append; they are put back as vessel's qemu_argv writes them for a cold boot."""
    argv, skip = [], False
    for flag, arg in zip([None] + vessel_argv, vessel_argv):
        if skip:
            skip = False
            continue
        if arg == "-incoming":
            skip = True
            continue
        argv.append(arg)
    if "-kernel" not in argv:
        append = "console=ttyS0 quiet panic=-1"
        accel = option(argv, "-accel")
        if accel and accel[0].split(",")[0] == "tcg":
            append += f" tsc_early_khz={host_tsc_khz()} tsc=reliable"
        argv[1:1] = ["-kernel", kernel, "-initrd", initrd, "-append", append]
    return argv


def busybox_initrd(directory, init_script):
    """An uncompressed cpio in directory: static busybox and init_script as /init."""
    stage = os.path.join(directory, "initrd-root")
    for sub in ("bin", "sbin", "dev", "proc", "sys", "mnt", "tmp"):
        os.makedirs(os.path.join(stage, sub), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(stage, "bin", "busybox"))
    with open(os.path.join(stage, "init"), "w") as f:
        f.write(init_script)
    os.chmod(os.path.join(stage, "init"), 0o755)
    out = os.path.join(directory, "initrd.cpio")
    with open(out, "wb") as f:
        files = subprocess.run("find . -mindepth 1 | LC_ALL=C sort", shell=True, cwd=stage, check=True,
                               stdout=subprocess.PIPE, timeout=60).stdout
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "--owner=0:0"], cwd=stage, input=files,
                       stdout=f, check=True, timeout=60)
    shutil.rmtree(stage)
    return out


class BareVm:
    """QEMU with vessel's own argv (same machine, memory, CPUs, kernel and command line, same virtio
    devices) and neutral backends: the NIC on an unconnected UDP socket, each 9p share on a directory
    of `shares` (by mount tag) or an empty one, the console and the agent's port on socket pairs we
    hold, and our initrd instead of the agent's. `params` are added to the kernel's command line
    (key=value without dots: the kernel hands them to /init as environment variables).
    """

    def __init__(self, vessel_argv, kernel, initrd, params, shares=None, extra=(), scratch=None):
        shares = shares or {}
        self.scratch = tempfile.mkdtemp(prefix="vessel-bench-vm-", dir=scratch)
        console_ours, console_theirs = socket.socketpair()
        agent_ours, agent_theirs = socket.socketpair()
        self.console, self.agent = console_ours, agent_ours
        tags = {}  # fsdev id -> mount tag
        for value in option(vessel_argv, "-device"):
            fields = dict(f.split("=", 1) for f in value.split(",") if "=" in f)
            if "fsdev" in fields:
                tags[fields["fsdev"]] = fields.get("mount_tag", "")
        argv = []
        vessel_argv = bootable(vessel_argv, kernel, initrd)
        for flag, arg in zip([None] + vessel_argv, vessel_argv):
            if flag == "-kernel":
                arg = kernel
            elif flag == "-initrd":
                arg = initrd
            elif flag == "-append":
                arg = arg + "".join(f" {k}={v}" for k, v in params.items())
            elif flag == "-name":
                arg = "vessel-bench"
            elif arg.startswith("socket,id=console,"):
                arg = f"socket,id=console,fd={console_theirs.fileno()}"
            elif arg.startswith("socket,id=agent,"):
                arg = f"socket,id=agent,fd={agent_theirs.fileno()}"
            elif arg.startswith("tap,id="):
                netdev = arg.split(",")[1]
                arg = f"socket,{netdev},udp=127.0.0.1:9,localaddr=127.0.0.1:0"
            elif flag == "-fsdev" and arg.startswith("local,"):
                fields = arg.split(",")
                fsdev = next(f[3:] for f in fields if f.startswith("id="))
                path = shares.get(tags.get(fsdev))
                if path is None:
                    path = os.path.join(self.scratch, "share-" + fsdev)
                    os.makedirs(path, exist_ok=True)
                arg = ",".join("path=" + path if f.startswith("path=") else f for f in fields)
            argv.append(arg)
        argv += list(extra)
        self.argv = argv
        self.lines = []  # console lines, None once the console closed
        self.arrivals = []  # time.monotonic() at which each line arrived
        self._lines_changed = threading.Condition()
        self.start = time.monotonic()
        self.errors = os.path.join(self.scratch, "qemu.stderr")
        with open(self.errors, "wb") as errors:
            self.process = subprocess.Popen(argv, pass_fds=(console_theirs.fileno(), agent_theirs.fileno()),
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=errors, preexec_fn=kill_on_parent_death)
        console_theirs.close()
        agent_theirs.close()
        self._reader = threading.Thread(target=self._read_console, daemon=True)
        self._reader.start()
        at_cleanup(self.close)

    def _read_console(self):
        pending = b""
        while True:
            try:
                data = self.console.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            pending += data
            *complete, pending = pending.split(b"\n")
            now = time.monotonic()
            with self._lines_changed:
                self.lines += [line.decode(errors="replace").rstrip("\r") for line in complete]
                self.arrivals += [now] * len(complete)
                self._lines_changed.notify_all()
        with self._lines_changed:
            if pending:
                self.lines.append(pending.decode(errors="replace"))
                self.arrivals.append(time.monotonic())
            self.lines.append(None)  # the console closed: QEMU is gone
            self.arrivals.append(time.monotonic())
            self._lines_changed.notify_all()

    def wait_line(self, prefix, timeout, with_time=False):
        """The first console line starting with prefix (and when it arrived, with_time); raises if
        QEMU ends first or on timeout."""
        deadline = time.monotonic() + timeout
        with self._lines_changed:
            while True:
                for line, arrival in zip(self.lines, self.arrivals):
                    if line is None:
                        raise RuntimeError(f"the bare VM ended before '{prefix}': {self.tail()}")
                    if line.startswith(prefix):
                        return (line, arrival) if with_time else line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no '{prefix}' from the bare VM in {timeout} s: {self.tail()}")
                self._lines_changed.wait(left)

    def tail(self, count=8):
        with self._lines_changed:
            console = " | ".join(line for line in self.lines[-count:] if line is not None)
        try:
            with open(self.errors, errors="replace") as f:
                stderr = f.read()[-2000:].strip()
        except OSError:
            stderr = ""
        return f"console: {console}" + (f"; QEMU: {stderr}" if stderr else "")

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=30)
        finally:
            self.agent.close()
            self.console.close()
            shutil.rmtree(self.scratch, ignore_errors=True)
            if self.close in _cleanups:
                _cleanups.remove(self.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# A shell function (busybox sh): `timed CMD...` runs CMD and prints "START END rc=RC", the
# wall clock to the microsecond from adjtimex (this busybox's dd prints no rate, /proc/uptime has
# only centiseconds). Used in the bare VMs and in containers (vessel's guest, or the host under runc).
TIMED_SH = (
    "us() { echo \"$1\" | awk '/tv_sec/ {s=$2} /tv_usec/ {u=$2} END {printf \"%d.%06d\", s, u}'; }; "
    'timed() { a=$(adjtimex 2>/dev/null); "$@" >/dev/null 2>&1; rc=$?; b=$(adjtimex 2>/dev/null); '
    'echo "$(us "$a") $(us "$b") rc=$rc"; }; ')


# /init of the bare VMs: busybox, the port named $bench_port, then one of:
#   out: $bench_count blocks of $bench_bs from /dev/zero into the port
#   in:  $bench_count blocks of $bench_bs from the port into /dev/null
#   9p:  mount the share $bench_tag with $bench_opts, read $bench_file twice with dd
# Each step's result comes as a line on the console ("BENCH-DD1 START END rc=RC", from `timed`);
# the VM powers off at the end.
BENCH_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/ttyS0 2>&1
""" + TIMED_SH + r"""
port=
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = "$bench_port" ] && port=/dev/${p##*/}
done
echo "BENCH-READY port=$port mode=$bench_mode"
case "$bench_mode" in
out) echo "BENCH-DD $(timed dd if=/dev/zero of="$port" bs="$bench_bs" count="$bench_count")" ;;
in) echo "BENCH-DD $(timed dd if="$port" of=/dev/null bs="$bench_bs" count="$bench_count" iflag=fullblock)" ;;
9p)
  echo "BENCH-CLOCK $(timed true)"
  if mount -t 9p -o "$bench_opts" "$bench_tag" /mnt; then
    grep " /mnt " /proc/mounts | sed 's/^/BENCH-MOUNT /'
    echo "BENCH-DD1 $(timed dd if="/mnt/$bench_file" of=/dev/null bs=1M)"
    echo "BENCH-DD2 $(timed dd if="/mnt/$bench_file" of=/dev/null bs=1M)"
  else
    echo "BENCH-MOUNT failed"
  fi
  dmesg | grep -i "limiting\|9p.*\(error\|fail\|warn\)" | sed 's/^/BENCH-DMESG /' ;;
esac
echo BENCH-END
poweroff -f
"""


def parse_timed(line):
    """Seconds from a 'START END rc=0' line (after any prefix), else None (or a failed command)."""
    if not line:
        return None
    fields = line.split()
    try:
        if fields[-1] != "rc=0":
            return None
        return float(fields[-2]) - float(fields[-3])
    except (IndexError, ValueError):
        return None


def mib_s(count, seconds):
    return count / (1 << 20) / seconds if seconds > 0 else float("inf")


def drop_caches():
    """Empties the host's page cache (as root); False where that is not allowed."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False
