#include <gtest/gtest.h>
#include <signal.h>

#include "runtime/commands/command.h"
#include "runtime/container.h"
#include "runtime/state_store.h"

namespace vessel::runtime {

TEST(ArgumentsTest, AcceptsSpacedEqualsAndShortForms) {
  ArgumentParser parser("create", {"--bundle", "/b", "--pid-file=/p", "-b", "/c", "id1"});
  ASSERT_TRUE(parser.parse({"bundle|b", "pid-file", "console-socket"}, {}));
  EXPECT_EQ(parser.value("bundle"), "/c");
  EXPECT_EQ(parser.value("pid-file"), "/p");
  EXPECT_EQ(parser.id().value(), "id1");
}

TEST(ArgumentsTest, UnknownFlagsAndMissingIdsAreErrors) {
  ArgumentParser unknown("delete", {"--frobnicate", "x"});
  EXPECT_EQ(unknown.parse({}, {"force|f"}).error().message,
            "vessel delete: unknown flag --frobnicate (see vessel --help)");
  ArgumentParser none("start", {});
  ASSERT_TRUE(none.parse({}, {}));
  EXPECT_EQ(none.id().error().message, "vessel start: expects a container id (see vessel --help)");
}

TEST(ArgumentsTest, SignalsByNumberAndName) {
  EXPECT_EQ(parse_signal("9").value(), SIGKILL);
  EXPECT_EQ(parse_signal("TERM").value(), SIGTERM);
  EXPECT_EQ(parse_signal("SIGUSR1").value(), SIGUSR1);
  EXPECT_FALSE(parse_signal("0"));
  EXPECT_EQ(parse_signal("NOPE").error().message,
            "\"NOPE\" is not a signal: give a number or a name such as TERM or SIGKILL");
}

TEST(StateStoreTest, IdsAreValidatedAndTakenOnce) {
  char pattern[] = "/tmp/vessel-state.XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  StateStore store(pattern);
  EXPECT_EQ(store.validate_id("../etc").error().message,
            "container id \"../etc\" is not valid: use letters, digits, '_', '-', '+' and '.'");
  ASSERT_TRUE(store.create_dir("one"));
  EXPECT_EQ(
      store.create_dir("one").error().message,
      "container \"one\" already exists: choose another id or delete it first (vessel delete one)");
  ContainerState state;
  state.id = "one";
  state.bundle = "/b";
  state.status = Status::Created;
  state.pid = 999999;  // no such process: the container counts as stopped
  ASSERT_TRUE(store.save(state));
  auto loaded = store.load("one");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->bundle, "/b");
  EXPECT_EQ(loaded->effective_status(), Status::Stopped);
  ASSERT_TRUE(store.remove("one"));
  EXPECT_EQ(store.load("one").error().message, "container \"one\" does not exist");
  ::rmdir(pattern);
}

}  // namespace vessel::runtime
