// Engines follow a mask change of a stack (docs/math.md §9; the engines' "rebuild after a mask
// change"): a stack's masks change between two sequences, every engine bound to it rebuilds, and
// its gradient over the next sequence is exactly that of an engine built after the change, and
// equals finite differences of the reference equations of the new layers. Both directions: masks
// that drop entries (the composed patterns shrink) and masks that restore every entry (they
// grow). One test per engine and direction, so that a failure names both (a heap overflow under
// the sanitizers, or a wrong gradient, fails only its own test).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr Index kSteps = 12;

enum class Change { Shrink, Grow };

/// A GRU → LRU(tanh) stack with sparse masks.
Stack<double> sparseStack() {
  return Stack<double>(GRU<double>(3, 5, {.inputDensity = 0.6, .recurrentDensity = 0.4, .seed = 600}),
                       LRU<double>(5, 3, {.inputDensity = 0.6, .activation = LRUActivation::Tanh, .seed = 601}));
}

/// New masks: some entries dropped (layer 0's input 1 and gate row 2 of W_hh, the LRU's unit 0
/// reading no input), or every entry kept.
std::vector<RowMatrix<double>> changedMasks(const Stack<double>& stack, Change change) {
  std::vector<RowMatrix<double>> masks;
  for (Index t = 0; t < stack.layout().tensorCount(); ++t) {
    const TensorSpec& spec = stack.layout().tensor(t);
    masks.push_back(change == Change::Grow ? RowMatrix<double>::Ones(spec.rows, spec.cols)
                                           : RowMatrix<double>(stack.layout().mask(t).cast<double>()));
  }
  if (change == Change::Shrink) {
    masks[0].col(1).setZero();  // layer0/weight_ih
    masks[1].row(2).setZero();  // layer0/weight_hh
    masks[4].row(0).setZero();  // layer1/B_re
    masks[5].row(0).setZero();  // layer1/B_im
  }
  return masks;
}

/// An engine runs a sequence, the masks change, it runs the next sequence: its gradient over that
/// sequence equals a fresh engine's (built after the change) and, for the exact engines, finite
/// differences (`reference` computes the expected gradient of the new stack, or is empty).
template <class Engine>
void expectFollowsMaskChange(const typename Engine::Options& options, Change change,
                             const std::function<Vector<double>(const Stack<double>&, const ReferenceModel&, const OutputStream&)>& reference) {
  Stack<double> stack = sparseStack();
  const OutputStream first(3, stack.outputSize(), stack.stateSize(), 602, kSteps);
  const OutputStream second(3, stack.outputSize(), stack.stateSize(), 603, kSteps);
  Engine engine(stack, options);
  gradientOverOutputs(engine, first);
  const Index before = stack.parameterCount();
  stack.setParameterMasks(changedMasks(stack, change));
  ASSERT_NE(stack.parameterCount(), before);
  engine.resetGradient();
  const Vector<double> gradient = gradientOverOutputs(engine, second);
  ASSERT_EQ(gradient.size(), stack.parameterCount());
  Engine fresh(stack, options);
  const Vector<double> expected = gradientOverOutputs(fresh, second);
  ASSERT_GT(expected.norm(), 0.0);
  EXPECT_LE(relativeError(gradient, expected), 1e-12) << "the engine that lived through the change";
  if (reference) {
    const ReferenceModel model({referenceLayer(stack.layer(0).cell<GRU<double>>()), referenceLayer(stack.layer(1).cell<LRU<double>>())});
    EXPECT_LE(relativeError(expected, reference(stack, model, second)), 1e-6) << "an engine built after the change";
  }
}

Vector<double> finiteDifferenceGradient(const Stack<double>& stack, const ReferenceModel& model, const OutputStream& stream) {
  return finiteDifferenceOutputGradient(model, stack.parameters(), stream);
}
Vector<double> perLayerReference(const Stack<double>& stack, const ReferenceModel& model, const OutputStream& stream) {
  return perLayerGradient(model, stack.parameters(), stream);
}
Vector<double> epropReference(const Stack<double>& stack, const ReferenceModel& model, const OutputStream& stream) {
  return perLayerGradient(model, stack.parameters(), stream, true);
}

const int kClosed = 16;  // past the stack's state size (5 + 6): SnAp-n is RTRL

#define SNAP_MASK_CHANGE_TESTS(Direction)                                                                            \
  TEST(StackMaskChange, Rtrl##Direction) {                                                                           \
    expectFollowsMaskChange<RTRL<Stack<double>>>({}, Change::Direction, finiteDifferenceGradient);                  \
  }                                                                                                                  \
  TEST(StackMaskChange, Bptt##Direction) {                                                                           \
    expectFollowsMaskChange<BPTT<Stack<double>>>({}, Change::Direction, finiteDifferenceGradient);                  \
  }                                                                                                                  \
  TEST(StackMaskChange, SnAp##Direction) {                                                                           \
    expectFollowsMaskChange<SnAp<Stack<double>>>({.n = kClosed}, Change::Direction, finiteDifferenceGradient);      \
  }                                                                                                                  \
  TEST(StackMaskChange, SnApPerLayer##Direction) {                                                                   \
    expectFollowsMaskChange<SnAp<Stack<double>>>({.n = kClosed, .perLayer = true}, Change::Direction, perLayerReference); \
  }                                                                                                                  \
  TEST(StackMaskChange, EProp##Direction) {                                                                          \
    expectFollowsMaskChange<EProp<Stack<double>>>({}, Change::Direction, epropReference);                           \
  }                                                                                                                  \
  TEST(StackMaskChange, RollingBptt##Direction) {                                                                    \
    expectFollowsMaskChange<RollingBPTT<Stack<double>>>({.window = 4}, Change::Direction, nullptr);                 \
  }

SNAP_MASK_CHANGE_TESTS(Shrink)
SNAP_MASK_CHANGE_TESTS(Grow)

}  // namespace
}  // namespace snap::test
