// Volumes and `podman cp` for an unprivileged user: cp and top see only the container, and what
// lands in a volume is owned as Podman's mapping says, as with rootless runc, never setuid.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <string>

#include "support/harness.h"
#include "support/rootless_fixture.h"

namespace vessel::test {

// Podman enters the mount namespace of the shim's pid: it holds the container's files only.
TEST_F(RootlessTest, PodmanCpAndTopSeeOnlyTheContainer) {
  auto started = podman(std::string("run -d --runtime=vessel ") + kImage + " sleep 1000");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  std::string probe = "/tmp/vessel-rootless-cp-" + id.substr(0, 12);
  auto in = as_user(kUser, "echo from-the-host > " + probe + ".src && podman cp " + probe +
                               ".src " + id + ":" + probe + " && rm " + probe + ".src");
  EXPECT_EQ(in.exit_code, 0) << in.err;
  EXPECT_EQ(sh("ls " + probe + " 2>/dev/null").out, "") << "podman cp wrote on the host";
  EXPECT_EQ(podman("exec " + id + " cat " + probe).out, "from-the-host\n");
  auto out = podman("cp " + id + ":/www/index.html -");
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find("served-from-the-vm"), std::string::npos);
  auto top = podman("top " + id);
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(std::count(top.out.begin(), top.out.end(), '\n'), 1) << top.out;
  EXPECT_EQ(podman("rm -f -t 0 " + id).exit_code, 0);
  expect_nothing_left();
}

// What a rootless container writes in a volume belongs to whom Podman's mapping says, exactly as
// with runc: root, --user, --userns=keep-id and --uidmap. A setuid bit, which runc lets land in
// the user's directory (owned by the user or a subordinate id), is refused as under rootful
// Podman (hypervisor/qemu/setuid_guard.h); a device node cannot be made with either.
TEST_F(RootlessTest, VolumeFilesGetTheOwnersPodmansMappingGivesAsWithRunc) {
  auto owners = [&](const std::string& runtime) {
    std::string run = "podman run --rm --runtime=" + runtime + " -v $d:/data ";
    auto result = as_user(
        kUser,
        "set -e; d=$(mktemp -d); chmod 777 $d; " + run + kImage +
            " sh -c 'id -u; touch /data/root; cp /bin/busybox /data/suid; chmod 4755 /data/suid; "
            "mknod /data/null c 1 3 2>/dev/null || echo no-device; "
            "chown 4000000000 /data/root 2>/dev/null || echo no-id-outside-the-mapping'; " +
            run + "--user 1000:1000 " + kImage + " sh -c 'id -u; touch /data/user1000'; " + run +
            "--userns=keep-id " + kImage + " sh -c 'id -u; touch /data/keepid'; " + run +
            "--uidmap 0:100:2000 --gidmap 0:200:2000 " + kImage +
            " sh -c 'id -u; touch /data/uidmap'; cd $d; stat -c '%n %a %u:%g' *; cd /; rm -rf $d");
    result.err = without_podman_noise(result.err);
    return result;
  };
  auto runc = owners("runc");
  ASSERT_EQ(runc.exit_code, 0) << runc.err;
  auto vessel = owners("vessel");
  EXPECT_EQ(vessel.exit_code, 0) << vessel.err;
  std::string without_setuid = runc.out;
  size_t suid = without_setuid.find("suid 4755 ");
  ASSERT_NE(suid, std::string::npos) << runc.out;
  without_setuid.replace(suid, 10, "suid 755 ");
  EXPECT_EQ(vessel.out, without_setuid);
  // The expectation itself, spelled out: the user owns what root and keep-id write.
  std::string user = uid_of(kUser);
  EXPECT_NE(runc.out.find("keepid 644 " + user + ":"), std::string::npos) << runc.out;
  EXPECT_NE(runc.out.find("root 644 " + user + ":"), std::string::npos) << runc.out;
  EXPECT_NE(runc.out.find("no-device"), std::string::npos) << runc.out;
  EXPECT_NE(runc.out.find("no-id-outside-the-mapping"), std::string::npos) << runc.out;
  expect_nothing_left();
}

// The everyday steps with a volume, rootless (PodmanTest.VolumesGetRuncsOwnersAndModesButNeverA
// SetuidFileOrADevice is the rootful one): chown, chmod, `mkdir -p`, a `--user` writer and
// `podman cp` leave on the host what runc leaves, through Podman's mapping; a setuid bit on a
// bound file, which runc lets land, is refused.
TEST_F(RootlessTest, VolumeStepsLeaveWhatRuncLeaves) {
  auto steps = [&](const std::string& runtime) {
    auto result = as_user(
        kUser,
        "set -e; d=$(mktemp -d); chmod 755 $d; echo bound > $d.file; echo copied > $d.src; "
        "id=$(podman run -d --runtime=" +
            runtime + " -v $d:/v -v $d.file:/bound " + kImage +
            " sleep 1000); "
            "podman exec $id sh -c 'echo x > /v/g && chown 1234:1234 /v/g && chmod 640 /v/g && "
            "mkdir -p /v/a/b/c && chmod 750 /v/a/b && chown -R 42:43 /v/a && mkdir /v/open && "
            "chmod 1777 /v/open'; "
            "podman exec --user 1000:1000 $id sh -c 'echo u > /v/open/u && mkdir -p /v/open/x/y'; "
            "podman cp $d.src $id:/v/copied; "
            "podman exec $id sh -c 'chmod u+s /bound 2>/dev/null && echo bound-setuid || echo "
            "bound-refused'; "
            "podman rm -f -t 0 $id >/dev/null; cd $d; find . -printf '%p %U %G %m %y\\n' | sort; "
            "cd /; podman unshare rm -rf $d $d.file $d.src");
    result.err = without_podman_noise(result.err);
    return result;
  };
  auto runc = steps("runc");
  ASSERT_EQ(runc.exit_code, 0) << runc.err;
  auto vessel = steps("vessel");
  EXPECT_EQ(vessel.exit_code, 0) << vessel.err;
  ASSERT_TRUE(runc.out.starts_with("bound-setuid\n")) << runc.out;
  EXPECT_EQ(vessel.out, "bound-refused\n" + runc.out.substr(13));
  EXPECT_NE(runc.out.find("./open/u "), std::string::npos) << runc.out;
  expect_nothing_left();
}

}  // namespace vessel::test
