#include "common/channel/messages.h"

#include <gtest/gtest.h>

namespace vessel::channel {

namespace {
Result<AgentMessage> parse(const std::string& text) {
  return parse_agent_message(Frame{FrameType::Control, kControlStream, text});
}
}  // namespace

TEST(AgentMessageTest, TakesWellTypedFields) {
  auto exit = parse(R"({"type":"exit","exit_code":3,"exec":7})");
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->type, "exit");
  EXPECT_EQ(exit->exit_code, 3);
  EXPECT_EQ(exit->exec, 7u);
  auto killed = parse(R"({"type":"exit","signal":9})");
  ASSERT_TRUE(killed);
  EXPECT_EQ(killed->signal, 9);
  EXPECT_FALSE(killed->exec);
  EXPECT_FALSE(killed->oom_killed);
  auto oom = parse(R"({"type":"exit","signal":9,"oom_killed":true})");
  ASSERT_TRUE(oom);
  EXPECT_TRUE(oom->oom_killed);
}

TEST(AgentMessageTest, WrongTypesAndRangesAreErrorsNotExceptions) {
  for (const char* text :
       {R"({"type":"exit","exit_code":"seven"})", R"({"type":"exit","signal":[9]})",
        R"({"type":"exit","exit_code":1e300})", R"({"type":"exit","exit_code":-1})",
        R"({"type":"exit","exit_code":256})", R"({"type":"exit","signal":0})",
        R"({"type":"exit","signal":18446744073709551615})", R"({"type":"exit"})",
        R"({"type":"hello","version":5})", R"({"type":"error","message":{"a":1}})",
        R"({"type":"exit","exit_code":0,"exec":-1})", R"({"type":"exit","exit_code":0,"exec":2e9})",
        R"({"type":"exit","signal":9,"oom_killed":"yes"})", R"({"type":7})", R"([1,2])",
        R"(not json)"}) {
    auto message = parse(text);
    EXPECT_FALSE(message) << text;
    if (!message) {
      EXPECT_EQ(message.error().code, EPROTO) << text;
    }
  }
}

TEST(AgentMessageTest, GuestTextIsPrintableAndCapped) {
  auto message = parse(R"({"type":"error","message":"\u001b]0;pwned\u0007bad\r\nthing\u0085"})");
  ASSERT_TRUE(message);
  EXPECT_EQ(message->text, "?]0;pwned?bad??thing?");
  auto long_one = parse(R"({"type":"error","message":")" + std::string(100000, 'a') + "\"}");
  ASSERT_TRUE(long_one);
  EXPECT_EQ(long_one->text.size(), kMaxGuestText);
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
  auto listed =
      parse(R"({"type":"processes","processes":[{"pid":1,"ppid":0,"uid":0,"cmd":"sh -c x"},)"
            R"({"pid":7,"ppid":1,"uid":1000,"cmd":"evil\u001b[2J"}]})");
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->processes.size(), 2u);
  EXPECT_EQ(listed->processes[1].pid, 7u);
  EXPECT_EQ(listed->processes[1].uid, 1000u);
  EXPECT_EQ(listed->processes[1].command, "evil?[2J");
  auto long_command = parse(R"({"type":"processes","processes":[{"pid":1,"cmd":")" +
                            std::string(5000, 'a') + R"("}]})");
  ASSERT_TRUE(long_command);
  EXPECT_EQ(long_command->processes[0].command.size(), kMaxGuestCommand);
  std::string many = R"({"type":"processes","processes":[)";
  for (size_t i = 0; i <= kMaxGuestProcesses; ++i)
    many += (i ? "," : "") + std::string(R"({"pid":1})");
  EXPECT_FALSE(parse(many + "]}"));
  EXPECT_FALSE(parse(R"({"type":"processes","processes":[{"pid":0}]})"));
  EXPECT_FALSE(parse(R"({"type":"processes","processes":[{"pid":-4}]})"));
  EXPECT_FALSE(parse(R"({"type":"processes","processes":[{"pid":1,"cmd":7}]})"));
  EXPECT_FALSE(parse(R"({"type":"processes","processes":{"pid":1}})"));
}

TEST(AgentMessageTest, PortsAndConnectionsAreBounded) {
  auto ports = parse(R"({"type":"ports","ports":[80,8080,65535]})");
  ASSERT_TRUE(ports) << ports.error().message;
  EXPECT_EQ(ports->ports, (std::vector<uint16_t>{80, 8080, 65535}));
  auto none = parse(R"({"type":"ports","ports":[]})");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->ports && none->ports->empty());
  auto failed =
      parse(R"({"type":"connect_failed","connection":)" + std::to_string(kFirstConnection) + "}");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->connection, kFirstConnection);
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
        R"({"type":"exit","exit_code":0,"exec":)" + std::to_string(kFirstConnection) + "}"})
    EXPECT_FALSE(parse(text)) << text;
}

}  // namespace vessel::channel
