// A kill -9 in the middle of a save leaves the previous checkpoint loadable (docs/reliability.md):
// a child process saves large checkpoints in a loop and is SIGKILLed at random moments; after
// each kill the file loads, passes its checksum, and holds one complete save.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "../support/training.hpp"

namespace snap::test {
namespace {

constexpr Index kPayload = 4 << 20;  // floats: a 16 MiB checkpoint, long enough to be killed during

/// A checkpoint of a small trainer plus a payload whose every value is `generation`.
void saveGeneration(const std::string& path, const Training<SnAp<GRU<float>>>& training, std::int64_t generation) {
  NpzArchive extra;
  putScalar<std::int64_t>(extra, "kill/generation", generation);
  putArray(extra, "kill/payload", Vector<float>::Constant(kPayload, static_cast<float>(generation)));
  saveCheckpoint(path, training.trainer, nullptr, extra);
}

bool exists(const std::string& path) {
  struct stat status {};
  return ::stat(path.c_str(), &status) == 0;
}

TEST(KillDuringSave, ThePreviousCheckpointSurvives) {
  const std::string path = ::testing::TempDir() + "snap_kill_" + std::to_string(::getpid()) + ".npz";
  Training<SnAp<GRU<float>>> training({.n = 2}, {.batch = 2});
  training.run(0, 5);
  const auto start = std::chrono::steady_clock::now();
  saveGeneration(path, training, 0);
  // Kills land anywhere from a third of a save to three saves after the child starts.
  const auto save = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  const int shortest = std::max(5, static_cast<int>(save.count() / 3)), longest = 3 * static_cast<int>(save.count()) + 20;
  Random random(2024);
  std::int64_t last = 0;
  // At least 10 kills and until 3 of them landed during a save (at most 40).
  int duringSave = 0, kills = 0;
  for (; kills < 40 && (kills < 10 || duringSave < 3); ++kills) {
    const int round = kills;
    std::remove((path + ".tmp").c_str());
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      // The child saves generation after generation until it is killed (or for 60 s at most).
      const auto start = std::chrono::steady_clock::now();
      try {
        for (std::int64_t generation = last + 1; std::chrono::steady_clock::now() - start < std::chrono::seconds(60);
             ++generation)
          saveGeneration(path, training, generation);
      } catch (...) {
        ::_exit(3);
      }
      ::_exit(0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(
        shortest + static_cast<int>(random.below(static_cast<std::uint64_t>(longest - shortest)))));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child ended by itself, status " << status;
    if (exists(path + ".tmp")) ++duringSave;  // killed between opening the temporary file and the rename
    // The file is a complete checkpoint: one generation, never a mix of two.
    NpzArchive archive;
    ASSERT_NO_THROW(archive = readCheckpoint(path)) << "after kill " << round;
    const auto generation = readScalar<std::int64_t>(archive, "kill/generation", 0, 1 << 30);
    EXPECT_GE(generation, last);
    const auto payload = readVector<float>(archive, "kill/payload", kPayload);
    EXPECT_TRUE((payload.array() == static_cast<float>(generation)).all()) << "generation " << generation;
    Training<SnAp<GRU<float>>> restored({.n = 2}, {.batch = 2}, 5);
    EXPECT_NO_THROW(restoreCheckpoint(archive, restored.trainer));
    last = generation;
  }
  EXPECT_GE(duringSave, 1) << "no kill landed during a save";
  std::printf("%d kills (a save takes %ld ms), %d during a save, generation %ld reached\n", kills,
              static_cast<long>(save.count()), duringSave, static_cast<long>(last));
  std::remove(path.c_str());
  std::remove((path + ".tmp").c_str());
}

}  // namespace
}  // namespace snap::test
