#include "shim/boot.h"

#include <gtest/gtest.h>

namespace vessel::shim {

TEST(VmSizeTest, DefaultMemoryPlusTheLimitAndVcpusForQuotaAndCpuset) {
  ShimOptions options;
  options.memory_mib = 256;
  options.vcpus = 1;
  oci::Resources none;
  EXPECT_EQ(vm_size(options, none).memory_mib, 256u);
  EXPECT_EQ(vm_size(options, none).vcpus, 1u);

  oci::Resources limited;
  limited.memory_limit = 512ll << 20;
  limited.cpu_quota = 150000;  // --cpus 1.5
  limited.cpu_period = 100000;
  EXPECT_EQ(vm_size(options, limited).memory_mib, 768u);
  EXPECT_EQ(vm_size(options, limited).vcpus, 2u);

  oci::Resources cpuset;
  cpuset.cpuset_cpus = "0,2-3";
  EXPECT_EQ(vm_size(options, cpuset).vcpus, 4u);
  cpuset.cpuset_cpus = "0-100000";
  EXPECT_EQ(vm_size(options, cpuset).vcpus, kMaxVcpus);
  oci::Resources odd;
  odd.memory_limit = 1;  // rounded up to a whole MiB
  odd.cpu_quota = -1;    // unlimited
  odd.cpu_period = 100000;
  EXPECT_EQ(vm_size(options, odd).memory_mib, 257u);
  EXPECT_EQ(vm_size(options, odd).vcpus, 1u);
}

// containerd's CRI puts the pod's total on the sandbox; anything but positive numbers is ignored.
TEST(VmSizeTest, ThePodsTotalFromTheCriAnnotations) {
  auto limits = cri_pod_limits({{"io.kubernetes.cri.sandbox-memory", "536870912"},
                                {"io.kubernetes.cri.sandbox-cpu-quota", "200000"},
                                {"io.kubernetes.cri.sandbox-cpu-period", "100000"}});
  EXPECT_EQ(limits.memory_limit, 536870912);
  EXPECT_EQ(limits.cpu_quota, 200000);
  EXPECT_EQ(limits.cpu_period, 100000u);
  for (const char* bad : {"0", "-1", "12abc", "", "99999999999999999999"}) {
    auto ignored = cri_pod_limits({{"io.kubernetes.cri.sandbox-memory", bad},
                                   {"io.kubernetes.cri.sandbox-cpu-quota", bad},
                                   {"io.kubernetes.cri.sandbox-cpu-period", "100000"}});
    EXPECT_FALSE(ignored.memory_limit) << bad;
    EXPECT_FALSE(ignored.cpu_quota) << bad;
  }
  // A quota without its period means nothing.
  auto no_period = cri_pod_limits({{"io.kubernetes.cri.sandbox-cpu-quota", "200000"}});
  EXPECT_FALSE(no_period.cpu_quota);
  EXPECT_FALSE(cri_pod_limits({}).memory_limit);
}

}  // namespace vessel::shim
