// Volumes, bind mounts and `podman cp` under vessel: what the host and the container each see,
// owners and modes as with runc, and what a VM cannot share refused in one sentence.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "support/harness.h"
#include "support/podman_fixture.h"

namespace vessel::test {

TEST_F(PodmanTest, VolumesAreSharedWithTheGuest) {
  TempDir volume;
  sh("echo from-the-host > " + volume.path() + "/in");
  auto result = podman(podman_run({"--rm", "-v", volume.path() + ":/data", kImage, "sh", "-c",
                                   "cat /data/in; echo from-the-guest > /data/out"}));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "from-the-host\n");
  EXPECT_EQ(sh("cat " + volume.path() + "/out").out, "from-the-guest\n");
  auto readonly = podman(podman_run(
      {"--rm", "-v", volume.path() + ":/data:ro", kImage, "sh", "-c", "echo x > /data/out"}));
  EXPECT_NE(readonly.exit_code, 0) << "a read-only volume must stay read-only";
}

// -v FILE:FILE shares the file itself: writes go both ways, and QEMU serves the bound files
// alone, never the directory they sit in.
TEST_F(PodmanTest, ABindMountedFileIsSharedBothWaysWithoutItsSiblings) {
  TempDir dir;
  sh("echo initial > " + dir.path() + "/shared; echo secret > " + dir.path() + "/sibling");
  auto started = podman(
      podman_run({"-d", "-v", dir.path() + "/shared:/etc/shared.conf", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  auto wrote =
      podman({"exec", id, "sh", "-c", "cat /etc/shared.conf; echo from-guest >> /etc/shared.conf"});
  EXPECT_EQ(wrote.out, "initial\n") << wrote.err;
  EXPECT_EQ(sh("cat " + dir.path() + "/shared").out, "initial\nfrom-guest\n");
  sh("echo from-host >> " + dir.path() + "/shared");
  EXPECT_EQ(podman({"exec", id, "cat", "/etc/shared.conf"}).out,
            "initial\nfrom-guest\nfrom-host\n");
  auto qemu = processes_matching("-name vessel-" + id);
  ASSERT_EQ(qemu.size(), 1u);
  // Podman's own files (.containerenv, hostname, hosts, resolv.conf) and ours: numbered, alone.
  std::string served =
      sh("ls /proc/" + qemu[0].substr(0, qemu[0].find(':')) + "/root/vessel/files").out;
  EXPECT_EQ(served.find("sibling"), std::string::npos) << served;
  EXPECT_EQ(served, "0\n1\n2\n3\n4\n") << served;
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

// A socket cannot cross into a VM: a clear refusal, never a silent drop.
TEST_F(PodmanTest, ABindMountedSocketIsRefusedInOneSentence) {
  TempDir dir;
  std::string socket = dir.path() + "/app.sock";
  sh("python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.bind(\"" + socket + "\")'");
  auto result = podman(podman_run({"--rm", "-v", socket + ":/app.sock", kImage, "true"}));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find("bind mount source " + socket +
                            " is a socket, which a container in a VM cannot reach: share a "
                            "directory or a file instead, or use runc for this container"),
            std::string::npos)
      << result.err;
}

// --read-only (with Podman's tmpfs on /tmp, /var/tmp and /run, mount points the image lacks),
// --tmpfs and a named volume: the same as under runc.
TEST_F(PodmanTest, ReadOnlyRootTmpfsAndNamedVolumesBehaveAsWithRunc) {
  podman({"volume", "rm", "-f", "vessel-test-volume"});
  ASSERT_EQ(podman({"volume", "create", "vessel-test-volume"}).exit_code, 0);
  const std::string script =
      "touch /x 2>/dev/null || echo root-ro; touch /tmp/a /var/tmp/b /run/c && echo tmpfs-rw; "
      "grep -c ' /scratch tmpfs' /proc/mounts; echo kept >> /data/f; cat /data/f";
  for (const std::string& runtime : {std::string("runc"), vessel()}) {
    auto result =
        podman({"run", "--rm", "--runtime=" + runtime, "--read-only", "--tmpfs", "/scratch", "-v",
                "vessel-test-volume:/data", kImage, "sh", "-c", script});
    EXPECT_EQ(result.exit_code, 0) << runtime << ": " << result.err;
    EXPECT_EQ(result.out,
              std::string("root-ro\ntmpfs-rw\n1\nkept\n") + (runtime == "runc" ? "" : "kept\n"))
        << runtime;
  }
  podman({"volume", "rm", "-f", "vessel-test-volume"});
}

// What a user does with a volume, under runc and under vessel, each in a fresh host directory:
// `chown`, `chmod`, a `--user 1000` writer, `mkdir -p`, `podman cp` into it. The host sees the
// same owners and modes, and so does the container. Then what runc lets a root container leave in
// a host directory and vessel refuses (EPERM): a setuid or setgid file, a device node; a bound
// file takes no setuid bit either, while the root filesystem does, as under runc.
TEST_F(PodmanTest, VolumesGetRuncsOwnersAndModesButNeverASetuidFileOrADevice) {
  TempDir source;
  std::ofstream(source.path() + "/copied") << "from the host\n";
  std::map<std::string, std::string> host, guest;
  for (const std::string& runtime : {std::string("runc"), vessel()}) {
    TempDir volume;
    TempDir bound;
    std::ofstream(bound.path() + "/file") << "bound\n";
    auto started =
        podman({"run", "-d", "--runtime=" + runtime, "--cap-add=MKNOD", "-v", volume.path() + ":/v",
                "-v", bound.path() + "/file:/bound", kImage, "sleep", "1000"});
    ASSERT_EQ(started.exit_code, 0) << started.err;
    std::string id = full_id(started.out);
    auto in = [&](std::vector<std::string> args, const std::string& user = "0:0") {
      args.insert(args.begin(), {"exec", "--user", user, id});
      auto result = podman(args);
      EXPECT_EQ(result.exit_code, 0) << runtime << ": " << result.err;
      return result.out;
    };
    in({"sh", "-c",
        "echo x > /v/g && chown 1234:1234 /v/g && chmod 640 /v/g && mkdir -p /v/a/b/c && "
        "chmod 750 /v/a/b && touch /v/a/b/c/f && chown -R 42:43 /v/a && mkdir /v/open && "
        "chmod 1777 /v/open && ln -s g /v/link"});
    in({"sh", "-c", "echo u > /v/open/u && mkdir -p /v/open/x/y"}, "1000:1000");
    EXPECT_EQ(podman({"cp", source.path() + "/copied", id + ":/v/copied"}).exit_code, 0);
    // A writable share is not cached in the guest (cache=mmap): each side reads what the other
    // wrote at once, a rewrite too.
    std::ofstream(volume.path() + "/from-host") << "host\n";
    EXPECT_EQ(in({"cat", "/v/from-host", "/v/copied"}), "host\nfrom the host\n");
    std::ofstream(volume.path() + "/from-host") << "rewritten on the host\n";
    EXPECT_EQ(in({"cat", "/v/from-host"}), "rewritten on the host\n");
    in({"sh", "-c", "echo guest > /v/from-host"});
    EXPECT_EQ(sh("cat " + volume.path() + "/from-host").out, "guest\n");
    guest[runtime] = in({"sh", "-c", "cd /v && find . | sort | xargs stat -c '%n %u %g %a %F'"});
    host[runtime] = sh("cd " + volume.path() + " && find . -printf '%p %U %G %m %y\n' | sort").out;

    auto privileged = podman(
        {"exec", id, "sh", "-c",
         "cp /bin/busybox /v/suid; chmod u+s /v/suid; echo $?; chmod g+s /v/g; echo $?; "
         "mknod /v/null c 1 3; echo $?; chmod u+s /bound; echo $?; cp /bin/busybox /bin/suid && "
         "chmod 4755 /bin/suid && stat -c %A /bin/suid"});
    if (runtime == "runc") {
      EXPECT_EQ(privileged.out, "0\n0\n0\n0\n-rwsr-xr-x\n") << privileged.err;
    } else {
      EXPECT_EQ(privileged.out, "1\n1\n1\n1\n-rwsr-xr-x\n") << privileged.err;
      EXPECT_NE(privileged.err.find("/v/suid: Operation not permitted"), std::string::npos)
          << privileged.err;
      // Nothing of the kind on the host.
      EXPECT_EQ(sh("find " + volume.path() + " " + bound.path() +
                   " \\( -perm /6000 -o -type b -o -type c \\) -print")
                    .out,
                "");
    }
    EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
    // A container with a user namespace cannot give a file an id outside its mapping.
    auto outside = podman({"run", "--rm", "--runtime=" + runtime, "--uidmap", "0:100000:65536",
                           "--gidmap", "0:100000:65536", "-v", volume.path() + ":/v", kImage, "sh",
                           "-c", "touch /v/open/mapped && chown 70000 /v/open/mapped; echo $?"});
    EXPECT_EQ(outside.out, "1\n") << runtime << ": " << outside.err;
    EXPECT_EQ(sh("stat -c '%u' " + volume.path() + "/open/mapped").out, "100000\n") << runtime;
  }
  EXPECT_EQ(host["runc"], host[vessel()]);
  EXPECT_EQ(guest["runc"], guest[vessel()]);
  EXPECT_NE(host["runc"].find("./g 1234 1234 640 f"), std::string::npos) << host["runc"];
  EXPECT_NE(host["runc"].find("./open/u 1000 1000 644 f"), std::string::npos) << host["runc"];
}

// Podman enters the mount namespace of the container's pid: the shim's, which shows the
// container's files (the same ones the guest sees over 9p) and nothing of the host.
TEST_F(PodmanTest, PodmanCpMovesFilesInTheContainerAndNeverOnTheHost) {
  TempDir volume;
  auto started = podman(podman_run({"-d", "-v", volume.path() + ":/vol", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  TempDir files;
  std::string probe = "vessel-cp-probe-" + id.substr(0, 12);
  sh("echo from-the-host > " + files.path() + "/in");
  ASSERT_FALSE(std::filesystem::exists("/tmp/" + probe));

  auto in = podman({"cp", files.path() + "/in", id + ":/tmp/" + probe});
  EXPECT_EQ(in.exit_code, 0) << in.err;
  EXPECT_FALSE(std::filesystem::exists("/tmp/" + probe)) << "podman cp wrote on the host";
  EXPECT_EQ(podman({"exec", id, "cat", "/tmp/" + probe}).out, "from-the-host\n")
      << "the guest does not see what podman cp wrote";

  auto to_volume = podman({"cp", files.path() + "/in", id + ":/vol/copied"});
  EXPECT_EQ(to_volume.exit_code, 0) << to_volume.err;
  EXPECT_EQ(sh("cat " + volume.path() + "/copied").out, "from-the-host\n");

  ASSERT_EQ(podman({"exec", id, "sh", "-c", "echo from-the-guest > /tmp/made-inside"}).exit_code,
            0);
  auto out = podman({"cp", id + ":/tmp/made-inside", files.path() + "/out"});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(sh("cat " + files.path() + "/out").out, "from-the-guest\n");
  auto passwd = podman({"cp", id + ":/etc/passwd", files.path() + "/passwd"});
  EXPECT_EQ(passwd.exit_code, 0) << passwd.err;
  EXPECT_EQ(sh("cat " + files.path() + "/passwd").out,
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
      << "podman cp read the host's /etc/passwd";

  // podman top reads /proc where the shim's pid leads: no host process may show up there.
  auto top = podman({"top", id});
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(std::count(top.out.begin(), top.out.end(), '\n'), 1) << top.out;
  // With ps(1) options Podman runs ps in the container: the guest's processes.
  auto guest_top = podman({"top", id, "-ef"});
  EXPECT_EQ(guest_top.exit_code, 0) << guest_top.err;
  EXPECT_NE(guest_top.out.find("    1 root     sleep 1000"), std::string::npos) << guest_top.out;

  // A stopped container: Podman copies from its storage, and the file is still there.
  ASSERT_EQ(podman({"stop", "-t", "0", id}).exit_code, 0);
  auto stopped = podman({"cp", id + ":/tmp/" + probe, files.path() + "/after"});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(sh("cat " + files.path() + "/after").out, "from-the-host\n");
  EXPECT_EQ(podman({"rm", "-f", id}).exit_code, 0);
  expect_nothing_left(id);
}

// A tmpfs lives only in the guest: `podman cp` into it says so (read-only file system) rather
// than landing unseen underneath it on the host.
TEST_F(PodmanTest, PodmanCpIntoAGuestOnlyTmpfsFailsVisibly) {
  auto started = podman(podman_run({"-d", "--tmpfs", "/scratch", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  TempDir dir;
  std::ofstream(dir.path() + "/note") << "hello\n";
  auto copied = podman({"cp", dir.path() + "/note", id + ":/scratch/note"});
  EXPECT_NE(copied.exit_code, 0);
  EXPECT_NE(copied.err.find("read-only file system"), std::string::npos) << copied.err;
  EXPECT_EQ(podman({"exec", id, "ls", "/scratch"}).out, "");
  EXPECT_EQ(podman({"cp", dir.path() + "/note", id + ":/tmp/note"}).exit_code, 0)
      << "elsewhere podman cp still works";
  EXPECT_EQ(podman({"exec", id, "cat", "/tmp/note"}).out, "hello\n");
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

}  // namespace vessel::test
