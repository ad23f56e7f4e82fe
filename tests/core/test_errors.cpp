// Every misuse throws the documented snap::Error subclass whose message reads
// "snap: <argument>: expected <expected>, got <given>" (core/error.hpp), and a rejected call
// changes nothing: the cell keeps its tensors and masks, the engine goes on as if never called.
// The training pieces' misuse is in tests/train/test_training_errors.cpp, the checkpoints' in
// tests/io/test_checkpoint_errors.cpp.

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../support/archive.hpp"
#include "../support/expect_error.hpp"
#include "../support/reference.hpp"

namespace snap::test {
namespace {

template <class C>
class Errors : public ::testing::Test {};
using DoubleCells = ::testing::Types<RNN<double>, GRU<double>, LSTM<double>>;
TYPED_TEST_SUITE(Errors, DoubleCells);

constexpr Index kInputs = 3;
constexpr Index kHidden = 4;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInfinity = std::numeric_limits<double>::infinity();

/// Everything a rejected call must leave unchanged on a cell.
template <class C>
void expectSameCell(const C& cell, const C& before) {
  EXPECT_EQ(cell.weight_ih(), before.weight_ih());
  EXPECT_EQ(cell.weight_hh(), before.weight_hh());
  EXPECT_EQ(cell.bias_ih(), before.bias_ih());
  EXPECT_EQ(cell.bias_hh(), before.bias_hh());
  EXPECT_EQ(cell.mask_ih(), before.mask_ih());
  EXPECT_EQ(cell.mask_hh(), before.mask_hh());
  EXPECT_EQ(cell.maskVersion(), before.maskVersion());
  EXPECT_EQ(cell.parameterCount(), before.parameterCount());
  EXPECT_EQ(cell.dynamicsGraph(), before.dynamicsGraph());
}

/// A sparse cell whose masks have zeros in every tensor.
template <class C>
C sparseCell() {
  return C(kInputs, kHidden, {.inputDensity = 0.5, .recurrentDensity = 0.5, .seed = 7});
}

TYPED_TEST(Errors, CellSizes) {
  expectError<ShapeError>([] { TypeParam(kInputs, 0); }, "hiddenSize");
  expectError<ShapeError>([] { TypeParam(kInputs, -2); }, "hiddenSize");
  expectError<ShapeError>([] { TypeParam(0, kHidden); }, "inputSize");
  expectError<ShapeError>([] { TypeParam(-1, kHidden); }, "inputSize");
}

TYPED_TEST(Errors, Densities) {
  for (double density : {0.0, 1.5, kNaN, -0.25, -kInfinity, kInfinity, 1.0 + 1e-12}) {
    SCOPED_TRACE(::testing::Message() << "density " << density);
    expectError<ValueError>([&] { TypeParam(kInputs, kHidden, {.inputDensity = density}); }, "inputDensity");
    expectError<ValueError>([&] { TypeParam(kInputs, kHidden, {.recurrentDensity = density}); }, "recurrentDensity");
    Random random(1);
    expectError<ValueError>([&] { randomMask<double>(3, 4, 5, density, MaskSharing::PerGate, random); }, "density");
  }
}

TYPED_TEST(Errors, MasksOfTheWrongShape) {
  TypeParam cell = sparseCell<TypeParam>();
  const TypeParam before = cell;
  const Index rows = cell.gateRows();
  using Mask = RowMatrix<double>;
  const Mask ih = cell.mask_ih(), hh = cell.mask_hh();
  expectError<ShapeError>([&] { cell.setMasks(Mask::Ones(rows + 1, kInputs), hh); }, "mask_ih");
  expectError<ShapeError>([&] { cell.setMasks(Mask::Ones(rows, kInputs - 1), hh); }, "mask_ih");
  expectError<ShapeError>([&] { cell.setMasks(ih.transpose(), hh); }, "mask_ih");
  expectError<ShapeError>([&] { cell.setMasks(ih, Mask::Ones(rows - 1, kHidden)); }, "mask_hh");
  expectError<ShapeError>([&] { cell.setMasks(ih, Mask::Ones(rows, kHidden + 1)); }, "mask_hh");
  if (rows != kHidden) expectError<ShapeError>([&] { cell.setMasks(ih, hh.transpose()); }, "mask_hh");
  expectSameCell(cell, before);
}

TYPED_TEST(Errors, MaskEntriesThatAreNotZeroOrOne) {
  TypeParam cell = sparseCell<TypeParam>();
  const TypeParam before = cell;
  for (double entry : {0.5, -1.0, 2.0, kNaN}) {
    SCOPED_TRACE(::testing::Message() << "entry " << entry);
    RowMatrix<double> ih = cell.mask_ih(), hh = cell.mask_hh();
    ih(1, 2) = entry;
    expectError<ValueError>([&] { cell.setMasks(ih, cell.mask_hh()); }, "mask_ih");
    hh(cell.gateRows() - 1, 0) = entry;
    expectError<ValueError>([&] { cell.setMasks(cell.mask_ih(), hh); }, "mask_hh");
  }
  expectSameCell(cell, before);
}

TYPED_TEST(Errors, TensorsOfTheWrongShape) {
  TypeParam cell = sparseCell<TypeParam>();
  const TypeParam before = cell;
  const Index rows = cell.gateRows();
  const CellTensors<double> good = cell.tensors();
  auto withShape = [&](int which, Index extraRows, Index extraCols) {
    CellTensors<double> tensors = good;
    if (which == 0) tensors.weight_ih = RowMatrix<double>::Zero(rows + extraRows, kInputs + extraCols);
    if (which == 1) tensors.weight_hh = RowMatrix<double>::Zero(rows + extraRows, kHidden + extraCols);
    if (which == 2) tensors.bias_ih = Vector<double>::Zero(rows + extraRows);
    if (which == 3) tensors.bias_hh = Vector<double>::Zero(rows + extraRows);
    return tensors;
  };
  const char* names[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  for (int which = 0; which < 4; ++which) {
    SCOPED_TRACE(names[which]);
    for (auto [extraRows, extraCols] : {std::pair<Index, Index>{1, 0}, {-1, 0}, {0, 1}, {0, -1}}) {
      if (which >= 2 && extraCols != 0) continue;
      const CellTensors<double> bad = withShape(which, extraRows, extraCols);
      expectError<ShapeError>([&] { cell.setTensors(bad); }, names[which]);
      expectError<ShapeError>([&] { cell.setWeights(bad.weight_ih, bad.weight_hh, bad.bias_ih, bad.bias_hh); },
                              names[which]);
    }
  }
  // A bias given as a row, or as a matrix, is not a column of G·H.
  const RowMatrix<double> biasRow = good.bias_ih.transpose();
  const Matrix<double> biasMatrix = Matrix<double>::Zero(rows, 2);
  expectError<ShapeError>([&] { cell.setWeights(good.weight_ih, good.weight_hh, biasRow, good.bias_hh); }, "bias_ih");
  expectError<ShapeError>([&] { cell.setWeights(good.weight_ih, good.weight_hh, good.bias_ih, biasMatrix); },
                          "bias_hh");
  expectSameCell(cell, before);
}

TYPED_TEST(Errors, NonFiniteTensorsAndWeightsAtMaskedPositions) {
  TypeParam cell = sparseCell<TypeParam>();
  const TypeParam before = cell;
  const CellTensors<double> good = cell.tensors();
  for (double value : {kNaN, kInfinity, -kInfinity}) {
    SCOPED_TRACE(::testing::Message() << "value " << value);
    CellTensors<double> bad = good;
    bad.weight_ih(0, 0) = value;
    expectError<ValueError>([&] { cell.setTensors(bad); }, "weight_ih");
    bad = good;
    bad.weight_hh(1, 1) = value;
    expectError<ValueError>([&] { cell.setWeights(bad.weight_ih, bad.weight_hh, bad.bias_ih, bad.bias_hh); },
                            "weight_hh");
    bad = good;
    bad.bias_ih[2] = value;
    expectError<ValueError>([&] { cell.setTensors(bad); }, "bias_ih");
    bad = good;
    bad.bias_hh[0] = value;
    expectError<ValueError>([&] { cell.setTensors(bad); }, "bias_hh");
  }
  // A nonzero weight where the mask is 0; a nonzero bias is always fine.
  auto firstMasked = [](const RowMatrix<double>& mask) {
    for (Index r = 0; r < mask.rows(); ++r)
      for (Index c = 0; c < mask.cols(); ++c)
        if (mask(r, c) == 0.0) return std::pair<Index, Index>{r, c};
    return std::pair<Index, Index>{-1, -1};
  };
  const auto [rowIh, colIh] = firstMasked(cell.mask_ih());
  const auto [rowHh, colHh] = firstMasked(cell.mask_hh());
  ASSERT_GE(rowIh, 0);
  ASSERT_GE(rowHh, 0);
  CellTensors<double> bad = good;
  bad.weight_ih(rowIh, colIh) = 0.25;
  expectError<ValueError>([&] { cell.setTensors(bad); }, "weight_ih");
  bad = good;
  bad.weight_hh(rowHh, colHh) = -1e-300;
  expectError<ValueError>([&] { cell.setWeights(bad.weight_ih, bad.weight_hh, bad.bias_ih, bad.bias_hh); },
                          "weight_hh");
  expectSameCell(cell, before);
}

TYPED_TEST(Errors, ParameterVectors) {
  TypeParam cell = sparseCell<TypeParam>();
  const TypeParam before = cell;
  const Index p = cell.parameterCount();
  for (Index length : {p - 1, p + 1, Index{0}}) {
    SCOPED_TRACE(::testing::Message() << "length " << length);
    expectError<ShapeError>([&] { cell.setParameters(Vector<double>::Zero(length)); }, "parameters");
    expectError<ShapeError>([&] { cell.unflatten(Vector<double>::Zero(length)); }, "parameter vector");
  }
  Vector<double> theta = cell.parameters();
  theta[p / 2] = kNaN;
  expectError<ValueError>([&] { cell.setParameters(theta); }, "parameters");
  expectSameCell(cell, before);
}

TYPED_TEST(Errors, ForwardArguments) {
  const TypeParam cell = sparseCell<TypeParam>();
  const Index k = cell.stateSize();
  const Vector<double> x = Vector<double>::Zero(kInputs), s = Vector<double>::Zero(k);
  Vector<double> next(k), shortNext(k - 1);
  StepCache<double> cache = cell.makeCache();
  StepCache<double> otherCache = TypeParam(kInputs, kHidden + 1).makeCache();
  expectError<ShapeError>([&] { cell.forward(Vector<double>::Zero(kInputs + 1), s, next, cache); }, "input");
  expectError<ShapeError>([&] { cell.forward(x, Vector<double>::Zero(k + 1), next, cache); }, "state");
  expectError<ShapeError>([&] { cell.forward(x, s, shortNext, cache); }, "next state");
  expectError<ShapeError>([&] { cell.forward(x, s, next, otherCache); }, "cache.immediateIh");
}

/// A fixed stream of inputs and state gradients for the engine tests.
struct Stream {
  std::vector<Vector<double>> inputs, deltas;
  Stream(Index stateSize, Index steps) {
    Random random(99);
    for (Index t = 0; t < steps; ++t) {
      inputs.push_back(randomVector(random, kInputs));
      deltas.push_back(randomVector(random, stateSize));
    }
  }
};

/// Runs `engine` over `stream`; before each step and each accumulate, `misuse(engine, t)` may
/// make rejected calls. Returns the gradient.
template <class Engine, class Misuse>
Vector<double> runWith(Engine& engine, const Stream& stream, Misuse&& misuse) {
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    misuse(engine, t);
    engine.step(stream.inputs[t]);
    misuse(engine, t);
    engine.accumulate(stream.deltas[t]);
  }
  return engine.gradient();
}

/// Each engine kind on the same cell: RTRL, untruncated BPTT, BPTT over windows of 3,
/// SnAp-1, SnAp-2 and UORO.
template <class C, class Check>
void forEachEngine(const C& cell, Check&& check) {
  {
    SCOPED_TRACE("SnAp-1");
    SnAp<C> engine(cell, {.n = 1}), clean(cell, {.n = 1});
    check(engine, clean);
  }
  {
    SCOPED_TRACE("SnAp-2");
    SnAp<C> engine(cell, {.n = 2}), clean(cell, {.n = 2});
    check(engine, clean);
  }
  {
    SCOPED_TRACE("UORO");
    UORO<C> engine(cell, {.seed = 5}), clean(cell, {.seed = 5});
    check(engine, clean);
  }
  {
    SCOPED_TRACE("RTRL");
    RTRL<C> engine(cell), clean(cell);
    check(engine, clean);
  }
  {
    SCOPED_TRACE("BPTT");
    BPTT<C> engine(cell), clean(cell);
    check(engine, clean);
  }
  {
    SCOPED_TRACE("BPTT, window 3");
    BPTT<C> engine(cell, {.window = 3}), clean(cell, {.window = 3});
    check(engine, clean);
  }
}

TYPED_TEST(Errors, EngineArgumentsAndOrder) {
  const TypeParam cell = sparseCell<TypeParam>();
  const Index k = cell.stateSize();
  const Stream stream(k, 8);
  forEachEngine(cell, [&](auto& engine, auto& clean) {
    // Before any step, and right after a reset, there is no step to accumulate on.
    expectError<UsageError>([&] { engine.accumulate(stream.deltas[0]); }, "accumulate");
    engine.step(stream.inputs[0]);
    engine.resetState();
    expectError<UsageError>([&] { engine.accumulate(stream.deltas[0]); }, "accumulate");
    engine.resetGradient();
    clean.step(stream.inputs[0]);  // the same history (UORO has drawn its first ν)
    clean.resetState();

    // Every rejected call in the middle of a sequence leaves the gradient exactly as without it.
    const auto misuse = [&](auto& used, std::size_t) {
      expectError<ShapeError>([&] { used.step(Vector<double>::Zero(kInputs + 1)); }, "input");
      expectError<ShapeError>([&] { used.step(Vector<double>::Zero(kInputs - 1)); }, "input");
      expectError<ShapeError>([&] { used.resetState(Vector<double>::Zero(k + 1)); }, "initial state");
      expectError<ShapeError>([&] { used.resetState(Vector<double>::Zero(k - 1)); }, "initial state");
      if (used.steps() > 0) {
        expectError<ShapeError>([&] { used.accumulate(Vector<double>::Zero(k + 1)); }, "state gradient");
        expectError<ShapeError>([&] { used.accumulate(Vector<double>::Zero(k - 1)); }, "state gradient");
      }
    };
    const Vector<double> gradient = runWith(engine, stream, misuse);
    const Vector<double> expected = runWith(clean, stream, [](auto&, std::size_t) {});
    EXPECT_EQ(gradient, expected);
  });
}

TYPED_TEST(Errors, BpttWindow) {
  const TypeParam cell = sparseCell<TypeParam>();
  for (Index window : {Index{0}, Index{-3}}) {
    SCOPED_TRACE(::testing::Message() << "window " << window);
    expectError<ValueError>([&] { BPTT<TypeParam>(cell, {.window = window}); }, "BPTTOptions::window");
  }
}

TYPED_TEST(Errors, EngineWhoseCellWasReplacedBySizes) {
  const Stream stream(2 * kHidden, 1);
  for (auto [inputs, hidden] : {std::pair<Index, Index>{kInputs, kHidden + 2}, {kInputs, kHidden - 1},
                                {kInputs + 1, kHidden}}) {
    SCOPED_TRACE(::testing::Message() << "replaced by input " << inputs << ", hidden " << hidden);
    TypeParam cell(kInputs, kHidden, {.seed = 1});
    RTRL<TypeParam> rtrl(cell);
    BPTT<TypeParam> bptt(cell);
    rtrl.step(stream.inputs[0]);
    bptt.step(stream.inputs[0]);
    cell = TypeParam(inputs, hidden, {.seed = 2});
    const Vector<double> x = Vector<double>::Zero(inputs);
    expectError<ShapeError>([&] { rtrl.step(x); }, "cell");
    expectError<ShapeError>([&] { bptt.step(x); }, "cell");
  }
}

TYPED_TEST(Errors, EngineWhoseCellWasReplacedBeforeConsumingTheStep) {
  // Between step() and accumulate(), gradient() or resetState() the stored step no longer fits.
  const Stream stream(kHidden, 1);
  TypeParam cell(kInputs, kHidden, {.seed = 1});
  RTRL<TypeParam> rtrl(cell);
  BPTT<TypeParam> bptt(cell);
  rtrl.step(stream.inputs[0]);
  bptt.step(stream.inputs[0]);
  cell = TypeParam(kInputs, 2 * kHidden, {.recurrentDensity = 0.5, .seed = 2});
  const Vector<double> delta = Vector<double>::Ones(cell.stateSize());
  for (const Vector<double>& gradient : {delta, Vector<double>(delta.head(delta.size() / 2))}) {
    expectError<ShapeError>([&] { rtrl.accumulate(gradient); }, "cell");
    expectError<ShapeError>([&] { bptt.accumulate(gradient); }, "cell");
  }
  expectError<ShapeError>([&] { rtrl.influence(); }, "cell");
  expectError<ShapeError>([&] { bptt.gradient(); }, "cell");
  // resetState() has to backpropagate the open window only when it holds a δ.
  TypeParam other(kInputs, kHidden, {.seed = 3});
  BPTT<TypeParam> withDelta(other);
  withDelta.step(stream.inputs[0]);
  withDelta.accumulate(Vector<double>::Ones(other.stateSize()));
  other = TypeParam(kInputs, 2 * kHidden, {.seed = 4});
  expectError<ShapeError>([&] { withDelta.resetState(); }, "cell");
  expectError<ShapeError>([&] { bptt.step(stream.inputs[0]); }, "cell");
}

TYPED_TEST(Errors, AccumulateAfterAMaskChange) {
  // A step taken under the old masks cannot be consumed under the new ones; the next step can.
  TypeParam cell = sparseCell<TypeParam>();
  const Stream stream(cell.stateSize(), 2);
  RTRL<TypeParam> rtrl(cell);
  BPTT<TypeParam> bptt(cell);
  rtrl.step(stream.inputs[0]);
  bptt.step(stream.inputs[0]);
  cell.setMasks(cell.mask_ih(), RowMatrix<double>::Ones(cell.gateRows(), kHidden));
  expectError<UsageError>([&] { rtrl.accumulate(stream.deltas[0]); }, "accumulate");
  expectError<UsageError>([&] { bptt.accumulate(stream.deltas[0]); }, "accumulate");
  expectError<UsageError>([&] { rtrl.influence(); }, "influence");
  rtrl.step(stream.inputs[1]);
  bptt.step(stream.inputs[1]);
  rtrl.accumulate(stream.deltas[1]);
  bptt.accumulate(stream.deltas[1]);
  EXPECT_EQ(rtrl.influence().cols(), cell.parameterCount());
  EXPECT_EQ(rtrl.gradient().size(), cell.parameterCount());
  EXPECT_EQ(bptt.gradient().size(), cell.parameterCount());
}

TYPED_TEST(Errors, BpttAccumulateAfterAMaskChangeAndARejectedStep) {
  // The mask change empties BPTT's window at the next step(); if that step is rejected, there is
  // no step to accumulate on until a step() succeeds.
  TypeParam cell = sparseCell<TypeParam>();
  const Stream stream(cell.stateSize(), 2);
  BPTT<TypeParam> bptt(cell);
  bptt.step(stream.inputs[0]);
  bptt.accumulate(stream.deltas[0]);
  RowMatrix<double> maskHh = cell.mask_hh();
  maskHh.col(0).setZero();
  cell.setMasks(cell.mask_ih(), maskHh);
  expectError<ShapeError>([&] { bptt.step(Vector<double>::Zero(kInputs + 1)); }, "input");
  expectError<UsageError>([&] { bptt.accumulate(stream.deltas[0]); }, "accumulate");
  bptt.step(stream.inputs[1]);
  bptt.accumulate(stream.deltas[1]);
  EXPECT_EQ(bptt.gradient().size(), cell.parameterCount());
}

/// A cell type that only exposes CellBase's constructor, to pass it a malformed structure.
struct BareCell : CellBase<double> {
  explicit BareCell(CellStructure structure) : CellBase<double>(kInputs, kHidden, std::move(structure), {}) {}
};

TEST(StructureErrors, MalformedCellStructure) {
  expectError<ValueError>([] { BareCell({.gates = 0, .unitStates = 1, .reach = {}, .direct = {0}}); },
                          "CellStructure::gates");
  expectError<ValueError>([] { BareCell({.gates = 1, .unitStates = 0, .reach = {}, .direct = {}}); },
                          "CellStructure::unitStates");
  expectError<ShapeError>([] { BareCell({.gates = 2, .unitStates = 1, .reach = {1}, .direct = {0}}); },
                          "CellStructure::reach");
  expectError<ShapeError>([] { BareCell({.gates = 1, .unitStates = 2, .reach = {1, 1}, .direct = {0}}); },
                          "CellStructure::direct");
}

TEST(StructureErrors, SparsityPatternColumnOutOfRange) {
  expectError<ShapeError>([] { SparsityPattern(3, {{0, 1}, {3}}); }, "pattern column");
  expectError<ShapeError>([] { SparsityPattern(3, {{-1}}); }, "pattern column");
}

// --- Non-finite values where they enter, and the newer engines' own arguments ---

TYPED_TEST(Errors, NonFiniteValuesEnteringAnEngine) {
  // A NaN or an infinity in x_t, δ_t or s_0 is refused before anything changes: the gradient
  // and the whole saved state are exactly those of an engine that never saw the calls.
  const TypeParam cell = sparseCell<TypeParam>();
  const Index k = cell.stateSize();
  const Stream stream(k, 6);
  forEachEngine(cell, [&](auto& engine, auto& clean) {
    const auto misuse = [&](auto& used, std::size_t t) {
      for (double bad : {kNaN, kInfinity, -kInfinity}) {
        Vector<double> x = stream.inputs[t], delta = stream.deltas[t], initial = Vector<double>::Zero(k);
        x[t % kInputs] = bad;
        delta[t % k] = bad;
        initial[k - 1] = bad;
        expectError<NonFiniteError>([&] { used.step(x); }, "input");
        expectError<NonFiniteError>([&] { used.resetState(initial); }, "initial state");
        if (used.steps() > 0) expectError<NonFiniteError>([&] { used.accumulate(delta); }, "state gradient");
      }
    };
    const Vector<double> gradient = runWith(engine, stream, misuse);
    EXPECT_EQ(gradient, runWith(clean, stream, [](auto&, std::size_t) {}));
    EXPECT_TRUE(sameArchive(stateOf(engine), stateOf(clean)));
  });
}

TEST(NonFiniteErrors, AnEngineRefusesANextStateThatOverflows) {
  // Finite input and weights whose preactivations overflow to −∞ and +∞: tanh(−∞ + ∞) is NaN.
  RNN<double> cell(1, 1);
  cell.setWeights(RowMatrix<double>::Constant(1, 1, -10.0), RowMatrix<double>::Constant(1, 1, 1e308),
                  Vector<double>::Zero(1), Vector<double>::Constant(1, 1e308));
  const Vector<double> x = Vector<double>::Constant(1, 1e308), one = Vector<double>::Ones(1);
  auto check = [&](auto engine) {
    engine.resetState(one);
    const NpzArchive before = stateOf(engine);
    expectError<NonFiniteError>([&] { engine.step(x); }, "next state");
    EXPECT_TRUE(sameArchive(stateOf(engine), before));
    EXPECT_EQ(engine.steps(), 0);
  };
  check(RTRL<RNN<double>>(cell));
  check(SnAp<RNN<double>>(cell, {.n = 2}));
  check(UORO<RNN<double>>(cell));
  check(BPTT<RNN<double>>(cell, {.window = 2}));
}

TYPED_TEST(Errors, UoroOptionsAndEstimates) {
  const TypeParam cell = sparseCell<TypeParam>();
  for (double epsilon : {0.0, -1e-7, kNaN, kInfinity}) {
    SCOPED_TRACE(::testing::Message() << "epsilon " << epsilon);
    expectError<ValueError>([&] { UORO<TypeParam>(cell, {.epsilon = epsilon}); }, "UOROOptions::epsilon");
  }
  UORO<TypeParam> uoro(cell);
  const Index k = cell.stateSize(), p = cell.parameterCount();
  const Vector<double> s = Vector<double>::Ones(k), theta = Vector<double>::Ones(p);
  expectError<ShapeError>([&] { uoro.setEstimate(Vector<double>::Ones(k + 1), theta); }, "state estimate");
  expectError<ShapeError>([&] { uoro.setEstimate(s, Vector<double>::Ones(p - 1)); }, "parameter estimate");
  Vector<double> bad = theta;
  bad[p / 2] = kNaN;
  expectError<NonFiniteError>([&] { uoro.setEstimate(s, bad); }, "parameter estimate");
  EXPECT_EQ(uoro.parameterEstimate(), Vector<double>::Zero(p));
}

TYPED_TEST(Errors, SnApOptionsAndInfluenceIndices) {
  const TypeParam cell = sparseCell<TypeParam>();
  for (int n : {0, -1}) expectError<ValueError>([&] { SnAp<TypeParam>(cell, {.n = n}); }, "SnApOptions::n");
  SnAp<TypeParam> engine(cell, {.n = 2});
  engine.step(Vector<double>::Ones(kInputs));
  const Index k = cell.stateSize(), p = cell.parameterCount();
  expectError<ShapeError>([&] { engine.influence(-1, 0); }, "row");
  expectError<ShapeError>([&] { engine.influence(k, 0); }, "row");
  expectError<ShapeError>([&] { engine.influence(0, -1); }, "j");
  expectError<ShapeError>([&] { engine.influence(0, p); }, "j");
}

TYPED_TEST(Errors, InfluenceAndFlushAfterAMaskChange) {
  // The pending influence update of a step taken under the old masks cannot run under new ones.
  TypeParam cell = sparseCell<TypeParam>();
  SnAp<TypeParam> snap(cell, {.n = 2});
  RTRL<TypeParam> rtrl(cell);
  snap.step(Vector<double>::Ones(kInputs));
  rtrl.step(Vector<double>::Ones(kInputs));
  cell.setMasks(cell.mask_ih(), RowMatrix<double>::Ones(cell.gateRows(), kHidden));
  expectError<UsageError>([&] { snap.influence(0, 0); }, "influence");
  expectError<UsageError>([&] { snap.flush(); }, "flush");
  expectError<UsageError>([&] { rtrl.flush(); }, "flush");
}

TEST(EngineOptionErrors, RtrlDenseDynamicsThreshold) {
  const GRU<double> cell(kInputs, kHidden);
  expectError<ValueError>([&] { RTRL<GRU<double>>(cell, {.denseDynamicsAbove = kNaN}); },
                          "RTRLOptions::denseDynamicsAbove");
}

}  // namespace
}  // namespace snap::test
