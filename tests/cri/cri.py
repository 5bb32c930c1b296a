"""vessel's own CRI client and a private containerd for its tests.

containerd's CRI plugin is what a kubelet talks to; these tests talk to it the same way: gRPC
calls of runtime.v1.RuntimeService (messages from cri.proto, compiled with protoc at start), the
streaming server's WebSocket protocol for exec and port-forward, the container log files the
kubelet reads. The daemon is Debian's containerd with its own socket, root and state under a
temporary directory, CNI from Debian's containernetworking-plugins on a bridge of its own, and
vessel registered as a runtime handler by `vessel setup --containerd`, runc beside it.
"""

import base64
import gzip
import hashlib
import importlib
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

import grpc
import websocket

HERE = os.path.dirname(os.path.abspath(__file__))
CNI_BIN = "/usr/lib/cni"
BRIDGE = "vessel-cri0"
SUBNET = "10.214.0"
PAUSE_IMAGE = "vessel.test/pause:1"
TEST_IMAGE = "vessel.test/busybox:1"


def sh(command, check=True, **kwargs):
    result = subprocess.run(command, shell=True, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{command}: exit {result.returncode}: {result.stderr.strip()}")
    return result


def why_not(build):
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the CRI tests start their own containerd, which needs root"
    for path, package in (("/usr/bin/containerd", "containerd"), (CNI_BIN + "/bridge",
                          "containernetworking-plugins"), ("/usr/bin/protoc", "protobuf-compiler")):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: run scripts/install-deps.sh ({package})"
    if not os.path.exists(os.path.join(build, "tests/image/bin/busybox")):
        return "the test image's root filesystem is missing: run the e2e_image test first"
    return None


def load_messages(directory):
    """runtime.v1's messages, compiled from cri.proto into `directory`."""
    sh(f"protoc -I{HERE} --python_out={directory} {HERE}/cri.proto")
    sys.path.insert(0, directory)
    return importlib.import_module("cri_pb2")


# ---- images: OCI archives made from a root filesystem directory, for `ctr images import` ----

def _blob(blobs, data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def oci_archive(rootfs, name, entrypoint, cmd, extra_files=(), user=""):
    """An OCI image layout (as a tar in memory) of one layer holding `rootfs` and extra files."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        tar.add(rootfs, arcname=".")
        for source, target in extra_files:
            tar.add(source, arcname=target)
    diff_id = "sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()
    blobs = {}
    layer_descriptor = _blob(blobs, gzip.compress(layer.getvalue(), 1),
                             "application/vnd.oci.image.layer.v1.tar+gzip")
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": entrypoint, "Cmd": cmd, "User": user,
                         "Env": ["PATH=/bin:/sbin:/usr/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    config_descriptor = _blob(blobs, json.dumps(config).encode(),
                              "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "config": config_descriptor, "layers": [layer_descriptor]}
    manifest_descriptor = _blob(blobs, json.dumps(manifest).encode(),
                                "application/vnd.oci.image.manifest.v1+json")
    manifest_descriptor["annotations"] = {"io.containerd.image.name": name,
                                          "org.opencontainers.image.ref.name": name}
    manifest_descriptor["platform"] = {"architecture": "amd64", "os": "linux"}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        def add(path, data):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add("index.json", json.dumps({"schemaVersion": 2, "manifests": [manifest_descriptor]}).encode())
        for digest, data in blobs.items():
            add("blobs/sha256/" + digest.split(":")[1], data)
    return out.getvalue()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Containerd:
    """A private containerd with its CRI plugin, runc and vessel as runtime handlers."""

    def __init__(self, build, vessel):
        self.dir = tempfile.mkdtemp(prefix="vessel-cri-")
        self.socket = self.dir + "/containerd.sock"
        self.vessel = vessel
        self.process = None
        self.stream_port = free_port()
        os.makedirs("/var/run/netns", exist_ok=True)
        self.netns_before = set(os.listdir("/var/run/netns"))
        os.makedirs(self.dir + "/net.d")
        with open(self.dir + "/net.d/10-vessel-test.conflist", "w") as f:
            json.dump({"cniVersion": "1.0.0", "name": "vessel-cri-test", "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET + ".0/24"}]],
                          "dataDir": self.dir + "/ipam"}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "loopback"}]}, f)
        self.config = self.dir + "/config.toml"
        with open(self.config, "w") as f:
            f.write(f"""version = 2
root = "{self.dir}/root"
state = "{self.dir}/state"
[grpc]
  address = "{self.socket}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{self.dir}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "{self.stream_port}"
  disable_apparmor = true
  # Our sandboxes cannot lower a process's oom_score_adj (runc fails on the pause container's
  # -998): the test setup, like Podman's (podman-sandbox.conf); real hosts need no such line.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{self.dir}/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
""")
        # vessel's handler as a user would add it.
        self.setup_output = sh(f"{vessel} setup --containerd --config {self.config}").stdout
        self.log = open(self.dir + "/containerd.log", "w")
        self.process = subprocess.Popen(["/usr/bin/containerd", "--config", self.config],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self._wait_then_import_images(build)
        except Exception:
            self.stop()
            raise

    def _wait_then_import_images(self, build):
        deadline = time.time() + 60
        while self.ctr("version", check=False).returncode != 0:
            if time.time() > deadline or self.process.poll() is not None:
                raise RuntimeError("containerd did not start: " + self.tail_of_log())
            time.sleep(0.2)
        rootfs = os.path.join(build, "tests/image")
        for name, entrypoint, cmd, extra in (
                (PAUSE_IMAGE, ["/pause"], ["-P"], [("/usr/bin/catatonit", "pause")]),
                (TEST_IMAGE, [], ["/bin/sh"], [])):
            archive = self.dir + "/image.tar"
            with open(archive, "wb") as f:
                f.write(oci_archive(rootfs, name, entrypoint, cmd, extra))
            self.ctr(f"-n k8s.io images import {archive}")
            os.unlink(archive)

    def tail_of_log(self):
        with open(self.dir + "/containerd.log") as log:
            return "".join(log.readlines()[-3:])

    def ctr(self, args, check=True):
        return sh(f"/usr/bin/ctr -a {self.socket} {args}", check=check)

    def stop(self):
        # containerd's shims (and vessel's under them) outlive containerd by design: what a
        # failed test left running is ended with the pods still known.
        for pod in self.ctr("-n k8s.io tasks ls -q", check=False).stdout.split():
            self.ctr(f"-n k8s.io tasks kill -s SIGKILL {pod}", check=False)
        sh(f"pkill -f 'containerd-shim-runc-v2 .* -address {self.socket}'", check=False)
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.log.close()
        for mount in sorted((line.split()[1] for line in open("/proc/mounts")
                             if line.split()[1].startswith(self.dir + "/")), reverse=True):
            sh(f"umount -l {mount}", check=False)
        # The network namespaces of pods a failed test could not remove.
        for name in set(os.listdir("/var/run/netns")) - self.netns_before:
            sh(f"umount /var/run/netns/{name}; rm -f /var/run/netns/{name}", check=False)
        sh(f"ip link del {BRIDGE} 2>/dev/null", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class Cri:
    """RuntimeService calls by name: cri.call("RunPodSandbox", config=...) returns the reply."""

    def __init__(self, messages, socket_path):
        self.m = messages
        self.channel = grpc.insecure_channel("unix://" + socket_path)

    def call(self, method, deadline=300, **fields):
        request = getattr(self.m, method + "Request")(**fields)
        reply = getattr(self.m, method + "Response")
        stub = self.channel.unary_unary(f"/runtime.v1.RuntimeService/{method}",
                                        request_serializer=lambda r: r.SerializeToString(),
                                        response_deserializer=reply.FromString)
        return stub(request, timeout=deadline)

    # ---- the kubelet's sequences, shortened ----

    def namespaces(self, pid):
        """The kubelet's namespace options: the pod's network and ipc, `pid` (1, a pid namespace
        of each container's own, unless the pod shares its process namespace: 0)."""
        return self.m.NamespaceOption(network=0, pid=pid, ipc=0)

    def pod_config(self, name, share_pid=False, resources=None, linux_cgroup_parent="", **extra):
        linux = self.m.LinuxPodSandboxConfig(
            cgroup_parent=linux_cgroup_parent,
            security_context=self.m.LinuxSandboxSecurityContext(
                namespace_options=self.namespaces(0 if share_pid else 1)),
            resources=resources)
        return self.m.PodSandboxConfig(
            metadata=self.m.PodSandboxMetadata(name=name, uid=name + "-uid", namespace="test"),
            hostname=name, log_directory=extra.pop("log_directory", ""), linux=linux, **extra)

    def run_pod(self, config, handler="vessel"):
        return self.call("RunPodSandbox", config=config, runtime_handler=handler).pod_sandbox_id

    def create(self, pod_id, pod_config, name, command, resources=None, readonly_rootfs=False,
               add_capabilities=(), **extra):
        pid = pod_config.linux.security_context.namespace_options.pid
        linux = self.m.LinuxContainerConfig(
            resources=resources,
            security_context=self.m.LinuxContainerSecurityContext(
                namespace_options=self.namespaces(pid), readonly_rootfs=readonly_rootfs,
                capabilities=self.m.Capability(add_capabilities=add_capabilities)))
        config = self.m.ContainerConfig(metadata=self.m.ContainerMetadata(name=name),
                                        image=self.m.ImageSpec(image=TEST_IMAGE), linux=linux,
                                        command=command, log_path=name + ".log", **extra)
        return self.call("CreateContainer", pod_sandbox_id=pod_id, config=config,
                         sandbox_config=pod_config).container_id

    def start(self, container_id):
        self.call("StartContainer", container_id=container_id)

    def status(self, container_id):
        return self.call("ContainerStatus", container_id=container_id).status

    def wait_exited(self, container_id, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            status = self.status(container_id)
            if status.state == 2:
                return status
            time.sleep(0.2)
        raise AssertionError(f"{container_id} did not exit in {seconds} s")

    def exec_sync(self, container_id, cmd, timeout=0):
        return self.call("ExecSync", deadline=timeout + 60 if timeout else 300,
                         container_id=container_id, cmd=cmd, timeout=timeout)

    def exec_streamed(self, container_id, cmd, stdin, tty=False):
        """`kubectl exec [-t] -i`: (output, stderr, the exit code the status channel names, or
        0)."""
        url = self.call("Exec", container_id=container_id, cmd=cmd, tty=tty, stdin=True,
                        stdout=True, stderr=not tty).url
        out, err, status = exec_stream(url, stdin)
        causes = status.get("details", {}).get("causes", [])
        codes = [int(c["message"]) for c in causes if c.get("reason") == "ExitCode"]
        return out, err, codes[0] if codes else 0

    def remove_pod(self, pod_id):
        """`crictl rmp -f`: stop the pod (its containers with it), then remove it."""
        self.call("StopPodSandbox", pod_sandbox_id=pod_id)
        self.call("RemovePodSandbox", pod_sandbox_id=pod_id)


# ---- the streaming server (WebSocket, the channel.k8s.io framing) ----

def exec_stream(url, stdin=b"", seconds=60):
    """Runs an Exec URL's session: sends `stdin` (then closes it), returns (stdout+tty output,
    stderr, the status JSON of the error channel)."""
    ws = websocket.create_connection(url.replace("http://", "ws://"),
                                     subprotocols=["v4.channel.k8s.io"], timeout=seconds)
    out, err, status = b"", b"", b""
    try:
        while True:
            frame = ws.recv()
            if stdin:  # once the server has opened its channels
                ws.send_binary(b"\x00" + stdin)
                stdin = b""
            if isinstance(frame, str):
                frame = frame.encode()
            if not frame:
                continue
            channel, data = frame[0], frame[1:]
            if channel == 1:
                out += data
            elif channel == 2:
                err += data
            elif channel == 3:
                status += data
    except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
        pass
    finally:
        ws.close()
    return out, err, json.loads(status) if status else {}


def port_forward(url, port, request, seconds=30):
    """Sends `request` to `port` in the pod through a PortForward URL; returns what came back."""
    ws = websocket.create_connection(url.replace("http://", "ws://") + f"?port={port}",
                                     subprotocols=["v4.channel.k8s.io"], timeout=seconds)
    received, errors, opened = b"", b"", set()
    try:
        while len(opened) < 2:  # each channel starts with the port number, little-endian
            frame = ws.recv()
            if isinstance(frame, bytes) and len(frame) >= 3 and frame[1:3] == struct.pack("<H", port):
                opened.add(frame[0])
        ws.send_binary(b"\x00" + request)
        while True:
            frame = ws.recv()
            if not frame:
                break
            if frame[0] == 0:
                received += frame[1:]
            else:
                errors += frame[1:]
    except (websocket.WebSocketConnectionClosedException, websocket.WebSocketTimeoutException,
            BrokenPipeError, ConnectionResetError):
        pass  # the server ends the session when the connection in the pod ends
    finally:
        ws.close()
    if errors:
        raise AssertionError("port-forward: " + errors.decode(errors="replace"))
    return received
