#include <gtest/gtest.h>

#include "common/channel/agent_messages.h"
#include "common/channel/host_messages.h"

namespace vessel::channel {

namespace {

Frame control(const std::string& text) { return Frame{FrameType::Control, kControlStream, text}; }

Result<AgentMessage> parse(const std::string& text) { return parse_agent_message(control(text)); }
Result<HostMessage> parse_host(const std::string& text) {
  return parse_host_message(control(text));
}

template <typename Message>
Message parsed_as(const std::string& text) {
  auto message = parse(text);
  EXPECT_TRUE(message) << text << ": " << (message ? "" : message.error().message);
  EXPECT_TRUE(message && std::holds_alternative<Message>(*message)) << text;
  return message && std::holds_alternative<Message>(*message) ? std::get<Message>(*message)
                                                              : Message{};
}

// A message encoded and parsed back is the same message, of the same type.
template <typename Message, typename Variant>
Message round_trip(const Message& message, Result<Variant> (*parse_frame)(const Frame&)) {
  std::string text = encode(Variant(message));
  auto back = parse_frame(control(text));
  EXPECT_TRUE(back) << text << ": " << (back ? "" : back.error().message);
  EXPECT_TRUE(back && std::holds_alternative<Message>(*back)) << text;
  return back && std::holds_alternative<Message>(*back) ? std::get<Message>(*back) : Message{};
}

}  // namespace

TEST(AgentMessageTest, TakesWellTypedFields) {
  auto exit = parsed_as<from_agent::Exit>(R"({"type":"exit","exit_code":3,"process":7})");
  EXPECT_EQ(exit.exit_code, 3);
  EXPECT_EQ(exit.process, 7u);
  EXPECT_EQ(exit.status(), 3);
  auto killed = parsed_as<from_agent::Exit>(R"({"type":"exit","signal":9})");
  EXPECT_EQ(killed.signal, 9);
  EXPECT_EQ(killed.process, 0u);
  EXPECT_FALSE(killed.oom_killed);
  EXPECT_EQ(killed.status(), 128 + 9);
  EXPECT_TRUE(
      parsed_as<from_agent::Exit>(R"({"type":"exit","signal":9,"oom_killed":true})").oom_killed);
  EXPECT_EQ(parsed_as<from_agent::Hello>(R"({"type":"hello","version":"1.2"})").version, "1.2");
}

TEST(AgentMessageTest, ATypeThisBuildDoesNotKnowIsKeptByItsPrintableName) {
  auto message = parse(R"({"type":"noise\u001b[2J","pad":"x"})");
  ASSERT_TRUE(message);
  ASSERT_TRUE(std::holds_alternative<Unknown>(*message));
  EXPECT_EQ(std::get<Unknown>(*message).type, "noise?[2J");
}

TEST(AgentMessageTest, WrongTypesAndRangesAreErrorsNotExceptions) {
  for (const char* text :
       {R"({"type":"exit","exit_code":"seven"})", R"({"type":"exit","signal":[9]})",
        R"({"type":"exit","exit_code":1e300})", R"({"type":"exit","exit_code":-1})",
        R"({"type":"exit","exit_code":256})", R"({"type":"exit","signal":0})",
        R"({"type":"exit","signal":18446744073709551615})", R"({"type":"exit"})",
        R"({"type":"hello","version":5})", R"({"type":"error","message":{"a":1}})",
        R"({"type":"exit","exit_code":0,"process":-1})",
        R"({"type":"exit","exit_code":0,"process":2e9})",
        R"({"type":"exit","signal":9,"oom_killed":"yes"})", R"({"type":"created","container":"0"})",
        R"({"type":"answer","message":7})", R"({"type":7})", R"([1,2])", R"(not json)"}) {
    auto message = parse(text);
    EXPECT_FALSE(message) << text;
    if (!message) {
      EXPECT_EQ(message.error().code, EPROTO) << text;
    }
  }
  EXPECT_EQ(parse(R"({"type":"exit","exit_code":"seven"})").error().message,
            "agent channel: \"exit_code\" is not a number in [0, 255]");
  EXPECT_EQ(parse(R"({"type":"hello","version":5})").error().message,
            "agent channel: \"version\" is not a string");
}

TEST(AgentMessageTest, GuestTextIsPrintableAndCapped) {
  auto failed = parsed_as<from_agent::Failed>(
      R"({"type":"error","message":"\u001b]0;pwned\u0007bad\r\nthing\u0085"})");
  EXPECT_EQ(failed.message, "?]0;pwned?bad??thing?");
  auto long_one = parsed_as<from_agent::Failed>(R"({"type":"error","message":")" +
                                                std::string(100000, 'a') + "\"}");
  EXPECT_EQ(long_one.message.size(), kMaxGuestText);
}

TEST(AgentMessageTest, PrintableKeepsUtf8AndReplacesBrokenSequences) {
  EXPECT_EQ(printable("héllo ✔"), "héllo ✔");
  EXPECT_EQ(printable("a\xff\xc3"), "a??");
  EXPECT_EQ(printable("\xc0\xaf"), "??");            // an overlong '/'
  EXPECT_EQ(printable("✔✔", 4), "✔");                // never cut inside a character
  EXPECT_EQ(printable("\xed\xa0\x80"), "???");       // a UTF-16 surrogate
  EXPECT_EQ(printable("\xe0\x80\x9b"), "???");       // an overlong ESC
  EXPECT_EQ(printable("\xf0\x80\x80\x9b"), "????");  // another one
  EXPECT_EQ(printable("\xf4\x90\x80\x80"), "????");  // past U+10FFFF
  EXPECT_EQ(printable("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
}

TEST(AgentMessageTest, ProcessListsAreTypedBoundedAndPrintable) {
  auto listed = parsed_as<from_agent::Answer>(
      R"({"type":"answer","processes":[{"pid":1,"ppid":0,"uid":0,"cmd":"sh -c x"},)"
      R"({"pid":7,"ppid":1,"uid":1000,"cmd":"evil\u001b[2J"}]})");
  EXPECT_FALSE(listed.error);
  ASSERT_EQ(listed.processes.size(), 2u);
  EXPECT_EQ(listed.processes[1].pid, 7u);
  EXPECT_EQ(listed.processes[1].uid, 1000u);
  EXPECT_EQ(listed.processes[1].command, "evil?[2J");
  auto long_command = parsed_as<from_agent::Answer>(
      R"({"type":"answer","processes":[{"pid":1,"cmd":")" + std::string(5000, 'a') + R"("}]})");
  ASSERT_EQ(long_command.processes.size(), 1u);
  EXPECT_EQ(long_command.processes[0].command.size(), kMaxGuestCommand);
  std::string many = R"({"type":"answer","processes":[)";
  for (size_t i = 0; i <= kMaxGuestProcesses; ++i)
    many += (i ? "," : "") + std::string(R"({"pid":1})");
  EXPECT_FALSE(parse(many + "]}"));
  EXPECT_FALSE(parse(R"({"type":"answer","processes":[{"pid":0}]})"));
  EXPECT_FALSE(parse(R"({"type":"answer","processes":[{"pid":-4}]})"));
  EXPECT_FALSE(parse(R"({"type":"answer","processes":[{"pid":1,"cmd":7}]})"));
  EXPECT_FALSE(parse(R"({"type":"answer","processes":{"pid":1}})"));
}

TEST(AgentMessageTest, PortsAndConnectionsAreBounded) {
  EXPECT_EQ(parsed_as<from_agent::Ports>(R"({"type":"ports","ports":[80,8080,65535]})").ports,
            (std::vector<uint16_t>{80, 8080, 65535}));
  EXPECT_TRUE(parsed_as<from_agent::Ports>(R"({"type":"ports","ports":[]})").ports.empty());
  EXPECT_EQ(parsed_as<from_agent::ConnectFailed>(R"({"type":"connect_failed","connection":)" +
                                                 std::to_string(kFirstConnection) + "}")
                .connection,
            kFirstConnection);
  std::string many = R"({"type":"ports","ports":[)";
  for (size_t i = 0; i <= kMaxGuestPorts; ++i) many += (i ? "," : "") + std::to_string(i + 1);
  for (const std::string& text :
       {many + "]}", std::string(R"({"type":"ports","ports":[0]})"),
        std::string(R"({"type":"ports","ports":[65536]})"),
        std::string(R"({"type":"ports","ports":[-80]})"),
        std::string(R"({"type":"ports","ports":["80"]})"),
        std::string(R"({"type":"ports","ports":80})"),
        R"({"type":"connect_failed","connection":)" + std::to_string(kMaxProcessId) + "}",
        R"({"type":"connect_failed","connection":)" + std::to_string(kLastConnection + 1) + "}",
        R"({"type":"exit","exit_code":0,"process":)" + std::to_string(kFirstConnection) + "}"})
    EXPECT_FALSE(parse(text)) << text;
}

TEST(AgentMessageTest, EveryMessageReadsBackAsItWasWritten) {
  EXPECT_EQ(round_trip(from_agent::Hello{"0.1.0+abc"}, parse_agent_message).version, "0.1.0+abc");
  EXPECT_EQ(round_trip(from_agent::Created{5}, parse_agent_message).container, 5u);
  EXPECT_EQ(round_trip(from_agent::Started{6}, parse_agent_message).container, 6u);
  EXPECT_EQ(round_trip(from_agent::ExecStarted{7}, parse_agent_message).exec, 7u);
  auto failed = round_trip(from_agent::Failed{8, "no such file"}, parse_agent_message);
  EXPECT_EQ(failed.process, 8u);
  EXPECT_EQ(failed.message, "no such file");
  auto exit = round_trip(from_agent::Exit{9, std::nullopt, 9, true}, parse_agent_message);
  EXPECT_EQ(exit.process, 9u);
  EXPECT_EQ(exit.signal, 9);
  EXPECT_FALSE(exit.exit_code);
  EXPECT_TRUE(exit.oom_killed);
  auto answer = round_trip(from_agent::Answer{std::nullopt, {{1, 0, 0, "sh"}, {2, 1, 1000, "x"}}},
                           parse_agent_message);
  EXPECT_FALSE(answer.error);
  ASSERT_EQ(answer.processes.size(), 2u);
  EXPECT_EQ(answer.processes[1].uid, 1000u);
  EXPECT_EQ(round_trip(from_agent::Answer{"frozen", {}}, parse_agent_message).error, "frozen");
  round_trip(from_agent::TemplateReady{}, parse_agent_message);
  EXPECT_EQ(round_trip(from_agent::Ports{{22, 80}}, parse_agent_message).ports,
            (std::vector<uint16_t>{22, 80}));
  EXPECT_EQ(round_trip(from_agent::ConnectFailed{kFirstConnection, "refused"}, parse_agent_message)
                .message,
            "refused");
}

TEST(HostMessageTest, EveryMessageReadsBackAsItWasWritten) {
  nlohmann::json spec = {{"ociVersion", "1.0.2"}};
  GuestBind volume{"/v", true, kPodVolumesTag, "@0"};
  GuestBind shm{"/dev/shm"};
  shm.tmpfs_size = 65536;
  GuestBind tty{"/dev/tty0"};
  tty.device = 'c';
  tty.major = 4;
  tty.tree_fd = 9;  // the agent's own: never sent
  GuestNetwork network{{{"eth0", "52:54:00:12:34:56", 65520, {{"inet", "10.0.2.100", 24}}}},
                       {{"inet", "default", "10.0.2.2", "eth0"}}};
  auto create = round_trip(
      from_host::Create{spec, network, {volume, shm, tty}, std::string("\0\x01bpf", 5), true},
      parse_host_message);
  EXPECT_EQ(create.spec, spec);
  ASSERT_EQ(create.binds.size(), 3u);
  EXPECT_EQ(create.binds[0].destination, "/v");
  EXPECT_TRUE(create.binds[0].readonly);
  EXPECT_EQ(create.binds[0].path, "@0");
  EXPECT_EQ(create.binds[1].tmpfs_size, 65536u);
  EXPECT_EQ(create.binds[2].device, 'c');
  EXPECT_EQ(create.binds[2].major, 4u);
  EXPECT_EQ(create.binds[2].tree_fd, -1);
  ASSERT_EQ(create.network.interfaces.size(), 1u);
  EXPECT_EQ(create.network.interfaces[0].mtu, 65520u);
  EXPECT_EQ(create.network.interfaces[0].addresses[0].address, "10.0.2.100");
  EXPECT_EQ(create.network.interfaces[0].addresses[0].prefix, 24u);
  ASSERT_EQ(create.network.routes.size(), 1u);
  EXPECT_EQ(create.network.routes[0].gateway, "10.0.2.2");
  EXPECT_EQ(create.seccomp, std::string("\0\x01bpf", 5));
  EXPECT_TRUE(create.watch_ports);
  auto member = round_trip(from_host::CreateMember{3, "m3", spec, {}, ""}, parse_host_message);
  EXPECT_EQ(member.member, 3u);
  EXPECT_EQ(member.root, "m3");
  EXPECT_EQ(round_trip(from_host::Start{3, std::nullopt}, parse_host_message).container, 3u);
  EXPECT_FALSE(round_trip(from_host::Start{0, std::nullopt}, parse_host_message).network);
  EXPECT_EQ(round_trip(from_host::Start{0, network}, parse_host_message).network->routes.size(),
            1u);
  auto exec = round_trip(from_host::Exec{4, 3, {{"args", {"true"}}}}, parse_host_message);
  EXPECT_EQ(exec.id, 4u);
  EXPECT_EQ(exec.container, 3u);
  EXPECT_EQ(round_trip(from_host::Signal{4, 15}, parse_host_message).signal, 15);
  auto resize = round_trip(from_host::Resize{0, 50, 132}, parse_host_message);
  EXPECT_EQ(resize.rows, 50);
  EXPECT_EQ(resize.cols, 132);
  EXPECT_EQ(round_trip(from_host::Update{3, {{"pids", {{"limit", 9}}}}}, parse_host_message)
                .resources["pids"]["limit"],
            9);
  EXPECT_FALSE(round_trip(from_host::Freeze{3, false}, parse_host_message).frozen);
  EXPECT_EQ(round_trip(from_host::ListProcesses{3}, parse_host_message).container, 3u);
  auto connect = round_trip(from_host::Connect{kFirstConnection + 1, 8080}, parse_host_message);
  EXPECT_EQ(connect.connection, kFirstConnection + 1);
  EXPECT_EQ(connect.port, 8080);
  round_trip(from_host::Template{}, parse_host_message);
  auto resume = round_trip(from_host::Resume{std::string(64, 'e'), {"52:54:00:12:34:56"}},
                           parse_host_message);
  EXPECT_EQ(resume.entropy, std::string(64, 'e'));
  EXPECT_EQ(resume.macs, std::vector<std::string>{"52:54:00:12:34:56"});
  EXPECT_EQ(round_trip(from_host::SetClock{1234567890123}, parse_host_message).realtime_ns,
            1234567890123);
  round_trip(from_host::Shutdown{}, parse_host_message);
}

TEST(HostMessageTest, TheAgentChecksWhatTheHostSendsAsTheHostChecksTheAgent) {
  for (const std::string& text : std::vector<std::string>{
           R"({"type":"create"})",
           R"({"type":"create","spec":[1]})",
           R"({"type":"create","spec":{},"seccomp":"%%%"})",
           R"({"type":"create","spec":{},"binds":[{"destination":"v"}]})",
           R"({"type":"create","spec":{},"binds":[{"destination":"/d","device":"p"}]})",
           R"({"type":"create","spec":{},"binds":[7]})",
           R"({"type":"create","spec":{},"network":{"interfaces":[{"mtu":1e9}]}})",
           R"({"type":"create","spec":{},"network":{"routes":[{"family":"ipx"}]}})",
           R"({"type":"start","network":{"interfaces":{}}})",
           R"({"type":"create_member","spec":{},"root":"m"})",
           R"({"type":"create_member","member":0,"spec":{},"root":"m"})",
           R"({"type":"exec","exec":1})",
           R"({"type":"exec","exec":1,"process":"sh"})",
           R"({"type":"signal","signal":0})",
           R"({"type":"signal","signal":65})",
           R"({"type":"signal","process":-1,"signal":9})",
           R"({"type":"resize","rows":70000})",
           R"({"type":"update","resources":[]})",
           R"({"type":"freeze","frozen":"yes"})",
           R"({"type":"connect","connection":1,"port":80})",
           R"({"type":"connect","connection":)" + std::to_string(kFirstConnection) +
               R"(,"port":0})",
           R"({"type":"resume","entropy":"!","macs":[]})",
           R"({"type":"resume","macs":[7]})",
           R"({"type":"clock","realtime_ns":0})",
           R"({"type":"clock"})"}) {
    auto message = parse_host(text);
    EXPECT_FALSE(message) << text;
    if (!message) {
      EXPECT_EQ(message.error().code, EPROTO) << text;
    }
  }
  auto unknown = parse_host(R"({"type":"reboot"})");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(type_of(*unknown), "reboot");
}

}  // namespace vessel::channel
