// The new engines and cells through a checkpoint (docs/reliability.md): an engine of B = 2
// streams saved on 2 threads in the middle of a run (a step taken whose δ has not come yet) and
// loaded into a fresh engine on 1 thread goes on bit-identically: the same states, outputs and
// gradients at every later step. For e-prop, SnAp per layer and rolling BPTT(L) on stacks and
// on the LRU.

#include <gtest/gtest.h>

#include <string>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr Index kStreams = 2;

void draw(Random& random, Index inputs, Index outputs, Matrix<double>& x, Matrix<double>& delta) {
  x.resize(inputs, kStreams);
  delta.resize(outputs, kStreams);
  for (Index i = 0; i < x.size(); ++i) x(i) = random.uniform(-1, 1);
  for (Index i = 0; i < delta.size(); ++i) delta(i) = random.uniform(-1, 1);
}

template <class Engine>
void expectResumesBitIdentically(const typename Engine::CellType& cell, const typename Engine::Options& options) {
  Engine original(cell, options, Batch{.streams = kStreams, .threads = 2});
  Random random(5);
  Matrix<double> x, delta;
  for (int t = 0; t < 6; ++t) {
    draw(random, cell.inputSize(), cell.outputSize(), x, delta);
    original.step(x);
    original.accumulate(delta);
    if (t == 3) original.resetStream(1);
  }
  draw(random, cell.inputSize(), cell.outputSize(), x, delta);
  original.step(x);  // its δ comes after the checkpoint
  NpzArchive archive;
  original.saveState(archive, "engine/");
  Engine resumed(cell, options, Batch{.streams = kStreams, .threads = 1});
  resumed.loadState(archive, "engine/");
  ASSERT_TRUE(resumed.state() == original.state());
  ASSERT_TRUE(resumed.outputs() == original.outputs());
  original.accumulate(delta);
  resumed.accumulate(delta);
  for (int t = 0; t < 6; ++t) {
    ASSERT_TRUE(resumed.gradient() == original.gradient())
        << "gradient before step " << t << ": relative difference " << relativeError(resumed.gradient(), original.gradient());
    draw(random, cell.inputSize(), cell.outputSize(), x, delta);
    ASSERT_TRUE(resumed.step(x) == original.step(x)) << "states after step " << t;
    ASSERT_TRUE(resumed.outputs() == original.outputs()) << "outputs after step " << t;
    original.accumulate(delta);
    resumed.accumulate(delta);
  }
  ASSERT_GT(original.gradient().norm(), 0.0);
  EXPECT_TRUE(resumed.gradient() == original.gradient());
}

const StackCase& deepStack() {
  static const StackCase c = mixedStacks()[1];  // GRU -> LSTM -> LRU(tanh)
  return c;
}
const LRU<double>& lru() {
  static const LRU<double> cell(3, 5, {.inputDensity = 0.6, .activation = LRUActivation::GELU, .seed = 3});
  return cell;
}

TEST(NewEngineCheckpoints, SnApPerLayerOnAStack) {
  expectResumesBitIdentically<SnAp<Stack<double>>>(deepStack().stack,
                                                   {.n = static_cast<int>(deepStack().stack.stateSize()), .perLayer = true});
}
TEST(NewEngineCheckpoints, SnAp2OnAStack) { expectResumesBitIdentically<SnAp<Stack<double>>>(deepStack().stack, {.n = 2}); }
TEST(NewEngineCheckpoints, SnAp2OnTheLRU) { expectResumesBitIdentically<SnAp<LRU<double>>>(lru(), {.n = 2}); }
TEST(NewEngineCheckpoints, EPropOnAStack) { expectResumesBitIdentically<EProp<Stack<double>>>(deepStack().stack, {}); }
TEST(NewEngineCheckpoints, RollingBpttOnAStack) {
  expectResumesBitIdentically<RollingBPTT<Stack<double>>>(deepStack().stack, {.window = 3});
}
TEST(NewEngineCheckpoints, RollingBpttOnTheLRU) { expectResumesBitIdentically<RollingBPTT<LRU<double>>>(lru(), {.window = 3}); }
TEST(NewEngineCheckpoints, RtrlOnAStack) { expectResumesBitIdentically<RTRL<Stack<double>>>(deepStack().stack, {}); }
TEST(NewEngineCheckpoints, BpttOnAStack) { expectResumesBitIdentically<BPTT<Stack<double>>>(deepStack().stack, {}); }

}  // namespace
}  // namespace snap::test
