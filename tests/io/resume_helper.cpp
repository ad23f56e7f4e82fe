// Helper of test_io_resume: trains one engine configuration of support/training.hpp over batch
// steps [from, to), optionally starting from a checkpoint and optionally saving one, so that a
// resumed run happens in a fresh process.
//
//   resume_helper CONFIG FROM TO [--load FILE] [--save FILE]
//
// CONFIG: rtrl-gru rtrl-rnn snap1-gru snap2-gru snap1-lstm snap2-lstm uoro-gru bptt3-gru
// bptt-gru (untruncated, one update per sequence). Exit status 0, or 1 with a message.

#include <cstdio>
#include <cstdlib>
#include <string>

#include "../support/training.hpp"

namespace {

using snap::Index;

struct Arguments {
  Index from = 0, to = 0;
  std::string load, save;
};

template <class Engine>
int run(const typename Engine::Options& options, const snap::TrainerOptions& trainerOptions, const Arguments& arguments) {
  snap::test::Training<Engine> training(options, trainerOptions);
  if (!arguments.load.empty()) {
    const snap::NpzArchive archive = snap::loadCheckpoint(arguments.load, training.trainer);
    const auto at = snap::readScalar<std::int64_t>(archive, "helper/step", 0, 1 << 30);
    if (at != arguments.from) {
      std::fprintf(stderr, "resume_helper: the checkpoint was saved at step %ld, not %ld\n", static_cast<long>(at),
                   static_cast<long>(arguments.from));
      return 1;
    }
  }
  training.run(arguments.from, arguments.to);
  if (!arguments.save.empty()) {
    snap::NpzArchive extra;
    snap::putScalar<std::int64_t>(extra, "helper/step", arguments.to);
    snap::saveCheckpoint(arguments.save, training.trainer, nullptr, extra);
  }
  return 0;
}

int dispatch(const std::string& config, const Arguments& arguments) {
  using namespace snap;
  const TrainerOptions online{.batch = 2, .clipNorm = 1.0};
  if (config == "rtrl-gru") return run<RTRL<GRU<float>>>({}, online, arguments);
  if (config == "rtrl-rnn") return run<RTRL<RNN<float>>>({}, online, arguments);
  if (config == "snap1-gru") return run<SnAp<GRU<float>>>({.n = 1}, online, arguments);
  if (config == "snap2-gru") return run<SnAp<GRU<float>>>({.n = 2}, online, arguments);
  if (config == "snap1-lstm") return run<SnAp<LSTM<float>>>({.n = 1}, online, arguments);
  if (config == "snap2-lstm") return run<SnAp<LSTM<float>>>({.n = 2}, online, arguments);
  if (config == "uoro-gru") return run<UORO<GRU<float>>>({.seed = 7}, online, arguments);
  if (config == "bptt3-gru") return run<BPTT<GRU<float>>>({.window = 3}, {.batch = 2, .updateEvery = 3}, arguments);
  if (config == "bptt-gru")
    return run<BPTT<GRU<float>>>({}, {.batch = 2, .schedule = UpdateSchedule::PerSequence}, arguments);
  std::fprintf(stderr, "resume_helper: unknown configuration '%s'\n", config.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: resume_helper CONFIG FROM TO [--load FILE] [--save FILE]\n");
    return 1;
  }
  Arguments arguments;
  arguments.from = std::atol(argv[2]);
  arguments.to = std::atol(argv[3]);
  for (int i = 4; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--load") arguments.load = argv[i + 1];
    else if (flag == "--save") arguments.save = argv[i + 1];
  }
  try {
    return dispatch(argv[1], arguments);
  } catch (const snap::Error& error) {
    std::fprintf(stderr, "resume_helper: %s\n", error.what());
    return 1;
  }
}
