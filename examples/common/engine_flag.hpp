#pragma once
// The --engine flag of the examples: bptt:T | bptt | rtrl | uoro | snap:N, parsed once and
// turned into an engine type and its options for a given cell type.

#include <snap/snap.hpp>

#include <cstdlib>
#include <string>
#include <type_traits>

#include "common/command_line.hpp"

namespace snap::examples {

/// A parsed --engine value.
struct EngineChoice {
  std::string name;  ///< bptt, rtrl, uoro or snap
  int steps = 0;     ///< T of bptt:T (0: untruncated), n of snap:N

  /// The engine as the flag gives it: bptt:16, snap:2, rtrl, uoro or bptt.
  std::string label() const { return name + (steps > 0 ? ":" + std::to_string(steps) : ""); }
};

/// Parses bptt:T | bptt | rtrl | uoro | snap:N (T, N ≥ 1); `bptt` alone only if allowed.
inline EngineChoice parseEngine(const std::string& text, bool allowUntruncated) {
  const auto colon = text.find(':');
  EngineChoice choice{text.substr(0, colon)};
  const std::string count = colon == std::string::npos ? "" : text.substr(colon + 1);
  const std::string accepted = allowUntruncated ? "bptt:T, bptt, rtrl, uoro or snap:N" : "bptt:T, rtrl, uoro or snap:N";
  const auto bad = [&] { throw CommandLineError{"--engine: expected " + accepted + " (T, N >= 1), got '" + text + "'"}; };
  if (choice.name == "rtrl" || choice.name == "uoro") {
    if (!count.empty()) bad();
    return choice;
  }
  if (choice.name != "bptt" && choice.name != "snap") bad();
  if (count.empty()) {
    if (choice.name == "snap" || !allowUntruncated) bad();
    return choice;
  }
  char* end = nullptr;
  const long value = std::strtol(count.c_str(), &end, 10);
  if (*end != '\0' || value < 1 || value > 1000000) bad();
  choice.steps = static_cast<int>(value);
  return choice;
}

/// Calls run(std::type_identity<Engine>{}, engineOptions) with the engine type the choice names
/// for cell type Cell, and returns what it returns.
template <class Cell, class Run>
auto withEngine(const EngineChoice& choice, std::uint64_t seed, Run&& run) {
  if (choice.name == "bptt") {
    BPTTOptions options;
    if (choice.steps > 0) options.window = choice.steps;
    return run(std::type_identity<BPTT<Cell>>{}, options);
  }
  if (choice.name == "rtrl") return run(std::type_identity<RTRL<Cell>>{}, RTRLOptions{});
  if (choice.name == "uoro") return run(std::type_identity<UORO<Cell>>{}, UOROOptions{.seed = seed});
  return run(std::type_identity<SnAp<Cell>>{}, SnApOptions{.n = choice.steps});
}

}  // namespace snap::examples
