// kill -9 during a save (docs/reliability.md): a child process saves checkpoint generations and
// is stopped at a chosen system call of a save (the k-th write() or fsync() that saveNpz makes),
// where it is sent SIGKILL. Five points of a save are reached on every machine, however fast
// its disk: the first, a middle and the last write of the temporary file, the fsync of the file
// (written, not yet renamed; the file's state at close and rename is the same) and the fsync of
// the folder (renamed). After each kill the file at
// the checkpoint's path must load, pass its checksum, hold exactly the generation the stop point
// implies (the previous one until the rename, the new one after), never a mix, and restore into
// a trainer.
//
// The stop works by interposition: this executable defines write() and fsync(), which the
// header-only saveNpz compiled into it calls; they pass straight to the system calls except in
// the child, at the chosen call. This is why the test is an executable of its own.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../support/training.hpp"

namespace snap::test {
namespace {

/// Where the child stops: the system calls of saveNpz that the test can stop at.
namespace stop {
int channel = -1;      // the child's end of a pipe to the parent; -1 (the parent): never stop
long countdown = 0;    // calls left before the stop, in the child
long counted = 0;      // calls seen while counting (the parent counts one save's)
bool counting = false;

/// Called first by each interposed function: counts the call and, at the chosen one, tells the
/// parent which call it is ('w' or 'f') and waits to be killed.
void reached(char call) {
  if (counting) ++counted;
  if (channel >= 0 && --countdown == 0) {
    [[maybe_unused]] const long sent = ::syscall(SYS_write, channel, &call, 1);
    for (;;) ::pause();
  }
}
}  // namespace stop

}  // namespace
}  // namespace snap::test

extern "C" ssize_t write(int fd, const void* data, size_t size) {
  snap::test::stop::reached('w');
  return static_cast<ssize_t>(::syscall(SYS_write, fd, data, size));
}

extern "C" int fsync(int fd) {
  snap::test::stop::reached('f');
  return static_cast<int>(::syscall(SYS_fsync, fd));
}

namespace snap::test {
namespace {

constexpr Index kPayload = 1 << 16;  // floats: a checkpoint of about 260 KiB

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

/// One stop point: the `call`-th interposed call (1-based) of the child's `save`-th save.
struct StopPoint {
  int save;
  long call;
  const char* where;
};

TEST(KillDuringSave, ThePreviousCheckpointSurvives) {
  const std::string path = ::testing::TempDir() + "snap_kill_" + std::to_string(::getpid()) + ".npz";
  Training<SnAp<GRU<float>>> training({.n = 2}, {.batch = 2});
  training.run(0, 5);

  // One save, counted: its writes, then the fsync of the file, the rename, the fsync of the folder.
  stop::counting = true;
  saveGeneration(path, training, 0);
  stop::counting = false;
  const long perSave = stop::counted, writes = perSave - 2;
  ASSERT_GE(writes, 3) << "a save makes " << perSave << " write/fsync calls";

  std::vector<StopPoint> points;
  for (const int save : {1, 2}) {
    points.push_back({save, 1, "first write"});
    points.push_back({save, writes / 2, "a middle write"});
    points.push_back({save, writes, "last write"});
    points.push_back({save, writes + 1, "fsync of the file, before the rename"});
    points.push_back({save, writes + 2, "fsync of the folder, after the rename"});
  }

  std::int64_t last = 0;  // the generation on disk
  for (const StopPoint& point : points) {
    SCOPED_TRACE(::testing::Message() << "save " << point.save << ", stopped at the " << point.where << " (call "
                                      << point.call << " of " << perSave << ")");
    std::remove((path + ".tmp").c_str());
    int channel[2];
    ASSERT_EQ(::pipe(channel), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      // The child saves generations last + 1, last + 2, … and is stopped inside one of them.
      ::close(channel[0]);
      stop::channel = channel[1];
      stop::countdown = (point.save - 1) * perSave + point.call;
      try {
        for (std::int64_t generation = last + 1; generation <= last + 3; ++generation)
          saveGeneration(path, training, generation);
      } catch (...) {
        ::_exit(3);
      }
      ::_exit(4);  // never stopped
    }
    ::close(channel[1]);
    pollfd ready{.fd = channel[0], .events = POLLIN, .revents = 0};
    char call = 0;
    const bool stopped = ::poll(&ready, 1, 120'000) == 1 && ::read(channel[0], &call, 1) == 1;
    ::close(channel[0]);
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(stopped) << "the child did not reach its stop point; status " << status;
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    EXPECT_EQ(call, point.call <= writes ? 'w' : 'f');

    // Before the rename the save's temporary file is there and the previous generation is the
    // checkpoint; after it the new generation is.
    const bool renamed = point.call == writes + 2;
    EXPECT_EQ(exists(path + ".tmp"), !renamed);
    const std::int64_t expected = last + point.save - (renamed ? 0 : 1);
    NpzArchive archive;
    ASSERT_NO_THROW(archive = readCheckpoint(path));
    const auto generation = readScalar<std::int64_t>(archive, "kill/generation", 0, 1 << 30);
    EXPECT_EQ(generation, expected);
    const auto payload = readVector<float>(archive, "kill/payload", kPayload);
    EXPECT_TRUE((payload.array() == static_cast<float>(generation)).all()) << "generation " << generation;
    Training<SnAp<GRU<float>>> restored({.n = 2}, {.batch = 2}, 5);
    EXPECT_NO_THROW(restoreCheckpoint(archive, restored.trainer));
    last = expected;  // one wrong generation fails once, not at every later stop
  }
  std::printf("%zu kills (%ld write/fsync calls per save), generation %ld reached\n", points.size(), perSave,
              static_cast<long>(last));
  std::remove(path.c_str());
  std::remove((path + ".tmp").c_str());
}

}  // namespace
}  // namespace snap::test
