// An engine of your own (docs/custom-engine.md): "immediate only", the cheapest forward-mode
// gradient, which ignores the influence of earlier steps altogether (J_t ≈ I_t, SnAp-0 in
// spirit): g = Σ_t I_tᵀ δ_t. It is built from the cell's public products only, satisfies
// snap::Engine, is checked against BPTT with a window of one step (the same quantity), and
// then trains with the ordinary Trainer.
//
//   custom_engine --steps 100000

#include <snap/snap.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <utility>
#include <vector>

#include "common/command_line.hpp"
#include "common/copy_task_loop.hpp"

// snippet-begin: engine
/// g = Σ_b Σ_t I_tᵀ δ_t: each step's immediate Jacobian only, no influence carried (memory: none).
/// B streams are the columns of the inputs and states; this engine runs on the calling thread.
template <snap::Cell CellType_>
class ImmediateOnly {
public:
  using CellType = CellType_;
  using Scalar = typename CellType::Scalar;
  struct Options {};  // nothing to configure

  /// Binds to `cell`, which must outlive the engine and stay at the same address.
  explicit ImmediateOnly(const CellType& cell, const Options& = {}, const snap::Batch& batch = {})
      : m_cell(&cell), m_streams(batch.streams) {
    batch.validate();
    resize();
  }

  /// S_t = f(X_t, S_{t−1}) column by column; keeps each stream's cache and sources z (for a
  /// gated cell, z = [x; 1; h; 1]).
  const snap::Matrix<Scalar>& step(const snap::MatrixView<Scalar>& inputs) {
    if (m_cell->maskVersion() != m_maskVersion) resize();  // new masks: new layout and p
    for (snap::Index b = 0; b < m_streams; ++b) {
      auto& cache = m_caches[static_cast<std::size_t>(b)];
      m_cell->forward(inputs.col(b), m_state.col(b), m_next.col(b), cache);
      m_cell->sources(cache, inputs.col(b), m_state.col(b), m_sources.col(b));
    }
    std::swap(m_state, m_next);
    ++m_steps;
    return m_state;
  }

  /// g += Σ_b I_tᵀ δ_b, in factored form: each stream's factor gradient F_tᵀ δ_b expanded over θ.
  void accumulate(const snap::MatrixView<Scalar>& stateGradients) {
    for (snap::Index b = 0; b < m_streams; ++b) {
      m_cell->factorGradient(m_caches[static_cast<std::size_t>(b)], stateGradients.col(b), m_factorGradient);
      m_cell->layout().template addParameterGradient<Scalar>(m_factorGradient, m_sources.col(b), m_gradient);
    }
  }

  const snap::Vector<Scalar>& gradient() const { return m_gradient; }
  void resetGradient() { m_gradient.setZero(); }
  void resetState() {
    m_state.setZero();
    m_steps = 0;
  }
  void resetStream(snap::Index stream) { m_state.col(stream).setZero(); }
  const snap::Matrix<Scalar>& state() const { return m_state; }
  const CellType& cell() const { return *m_cell; }
  snap::Index streams() const { return m_streams; }
  snap::Index steps() const { return m_steps; }
  std::size_t bytes() const { return 0; }  // no influence state

private:
  void resize() {
    m_maskVersion = m_cell->maskVersion();
    m_caches.assign(static_cast<std::size_t>(m_streams), m_cell->makeCache());
    m_state = snap::Matrix<Scalar>::Zero(m_cell->stateSize(), m_streams);
    m_next = m_state;
    m_sources = snap::Matrix<Scalar>::Zero(m_cell->layout().sourceSize(), m_streams);
    m_factorGradient = snap::Vector<Scalar>::Zero(m_cell->layout().factorCount());
    m_gradient = snap::Vector<Scalar>::Zero(m_cell->parameterCount());
  }

  const CellType* m_cell;
  snap::Index m_streams;
  std::uint64_t m_maskVersion = 0;
  std::vector<snap::StepCache<Scalar>> m_caches;
  snap::Matrix<Scalar> m_state, m_next, m_sources;
  snap::Vector<Scalar> m_factorGradient, m_gradient;
  snap::Index m_steps = 0;
};

static_assert(snap::Engine<ImmediateOnly<snap::GRU<float>>>);
// snippet-end: engine

namespace {

/// ‖g − g_BPTT(1)‖ / ‖g_BPTT(1)‖ over 20 random steps of a sparse GRU in double precision.
double versusBpttWindowOne() {
  const snap::GRU<double> cell(3, 8, {.recurrentDensity = 0.25, .seed = 7});
  ImmediateOnly<snap::GRU<double>> mine(cell);
  snap::BPTT<snap::GRU<double>> reference(cell, {.window = 1});
  snap::Random random(8);
  snap::Vector<double> input(3), delta(cell.stateSize());
  for (int t = 0; t < 20; ++t) {
    for (snap::Index i = 0; i < input.size(); ++i) input[i] = random.uniform(-1, 1);
    for (snap::Index i = 0; i < delta.size(); ++i) delta[i] = random.uniform(-1, 1);
    mine.step(input);
    reference.step(input);
    mine.accumulate(delta);
    reference.accumulate(delta);
  }
  return (mine.gradient() - reference.gradient()).norm() / reference.gradient().norm();
}

}  // namespace

int main(int argc, char** argv) {
  snap::examples::CommandLine line("custom_engine", "A user-defined engine (immediate Jacobian only), checked and trained.");
  line.flag("hidden", "32", "hidden units H");
  line.flag("steps", "100000", "data time: input steps to train on");
  try {
    if (!line.parse(argc, argv)) return 0;
    const double difference = versusBpttWindowOne();
    std::printf("immediate-only engine vs BPTT(1): relative difference %.1e\n", difference);
    if (!(difference < 1e-12)) return 1;

    const snap::Index hidden = line.integer("hidden", 1, 4096);
    snap::CopyTask task({.seed = 1});
    snap::GRU<float> cell(task.inputSize(), hidden, {.recurrentDensity = 0.25, .seed = 1});
    snap::Readout<float> readout(hidden, task.outputSize(), 2);
    snap::Trainer<ImmediateOnly<snap::GRU<float>>> trainer(cell, readout, snap::Adam{.learningRate = 0.003},
                                                           {.clipNorm = 1.0});
    const snap::Index length = snap::examples::trainCopyTask(trainer, task, line.integer("steps", 1, 1LL << 40));
    std::printf("immediate-only engine: reached L = %ld (it sees no credit across steps)\n", static_cast<long>(length));
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "custom_engine: %s\n", error.message.c_str());
    return 2;
  }
  return 0;
}
