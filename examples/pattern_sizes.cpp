// Prints, for one cell type and size, how many influence entries SnAp-1, -2, -3 and RTRL keep
// at recurrent densities 1, 0.25 and 0.1 (docs/math.md §4), as the markdown table of docs/engines.md.
//
//   pattern_sizes --cell gru --hidden 128 --inputs 32

#include <snap/snap.hpp>

#include <cstdio>
#include <string>

#include "common/command_line.hpp"

namespace {

template <class Cell>
void printTable(snap::Index inputs, snap::Index hidden) {
  std::printf("| density | masks | p | SnAp-1 | SnAp-2 | SnAp-3 | RTRL (k·p) | SnAp-2 / RTRL |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (double density : {1.0, 0.25, 0.1})
    for (auto sharing : {snap::MaskSharing::Shared, snap::MaskSharing::PerGate}) {
      if (density == 1.0 && sharing == snap::MaskSharing::PerGate) continue;  // identical when dense
      const Cell cell(inputs, hidden, {.recurrentDensity = density, .maskSharing = sharing, .seed = 1});
      const double rtrl = static_cast<double>(cell.stateSize()) * static_cast<double>(cell.parameterCount());
      std::printf("| %g | %s | %ld |", density, sharing == snap::MaskSharing::Shared ? "shared" : "per-gate",
                  static_cast<long>(cell.parameterCount()));
      double snap2 = 0;
      for (int n : {1, 2, 3}) {
        const auto kept = static_cast<double>(snap::SnApPattern::of(cell, n).keptEntries());
        if (n == 2) snap2 = kept;
        std::printf(" %.0f |", kept);
      }
      std::printf(" %.0f | %.3f |\n", rtrl, snap2 / rtrl);
    }
}

}  // namespace

int main(int argc, char** argv) {
  snap::examples::CommandLine line("pattern_sizes", "Prints the influence entries kept by SnAp-1, -2, -3 and RTRL.");
  line.flag("cell", "gru", "rnn | gru | lstm");
  line.flag("hidden", "128", "hidden units H");
  line.flag("inputs", "32", "input size m");
  try {
    if (!line.parse(argc, argv)) return 0;
    const std::string cell = line.choice("cell", {"rnn", "gru", "lstm"});
    const auto hidden = line.integer("hidden", 1, 4096), inputs = line.integer("inputs", 1, 4096);
    std::printf("%s, H = %lld, m = %lld (input density 1)\n\n", cell.c_str(), hidden, inputs);
    if (cell == "rnn") printTable<snap::RNN<float>>(inputs, hidden);
    if (cell == "gru") printTable<snap::GRU<float>>(inputs, hidden);
    if (cell == "lstm") printTable<snap::LSTM<float>>(inputs, hidden);
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "pattern_sizes: %s\n", error.message.c_str());
    return 2;
  }
  return 0;
}
