// include/snap/io/weights.hpp: cells and readouts round-trip exactly through a weights file in
// PyTorch's layout, in either precision, and every malformed file is refused with a
// snap::FormatError naming the array, leaving the cell as it was.

#include <gtest/gtest.h>

#include <snap/io/weights.hpp>
#include <snap/snap.hpp>

#include <cstdio>
#include <string>

#include <unistd.h>

namespace snap {
namespace {

/// A file name of its own for each test and process (ctest runs tests in parallel).
std::string temporaryPath(const std::string& name) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string unique = std::string(test->test_suite_name()) + "_" + test->name() + "_" + std::to_string(::getpid());
  for (char& c : unique)
    if (c == '/') c = '_';
  return ::testing::TempDir() + "snap_test_weights_" + unique + "_" + name + ".npz";
}

/// A temporary file's path, removed at the end of the test.
struct TemporaryFile {
  std::string path;
  explicit TemporaryFile(const std::string& name) : path(temporaryPath(name)) {}
  ~TemporaryFile() { std::remove(path.c_str()); }
};

/// Expects `action` to throw a FormatError whose message contains every fragment.
template <class Action>
void expectFormatError(Action&& action, std::initializer_list<std::string> fragments) {
  try {
    action();
    ADD_FAILURE() << "no FormatError";
  } catch (const FormatError& error) {
    for (const std::string& fragment : fragments) EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

template <class C>
class WeightsRoundTrip : public ::testing::Test {};
using Cells = ::testing::Types<RNN<double>, GRU<double>, LSTM<double>, RNN<float>, GRU<float>, LSTM<float>>;
TYPED_TEST_SUITE(WeightsRoundTrip, Cells);

TYPED_TEST(WeightsRoundTrip, TensorsMasksAndReadoutComeBackExactly) {
  using Scalar = typename TypeParam::Scalar;
  const TypeParam saved(4, 6, {.inputDensity = 0.5, .recurrentDensity = 0.25, .seed = 1});
  const Readout<Scalar> savedReadout(6, 3, 2);
  const TemporaryFile file("round_trip");
  const std::string& path = file.path;
  saveWeights(path, saved, savedReadout);

  TypeParam loaded(4, 6, {.seed = 7});
  Readout<Scalar> loadedReadout(6, 3, 8);
  const auto versionBefore = loaded.maskVersion();
  loadWeights(path, loaded, loadedReadout);
  EXPECT_EQ(loaded.mask_ih(), saved.mask_ih());
  EXPECT_EQ(loaded.mask_hh(), saved.mask_hh());
  EXPECT_EQ(loaded.weight_ih(), saved.weight_ih());
  EXPECT_EQ(loaded.weight_hh(), saved.weight_hh());
  EXPECT_EQ(loaded.bias_ih(), saved.bias_ih());
  EXPECT_EQ(loaded.bias_hh(), saved.bias_hh());
  EXPECT_EQ(loaded.parameters(), saved.parameters());
  EXPECT_EQ(loadedReadout.parameters(), savedReadout.parameters());
  EXPECT_NE(loaded.maskVersion(), versionBefore);  // new masks: bound engines restart

  // Loading the same masks again keeps the mask version (bound engines keep their influence).
  const auto versionAfter = loaded.maskVersion();
  loadWeights(path, loaded);
  EXPECT_EQ(loaded.maskVersion(), versionAfter);
}

TYPED_TEST(WeightsRoundTrip, InfoDescribesTheFile) {
  using Scalar = typename TypeParam::Scalar;
  const TypeParam cell(5, 3, {.recurrentDensity = 0.5, .seed = 2});
  const TemporaryFile file("info");
  const std::string& path = file.path;
  saveWeights(path, cell);
  WeightsInfo info = readWeightsInfo(path);
  EXPECT_EQ(info.cell, std::string(CellTypeName<TypeParam>::value));
  EXPECT_EQ(info.inputSize, 5);
  EXPECT_EQ(info.hiddenSize, 3);
  EXPECT_EQ(info.gateRows, cell.gateRows());
  EXPECT_EQ(info.outputs, 0);
  EXPECT_TRUE(info.masks);
  const std::string elementType = std::is_same_v<Scalar, double> ? "<f8" : "<f4";
  EXPECT_EQ(info.elementType, elementType);
  saveWeights(path, cell, Readout<Scalar>(3, 4));
  EXPECT_EQ(readWeightsInfo(path).outputs, 4);
}

TEST(Weights, FloatFileIntoDoubleCell) {
  const GRU<float> narrow(3, 4, {.recurrentDensity = 0.5, .seed = 3});
  const TemporaryFile file("float");
  const std::string& path = file.path;
  saveWeights(path, narrow);
  GRU<double> wide(3, 4);
  loadWeights(path, wide);
  EXPECT_EQ(wide.weight_hh(), narrow.weight_hh().cast<double>());
  EXPECT_EQ(wide.mask_hh(), narrow.mask_hh().cast<double>());
}

/// The archive of a saved GRU(3, 4) with a readout of 2 classes, to be damaged by a test.
NpzArchive savedArchive(const std::string& path) {
  const GRU<double> cell(3, 4, {.recurrentDensity = 0.5, .seed = 4});
  saveWeights(path, cell, Readout<double>(4, 2));
  return loadNpz(path);
}

TEST(Weights, NoMasksMeansDense) {
  const TemporaryFile file("dense");
  const std::string& path = file.path;
  NpzArchive archive = savedArchive(path);
  archive.erase("mask_ih");
  archive.erase("mask_hh");
  saveNpz(path, archive);
  EXPECT_FALSE(readWeightsInfo(path).masks);
  GRU<double> cell(3, 4, {.inputDensity = 0.5, .recurrentDensity = 0.25});
  loadWeights(path, cell);
  EXPECT_TRUE((cell.mask_ih().array() == 1).all());
  EXPECT_TRUE((cell.mask_hh().array() == 1).all());
  EXPECT_EQ(cell.parameterCount(), 2 * 12 + 12 * 3 + 12 * 4);
}

/// Saves the damaged archive, then expects loading it into a GRU(3, 4) with a readout to fail
/// with a message naming `array`, and the cell and readout to stay unchanged.
void expectRefused(const std::string& path, const NpzArchive& archive, const std::string& array,
                   std::initializer_list<std::string> more = {}) {
  saveNpz(path, archive);
  GRU<double> cell(3, 4, {.recurrentDensity = 0.25, .seed = 9});
  Readout<double> readout(4, 2, 10);
  const GRU<double> before = cell;
  const Vector<double> readoutBefore = readout.parameters();
  std::vector<std::string> fragments = {"weights file '" + path + "'", "array '" + array + "'"};
  fragments.insert(fragments.end(), more.begin(), more.end());
  try {
    loadWeights(path, cell, readout);
    ADD_FAILURE() << "no FormatError for array " << array;
  } catch (const FormatError& error) {
    for (const std::string& fragment : fragments) EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
  EXPECT_EQ(cell.maskVersion(), before.maskVersion());
  EXPECT_EQ(cell.mask_hh(), before.mask_hh());
  EXPECT_EQ(cell.weight_hh(), before.weight_hh());
  EXPECT_EQ(readout.parameters(), readoutBefore);
}

TEST(Weights, EachDamageIsRefusedNamingTheArray) {
  const TemporaryFile file("damaged");
  const std::string& path = file.path;
  const NpzArchive good = savedArchive(path);
  auto without = [&](const std::string& name) {
    NpzArchive a = good;
    a.erase(name);
    return a;
  };
  auto with = [&](const std::string& name, NpyArray array) {
    NpzArchive a = good;
    a[name] = std::move(array);
    return a;
  };
  for (const char* name : {"weight_ih", "weight_hh", "bias_ih", "bias_hh", "readout_weight", "readout_bias", "cell",
                           "version"}) {
    SCOPED_TRACE(name);
    expectRefused(path, without(name), name, {"no such array"});
  }
  expectRefused(path, without("mask_hh"), "mask_hh");  // one mask without the other
  expectRefused(path, with("cell", NpyArray::of(reinterpret_cast<const std::uint8_t*>("lstm"), {4})), "cell",
                {"expected 'gru', got 'lstm'"});
  expectRefused(path, with("version", NpyArray::scalar<std::int64_t>(2)), "version", {"expected 1, got 2"});
  expectRefused(path, with("weight_hh", NpyArray::of(RowMatrix<double>(RowMatrix<double>::Zero(12, 5)))), "weight_hh",
                {"expected shape (12, 4), got (12, 5)"});
  expectRefused(path, with("bias_ih", NpyArray::of(Vector<double>(Vector<double>::Zero(9)))), "bias_ih",
                {"expected shape (12,), got (9,)"});
  expectRefused(path, with("readout_weight", NpyArray::of(RowMatrix<double>(RowMatrix<double>::Zero(3, 4)))),
                "readout_weight", {"expected shape (2, 4), got (3, 4)"});
  expectRefused(path, with("weight_ih", NpyArray::of(RowMatrix<std::int64_t>(RowMatrix<std::int64_t>::Zero(12, 3)))),
                "weight_ih", {"float64"});
  RowMatrix<double> infinite = RowMatrix<double>::Zero(12, 3);
  infinite(0, 0) = std::numeric_limits<double>::infinity();
  expectRefused(path, with("weight_ih", NpyArray::of(infinite)), "weight_ih", {"finite"});
  // A weight at a position its mask removes, and a mask that is not 0/1.
  RowMatrix<std::uint8_t> emptyMask = RowMatrix<std::uint8_t>::Zero(12, 4);
  expectRefused(path, with("mask_hh", NpyArray::of(emptyMask)), "weight_hh", {"0 at every position its mask removes"});
  RowMatrix<double> twos = RowMatrix<double>::Constant(12, 4, 2.0);
  expectRefused(path, with("mask_hh", NpyArray::of(twos)), "mask_hh", {"entries 0 or 1"});
}

TEST(Weights, WrongCellSizesAndUnreadableFiles) {
  const TemporaryFile file("sizes");
  const std::string& path = file.path;
  saveWeights(path, GRU<double>(3, 4));
  GRU<double> bigger(3, 5);
  expectFormatError([&] { loadWeights(path, bigger); }, {"array 'weight_ih'", "expected shape (15, 3), got (12, 3)"});
  LSTM<double> lstm(3, 4);
  expectFormatError([&] { loadWeights(path, lstm); }, {"array 'cell'", "expected 'lstm', got 'gru'"});
  expectFormatError([&] { readWeightsInfo(temporaryPath("does_not_exist")); }, {"does_not_exist"});
  // The messages name a weights file, not a checkpoint, when reading and when writing.
  expectFormatError([&] { loadWeights(temporaryPath("does_not_exist"), bigger); }, {"snap: weights file: ", "does_not_exist"});
  expectFormatError([&] { saveWeights("/nonexistent-folder/model.npz", bigger); },
                    {"snap: weights file: expected a writable file", "/nonexistent-folder/model.npz"});
}

}  // namespace
}  // namespace snap
