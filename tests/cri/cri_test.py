#!/usr/bin/env python3
"""Kubernetes' view of vessel: containerd's CRI plugin drives it as a kubelet would.

Each test makes pods through gRPC calls of runtime.v1 (cri.py), with the runtime handler
"vessel" that `vessel setup --containerd` registered, and runc's handler beside it where the two
should agree. Usage: cri_test.py BUILD_DIR [unittest arguments].
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

import cri

BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "build"
VESSEL = os.path.join(BUILD, "vessel")


def processes_matching(needle):
    """{pid: command line} of the processes whose command line contains `needle`, but ours."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                line = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in line:
            found[int(pid)] = line
    return found


class CriTest(unittest.TestCase):
    daemon = None

    @classmethod
    def setUpClass(cls):
        reason = cri.why_not(BUILD)
        if reason:
            raise unittest.SkipTest(reason)
        cls.generated = tempfile.mkdtemp(prefix="vessel-cri-proto-")
        cls.m = cri.load_messages(cls.generated)
        cls.daemon = cri.Containerd(BUILD, VESSEL)
        cls.cri = cri.Cri(cls.m, cls.daemon.socket)
        # The handler is the one `vessel setup --containerd` wrote (cri.Containerd).
        assert "registered " + VESSEL in cls.daemon.setup_output, cls.daemon.setup_output

    @classmethod
    def tearDownClass(cls):
        if cls.daemon:
            cls.daemon.stop()
        shutil.rmtree(cls.generated, ignore_errors=True)

    def setUp(self):
        self.pods = []
        self.logs = tempfile.mkdtemp(prefix="vessel-cri-logs-")

    def tearDown(self):
        for pod_id in self.pods:
            try:
                self.cri.remove_pod(pod_id)
            except grpc.RpcError:
                pass
        shutil.rmtree(self.logs, ignore_errors=True)

    def run_pod(self, name, handler="vessel", **extra):
        config = self.cri.pod_config(name, log_directory=os.path.join(self.logs, name), **extra)
        pod_id = self.cri.run_pod(config, handler)
        self.pods.append(pod_id)
        return pod_id, config

    def container(self, pod, name, command, start=True, **extra):
        container_id = self.cri.create(pod[0], pod[1], name, command, **extra)
        if start:
            self.cri.start(container_id)
        return container_id

    def exec_out(self, container_id, *cmd):
        reply = self.cri.exec_sync(container_id, list(cmd), timeout=60)
        self.assertEqual(reply.exit_code, 0, reply.stderr)
        return reply.stdout.decode()

    def log_lines(self, pod_name, container_name, want, seconds=30):
        """The CRI log's lines (TIME STREAM TAG TEXT) once one has the text `want`."""
        path = os.path.join(self.logs, pod_name, container_name + ".log")
        deadline = time.time() + seconds
        while True:
            text = ""
            if os.path.exists(path):
                with open(path) as log:
                    text = log.read()
            if want in text or time.time() > deadline:
                return text.splitlines()
            time.sleep(0.2)

    def vm_of(self, pod_id):
        """The pids of the pod's QEMU (named vessel-ID after the pod's sandbox)."""
        return [pid for pid, line in processes_matching("vessel-" + pod_id).items()
                if line.startswith("/usr/bin/qemu-system")]

    def wait_gone(self, pod_id, seconds=30):
        deadline = time.time() + seconds
        while processes_matching(pod_id) and time.time() < deadline:
            time.sleep(0.2)
        return list(processes_matching(pod_id).values())

    # ---- a pod is one VM ----

    def test_a_pod_of_two_containers_is_one_vm_its_members_on_its_loopback(self):
        pod = self.run_pod("two")
        server = self.container(pod, "server", ["sh", "-c", "mkdir -p /www && echo from-the-pod >"
                                                " /www/index.html && echo serving && exec httpd -f"
                                                " -p 8080 -h /www"])
        client = self.container(pod, "client", ["sleep", "3600"])
        self.assertEqual(len(self.vm_of(pod[0])), 1, processes_matching(pod[0]))
        self.assertTrue(self.exec_out(server, "uname", "-r").endswith("-vessel\n"))
        boot_id = "/proc/sys/kernel/random/boot_id"
        self.assertEqual(self.exec_out(server, "cat", boot_id), self.exec_out(client, "cat", boot_id))
        with open(boot_id) as host:
            self.assertNotEqual(self.exec_out(server, "cat", boot_id), host.read())
        deadline = time.time() + 30
        while True:
            fetched = self.cri.exec_sync(client, ["wget", "-qO-", "http://127.0.0.1:8080/"], 30)
            if fetched.exit_code == 0 or time.time() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(fetched.stdout.decode(), "from-the-pod\n", fetched.stderr)
        # Both containers in the pod's hostname, and the pod's IP is the guest's.
        self.assertEqual(self.exec_out(client, "hostname"), "two\n")
        pod_ip = self.cri.call("PodSandboxStatus", pod_sandbox_id=pod[0]).status.network.ip
        self.assertTrue(pod_ip.startswith(cri.SUBNET + "."), pod_ip)
        self.assertIn(pod_ip, self.exec_out(client, "ip", "-4", "addr"))
        # The kubelet's log of each container, in the CRI format.
        lines = self.log_lines("two", "server", "serving")
        self.assertTrue(any(re.fullmatch(r"\S+Z stdout F serving", line) for line in lines), lines)

    def test_the_pods_dns_hostname_and_host_port_as_with_runc(self):
        for number, handler in enumerate(("runc", "vessel")):
            with self.subTest(handler=handler):
                host_port = 18080 + number
                pod = self.run_pod(
                    "net-" + handler, handler,
                    dns_config=self.m.DNSConfig(servers=["10.10.10.10"], searches=["example.test"],
                                                options=["ndots:3"]),
                    port_mappings=[self.m.PortMapping(container_port=8080, host_port=host_port)])
                web = self.container(pod, "web", ["sh", "-c", "mkdir -p /www && echo " + handler +
                                                  " > /www/index.html && exec httpd -f -p 8080 "
                                                  "-h /www"])
                self.assertEqual(self.exec_out(web, "hostname"), "net-" + handler + "\n")
                resolv = self.exec_out(web, "cat", "/etc/resolv.conf")
                self.assertIn("nameserver 10.10.10.10", resolv)
                self.assertIn("search example.test", resolv)
                self.assertIn("options ndots:3", resolv)
                # hostPort: CNI's portmap rule on the host reaches the server in the pod.
                url = f"http://{cri.SUBNET}.1:{host_port}/"
                deadline = time.time() + 30
                while True:
                    got = subprocess.run(["curl", "-sf", "-m", "5", url], capture_output=True,
                                         text=True)
                    if got.returncode == 0 or time.time() > deadline:
                        break
                    time.sleep(0.5)
                self.assertEqual(got.stdout, handler + "\n", got.stderr)

    def test_resources_updated_in_the_guest_and_the_log_reopened(self):
        pod = self.run_pod("update")
        ticker = self.container(pod, "ticker", ["sh", "-c", "while true; do echo tick; "
                                                "sleep 0.2; done"])
        self.cri.call("UpdateContainerResources", container_id=ticker,
                      linux=self.m.LinuxContainerResources(memory_limit_in_bytes=96 << 20))
        limit = self.exec_out(ticker, "cat", "/sys/fs/cgroup/memory.max")
        self.assertEqual(limit, str(96 << 20) + "\n")
        # Log rotation as the kubelet does it: rename the file, ask for it to be reopened.
        log = os.path.join(self.logs, "update", "ticker.log")
        self.log_lines("update", "ticker", "tick")
        os.rename(log, log + ".1")
        self.cri.call("ReopenContainerLog", container_id=ticker)
        self.assertIn("tick", "\n".join(self.log_lines("update", "ticker", "tick")))

    def test_the_pods_vm_is_sized_for_the_sum_of_its_containers_limits(self):
        """The kubelet gives the pod's total in the sandbox config; containerd passes it on."""
        def guest(pod):
            box = self.container(pod, "box", ["sleep", "3600"])
            mem_total = re.search(r"MemTotal:\s+(\d+)", self.exec_out(box, "cat", "/proc/meminfo"))
            return int(mem_total.group(1)) << 10, int(self.exec_out(box, "nproc"))
        plain = guest(self.run_pod("plain"))
        total = self.m.LinuxContainerResources(memory_limit_in_bytes=512 << 20,
                                               cpu_quota=200000, cpu_period=100000)
        sized = guest(self.run_pod("sized", resources=total))
        self.assertGreater(sized[0] - plain[0], 480 << 20)
        self.assertLess(sized[0] - plain[0], 544 << 20)
        self.assertEqual((plain[1], sized[1]), (1, 2))

    def test_a_pod_sharing_its_process_namespace_as_with_runc(self):
        """shareProcessNamespace (the CRI's default when a pod says nothing about it)."""
        for handler in ("runc", "vessel"):
            with self.subTest(handler=handler):
                pod = self.run_pod("pidns-" + handler, handler, share_pid=True)
                first = self.container(pod, "first", ["sleep", "4001"])
                second = self.container(pod, "second", ["sleep", "4002"])
                self.assertIn("sleep 4001", self.exec_out(second, "ps", "-o", "args"))
                self.assertIn("sleep 4002", self.exec_out(first, "ps", "-o", "args"))
                # An init that leaves a process behind: the container still exits with its code.
                leaver = self.container(pod, "leaver", ["sh", "-c", "sleep 4003 & exit 4"])
                self.assertEqual(self.cri.wait_exited(leaver, 30).exit_code, 4)
                self.assertNotIn("sleep 4003", self.exec_out(first, "ps", "-o", "args"))

    def test_a_read_only_root_filesystem_as_with_runc(self):
        """Found by critest: a member with a read-only root could not get /etc/hostname."""
        for handler in ("runc", "vessel"):
            with self.subTest(handler=handler):
                pod = self.run_pod("ro-" + handler, handler)
                box = self.container(pod, "box", ["sleep", "3600"], readonly_rootfs=True)
                self.assertEqual(self.exec_out(box, "cat", "/etc/hostname"), "ro-" + handler + "\n")
                wrote = self.cri.exec_sync(box, ["touch", "/new-file"], 30)
                self.assertNotEqual(wrote.exit_code, 0)
                self.assertIn(b"Read-only file system", wrote.stderr)

    def test_an_added_capability_as_with_runc(self):
        """Found by critest: NET_ADMIN makes a bridge (the guest kernel had none)."""
        for handler in ("runc", "vessel"):
            with self.subTest(handler=handler):
                pod = self.run_pod("cap-" + handler, handler)
                admin = self.container(pod, "admin", ["sleep", "3600"],
                                       add_capabilities=["NET_ADMIN"])
                plain = self.container(pod, "plain", ["sleep", "3600"])
                bridge = ["ip", "link", "add", "vessel-br", "type", "bridge"]
                self.assertEqual(self.cri.exec_sync(admin, bridge, 30).exit_code, 0)
                self.assertIn("vessel-br", self.exec_out(admin, "ip", "link"))
                refused = self.cri.exec_sync(plain, ["ip", "link", "add", "vessel-br2", "type",
                                                     "bridge"], 30)
                self.assertNotEqual(refused.exit_code, 0)
                self.assertIn(b"Operation not permitted", refused.stderr)
                self.cri.exec_sync(admin, ["ip", "link", "del", "vessel-br"], 30)

    def test_exec_sync_returns_output_and_exit_code_and_keeps_its_timeout(self):
        for handler in ("runc", "vessel"):
            with self.subTest(handler=handler):
                pod = self.run_pod("exec-" + handler, handler)
                box = self.container(pod, "box", ["sleep", "3600"])
                reply = self.cri.exec_sync(box, ["sh", "-c", "echo out; echo err >&2; exit 3"], 60)
                self.assertEqual((reply.stdout, reply.stderr, reply.exit_code),
                                 (b"out\n", b"err\n", 3))
                started = time.time()
                with self.assertRaises(grpc.RpcError) as raised:
                    self.cri.exec_sync(box, ["sleep", "30"], 2)
                self.assertLess(time.time() - started, 20)
                self.assertIn("timeout", raised.exception.details())
                # The container lives on after its exec timed out.
                self.assertEqual(self.exec_out(box, "echo", "alive"), "alive\n")

    def test_exec_streams_stdout_stderr_and_the_exit_code_as_with_runc(self):
        for handler in ("runc", "vessel"):
            with self.subTest(handler=handler):
                box = self.container(self.run_pod("stream-" + handler, handler), "box",
                                     ["sleep", "3600"])
                streamed = self.cri.exec_streamed(
                    box, ["sh", "-c", "read x; echo got-$x; echo err >&2; exit 5"], b"typed\n")
                self.assertEqual(streamed, (b"got-typed\n", b"err\n", 5))

    def test_exec_with_a_terminal_as_with_runc(self):
        """`kubectl exec -it`: a terminal, typed into, and the exit code."""
        for handler in ("runc", "vessel"):
            with self.subTest(handler=handler):
                box = self.container(self.run_pod("tty-" + handler, handler), "box",
                                     ["sleep", "3600"])
                out, _, code = self.cri.exec_streamed(
                    box, ["sh", "-c", "tty; read x; echo got-$x; exit 6"], b"typed\n", tty=True)
                self.assertEqual(code, 6)
                # The terminal's echo of what was typed may come before or after tty's line.
                lines = re.sub(r"/dev/pts/\d+", "/dev/pts/N", out.decode()).split("\r\n")
                self.assertEqual(sorted(lines[:2]), ["/dev/pts/N", "typed"], out)
                self.assertEqual(lines[2:], ["got-typed", ""], out)
                # The container takes more execs after it.
                self.assertEqual(self.exec_out(box, "echo", "next"), "next\n")

    def test_attach_to_a_containers_stdin_and_stdout_as_with_runc(self):
        """`kubectl attach -i`: what is typed reaches the container's own process."""
        for handler in ("runc", "vessel"):
            with self.subTest(handler=handler):
                pod = self.run_pod("attach-" + handler, handler)
                # What the session types can reach the container before containerd has added
                # the session to the container's output: an answer written at once then goes to
                # the log only (seen with runc, in a full run). The answer comes a moment later.
                reader = self.container(pod, "reader",
                                        ["sh", "-c", "read x; sleep 1; echo got-$x; exit 3"],
                                        stdin=True)
                url = self.cri.call("Attach", container_id=reader, stdin=True, stdout=True,
                                    stderr=True).url
                out, _, _ = cri.exec_stream(url, b"typed\n")
                self.assertEqual(out, b"got-typed\n")
                self.assertEqual(self.cri.wait_exited(reader).exit_code, 3)

    def test_exit_codes_and_oom_reasons_as_with_runc(self):
        for handler in ("runc", "vessel"):
            with self.subTest(handler=handler):
                pod = self.run_pod("exit-" + handler, handler)
                done = self.container(pod, "done", ["sh", "-c", "exit 0"])
                failed = self.container(pod, "failed", ["sh", "-c", "exit 7"])
                for container_id, code, reason in ((done, 0, "Completed"), (failed, 7, "Error")):
                    status = self.cri.wait_exited(container_id)
                    self.assertEqual((status.exit_code, status.reason), (code, reason))

    def test_an_out_of_memory_kill_says_oom_killed(self):
        pod = self.run_pod("oom")
        limits = self.m.LinuxContainerResources(memory_limit_in_bytes=32 << 20)
        hog = self.container(pod, "hog", ["sh", "-c", "x=a; while true; do x=$x$x; done"],
                             resources=limits)
        status = self.cri.wait_exited(hog, 120)
        self.assertEqual((status.reason, status.exit_code), ("OOMKilled", 137))

    def test_stats_are_the_vms_and_sane(self):
        # The kubelet gives each pod a cgroup parent, which PodSandboxStats reads.
        parent = f"/vessel-cri-test-{os.getpid()}"
        self.addCleanup(subprocess.run, f"find /sys/fs/cgroup -maxdepth 3 -type d -path "
                        f"'*{parent}' -exec rmdir {{}} +", shell=True, capture_output=True)
        pod = self.run_pod("stats", linux_cgroup_parent=parent)
        spinner = self.container(pod, "spinner", ["sh", "-c", "while true; do :; done"])
        idle = self.container(pod, "idle", ["sleep", "3600"])
        before = self.cri.call("ContainerStats", container_id=spinner).stats
        time.sleep(3)
        after = self.cri.call("ContainerStats", container_id=spinner).stats
        # A busy loop in the guest is the VM's CPU on the host (the relay whose cgroup was read
        # before used none): most of a core over 3 s, a quarter of a second even on a busy host.
        used = after.cpu.usage_core_nano_seconds.value - before.cpu.usage_core_nano_seconds.value
        self.assertGreater(used, 0.25e9)
        # Memory: the VM's QEMU, measured beside it (each member reports its pod's VM).
        qemu = self.vm_of(pod[0])
        self.assertEqual(len(qemu), 1)
        with open(f"/proc/{qemu[0]}/status") as status:
            rss = int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1)) << 10
        pod_stats = self.cri.call("PodSandboxStats", pod_sandbox_id=pod[0]).stats.linux
        self.assertGreater(pod_stats.cpu.usage_core_nano_seconds.value,
                           after.cpu.usage_core_nano_seconds.value // 2)
        for memory in [self.cri.call("ContainerStats", container_id=container_id).stats.memory
                       for container_id in (spinner, idle)] + [pod_stats.memory]:
            self.assertGreater(memory.working_set_bytes.value, rss // 2)
            self.assertLess(memory.working_set_bytes.value, rss * 3)

    def forwarded(self, pod_id, port, path, seconds=30):
        """The body of GET `path` from `port` in the pod through PortForward (each URL serves one
        session), once a server answers there."""
        deadline = time.time() + seconds
        while True:
            try:
                url = self.cri.call("PortForward", pod_sandbox_id=pod_id, port=[port]).url
                reply = cri.port_forward(url, port, f"GET {path} HTTP/1.0\r\n\r\n".encode())
                if reply.startswith(b"HTTP/1.") or time.time() > deadline:
                    break
            except AssertionError:
                if time.time() > deadline:
                    raise
            time.sleep(0.5)
        head, _, body = reply.partition(b"\r\n\r\n")
        self.assertIn(b" 200 ", head.split(b"\r\n")[0], reply[:200])
        return body

    def test_port_forward_reaches_the_pods_servers_as_with_runc(self):
        """`kubectl port-forward`: servers on the pod's wildcard address, on its loopback only and
        below 1024; 3 MiB through the streams' flow control; a port nobody listens on refused."""
        for handler in ("runc", "vessel"):
            with self.subTest(handler=handler):
                pod = self.run_pod("forward-" + handler, handler)
                web = self.container(pod, "web", [
                    "sh", "-c", "mkdir -p /www && echo " + handler + " > /www/index.html && "
                    "head -c 3145728 /dev/urandom > /www/big && { httpd -f -p 127.0.0.1:8081 -h /www & "
                    "echo $! > /loopback.pid; } && httpd -p 80 -h /www && "
                    "exec httpd -f -p 8080 -h /www"])
                for port in (8080, 8081, 80):
                    self.assertEqual(self.forwarded(pod[0], port, "/index.html"),
                                     handler.encode() + b"\n", port)
                digest = self.exec_out(web, "sha256sum", "/www/big").split()[0]
                self.assertEqual(hashlib.sha256(self.forwarded(pod[0], 8080, "/big")).hexdigest(),
                                 digest)
                self.assertIn("connection refused", self.refusal(pod[0], 8099))
                # A server that stops: its port is refused as soon as the guest shows it gone.
                self.exec_out(web, "sh", "-c", "kill $(cat /loopback.pid)")
                self.assertIn("connection refused", self.refusal(pod[0], 8081))

    def refusal(self, pod_id, port, seconds=10):
        """The error PortForward to `port` reports once connections there are refused."""
        deadline = time.time() + seconds
        while True:
            url = self.cri.call("PortForward", pod_sandbox_id=pod_id, port=[port]).url
            try:
                cri.port_forward(url, port, b"GET / HTTP/1.0\r\n\r\n", seconds=seconds)
            except AssertionError as error:
                return str(error)
            if time.time() > deadline:
                return f"port {port} is still open after {seconds} s"
            time.sleep(0.2)

    def test_remove_pod_force_leaves_nothing(self):
        """`crictl rmp -f`: no QEMU, shim or relay, no mount, no state, no network namespace."""
        netns_before = set(os.listdir("/var/run/netns"))
        pod = self.run_pod("gone")
        members = [self.container(pod, name, ["sleep", "3600"]) for name in ("a", "b")]
        self.assertEqual(len(self.vm_of(pod[0])), 1)
        netns = set(os.listdir("/var/run/netns")) - netns_before
        self.assertEqual(len(netns), 1)
        self.cri.remove_pod(pod[0])
        self.pods.remove(pod[0])
        for container_id in [pod[0]] + members:
            self.assertEqual(self.wait_gone(container_id), [])
            with open("/proc/mounts") as mounts:
                self.assertNotIn(container_id, mounts.read())
            self.assertFalse(os.path.exists("/run/containerd/runc/k8s.io/" + container_id))
            self.assertFalse(os.path.exists(self.daemon.dir + "/state/io.containerd.runtime.v2."
                                            "task/k8s.io/" + container_id))
        self.assertFalse(set(os.listdir("/var/run/netns")) & netns)

if __name__ == "__main__":
    unittest.main(verbosity=2)
