#pragma once
/// @file
/// Checkpoints: the whole training state in one versioned, checksummed, uncompressed `.npz`
/// file that `numpy.load` opens (docs/reliability.md, "Checkpoints"). Saving is atomic
/// (saveNpz: temporary file, fsync, rename); reading checks the format, the version and the
/// checksum before anything is restored, and restoring is all or nothing.
///
///     snap::saveCheckpoint("run.npz", trainer, &task);          // trainer/…, task/…
///     snap::loadCheckpoint("run.npz", trainer, &task);          // FormatError on any mismatch

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "snap/core/error.hpp"
#include "snap/archive/npz.hpp"
#include "snap/archive/arrays.hpp"
#include "snap/tasks/adding_task.hpp"
#include "snap/tasks/copy_task.hpp"
#include "snap/train/trainer.hpp"

namespace snap {

/// The version of the checkpoint format this library writes; it reads this version only.
inline constexpr std::int64_t checkpointVersion = 4;

namespace detail {

/// The text of the `format` array, which identifies a snap checkpoint.
inline constexpr std::string_view checkpointFormat = "snap checkpoint";

/// CRC-32 (zlib's) over every array but `checksum`, in name order, each contributing its name,
/// a 0 byte, its NumPy type string, a 0 byte, its shape as little-endian int64 values, and its
/// data bytes. In Python: for each name, crc = zlib.crc32(name.encode() + b'\0' +
/// a.dtype.str.encode() + b'\0' + np.array(a.shape, '<i8').tobytes() + a.tobytes(), crc).
inline std::uint32_t checkpointChecksum(const NpzArchive& archive) {
  std::uint32_t crc = 0;
  const std::uint8_t zero = 0;
  for (const auto& [name, array] : archive) {
    if (name == "checksum") continue;
    crc = crc32(reinterpret_cast<const std::uint8_t*>(name.data()), name.size(), crc);
    crc = crc32(&zero, 1, crc);
    crc = crc32(reinterpret_cast<const std::uint8_t*>(array.type.data()), array.type.size(), crc);
    crc = crc32(&zero, 1, crc);
    for (std::int64_t extent : array.shape) {
      std::uint8_t bytes[8];
      for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(extent) >> (8 * i));
      crc = crc32(bytes, 8, crc);
    }
    crc = crc32(array.bytes.data(), array.bytes.size(), crc);
  }
  return crc;
}

/// Throws FormatError unless `archive` is a snap checkpoint of this version whose checksum
/// matches (`name` names the file in messages). `checksum` = false skips the last check (for
/// the fuzzer, which must reach the checks behind it).
inline void verifyCheckpoint(const NpzArchive& archive, const std::string& name, bool checksum = true) {
  if (archive.find("format") == archive.end())
    fail<FormatError>(name, "a snap checkpoint (an array 'format' reading '" + std::string(checkpointFormat) + "')",
                      "an archive without one");
  requireText(archive, "format", checkpointFormat, "the format");
  const std::int64_t version = readValues<std::int64_t>(archive, "version", {}).front();
  if (version != checkpointVersion)
    fail<FormatError>(arrayArgument("version"), "checkpoint version " + describe(checkpointVersion) +
                                                    " (this library reads no other)", version);
  const auto stored = readValues<std::uint64_t>(archive, "checksum", {}).front();
  if (checksum && stored != checkpointChecksum(archive))
    fail<FormatError>(arrayArgument("checksum"), "the CRC-32 of the arrays, " + describe(checkpointChecksum(archive)),
                      describe(stored) + " (the file is corrupted)");
}

/// The names checkpointArrays() uses; a caller's extra arrays must stay outside them.
inline bool isCheckpointName(const std::string& name) {
  return name == "format" || name == "version" || name == "checksum" || name.rfind("trainer/", 0) == 0 ||
         name.rfind("task/", 0) == 0;
}

}  // namespace detail

/// Writes `archive` as a checkpoint: adds `format`, `version` and `checksum`, then saves it
/// atomically (saveNpz), so that a crash or a kill leaves the previous file intact.
inline void writeCheckpoint(const std::string& path, NpzArchive archive) {
  putText(archive, "format", detail::checkpointFormat);
  putScalar<std::int64_t>(archive, "version", checkpointVersion);
  archive.erase("checksum");
  putScalar<std::uint64_t>(archive, "checksum", detail::checkpointChecksum(archive));
  saveNpz(path, archive, "checkpoint path");
}

/// Reads a checkpoint and verifies its format, version and checksum: FormatError for a
/// missing, truncated, corrupted, foreign or other-version file, never a crash.
inline NpzArchive readCheckpoint(const std::uint8_t* data, std::size_t size, const std::string& name) {
  NpzArchive archive = loadNpz(data, size, name);
  detail::verifyCheckpoint(archive, name);
  return archive;
}
/// Reads the checkpoint file at `path` and verifies it as the overload above does.
/// @throws FormatError for a missing, unreadable, truncated, corrupted, foreign or
///         other-version file, or one that is not a regular file (a directory, FIFO, device)
inline NpzArchive readCheckpoint(const std::string& path) {
  NpzArchive archive = loadNpz(path, "checkpoint path");
  detail::verifyCheckpoint(archive, path);
  return archive;
}

/// A task a checkpoint can hold beside the trainer: the copy task, the adding task, or any type
/// with saveState(archive, prefix) and loadState(archive, prefix) that restores all or nothing.
template <class Task>
concept CheckpointTask = std::copy_constructible<Task> && requires(const Task& constTask, Task& task, NpzArchive& out,
                                                                   const NpzArchive& in) {
  constTask.saveState(out, std::string());
  task.loadState(in, std::string());
};

/// A trainer's state under `trainer/` and, when given, a task's under `task/`.
template <class EngineType, class ReadoutType, CheckpointTask Task = CopyTask>
NpzArchive checkpointArrays(const Trainer<EngineType, ReadoutType>& trainer, const Task* task = nullptr) {
  NpzArchive archive;
  trainer.saveState(archive, "trainer/");
  if (task != nullptr) task->saveState(archive, "task/");
  return archive;
}

/// Restores a trainer (its cell, readout, optimizer and streams) and, when given, a task from a
/// verified checkpoint, all or nothing: on a FormatError nothing has changed.
template <class EngineType, class ReadoutType, CheckpointTask Task = CopyTask>
void restoreCheckpoint(const NpzArchive& archive, Trainer<EngineType, ReadoutType>& trainer, Task* task = nullptr) {
  if (task == nullptr) {
    trainer.loadState(archive, "trainer/");
    return;
  }
  Task restored = *task;
  restored.loadState(archive, "task/");
  trainer.loadState(archive, "trainer/");
  *task = std::move(restored);
}

/// Saves a trainer, optionally a task, and the caller's own arrays (names outside `trainer/`,
/// `task/`, `format`, `version`, `checksum`) to `path` as one checkpoint.
template <class EngineType, class ReadoutType, CheckpointTask Task = CopyTask>
void saveCheckpoint(const std::string& path, const Trainer<EngineType, ReadoutType>& trainer, const Task* task = nullptr,
                    NpzArchive extra = {}) {
  for (const auto& entry : extra)
    if (detail::isCheckpointName(entry.first))
      detail::fail<ValueError>("extra", "array names outside trainer/, task/, format, version and checksum",
                               "'" + entry.first + "'");
  NpzArchive archive = checkpointArrays(trainer, task);
  archive.merge(extra);
  writeCheckpoint(path, std::move(archive));
}

/// Loads a checkpoint into a trainer and optionally a task (all or nothing), and returns the
/// verified archive so that the caller can read its own arrays. To restore those all or nothing
/// too, read them from readCheckpoint() first, then call restoreCheckpoint().
template <class EngineType, class ReadoutType, CheckpointTask Task = CopyTask>
NpzArchive loadCheckpoint(const std::string& path, Trainer<EngineType, ReadoutType>& trainer, Task* task = nullptr) {
  NpzArchive archive = readCheckpoint(path);
  restoreCheckpoint(archive, trainer, task);
  return archive;
}

/// @name The same calls with no task (a literal nullptr, which names no task type)
/// @{

/// A trainer's state alone.
template <class EngineType, class ReadoutType>
NpzArchive checkpointArrays(const Trainer<EngineType, ReadoutType>& trainer, std::nullptr_t) {
  return checkpointArrays<EngineType, ReadoutType, CopyTask>(trainer, nullptr);
}
/// Restores a trainer alone.
template <class EngineType, class ReadoutType>
void restoreCheckpoint(const NpzArchive& archive, Trainer<EngineType, ReadoutType>& trainer, std::nullptr_t) {
  restoreCheckpoint<EngineType, ReadoutType, CopyTask>(archive, trainer, nullptr);
}
/// Saves a trainer and the caller's own arrays.
template <class EngineType, class ReadoutType>
void saveCheckpoint(const std::string& path, const Trainer<EngineType, ReadoutType>& trainer, std::nullptr_t,
                    NpzArchive extra = {}) {
  saveCheckpoint<EngineType, ReadoutType, CopyTask>(path, trainer, nullptr, std::move(extra));
}
/// Loads a checkpoint into a trainer alone.
template <class EngineType, class ReadoutType>
NpzArchive loadCheckpoint(const std::string& path, Trainer<EngineType, ReadoutType>& trainer, std::nullptr_t) {
  return loadCheckpoint<EngineType, ReadoutType, CopyTask>(path, trainer, nullptr);
}
/// @}

}  // namespace snap
