#pragma once
/// @file
/// How an engine spreads its work over threads (docs/design.md, "Threads"): B streams advanced
/// together, and a small pool of std::threads that runs one task on every thread at once. The
/// engines split their work by parameters, never by streams, so every sum runs in the same
/// order for any number of threads and the results are bit-identical.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/types.hpp"

namespace snap {

/// The batch an engine advances in one call: B streams sharing the cell, and the threads that
/// share the work. Threads only change the speed: results are bit-identical for every count.
struct Batch {
  Index streams = 1;  ///< B, the streams stepped together (columns of the inputs and states)
  int threads = 1;    ///< T ≥ 1: the calling thread and T − 1 workers of the engine's own pool

  /// Throws ValueError unless B ≥ 1 and 1 ≤ T ≤ 256.
  void validate() const {
    if (streams < 1) detail::fail<ValueError>("Batch::streams", "at least 1 stream", streams);
    if (threads < 1 || threads > 256) detail::fail<ValueError>("Batch::threads", "a thread count in [1, 256]", threads);
  }
};

namespace detail {

/// The half-open range [begin, end) of part `part` of `parts` equal parts of [0, size), in
/// multiples of `grain` (the last part takes the rest): a fixed split, the same at every call.
struct Range {
  Index begin, end;
  Index size() const { return end - begin; }
};
inline Range partOf(Index size, int part, int parts, Index grain = 1) {
  const Index units = (size + grain - 1) / grain;
  const Index begin = std::min(size, units * part / parts * grain);
  const Index end = part + 1 == parts ? size : std::min(size, units * (part + 1) / parts * grain);
  return {begin, end};
}

/// T − 1 worker threads that run a task together with the calling thread. run() hands every
/// thread its index t ∈ [0, T) and returns once all have finished; nothing is allocated per run.
/// Workers spin briefly for the next task (a step follows the last one within microseconds),
/// then sleep on an atomic wait; the caller, done with its share, spins briefly for the others
/// and then sleeps too, so that a machine with more runnable threads than cores (tests run in
/// parallel, say) is not slowed by threads spinning for workers that are not scheduled. One
/// thread at a time may call run() (an engine is used from one thread at a time); the pool
/// itself is never shared between engines.
class ThreadPool {
public:
  explicit ThreadPool(int threads) : m_threads(threads) {
    m_workers.reserve(static_cast<std::size_t>(threads - 1));
    for (int t = 1; t < threads; ++t) m_workers.emplace_back([this, t] { work(t); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    m_stop.store(true, std::memory_order_relaxed);
    m_generation.fetch_add(1, std::memory_order_release);
    m_generation.notify_all();
    for (std::thread& worker : m_workers) worker.join();
  }

  int threads() const { return m_threads; }

  /// Calls task(t) on thread t for t = 0 … T − 1 (t = 0 on the calling thread) and waits for
  /// all. An exception escaping a task on a worker would terminate: tasks must not throw.
  template <class Task>
  void run(Task& task) {
    if (m_threads == 1) {
      task(0);
      return;
    }
    m_context = &task;
    m_call = [](void* context, int t) { (*static_cast<Task*>(context))(t); };
    m_remaining.store(m_threads - 1, std::memory_order_relaxed);
    m_generation.fetch_add(1, std::memory_order_release);
    m_generation.notify_all();
    task(0);
    int remaining = m_remaining.load(std::memory_order_acquire);
    for (int spin = 0; remaining != 0 && spin < spinLimit; ++spin) {
      pause();
      remaining = m_remaining.load(std::memory_order_acquire);
    }
    while (remaining != 0) {
      m_remaining.wait(remaining, std::memory_order_acquire);
      remaining = m_remaining.load(std::memory_order_acquire);
    }
  }

private:
  /// Pauses (about 40 cycles each) before a thread sleeps: some tens of microseconds.
  static constexpr int spinLimit = 2000;

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  void work(int t) {
    std::uint64_t seen = 0;
    for (;;) {
      std::uint64_t now = m_generation.load(std::memory_order_acquire);
      for (int spin = 0; now == seen && spin < spinLimit; ++spin) {
        pause();
        now = m_generation.load(std::memory_order_acquire);
      }
      if (now == seen) {
        m_generation.wait(seen, std::memory_order_acquire);
        continue;
      }
      seen = now;
      if (m_stop.load(std::memory_order_relaxed)) return;
      m_call(m_context, t);
      if (m_remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) m_remaining.notify_one();
    }
  }

  int m_threads;
  std::vector<std::thread> m_workers;
  std::atomic<std::uint64_t> m_generation{0};
  std::atomic<int> m_remaining{0};
  std::atomic<bool> m_stop{false};
  void* m_context = nullptr;
  void (*m_call)(void*, int) = nullptr;
};

/// An engine's share of threads: none for T = 1, else its own pool. Copies get a pool of the
/// same size of their own (two engines never share workers); moves take the pool along.
class Workers {
public:
  Workers() = default;
  explicit Workers(int threads) : m_threads(threads) {
    if (threads > 1) m_pool = std::make_unique<ThreadPool>(threads);
  }
  Workers(const Workers& other) : Workers(other.m_threads) {}
  Workers& operator=(const Workers& other) {
    if (this != &other && other.m_threads != m_threads) *this = Workers(other.m_threads);
    return *this;
  }
  Workers(Workers&&) noexcept = default;
  Workers& operator=(Workers&&) noexcept = default;

  /// T, the threads that run each task (the caller included).
  int threads() const { return m_threads; }
  /// Runs task(t) for t ∈ [0, T), on T threads when T > 1.
  template <class Task>
  void run(Task&& task) {
    if (!m_pool) {
      for (int t = 0; t < m_threads; ++t) task(t);
      return;
    }
    m_pool->run(task);
  }

private:
  int m_threads = 1;
  std::unique_ptr<ThreadPool> m_pool;
};

}  // namespace detail
}  // namespace snap
