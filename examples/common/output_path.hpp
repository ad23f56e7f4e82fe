#pragma once
// Checks, before a long run starts, that the files it will write can be written: a run that
// trains for an hour and then cannot save its checkpoint has lost the hour.

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "common/command_line.hpp"

namespace snap::examples {

/// Throws CommandLineError unless a file can be written at `path` (given by --`flag`): the path
/// is not a folder or another non-regular file, and its folder exists and lets this process
/// create files (tried by creating and removing a probe file there, which is what an atomic save
/// does).
inline void requireWritable(const std::string& flag, const std::string& path) {
  const auto refuse = [&](const std::string& why) {
    throw CommandLineError{"--" + flag + " " + path + ": " + why + " (checked before the run starts)"};
  };
  struct stat status {};
  if (::stat(path.c_str(), &status) == 0 && !S_ISREG(status.st_mode))
    refuse(S_ISDIR(status.st_mode) ? "is a folder, not a file" : "is not a regular file");
  std::string folder = std::filesystem::path(path).parent_path().string();
  if (folder.empty()) folder = ".";
  std::string probe = folder + "/.snap-write-check-XXXXXX";
  const int descriptor = ::mkstemp(probe.data());
  if (descriptor < 0) refuse("cannot create a file in folder '" + folder + "' (" + std::strerror(errno) + ")");
  ::close(descriptor);
  ::unlink(probe.c_str());
}

}  // namespace snap::examples
