// Prometheus metrics: request counts and latency histograms by MCP method and status, HTTP
// responses by status, active sessions and connections. Rendered in the text exposition format.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace mcphost::observe {

class Metrics {
 public:
  static Metrics& instance();

  void observeRequest(std::string_view method, std::string_view status, std::chrono::microseconds latency);
  void countHttpResponse(int status);
  std::atomic<long> activeSessions{0};
  std::atomic<long> openConnections{0};
  std::atomic<long> openStreams{0};

  [[nodiscard]] std::string render() const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, Histogram> requests_;
  std::map<int, std::uint64_t> httpResponses_;
};

}  // namespace mcphost::observe
