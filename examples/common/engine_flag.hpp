#pragma once
// The --engine and --per-layer flags of the examples: bptt:T | bptt | rtrl | uoro | snap:N |
// eprop | rflo | rolling-bptt:L, parsed once and turned into an engine type, its options and the
// readout's feedback for a given cell type.

#include <snap/snap.hpp>

#include <cstdlib>
#include <string>
#include <type_traits>

#include "common/command_line.hpp"

namespace snap::examples {

/// The --engine values, for the flag's help line.
inline const char* engineValues(bool allowUntruncated) {
  return allowUntruncated ? "bptt:T | bptt (untruncated) | rtrl | uoro | snap:N | eprop | rflo | rolling-bptt:L"
                          : "bptt:T | rtrl | uoro | snap:N | eprop | rflo | rolling-bptt:L";
}
/// What the engines are, for a program's --help summary.
inline constexpr const char* engineHelp =
    "Engines: bptt:T truncated BPTT, an update per window of T steps; rtrl; uoro; snap:N SnAp-n (with\n"
    "--per-layer on a stack: each layer's influence kept in its own layer, the loss gradient reaching the\n"
    "lower layers through the same-step Jacobians above, Zucchet et al. 2023); eprop e-prop (Bellec et al.\n"
    "2020); rflo RFLO as Murray 2019 defines it: the RFLO engine AND the readout's random feedback B in\n"
    "place of W_out^T (only with --cell rnn and one layer; --leak sets the RNN's leak); rolling-bptt:L\n"
    "rolling truncated BPTT, each step's loss backpropagated through the last L steps, an update every\n"
    "step (T, N, L >= 1).";
/// The --per-layer switch's help line.
inline constexpr const char* perLayerHelp = "with snap:N and --layers >= 2: SnAp-n per layer, not over the whole stack";

/// A parsed --engine value (and --per-layer).
struct EngineChoice {
  std::string name;       ///< bptt, rtrl, uoro, snap, eprop, rflo or rolling-bptt
  int steps = 0;          ///< T of bptt:T (0: untruncated), n of snap:N, L of rolling-bptt:L
  bool perLayer = false;  ///< snap:N with --per-layer

  /// The engine as the flag gives it: bptt:16, snap:2, rolling-bptt:8, rtrl, uoro, eprop, rflo or bptt.
  std::string label() const { return name + (steps > 0 ? ":" + std::to_string(steps) : ""); }
  /// The label, with " per layer" for snap:N --per-layer.
  std::string description() const { return label() + (perLayer ? " per layer" : ""); }
  /// RFLO trains with the readout's random feedback (Murray 2019); every other engine with Wᵀ.
  ReadoutOptions readoutOptions() const {
    return {.feedback = name == "rflo" ? Feedback::Random : Feedback::Symmetric};
  }
};

/// Parses bptt:T | bptt | rtrl | uoro | snap:N | eprop | rflo | rolling-bptt:L (T, N, L ≥ 1);
/// `bptt` alone only if allowed.
inline EngineChoice parseEngine(const std::string& text, bool allowUntruncated) {
  const auto colon = text.find(':');
  EngineChoice choice{text.substr(0, colon)};
  const std::string count = colon == std::string::npos ? "" : text.substr(colon + 1);
  const std::string accepted = allowUntruncated ? "bptt:T, bptt, rtrl, uoro, snap:N, eprop, rflo or rolling-bptt:L"
                                                : "bptt:T, rtrl, uoro, snap:N, eprop, rflo or rolling-bptt:L";
  const auto bad = [&] { throw CommandLineError{"--engine: expected " + accepted + " (T, N, L >= 1), got '" + text + "'"}; };
  if (choice.name == "rtrl" || choice.name == "uoro" || choice.name == "eprop" || choice.name == "rflo") {
    if (colon != std::string::npos) bad();
    return choice;
  }
  if (choice.name != "bptt" && choice.name != "snap" && choice.name != "rolling-bptt") bad();
  if (colon == std::string::npos) {
    if (choice.name != "bptt" || !allowUntruncated) bad();
    return choice;
  }
  char* end = nullptr;
  const long value = std::strtol(count.c_str(), &end, 10);
  if (count.empty() || *end != '\0' || value < 1 || value > 1000000) bad();
  choice.steps = static_cast<int>(value);
  return choice;
}

/// Checks the engine against the network it trains: rflo needs one (leaky) RNN, --per-layer
/// needs snap:N over a stack of layers. Throws CommandLineError naming the flag otherwise.
inline void checkEngineFits(EngineChoice& choice, const std::string& cell, Index layers, bool perLayer) {
  if (choice.name == "rflo" && (cell != "rnn" || layers != 1))
    throw CommandLineError{"--engine rflo: RFLO (Murray 2019) is defined for one leaky RNN: give --cell rnn and "
                           "--layers 1 (got --cell " + cell + " --layers " + std::to_string(layers) +
                           "); --engine eprop is the same trace for any cell and for stacks"};
  if (perLayer) {
    if (choice.name != "snap")
      throw CommandLineError{"--per-layer: only for --engine snap:N (got --engine " + choice.label() +
                             "; eprop is per layer by definition, the other engines have no such mode)"};
    if (layers < 2)
      throw CommandLineError{"--per-layer: needs --layers 2 or more (with one layer the per-layer and joint "
                             "modes are the same)"};
  }
  choice.perLayer = perLayer;
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
  if (choice.name == "eprop") return run(std::type_identity<EProp<Cell>>{}, EPropOptions{});
  if (choice.name == "rolling-bptt")
    return run(std::type_identity<RollingBPTT<Cell>>{}, RollingBPTTOptions{.window = choice.steps});
  if constexpr (std::is_same_v<Cell, RNN<typename Cell::Scalar>>) {
    if (choice.name == "rflo") return run(std::type_identity<RFLO<Cell>>{}, RFLOOptions{});
  } else if (choice.name == "rflo") {
    throw CommandLineError{"--engine rflo: RFLO is defined for one leaky RNN (--cell rnn --layers 1)"};
  }
  return run(std::type_identity<SnAp<Cell>>{}, SnApOptions{.n = choice.steps, .perLayer = choice.perLayer});
}

}  // namespace snap::examples
