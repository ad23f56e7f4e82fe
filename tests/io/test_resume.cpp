// Resume is exact (docs/reliability.md): for each engine, training N steps in one process and
// training k steps, saving, then loading in a FRESH process and training the other N − k steps
// end with bit-identical checkpoints (parameters, optimizer moments, every stream's state).
// The runs are made by resume_helper, started as separate processes.

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../support/archive.hpp"

extern char** environ;

namespace snap::test {
namespace {

/// Runs resume_helper with `arguments`; returns its exit status (−1 if it did not exit).
int runHelper(const std::vector<std::string>& arguments) {
  std::vector<std::string> all = {SNAP_RESUME_HELPER};
  all.insert(all.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (std::string& argument : all) argv.push_back(argument.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

std::vector<char> bytesOf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class Resume : public ::testing::TestWithParam<const char*> {};

TEST_P(Resume, InAFreshProcessIsBitIdentical) {
  const std::string config = GetParam();
  const std::string base = ::testing::TempDir() + "snap_resume_" + config + "_" + std::to_string(::getpid());
  const std::string full = base + "_full.npz", part = base + "_part.npz", resumed = base + "_resumed.npz";
  constexpr int steps = 30;
  ASSERT_EQ(runHelper({config, "0", std::to_string(steps), "--save", full}), 0);
  for (int k : {1, 6, 17}) {
    SCOPED_TRACE(::testing::Message() << "saved after " << k << " of " << steps << " steps");
    ASSERT_EQ(runHelper({config, "0", std::to_string(k), "--save", part}), 0);
    ASSERT_EQ(runHelper({config, std::to_string(k), std::to_string(steps), "--load", part, "--save", resumed}), 0);
    // Same arrays bit for bit (named when not), hence the same file byte for byte.
    EXPECT_TRUE(sameArchive(readCheckpoint(resumed), readCheckpoint(full)));
    EXPECT_EQ(bytesOf(resumed), bytesOf(full));
  }
  // A checkpoint of another configuration is refused with the array that does not fit.
  const std::string other = config == "uoro-gru" ? "rtrl-gru" : "uoro-gru";
  EXPECT_EQ(runHelper({other, "30", "31", "--load", full}), 1);
  for (const std::string& path : {full, part, resumed}) std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(EveryEngine, Resume,
                         ::testing::Values("rtrl-gru", "rtrl-rnn", "snap1-gru", "snap2-gru", "snap1-lstm", "snap2-lstm",
                                           "uoro-gru", "bptt3-gru", "bptt-gru"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace snap::test
