// Misuse of the new engines and of every engine on the new cells: each option is checked, a loss
// gradient over the outputs of the wrong length is refused with "snap: output gradient: expected
// length o, got …" (a cell whose output is not the head of its state: the LRU, a stack), and a
// refused call changes nothing (the engine goes on exactly as a twin that never saw the call).

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "../support/expect_error.hpp"
#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Checks that `call` throws a snap::Error whose message is exactly `message`.
template <class F>
void expectMessage(F&& call, const std::string& message) {
  try {
    call();
    ADD_FAILURE() << "no exception; expected \"" << message << "\"";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), message);
  }
}

TEST(NewEngineErrors, Options) {
  const GRU<double> gru(3, 4, {.seed = 1});
  const Stack<double> stack(GRU<double>(3, 4, {.seed = 2}), LRU<double>(4, 3, {.seed = 3}));
  for (Index window : {Index(0), Index(-3)}) {
    SCOPED_TRACE(::testing::Message() << "window " << window);
    expectError<ValueError>([&] { RollingBPTT<GRU<double>>(gru, {.window = window}); }, "RollingBPTTOptions::window");
    expectError<ValueError>([&] { RollingBPTT<Stack<double>>(stack, {.window = window}); }, "RollingBPTTOptions::window");
  }
  EXPECT_NO_THROW(RollingBPTT<GRU<double>>(gru, {.window = 1}));
  for (bool perLayer : {false, true}) {
    expectError<ValueError>([&] { SnAp<Stack<double>>(stack, {.n = 0, .perLayer = perLayer}); }, "SnApOptions::n");
    expectError<ValueError>([&] { SnAp<Stack<double>>(stack, {.denseBlockAbove = kNaN, .perLayer = perLayer}); },
                            "SnApOptions::denseBlockAbove");
  }
  expectError<ValueError>([&] { EProp<GRU<double>>(gru, {.denseBlockAbove = kNaN}); }, "EPropOptions::denseBlockAbove");
  expectError<ValueError>([&] { EProp<Stack<double>>(stack, {.denseBlockAbove = kNaN}); }, "EPropOptions::denseBlockAbove");
  for (const Batch& batch : {Batch{.streams = 0}, Batch{.threads = 0}}) {
    expectError<ValueError>([&] { RollingBPTT<GRU<double>>(gru, {}, batch); }, batch.streams == 0 ? "Batch::streams" : "Batch::threads");
    expectError<ValueError>([&] { EProp<Stack<double>>(stack, {}, batch); }, batch.streams == 0 ? "Batch::streams" : "Batch::threads");
  }
}

/// An engine on `cell` refuses loss gradients of the wrong length (naming "output gradient"),
/// non-finite ones, inputs of the wrong length, and an accumulate() before any step; after each
/// refusal it goes on exactly as a twin that never saw the call.
template <class Engine>
void expectRefusalsChangeNothing(const typename Engine::CellType& cell, const typename Engine::Options& options) {
  const Index o = cell.outputSize(), k = cell.stateSize(), m = cell.inputSize();
  Engine engine(cell, options), twin(cell, options);
  expectError<UsageError>([&] { engine.accumulate(Vector<double>::Zero(o)); }, "accumulate");
  Random random(3);
  for (int t = 0; t < 6; ++t) {
    const Vector<double> x = randomVector(random, m), delta = randomVector(random, o);
    if (t == 2) {
      expectError<ShapeError>([&] { engine.step(Vector<double>::Zero(m + 1)); }, "input");
      Vector<double> infinite = x;
      infinite[0] = std::numeric_limits<double>::infinity();
      expectError<NonFiniteError>([&] { engine.step(infinite); }, "input");
    }
    engine.step(x);
    twin.step(x);
    if (t == 2 || t == 4) {
      for (Index wrong : {k, o + 1, o - 1}) {
        if (wrong == o) continue;
        SCOPED_TRACE(::testing::Message() << "a gradient of length " << wrong);
        expectMessage([&] { engine.accumulate(Vector<double>::Ones(wrong)); },
                      "snap: output gradient: expected length " + std::to_string(o) + ", got " + std::to_string(wrong));
      }
      Vector<double> nan = delta;
      nan[o - 1] = kNaN;
      expectError<NonFiniteError>([&] { engine.accumulate(nan); }, "output gradient");
    }
    engine.accumulate(delta);
    twin.accumulate(delta);
    ASSERT_TRUE(engine.state() == twin.state()) << "after step " << t;
    ASSERT_TRUE(engine.outputs() == twin.outputs()) << "after step " << t;
  }
  ASSERT_GT(twin.gradient().norm(), 0.0);
  EXPECT_TRUE(engine.gradient() == twin.gradient());
  // B = 2: the plural names the batch's shape.
  Engine batch(cell, options, Batch{.streams = 2});
  batch.step(Matrix<double>::Ones(m, 2));
  const Index wrong = k != o ? k : o + 1;
  expectMessage([&] { batch.accumulate(Matrix<double>::Ones(wrong, 2)); },
                "snap: output gradients: expected shape " + std::to_string(o) + " x 2, got " + std::to_string(wrong) + " x 2");
}

template <class C>
void expectEveryEngineRefuses(const C& cell) {
  {
    SCOPED_TRACE("RTRL");
    expectRefusalsChangeNothing<RTRL<C>>(cell, {});
  }
  {
    SCOPED_TRACE("BPTT");
    expectRefusalsChangeNothing<BPTT<C>>(cell, {});
  }
  {
    SCOPED_TRACE("UORO");
    expectRefusalsChangeNothing<UORO<C>>(cell, {});
  }
  {
    SCOPED_TRACE("SnAp-2");
    expectRefusalsChangeNothing<SnAp<C>>(cell, {.n = 2});
  }
  {
    SCOPED_TRACE("SnAp-2 per layer");
    expectRefusalsChangeNothing<SnAp<C>>(cell, {.n = 2, .perLayer = true});
  }
  {
    SCOPED_TRACE("EProp");
    expectRefusalsChangeNothing<EProp<C>>(cell, {});
  }
  {
    SCOPED_TRACE("RollingBPTT(3)");
    expectRefusalsChangeNothing<RollingBPTT<C>>(cell, {.window = 3});
  }
}

TEST(NewEngineErrors, OutputGradientsOfTheLRU) {
  expectEveryEngineRefuses(LRU<double>(3, 5, {.activation = LRUActivation::Tanh, .seed = 4}));
  expectEveryEngineRefuses(LRU<double>(3, 4, {.outputSize = 2, .skip = false, .seed = 5}));
}

TEST(NewEngineErrors, OutputGradientsOfTheLRUWhenOutputAndStateHaveOneSize) {
  // m = 4 inputs, N = 2 units: o = m = 4 = k. The gradient is still over y, not over s.
  expectEveryEngineRefuses(LRU<double>(4, 2, {.seed = 6}));
}

TEST(NewEngineErrors, OutputGradientsOfStacks) {
  // The top layer's output (an LSTM's h, or an LRU's y) is not the head of the stack's state.
  expectEveryEngineRefuses(Stack<double>(GRU<double>(3, 5, {.seed = 7}), LSTM<double>(5, 4, {.seed = 8})));
  expectEveryEngineRefuses(Stack<double>(GRU<double>(3, 5, {.seed = 9}), LRU<double>(5, 3, {.seed = 10})));
}

TEST(NewEngineErrors, RollingBpttCallsOutOfOrder) {
  const GRU<double> gru(3, 4, {.seed = 11});
  RollingBPTT<GRU<double>> engine(gru, {.window = 2}), twin(gru, {.window = 2});
  expectError<UsageError>([&] { engine.commitStep(); }, "commitStep");
  expectError<ShapeError>([&] { engine.resetStream(1); }, "stream");
  expectError<ShapeError>([&] { engine.resetState(Vector<double>::Zero(5)); }, "initial state");
  Random random(12);
  for (int t = 0; t < 5; ++t) {
    const Vector<double> x = randomVector(random, 3), delta = randomVector(random, 4);
    engine.step(x);
    twin.step(x);
    engine.accumulate(delta);
    twin.accumulate(delta);
    expectError<UsageError>([&] { engine.commitStep(); }, "commitStep");
  }
  EXPECT_TRUE(engine.gradient() == twin.gradient());
  EXPECT_TRUE(engine.state() == twin.state());
  EXPECT_EQ(engine.windowSteps(), 2);
}

}  // namespace
}  // namespace snap::test
