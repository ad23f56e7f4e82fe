// Sparse weight masks (docs/math.md §1, docs/cells.md): random masks drawn per gate block or shared by
// the gate blocks, what sharing does to the dynamics graph and to SnAp-2's cost, a mask of
// your own with setMasks(), and the order of the parameter vector θ.
//
//   masks --hidden 64 --density 0.1

#include <snap/snap.hpp>

#include <cstdio>

#include "common/command_line.hpp"

int main(int argc, char** argv) {
  snap::examples::CommandLine line("masks", "Random and user-defined masks of a GRU, and the order of θ.");
  line.flag("inputs", "8", "input size m");
  line.flag("hidden", "64", "hidden units H");
  line.flag("density", "0.1", "recurrent weight density of the random masks");
  try {
    if (!line.parse(argc, argv)) return 0;
    const snap::Index inputs = line.integer("inputs", 1, 4096), hidden = line.integer("hidden", 3, 4096);
    const double density = line.number("density", 1e-3, 1.0);

    // snippet-begin: random
    for (const auto sharing : {snap::MaskSharing::PerGate, snap::MaskSharing::Shared}) {
      const snap::GRU<float> cell(inputs, hidden, {.recurrentDensity = density, .maskSharing = sharing, .seed = 1});
      const auto k = static_cast<double>(cell.stateSize());
      std::printf("%-9s %ld of %ld recurrent weights, dynamics graph density %.3f, SnAp-2 keeps %ld entries\n",
                  sharing == snap::MaskSharing::Shared ? "shared:" : "per-gate:",
                  static_cast<long>(cell.layout().tensorSize(cell.layout().findTensor("weight_hh"))), static_cast<long>(cell.weight_hh().size()),
                  static_cast<double>(cell.dynamicsGraph().nonZeros()) / (k * k),
                  static_cast<long>(snap::SnApPattern::of(cell, 2).keptEntries()));
    }
    // snippet-end: random

    // snippet-begin: user
    // A ring: unit u listens to units u − 1, u and u + 1 only, in each of the three gate blocks.
    snap::GRU<float> ring(inputs, hidden);
    snap::RowMatrix<float> maskHh = snap::RowMatrix<float>::Zero(ring.gateRows(), hidden);
    for (snap::Index r = 0; r < ring.gateRows(); ++r)
      for (const snap::Index offset : {-1, 0, 1}) maskHh(r, (r % hidden + offset + hidden) % hidden) = 1;
    ring.setMasks(ring.mask_ih(), maskHh);  // removed weights become 0; θ, its layout and the graph follow
    // snippet-end: user
    std::printf("ring:     p = %ld parameters, dynamics graph %ld entries (3 per unit)\n",
                static_cast<long>(ring.parameterCount()), static_cast<long>(ring.dynamicsGraph().nonZeros()));

    // snippet-begin: theta
    // θ = [active weight_ih, row-major; active weight_hh, row-major; bias_ih; bias_hh]
    const snap::ParameterLayout& layout = ring.layout();
    const snap::Vector<float> theta = ring.parameters();
    const snap::Index row = hidden + 2;                       // gate block z, unit 2
    const snap::Index hh = layout.findTensor("weight_hh"), biasHh = layout.findTensor("bias_hh");
    const auto column = layout.columns(hh, row)[0];           // its first active recurrent weight
    const float weight = theta[layout.offset(hh, row)];       // = weight_hh(row, column)
    const float bias = theta[layout.offset(biasHh, row)];     // = bias_hh[row]
    const snap::CellTensors<float> tensors = ring.unflatten(theta);  // θ-ordered → the four tensors
    // snippet-end: theta
    const bool ok = weight == ring.weight_hh()(row, column) && bias == ring.bias_hh()[row] &&
                    tensors.weight_hh == ring.weight_hh() && column == 1;
    std::printf("theta:    weight_hh(%ld, %ld) is θ[%ld], bias_hh[%ld] is θ[%ld]: %s\n", static_cast<long>(row),
                static_cast<long>(column), static_cast<long>(layout.offset(hh, row)), static_cast<long>(row),
                static_cast<long>(layout.offset(biasHh, row)), ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "masks: %s\n", error.message.c_str());
    return 2;
  }
}
