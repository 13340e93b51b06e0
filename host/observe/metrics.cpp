#include "observe/metrics.hpp"

#include <sstream>

namespace mcphost::observe {

namespace {
// Label values come from clients (method names); escape them per the exposition format.
std::string escapeLabel(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}
}  // namespace

Metrics& Metrics::instance() {
  static Metrics metrics;
  return metrics;
}

void Metrics::observeRequest(std::string_view method, std::string_view status,
                             std::chrono::microseconds latency) {
  const double seconds = static_cast<double>(latency.count()) / 1e6;
  std::lock_guard lock(mutex_);
  // Unknown methods are folded into one label value so a client cannot grow the series set.
  auto& h = requests_[{std::string(method.size() > 64 ? "other" : method), std::string(status)}];
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::countHttpResponse(int status) {
  std::lock_guard lock(mutex_);
  ++httpResponses_[status];
}

void Metrics::countAuth(std::string_view method, std::string_view result) {
  std::lock_guard lock(mutex_);
  ++authResults_[{std::string(method), std::string(result)}];
}

void Metrics::countDlpFindings(std::string_view detector, std::string_view action, std::uint64_t count) {
  std::lock_guard lock(mutex_);
  dlpFindings_[{std::string(detector), std::string(action)}] += count;
}

void Metrics::countArgumentRefusal(std::string_view reason) {
  std::lock_guard lock(mutex_);
  ++argumentRefusals_[std::string(reason)];
}

void Metrics::countAudit(std::string_view outcome) {
  std::lock_guard lock(mutex_);
  ++auditRecords_[std::string(outcome)];
}

std::string Metrics::render() const {
  std::ostringstream out;
  std::lock_guard lock(mutex_);
  out << "# HELP mcphost_auth_total Authentication attempts, by method and result.\n"
      << "# TYPE mcphost_auth_total counter\n";
  for (const auto& [key, n] : authResults_) {
    out << "mcphost_auth_total{method=\"" << escapeLabel(key.first) << "\",result=\""
        << escapeLabel(key.second) << "\"} " << n << "\n";
  }
  out << "# HELP mcphost_policy_denials_total Requests the policy refused.\n"
      << "# TYPE mcphost_policy_denials_total counter\n"
      << "mcphost_policy_denials_total " << policyDenials_.load() << "\n"
      << "# HELP mcphost_rate_limited_total Requests refused by a rate limit.\n"
      << "# TYPE mcphost_rate_limited_total counter\n"
      << "mcphost_rate_limited_total " << rateLimited_.load() << "\n";
  out << "# HELP mcphost_dlp_findings_total Sensitive values found in results, by detector and action.\n"
      << "# TYPE mcphost_dlp_findings_total counter\n";
  for (const auto& [key, n] : dlpFindings_) {
    out << "mcphost_dlp_findings_total{detector=\"" << escapeLabel(key.first) << "\",action=\""
        << escapeLabel(key.second) << "\"} " << n << "\n";
  }
  out << "# HELP mcphost_argument_refusals_total Tool calls refused before the connector, by reason.\n"
      << "# TYPE mcphost_argument_refusals_total counter\n";
  for (const auto& [reason, n] : argumentRefusals_)
    out << "mcphost_argument_refusals_total{reason=\"" << escapeLabel(reason) << "\"} " << n << "\n";
  out << "# HELP mcphost_audit_records_total Audit records, by outcome (written, failed, refused).\n"
      << "# TYPE mcphost_audit_records_total counter\n";
  for (const auto& [outcome, n] : auditRecords_)
    out << "mcphost_audit_records_total{outcome=\"" << escapeLabel(outcome) << "\"} " << n << "\n";
  out << "# HELP mcphost_requests_total MCP requests handled, by method and status.\n"
      << "# TYPE mcphost_requests_total counter\n";
  for (const auto& [key, h] : requests_) {
    out << "mcphost_requests_total{method=\"" << escapeLabel(key.first) << "\",status=\""
        << escapeLabel(key.second) << "\"} " << h.count << "\n";
  }
  out << "# HELP mcphost_request_duration_seconds MCP request latency, by method and status.\n"
      << "# TYPE mcphost_request_duration_seconds histogram\n";
  for (const auto& [key, h] : requests_) {
    const std::string labels =
        "method=\"" + escapeLabel(key.first) + "\",status=\"" + escapeLabel(key.second) + "\"";
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      out << "mcphost_request_duration_seconds_bucket{" << labels << ",le=\"" << kBuckets[i] << "\"} "
          << h.buckets[i] << "\n";
    }
    out << "mcphost_request_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} " << h.count << "\n";
    out << "mcphost_request_duration_seconds_sum{" << labels << "} " << h.sum << "\n";
    out << "mcphost_request_duration_seconds_count{" << labels << "} " << h.count << "\n";
  }
  out << "# HELP mcphost_http_responses_total HTTP responses, by status code.\n"
      << "# TYPE mcphost_http_responses_total counter\n";
  for (const auto& [status, n] : httpResponses_) {
    out << "mcphost_http_responses_total{code=\"" << status << "\"} " << n << "\n";
  }
  out << "# HELP mcphost_active_sessions MCP sessions (initialize era) currently open.\n"
      << "# TYPE mcphost_active_sessions gauge\nmcphost_active_sessions " << activeSessions.load() << "\n"
      << "# HELP mcphost_open_connections HTTP connections currently open.\n"
      << "# TYPE mcphost_open_connections gauge\nmcphost_open_connections " << openConnections.load() << "\n"
      << "# HELP mcphost_open_streams SSE streams currently open.\n"
      << "# TYPE mcphost_open_streams gauge\nmcphost_open_streams " << openStreams.load() << "\n";
  if (connectorStatus_) {
    const auto connectors = connectorStatus_();
    out << "# HELP mcphost_connector_up 1 when the connector instance has a ready worker, by state.\n"
        << "# TYPE mcphost_connector_up gauge\n";
    for (const auto& c : connectors) {
      out << "mcphost_connector_up{connector=\"" << escapeLabel(c.id) << "\",state=\"" << escapeLabel(c.state)
          << "\"} " << (c.readyWorkers > 0 ? 1 : 0) << "\n";
    }
    out << "# HELP mcphost_connector_workers_ready Ready worker processes per connector instance.\n"
        << "# TYPE mcphost_connector_workers_ready gauge\n";
    for (const auto& c : connectors) {
      out << "mcphost_connector_workers_ready{connector=\"" << escapeLabel(c.id) << "\"} " << c.readyWorkers
          << "\n";
    }
    out << "# HELP mcphost_connector_restarts_total Worker restarts per connector instance.\n"
        << "# TYPE mcphost_connector_restarts_total counter\n";
    for (const auto& c : connectors) {
      out << "mcphost_connector_restarts_total{connector=\"" << escapeLabel(c.id) << "\"} " << c.restarts
          << "\n";
    }
    out << "# HELP mcphost_connector_crashes_total Unexpected worker exits per connector instance.\n"
        << "# TYPE mcphost_connector_crashes_total counter\n";
    for (const auto& c : connectors) {
      out << "mcphost_connector_crashes_total{connector=\"" << escapeLabel(c.id) << "\"} " << c.crashes
          << "\n";
    }
  }
  return out.str();
}

void Metrics::setConnectorStatus(std::function<std::vector<ConnectorHealth>()> source) {
  std::lock_guard lock(mutex_);
  connectorStatus_ = std::move(source);
}

}  // namespace mcphost::observe
