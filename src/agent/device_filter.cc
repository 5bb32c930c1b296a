#include "agent/device_filter.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "common/unique_fd.h"

namespace vessel::agent {

namespace {

bpf_insn instruction(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn insn{};
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

bpf_insn load_word(uint8_t dst, int16_t off) {
  return instruction(BPF_LDX | BPF_MEM | BPF_W, dst, BPF_REG_1, off, 0);
}
bpf_insn alu32(uint8_t op, uint8_t dst, int32_t imm) {
  return instruction(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
}
bpf_insn move32(uint8_t dst, uint8_t src) {
  return instruction(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0);
}
bpf_insn jump_if_not(uint8_t dst, int32_t imm, int16_t off) {
  return instruction(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm);
}
bpf_insn return_with(int32_t value) {
  return instruction(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, value);
}
bpf_insn exit_insn() { return instruction(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

}  // namespace

std::vector<oci::DeviceRule> effective_device_rules(const oci::Spec& spec) {
  std::vector<oci::DeviceRule> rules = spec.resources.devices;
  for (const auto& device : spec.devices)
    if (device.type != 'p')
      rules.push_back({true, device.type == 'b' ? 'b' : 'c', device.major, device.minor, 7});
  constexpr unsigned kMknod = 1, kAll = 7;
  const oci::DeviceRule kDefaults[] = {
      {true, 'c', -1, -1, kMknod}, {true, 'b', -1, -1, kMknod}, {true, 'c', 1, 3, kAll},
      {true, 'c', 1, 8, kAll},     {true, 'c', 1, 7, kAll},     {true, 'c', 5, 0, kAll},
      {true, 'c', 1, 5, kAll},     {true, 'c', 1, 9, kAll},     {true, 'c', 136, -1, kAll},
      {true, 'c', 5, 2, kAll},     {true, 'c', 10, 200, kAll}};
  rules.insert(rules.end(), std::begin(kDefaults), std::end(kDefaults));
  return rules;
}

std::vector<bpf_insn> device_program(const std::vector<oci::DeviceRule>& rules) {
  // R2: the device's type, R3: the access asked for, R4: major, R5: minor
  // (struct bpf_cgroup_dev_ctx: access_type = access << 16 | type, major, minor).
  std::vector<bpf_insn> program = {
      load_word(BPF_REG_2, offsetof(bpf_cgroup_dev_ctx, access_type)),
      move32(BPF_REG_3, BPF_REG_2),
      alu32(BPF_RSH, BPF_REG_3, 16),
      alu32(BPF_AND, BPF_REG_2, 0xffff),
      load_word(BPF_REG_4, offsetof(bpf_cgroup_dev_ctx, major)),
      load_word(BPF_REG_5, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  for (auto rule = rules.rbegin(); rule != rules.rend(); ++rule) {
    // Each test jumps past the rest of this rule's block when the device does not match.
    std::vector<bpf_insn> tests;
    std::vector<size_t> skips;  // indexes of the jumps to patch
    if (rule->type != 'a') {
      skips.push_back(tests.size());
      tests.push_back(
          jump_if_not(BPF_REG_2, rule->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0));
    }
    if ((rule->access & 7) != 7) {  // the access asked for must be within the rule's
      tests.push_back(move32(BPF_REG_1, BPF_REG_3));
      tests.push_back(alu32(BPF_AND, BPF_REG_1, static_cast<int32_t>(~rule->access & 7)));
      skips.push_back(tests.size());
      tests.push_back(jump_if_not(BPF_REG_1, 0, 0));
    }
    for (auto [value, reg] : {std::pair{rule->major, BPF_REG_4}, std::pair{rule->minor, BPF_REG_5}})
      if (value >= 0) {
        skips.push_back(tests.size());
        tests.push_back(jump_if_not(reg, static_cast<int32_t>(value), 0));
      }
    tests.push_back(return_with(rule->allow ? 1 : 0));
    tests.push_back(exit_insn());
    for (size_t at : skips) tests[at].off = static_cast<int16_t>(tests.size() - at - 1);
    program.insert(program.end(), tests.begin(), tests.end());
    // A rule every device matches decides alone: what follows could never run, and the verifier
    // refuses a program with code it cannot reach.
    if (skips.empty()) return program;
  }
  program.push_back(return_with(0));
  program.push_back(exit_insn());
  return program;
}

Result<void> attach_device_filter(int cgroup_fd, const std::vector<oci::DeviceRule>& rules) {
  std::vector<bpf_insn> program = device_program(rules);
  static const char kLicense[] = "Apache-2.0";
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(program.data());
  load.insn_cnt = static_cast<uint32_t>(program.size());
  load.license = reinterpret_cast<uint64_t>(kLicense);
  UniqueFd loaded(static_cast<int>(::syscall(__NR_bpf, BPF_PROG_LOAD, &load, sizeof load)));
  if (!loaded) return fail_errno("loading the devices program");
  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(cgroup_fd);
  attach.attach_bpf_fd = static_cast<uint32_t>(loaded.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  if (::syscall(__NR_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) < 0)
    return fail_errno("attaching the devices program");
  return {};
}

}  // namespace vessel::agent
