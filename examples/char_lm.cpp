// Character-level language modelling, the SnAp paper's other experiment: a sparse GRU or LSTM (or
// an RNN, an LRU, or a stack of layers of any of them) learns to predict the next character of a
// text online, with any engine, reading the text as one long stream. It reports bits per character on
// held-out text (--valid, or the last 10 % of the text, never trained on) and samples text at the
// end. Without --text it reads
// examples/data/snap_story.txt, a short story written for this repository.
//
// With --batch B, B streams read the text side by side from B evenly spaced offsets, one step of
// every stream at a time.
//
//   char_lm --cell gru --engine snap:2 --hidden 128 --density 0.25 --steps 20000
//   char_lm --text my_book.txt --engine bptt:32 --steps 1000000 --batch 16 --threads 2
//   char_lm --cell lru --layers 2 --hidden 64 --engine snap:2 --per-layer

#include <snap/snap.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "common/command_line.hpp"
#include "common/engine_flag.hpp"
#include "common/network_flags.hpp"

namespace {

using snap::Index;

std::string readText(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw snap::examples::CommandLineError{"--" + flag + ": cannot read '" + path + "'"};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The text as symbols: each distinct byte of the training and held-out texts is a class, in byte
/// order. Without a held-out file the held-out text is the training file's last 10 %.
struct Corpus {
  std::vector<unsigned char> alphabet;  // symbol → byte
  std::array<int, 256> symbolOf{};      // byte → symbol, −1 when absent
  std::vector<int> train, heldOut;

  Corpus(const std::string& path, const std::string& heldOutPath) {
    const std::string text = readText("text", path);
    const std::string other = heldOutPath.empty() ? std::string() : readText("valid", heldOutPath);
    symbolOf.fill(-1);
    for (unsigned char c : text) symbolOf[c] = 0;
    for (unsigned char c : other) symbolOf[c] = 0;
    for (int byte = 0; byte < 256; ++byte)
      if (symbolOf[static_cast<std::size_t>(byte)] == 0) {
        symbolOf[static_cast<std::size_t>(byte)] = static_cast<int>(alphabet.size());
        alphabet.push_back(static_cast<unsigned char>(byte));
      }
    if (alphabet.size() < 2)
      throw snap::examples::CommandLineError{"--text: '" + path + "' needs at least 2 distinct characters"};
    if (heldOutPath.empty()) {
      if (text.size() < 40)
        throw snap::examples::CommandLineError{"--text: '" + path + "' needs at least 40 characters, has " +
                                               std::to_string(text.size())};
      const std::size_t split = text.size() - text.size() / 10;
      for (std::size_t i = 0; i < text.size(); ++i)
        (i < split ? train : heldOut).push_back(symbolOf[static_cast<unsigned char>(text[i])]);
      return;
    }
    if (text.size() < 2 || other.size() < 2)
      throw snap::examples::CommandLineError{
          std::string(text.size() < 2 ? "--text: '" + path : "--valid: '" + heldOutPath) +
          "' needs at least 2 characters, has " + std::to_string(std::min(text.size(), other.size()))};
    for (unsigned char c : text) train.push_back(symbolOf[c]);
    for (unsigned char c : other) heldOut.push_back(symbolOf[c]);
  }
  Index size() const { return static_cast<Index>(alphabet.size()); }
};

struct Config {
  snap::examples::NetworkChoice network;
  snap::examples::EngineChoice engine;
  Index updateEvery = 1, batch = 1;
  int threads = 1;
  snap::AnyOptimizer optimizer;
  double clip = 0, temperature = 1;
  long long steps = 0, report = 0, evalChars = 0, sample = 0;
  std::string prime, csv;
  std::uint64_t seed = 0;
};

/// Bits per character of the model on `text`, at most `limit` characters of it: the whole text
/// from a zero state when it fits, else 10 pieces of limit / 10 characters spread evenly over the
/// text, each from a zero state (so that a held-out text made of chapters from all over a book is
/// scored on all of it).
template <class Cell>
double bitsPerCharacter(const Cell& cell, snap::Readout<float>& readout, const std::vector<int>& text,
                        long long limit, Index symbols) {
  const auto size = static_cast<long long>(text.size());
  const long long pieces = limit >= size ? 1 : std::min<long long>(10, limit / 2);
  const long long length = pieces == 1 ? size : limit / pieces;
  snap::Vector<float> state(cell.stateSize()), next(cell.stateSize());
  snap::Vector<float> input = snap::Vector<float>::Zero(symbols), output(cell.outputSize());
  snap::StepCache<float> cache = cell.makeCache();
  double bits = 0;
  long long scored = 0;
  for (long long piece = 0; piece < pieces; ++piece) {
    const long long begin = piece * (size / pieces);
    state.setZero();
    for (long long i = begin; i + 1 < std::min(size, begin + length); ++i, ++scored) {
      input.setZero();
      input[text[static_cast<std::size_t>(i)]] = 1;
      cell.forward(input, state, next, cache);
      state.swap(next);
      cell.output(cache, state, output);
      const float p = readout.predict(output)[text[static_cast<std::size_t>(i + 1)]];
      bits -= std::log2(std::max(static_cast<double>(p), 1e-30));
    }
  }
  return bits / static_cast<double>(std::max<long long>(1, scored));
}

/// Prints `count` characters sampled from the model after feeding it `prime`.
template <class Cell>
void sample(const Cell& cell, snap::Readout<float>& readout, const Corpus& corpus, const Config& config) {
  const Index symbols = corpus.size();
  snap::Vector<float> state = snap::Vector<float>::Zero(cell.stateSize()), next(cell.stateSize());
  snap::Vector<float> input(symbols), output(cell.outputSize());
  snap::StepCache<float> cache = cell.makeCache();
  snap::Random random(config.seed + 5);
  std::vector<double> weights(static_cast<std::size_t>(symbols));
  auto feed = [&](int symbol) {
    input.setZero();
    input[symbol] = 1;
    cell.forward(input, state, next, cache);
    state.swap(next);
    cell.output(cache, state, output);
  };
  std::string text;
  for (unsigned char c : config.prime)
    if (corpus.symbolOf[c] >= 0) {
      feed(corpus.symbolOf[c]);
      text += static_cast<char>(c);
    }
  if (text.empty()) {  // nothing of the prime is in the alphabet: start from the text's first character
    feed(corpus.train.front());
    text += static_cast<char>(corpus.alphabet[static_cast<std::size_t>(corpus.train.front())]);
  }
  for (long long i = 0; i < config.sample; ++i) {
    // p^(1/temperature), renormalised: the softmax of the logits divided by the temperature.
    const snap::Vector<float>& p = readout.predict(output);
    double total = 0;
    for (Index c = 0; c < symbols; ++c)
      total += weights[static_cast<std::size_t>(c)] = std::pow(static_cast<double>(p[c]), 1.0 / config.temperature);
    double draw = random.uniform() * total;
    int symbol = static_cast<int>(symbols - 1);
    for (Index c = 0; c < symbols; ++c)
      if ((draw -= weights[static_cast<std::size_t>(c)]) < 0) {
        symbol = static_cast<int>(c);
        break;
      }
    text += static_cast<char>(corpus.alphabet[static_cast<std::size_t>(symbol)]);
    feed(symbol);
  }
  std::printf("sample (temperature %g):\n%s\n", config.temperature, text.c_str());
}

template <class Engine>
int train(const Config& config, const Corpus& corpus, const typename Engine::Options& engineOptions) {
  using Cell = typename Engine::CellType;
  using Clock = std::chrono::steady_clock;
  const Index symbols = corpus.size();
  Cell cell = snap::examples::makeNetwork<Cell>(config.network, symbols);
  snap::Readout<float> readout(cell.outputSize(), symbols, config.seed + 1, config.engine.readoutOptions());
  snap::Trainer<Engine> trainer(
      cell, readout, config.optimizer,
      {.batch = config.batch, .threads = config.threads, .updateEvery = config.updateEvery, .clipNorm = config.clip},
      engineOptions);
  std::printf("char_lm: %s, %s, %s, %ld parameters, batch %ld; %zu training and %zu held-out characters, %ld "
              "symbols\n",
              config.network.label().c_str(), config.engine.description().c_str(), config.network.shape().c_str(),
              static_cast<long>(cell.parameterCount()), static_cast<long>(config.batch), corpus.train.size(),
              corpus.heldOut.size(), static_cast<long>(symbols));
  // The log: one row before training and one per report, to --csv as they come.
  std::ofstream csv;
  if (!config.csv.empty()) {
    csv.open(config.csv, std::ios::trunc);
    if (!csv) throw snap::Error("snap: --csv: cannot open '" + config.csv + "' for writing");
    csv << "step,characters,train_bits,heldout_bits,wall_seconds\n";
  }
  auto log = [&](long long step, double trainBits, double heldOutBits, double seconds) {
    if (!csv) return;
    csv << step << ',' << step * config.batch << ',' << trainBits << ',' << heldOutBits << ',' << seconds << '\n';
    csv.flush();
  };
  const double initialBits = bitsPerCharacter(cell, readout, corpus.heldOut, config.evalChars, symbols);
  std::printf("before training: held-out %.3f bits/char (uniform: %.3f)\n", initialBits,
              std::log2(static_cast<double>(symbols)));
  log(0, std::numeric_limits<double>::quiet_NaN(), initialBits, 0);

  const auto start = Clock::now();
  // Stream b reads the training text over and over, from offset b·(length / B).
  const std::size_t streams = static_cast<std::size_t>(config.batch), length = corpus.train.size() - 1;
  std::vector<std::size_t> positions(streams);
  for (std::size_t b = 0; b < streams; ++b) positions[b] = b * (length / streams);
  snap::Matrix<float> inputs = snap::Matrix<float>::Zero(symbols, config.batch);
  std::vector<Index> targets(streams);
  double trainBits = 0;
  long long trainCount = 0;
  for (long long step = 1; step <= config.steps; ++step) {
    inputs.setZero();
    for (std::size_t b = 0; b < streams; ++b) {
      inputs(corpus.train[positions[b]], static_cast<Index>(b)) = 1;
      targets[b] = corpus.train[positions[b] + 1];
    }
    trainBits += snap::Readout<float>::bits(trainer.step(inputs, targets));
    trainCount += config.batch;
    for (std::size_t b = 0; b < streams; ++b)
      if (++positions[b] == length) {  // end of the text: start again from a zero state
        positions[b] = 0;
        trainer.resetStream(static_cast<Index>(b));
      }
    if (step % config.report == 0 || step == config.steps) {
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      const double heldOutBits = bitsPerCharacter(cell, readout, corpus.heldOut, config.evalChars, symbols);
      std::printf("step %8lld  train %.3f bits/char  held-out %.3f bits/char  %6.0f steps/s\n", step,
                  trainBits / static_cast<double>(trainCount), heldOutBits, static_cast<double>(step) / seconds);
      std::fflush(stdout);
      log(step, trainBits / static_cast<double>(trainCount), heldOutBits, seconds);
      trainBits = 0;
      trainCount = 0;
    }
  }
  if (config.sample > 0) sample(cell, readout, corpus, config);
  return 0;
}

template <class Cell>
int dispatch(const Config& config, const Corpus& corpus) {
  return snap::examples::withEngine<Cell>(config.engine, config.seed + 2, [&](auto engine, const auto& options) {
    return train<typename decltype(engine)::type>(config, corpus, options);
  });
}

}  // namespace

int main(int argc, char** argv) {
  snap::examples::CommandLine line(
      "char_lm", std::string("Trains a sparse recurrent cell, or a stack of layers, online to predict the next character of a\n"
                             "text, and reports bits per character on held-out text: --valid, or the text's last 10 %.\n\n") +
                     snap::examples::networkHelp + "\n" + snap::examples::engineHelp);
  line.flag("text", SNAP_EXAMPLE_DATA "/snap_story.txt", "the text file to learn");
  line.flag("valid", "", "held-out text file (without it: --text's last 10 %, never trained on)");
  line.flag("cell", "gru", snap::examples::cellHelp);
  line.flag("layers", "1", snap::examples::layersHelp);
  line.flag("engine", "snap:2", snap::examples::engineValues(false));
  line.toggle("per-layer", snap::examples::perLayerHelp);
  line.flag("hidden", "128", "hidden units H (per layer; an LRU's complex units N and outputs)");
  line.flag("density", "0.25", "recurrent weight density, in (0, 1] (gated cells)");
  line.flag("masks", "shared", "shared (one mask for all gate blocks) | per-gate");
  line.flag("leak", "1", snap::examples::leakHelp);
  line.flag("optimizer", "adam", "adam | sgd");
  line.flag("lr", "0.002", "learning rate");
  line.flag("clip", "1", "clip the global gradient norm to this (0: off)");
  line.flag("update-every", "1", "K: online update every K characters (bptt:T: every T)");
  line.flag("steps", "20000", "steps to train (B characters each; the text repeats)");
  line.flag("batch", "1", "B: streams reading the text from B offsets, stepped together");
  line.flag("threads", "1", "T: threads sharing each step's work (results are the same for every T)");
  line.flag("report", "2500", "report bits per character every this many steps");
  line.flag("eval-chars", "20000", "held-out characters scored at most (10 evenly spaced pieces when fewer than all)");
  line.flag("csv", "", "write step, characters, train and held-out bits per character at each report to this CSV file");
  line.flag("sample", "300", "characters to sample at the end");
  line.flag("temperature", "0.7", "sampling temperature, > 0");
  line.flag("prime", "The network ", "text fed before sampling");
  line.flag("seed", "1", "seeds masks, weights, UORO's signs and sampling");
  try {
    if (!line.parse(argc, argv)) return 0;
    Config config;
    snap::examples::NetworkChoice& network = config.network;
    network.cell = line.choice("cell", snap::examples::cellValues);
    network.layers = line.integer("layers", 1, 64);
    config.engine = snap::examples::parseEngine(line.text("engine"), false);
    network.hidden = line.integer("hidden", 1, 100000);
    network.density = line.number("density", 1e-9, 1.0);
    network.sharing = line.choice("masks", {"shared", "per-gate"}) == "shared" ? snap::MaskSharing::Shared
                                                                               : snap::MaskSharing::PerGate;
    network.leak = line.number("leak", 1e-6, 1.0);
    snap::examples::checkNetwork(network, line);
    snap::examples::checkEngineFits(config.engine, network.cell, network.layers, line.on("per-layer"));
    const double lr = line.number("lr", 1e-12, 1e3);
    config.optimizer = line.choice("optimizer", {"adam", "sgd"}) == "adam" ? snap::AnyOptimizer(snap::Adam{.learningRate = lr})
                                                                           : snap::AnyOptimizer(snap::SGD{.learningRate = lr});
    config.clip = line.number("clip", 0, 1e12);
    config.updateEvery = line.integer("update-every", 1, 1000000);
    if (config.engine.name == "bptt") config.updateEvery = config.engine.steps;
    config.steps = line.integer("steps", 1, 1LL << 50);
    config.batch = line.integer("batch", 1, 4096);
    config.threads = static_cast<int>(line.integer("threads", 1, 256));
    config.report = line.integer("report", 1, 1LL << 50);
    config.evalChars = line.integer("eval-chars", 2, 1LL << 50);
    config.sample = line.integer("sample", 0, 1000000);
    config.temperature = line.number("temperature", 1e-3, 100);
    config.prime = line.text("prime");
    config.csv = line.text("csv");
    config.seed = static_cast<std::uint64_t>(line.integer("seed", 0, 1LL << 62));
    network.seed = config.seed;
    const Corpus corpus(line.text("text"), line.text("valid"));
    return snap::examples::withNetwork<float>(network, [&](auto cell) {
      return dispatch<typename decltype(cell)::type>(config, corpus);
    });
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "char_lm: %s\n", error.message.c_str());
    return 2;
  } catch (const snap::Error& error) {
    std::fprintf(stderr, "char_lm: %s\n", error.what());
    return 1;
  }
}
