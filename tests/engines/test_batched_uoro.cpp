// UORO over B streams (docs/design.md, "Batches and threads"): one engine equals B single-stream
// engines seeded seed + b, streams resetting at different times, and is bit-identical on 2 threads.

#include "../support/batched.hpp"

namespace snap::test {
namespace {

template <class C>
class BatchedUORO : public ::testing::Test {};
using Cells = ::testing::Types<RNN<double>, GRU<double>, LSTM<double>>;
TYPED_TEST_SUITE(BatchedUORO, Cells);

TYPED_TEST(BatchedUORO, EqualsSingleStreamEngines) {
  using Engine = UORO<TypeParam>;
  for (const TypeParam& cell : batched::cellsToCheck<TypeParam>(4, 6)) {
    const UOROOptions options{.seed = 21};
    batched::expectBatchedEqualsSingles<Engine>(
        cell, options, [&](Index b) { return UOROOptions{.seed = options.seed + static_cast<std::uint64_t>(b)}; }, 5,
        1e-12);
  }
}

TYPED_TEST(BatchedUORO, OneStreamIsTheSingleStreamEngine) {
  using Engine = UORO<TypeParam>;
  TypeParam cell(3, 5, {.recurrentDensity = 0.5, .seed = 8});
  batched::expectBatchedEqualsSingles<Engine>(cell, {.seed = 3}, [](Index) { return UOROOptions{.seed = 3}; }, 1, 0.0);
}

}  // namespace
}  // namespace snap::test
