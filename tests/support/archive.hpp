#pragma once
// Whole states as arrays (saveState), compared bit for bit: equal archives mean that two
// engines, trainers or tasks are in exactly the same state.

#include <gtest/gtest.h>

#include <snap/snap.hpp>

#include <string>

namespace snap::test {

/// The state `object.saveState()` writes, with no prefix.
template <class Saveable>
NpzArchive stateOf(const Saveable& object) {
  NpzArchive archive;
  object.saveState(archive, "");
  return archive;
}

/// Success when both archives hold the same names with the same types, shapes and bytes;
/// otherwise names the first array that differs.
inline ::testing::AssertionResult sameArchive(const NpzArchive& a, const NpzArchive& b) {
  for (const auto& [name, array] : a) {
    const auto other = b.find(name);
    if (other == b.end()) return ::testing::AssertionFailure() << "array '" << name << "' only in the first";
    if (array.type != other->second.type || array.shape != other->second.shape || array.bytes != other->second.bytes)
      return ::testing::AssertionFailure() << "array '" << name << "' differs";
  }
  for (const auto& entry : b)
    if (a.find(entry.first) == a.end())
      return ::testing::AssertionFailure() << "array '" << entry.first << "' only in the second";
  return ::testing::AssertionSuccess();
}

}  // namespace snap::test
