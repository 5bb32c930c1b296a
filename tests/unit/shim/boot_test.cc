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

}  // namespace vessel::shim
