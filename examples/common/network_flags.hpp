#pragma once
// The network flags of the examples: --cell rnn | gru | lstm | lru, --hidden, --layers, --leak and
// the masks' densities, turned into one cell or a snap::Stack of layers (docs/cells.md).

#include <snap/snap.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/command_line.hpp"

namespace snap::examples {

/// The --cell values.
inline const std::vector<std::string> cellValues{"rnn", "gru", "lstm", "lru"};
/// The help lines of the network flags.
inline constexpr const char* cellHelp = "rnn | gru | lstm | lru";
inline constexpr const char* layersHelp = "L: layers of --cell (1: one cell; 2 or more: a stack, see above)";
inline constexpr const char* leakHelp = "with --cell rnn: alpha in h' = (1 - alpha) h + alpha tanh(...), in (0, 1]";
/// What the network flags build, for a program's --help summary.
inline constexpr const char* networkHelp =
    "Networks: --layers L >= 2 is a snap::Stack of L layers of --cell, each of --hidden units, layer l+1\n"
    "reading layer l's output (layer l seeded with --seed + 1000 l). An LRU layer has N = --hidden complex\n"
    "units (|lambda| initially in [0.5, 0.99]) and --hidden outputs through a GELU; the first has no skip\n"
    "(its input is the task's), the layers above add the skip D x.";

/// The ring of an LRU's initial eigenvalues in these examples: |λ| in [0.5, 0.99], memories of
/// a few to about a hundred steps, what the copy task's and the adding problem's lengths need.
inline constexpr double lruRMin = 0.5, lruRMax = 0.99;

/// The network the flags describe.
struct NetworkChoice {
  std::string cell;       ///< rnn, gru, lstm or lru
  Index hidden = 0;       ///< H units of each layer (an LRU: N complex units and H outputs)
  Index layers = 1;       ///< L: 1 is one cell, more a snap::Stack
  double density = 1;     ///< recurrent weight density (gated cells)
  double inputDensity = 1;
  MaskSharing sharing = MaskSharing::Shared;
  double leak = 1;        ///< α of the RNN
  std::uint64_t seed = 0; ///< seeds layer 0; layer l uses seed + 1000 l

  /// "gru", "rnn (leak 0.5)", "2 layers of gru", "3 layers of lru".
  std::string label() const {
    std::string name = cell;
    if (cell == "rnn" && leak != 1) {
      char text[48];
      std::snprintf(text, sizeof text, "rnn (leak %g)", leak);
      name = text;
    }
    return layers == 1 ? name : std::to_string(layers) + " layers of " + name;
  }
  /// "H = 128, recurrent density 0.1 (shared masks)" for the gated cells; the LRU's units and outputs.
  std::string shape() const {
    char text[200];
    const char* perLayer = layers > 1 ? " per layer" : "";
    if (cell == "lru")
      std::snprintf(text, sizeof text, "N = %ld complex units and %ld GELU outputs%s, input density %g",
                    static_cast<long>(hidden), static_cast<long>(hidden), perLayer, inputDensity);
    else
      std::snprintf(text, sizeof text, "H = %ld%s, recurrent density %g (%s masks)", static_cast<long>(hidden), perLayer,
                    density, sharing == MaskSharing::Shared ? "shared" : "per-gate");
    return text;
  }
  /// The seed of layer l's masks and weights.
  std::uint64_t layerSeed(Index l) const { return seed + 1000 * static_cast<std::uint64_t>(l); }
};

/// Refuses flags that do not apply to the chosen cell, naming them: --leak other than 1 without
/// --cell rnn, --density or --masks given with --cell lru (whose recurrence is diagonal).
inline void checkNetwork(const NetworkChoice& network, const CommandLine& line) {
  if (network.cell != "rnn" && network.leak != 1)
    throw CommandLineError{"--leak: only for --cell rnn (the leaky RNN's alpha), got --cell " + network.cell};
  if (network.cell == "lru")
    for (const char* flag : {"density", "masks"})
      if (line.given(flag))
        throw CommandLineError{std::string("--") + flag +
                               ": not for --cell lru, whose recurrence is diagonal (it has no recurrent weights "
                               "to mask)"};
}

/// The options of LRU layer l: N = H units and H outputs through a GELU; the first layer reads
/// the task's input without the skip D ⊙ x, the layers above (input H = output H) add it.
inline LRUOptions lruOptions(const NetworkChoice& network, Index l) {
  return {.outputSize = network.hidden,
          .rMin = lruRMin,
          .rMax = lruRMax,
          .inputDensity = network.inputDensity,
          .skip = l > 0,
          .activation = LRUActivation::GELU,
          .seed = network.layerSeed(l)};
}

/// Layer l of the network, a cell of type Cell reading `inputSize` values.
template <class Cell>
Cell makeLayer(const NetworkChoice& network, Index l, Index inputSize) {
  using Scalar = typename Cell::Scalar;
  if constexpr (std::is_same_v<Cell, LRU<Scalar>>) {
    return Cell(inputSize, network.hidden, lruOptions(network, l));
  } else {
    const CellOptions options{.inputDensity = network.inputDensity, .recurrentDensity = network.density,
                              .maskSharing = network.sharing, .seed = network.layerSeed(l)};
    if constexpr (std::is_same_v<Cell, RNN<Scalar>>)
      return Cell(inputSize, network.hidden, options, RNNOptions{.leak = network.leak});
    else
      return Cell(inputSize, network.hidden, options);
  }
}

/// The network reading `inputSize` values: one cell of type Cell, or, for Cell = Stack, the
/// layers of --cell stacked.
template <class Cell>
Cell makeNetwork(const NetworkChoice& network, Index inputSize) {
  using Scalar = typename Cell::Scalar;
  if constexpr (std::is_same_v<Cell, Stack<Scalar>>) {
    std::vector<Layer<Scalar>> layers;
    for (Index l = 0; l < network.layers; ++l) {
      const Index input = l == 0 ? inputSize : network.hidden;
      if (network.cell == "rnn") layers.emplace_back(makeLayer<RNN<Scalar>>(network, l, input));
      else if (network.cell == "gru") layers.emplace_back(makeLayer<GRU<Scalar>>(network, l, input));
      else if (network.cell == "lstm") layers.emplace_back(makeLayer<LSTM<Scalar>>(network, l, input));
      else layers.emplace_back(makeLayer<LRU<Scalar>>(network, l, input));
    }
    return Stack<Scalar>(std::move(layers));
  } else {
    return makeLayer<Cell>(network, 0, inputSize);
  }
}

/// Calls run(std::type_identity<Cell>{}) with the network's cell type: Stack<Scalar> for two or
/// more layers, else the one cell's type.
template <class Scalar, class Run>
auto withNetwork(const NetworkChoice& network, Run&& run) {
  if (network.layers > 1) return run(std::type_identity<Stack<Scalar>>{});
  if (network.cell == "rnn") return run(std::type_identity<RNN<Scalar>>{});
  if (network.cell == "gru") return run(std::type_identity<GRU<Scalar>>{});
  if (network.cell == "lstm") return run(std::type_identity<LSTM<Scalar>>{});
  return run(std::type_identity<LRU<Scalar>>{});
}

}  // namespace snap::examples
