// Must compile: the smallest complete custom cell, CellBase plus forward(), satisfies snap::Cell
// and instantiates every engine. The control for missing_forward.cpp (same command, same flags).

#include <cmath>

#include <snap/cells/cell_base.hpp>
#include <snap/cells/cell_concept.hpp>
#include <snap/engines/bptt.hpp>
#include <snap/engines/engine_concept.hpp>
#include <snap/engines/rtrl.hpp>

namespace {

/// h' = sin(W_ih x + b_ih + W_hh h + b_hh): one gate, state s = h.
class SineCell : public snap::CellBase<double> {
public:
  using Scalar = double;

  SineCell(snap::Index inputSize, snap::Index hiddenSize, const snap::CellOptions& options = {})
      : snap::CellBase<double>(inputSize, hiddenSize, {.gates = 1, .unitStates = 1, .reach = {1}, .direct = {0}},
                               options) {}

  /// next = f(input, state); the factor of both preactivations is cos of their sum.
  void forward(const snap::VectorView<double>& input, const snap::VectorView<double>& state,
               snap::VectorSpan<double> next, snap::StepCache<double>& cache) const {
    checkStep(input, state, next, cache);
    computePreactivations(input, state, cache);
    const snap::Index hidden = hiddenSize();
    for (snap::Index u = 0; u < hidden; ++u) {
      const double preactivation = cache.preactivations[u] + cache.preactivations[hidden + u];
      next[u] = std::sin(preactivation);
      cache.immediateIh(0, u) = std::cos(preactivation);
      cache.immediateHh(0, u) = std::cos(preactivation);
    }
  }
};

static_assert(snap::Cell<SineCell>);
static_assert(snap::Engine<snap::RTRL<SineCell>>);
static_assert(snap::Engine<snap::BPTT<SineCell>>);

}  // namespace

int main() {
  const SineCell cell(2, 3, {.recurrentDensity = 0.5});
  snap::RTRL<SineCell> rtrl(cell);
  snap::BPTT<SineCell> bptt(cell);
  const snap::Vector<double> input = snap::Vector<double>::Ones(2);
  rtrl.step(input);
  bptt.step(input);
  return 0;
}
