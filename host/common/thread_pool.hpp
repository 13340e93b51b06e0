// A fixed set of worker threads with a bounded queue. Handlers that block (a tool waiting for
// the client) hold one worker; the queue bound turns overload into a fast 503, not a backlog.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mcphost {

class ThreadPool {
 public:
  ThreadPool(std::size_t threads, std::size_t maxQueued);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // False when the queue is full or the pool is stopping.
  bool submit(std::function<void()> task);
  void stop();  // finishes queued tasks, then joins

 private:
  void work();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  std::size_t maxQueued_;
  bool stopping_ = false;
};

}  // namespace mcphost
