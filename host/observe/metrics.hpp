// Prometheus metrics: request counts and latency histograms by MCP method and status, HTTP
// responses by status, active sessions and connections. Rendered in the text exposition format.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace mcphost::observe {

// One connector instance's supervisor state, sampled when /metrics is rendered.
struct ConnectorHealth {
  std::string id;
  std::string state;  // ready, starting, restarting, disabled
  std::size_t readyWorkers = 0;
  std::uint64_t restarts = 0;
  std::uint64_t crashes = 0;
};

class Metrics {
 public:
  static Metrics& instance();

  void observeRequest(std::string_view method, std::string_view status, std::chrono::microseconds latency);
  void countHttpResponse(int status);
  // Authentication outcomes by method (jwt, api_key, ldap, mtls, none) and result (ok, invalid,
  // missing, insufficient_scope, unavailable, limited); bounded label sets only.
  void countAuth(std::string_view method, std::string_view result);
  void countPolicyDenial() { policyDenials_.fetch_add(1, std::memory_order_relaxed); }
  void countRateLimited() { rateLimited_.fetch_add(1, std::memory_order_relaxed); }
  // Data protection: findings per detector and action (counts only, never values).
  void countDlpFindings(std::string_view detector, std::string_view action, std::uint64_t count);
  // Tool calls refused before the connector: "invalid_arguments", "secret_in_arguments", ...
  void countArgumentRefusal(std::string_view reason);
  // Audit records by sink outcome ("written", "failed") and calls refused by fail-closed audit.
  void countAudit(std::string_view outcome);
  std::atomic<long> activeSessions{0};
  std::atomic<long> openConnections{0};
  std::atomic<long> openStreams{0};

  [[nodiscard]] std::string render() const;
  // The source of the connector gauges (nullptr removes it).
  void setConnectorStatus(std::function<std::vector<ConnectorHealth>()> source);

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
  std::map<std::pair<std::string, std::string>, std::uint64_t> authResults_;
  std::atomic<std::uint64_t> policyDenials_{0};
  std::atomic<std::uint64_t> rateLimited_{0};
  std::map<std::pair<std::string, std::string>, std::uint64_t> dlpFindings_;
  std::map<std::string, std::uint64_t, std::less<>> argumentRefusals_;
  std::map<std::string, std::uint64_t, std::less<>> auditRecords_;
  std::function<std::vector<ConnectorHealth>()> connectorStatus_;
};

}  // namespace mcphost::observe
