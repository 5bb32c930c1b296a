// The shim's control protocol (host/control_messages.h): what a request, a relay's line and a
// reply carry survives the wire, and what is not one is refused naming its field.
#include "host/control_messages.h"

#include <gtest/gtest.h>

#include <string>

namespace vessel::control {

namespace {

template <typename Op>
Request round_trip(const Op& op, uint32_t member = 0) {
  std::string line = encode(Request{op, member});
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
  auto back = parse_request(line.substr(0, line.size() - 1));
  EXPECT_TRUE(back) << line << ": " << (back ? "" : back.error().message);
  EXPECT_TRUE(back && std::holds_alternative<Op>(back->op)) << line;
  EXPECT_EQ(back ? back->member : 0, member) << line;
  return back ? *back : Request{};
}

std::string refusal(std::string_view line) {
  auto request = parse_request(line);
  return request ? "(taken)" : request.error().message;
}

}  // namespace

TEST(ControlMessageTest, EveryRequestReadsBackAsWritten) {
  channel::GuestNetwork network;
  network.interfaces.push_back({"eth0", "52:54:00:12:34:56", 1400, {{"inet", "10.0.0.2", 24}}});
  auto start = std::get<request::Start>(round_trip(request::Start{network}).op);
  ASSERT_TRUE(start.network);
  EXPECT_EQ(start.network->interfaces.at(0).mtu, 1400u);
  EXPECT_EQ(start.network->interfaces.at(0).addresses.at(0).address, "10.0.0.2");
  EXPECT_FALSE(std::get<request::Start>(round_trip(request::Start{}, 7).op).network);

  EXPECT_EQ(std::get<request::Kill>(round_trip(request::Kill{15}, 3).op).signal, 15);
  round_trip(request::Pause{});
  round_trip(request::Resume{}, 5);
  nlohmann::json resources = {{"pids", {{"limit", 10}}}};
  EXPECT_EQ(std::get<request::Update>(round_trip(request::Update{resources}).op).resources,
            resources);
  round_trip(request::ListProcesses{}, 9);

  nlohmann::json process = {{"args", {"sh"}}, {"cwd", "/"}};
  auto exec = std::get<request::Exec>(round_trip(request::Exec{process, true}, 4).op);
  EXPECT_EQ(exec.process, process);
  EXPECT_TRUE(exec.terminal);

  channel::GuestBind bind;
  bind.destination = "/data";
  bind.share = "vol";
  bind.path = "0";
  auto member = std::get<request::CreateMember>(
      round_trip(request::CreateMember{{{"process", process}}, {bind}, "ctr-2", false}).op);
  EXPECT_EQ(member.root, "ctr-2");
  ASSERT_EQ(member.binds.size(), 1u);
  EXPECT_EQ(member.binds[0].destination, "/data");
  EXPECT_EQ(member.spec["process"], process);
}

TEST(ControlMessageTest, AnOpThisBuildDoesNotKnowIsKeptByItsPrintableName) {
  auto request = parse_request(R"({"op":"launch\u001b[2J"})");
  ASSERT_TRUE(request);
  ASSERT_TRUE(std::holds_alternative<channel::Unknown>(request->op));
  EXPECT_EQ(std::get<channel::Unknown>(request->op).type, "launch?[2J");
}

TEST(ControlMessageTest, WhatIsNotARequestIsRefusedNamingTheField) {
  EXPECT_EQ(refusal("not json"), "shim socket: not a JSON object");
  EXPECT_EQ(refusal("[1]"), "shim socket: not a JSON object");
  EXPECT_EQ(refusal(R"({"op":7})"), "shim socket: \"op\" is not a string");
  EXPECT_EQ(refusal(R"({"op":"kill"})"), "shim socket: \"signal\" is missing");
  EXPECT_EQ(refusal(R"({"op":"kill","signal":0})"),
            "shim socket: \"signal\" is not a number in [1, 64]");
  EXPECT_EQ(refusal(R"({"op":"kill","signal":"9"})"),
            "shim socket: \"signal\" is not a number in [1, 64]");
  EXPECT_EQ(refusal(R"({"op":"kill","signal":9,"member":-1})"),
            "shim socket: \"member\" is not a number in [0, " +
                std::to_string(channel::kMaxProcessId) + "]");
  EXPECT_EQ(refusal(R"({"op":"update"})"), "shim socket: an update without resources");
  EXPECT_EQ(refusal(R"({"op":"update","resources":[]})"),
            "shim socket: \"resources\" is not an object");
  EXPECT_EQ(refusal(R"({"op":"exec","terminal":true})"), "shim socket: an exec without a process");
  EXPECT_EQ(refusal(R"({"op":"exec","process":{},"terminal":1})"),
            "shim socket: \"terminal\" is not a boolean");
  EXPECT_EQ(refusal(R"({"op":"member","root":"r"})"), "shim socket: a member without a spec");
  EXPECT_EQ(refusal(R"({"op":"member","spec":{}})"), "shim socket: a member without a root");
  EXPECT_EQ(refusal(R"({"op":"member","spec":{},"root":")" + std::string(256, 'r') + "\"}"),
            "shim socket: \"root\" is longer than 255 bytes");
  EXPECT_EQ(refusal(R"({"op":"member","spec":{},"root":"r","binds":[{"destination":"x"}]})"),
            "shim socket: a bind's destination is not an absolute path");
  EXPECT_EQ(refusal(R"({"op":"start","network":[]})"), "shim socket: \"network\" is not an object");
}

TEST(ControlMessageTest, RelayLinesCarryASignalOrAWindowSize) {
  std::string signal = encode(RelayMessage(relay::Signal{10}));
  auto back = parse_relay_message(signal.substr(0, signal.size() - 1));
  ASSERT_TRUE(back && std::holds_alternative<relay::Signal>(*back));
  EXPECT_EQ(std::get<relay::Signal>(*back).signal, 10);
  std::string size = encode(RelayMessage(relay::Resize{50, 132}));
  back = parse_relay_message(size.substr(0, size.size() - 1));
  ASSERT_TRUE(back && std::holds_alternative<relay::Resize>(*back));
  EXPECT_EQ(std::get<relay::Resize>(*back).rows, 50);
  EXPECT_EQ(std::get<relay::Resize>(*back).cols, 132);
  EXPECT_FALSE(parse_relay_message(R"({"op":"signal","signal":65})"));
  EXPECT_FALSE(parse_relay_message(R"({"op":"resize","rows":70000})"));
  back = parse_relay_message(R"({"op":"later"})");
  ASSERT_TRUE(back);
  EXPECT_TRUE(std::holds_alternative<channel::Unknown>(*back));
}

TEST(ControlMessageTest, RepliesAndExitsReadBackAndAreCheckedAsTheAgentsAnswersAre) {
  auto done = parse_reply(encode(Reply{}));
  ASSERT_TRUE(done);
  EXPECT_FALSE(done->error);
  auto refused = parse_reply(encode(Reply::failed("the shim is busy")));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->error, "the shim is busy");
  EXPECT_EQ(parse_reply(encode(Reply{std::nullopt, 12, {}}))->member, 12u);
  auto listed = parse_reply(encode(Reply{std::nullopt, 0, {{7, 1, 1000, "sleep 100"}}}));
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->processes.size(), 1u);
  EXPECT_EQ(listed->processes[0].pid, 7u);
  EXPECT_EQ(listed->processes[0].uid, 1000u);
  EXPECT_EQ(listed->processes[0].command, "sleep 100");

  EXPECT_EQ(parse_reply(R"({"ok":false})")->error, "the shim refused the request");
  EXPECT_EQ(parse_reply("{}")->error, "the shim refused the request");
  EXPECT_EQ(parse_reply(R"({"ok":false,"error":"x\u001b[2Jy"})")->error, "x?[2Jy");
  nlohmann::json many = {{"ok", true}, {"processes", nlohmann::json::array()}};
  for (size_t i = 0; i <= channel::kMaxGuestProcesses; ++i)
    many["processes"].push_back({{"pid", 1}});
  EXPECT_FALSE(parse_reply(many.dump()));

  auto exited = parse_exited(encode(Exited{137, true}));
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->exit_code, 137);
  EXPECT_TRUE(exited->oom_killed);
  EXPECT_FALSE(parse_exited(R"({"exit_code":256})"));
  EXPECT_FALSE(parse_exited(R"({"ok":true})")) << "a reply is not an exit";
}

}  // namespace vessel::control
