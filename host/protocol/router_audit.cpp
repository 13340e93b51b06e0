// The router's side of the audit log: one record per request with its outcome, written before
// the response leaves, and the fail-closed gate that refuses requests while the log is down.
#include <atomic>

#include "audit/audit_log.hpp"
#include "common/crypto.hpp"
#include "dlp/dlp_engine.hpp"
#include "guard/call_limits.hpp"
#include "observe/log.hpp"
#include "observe/metrics.hpp"
#include "protocol/mcp_router.hpp"

namespace mcphost::protocol {

namespace {

std::string statusOf(const Json& message, const AuditNote& note, int* errorCode) {
  if (auto error = message.find("error"); error != message.end() && error->is_object()) {
    *errorCode = error->value("code", 0);
    if (*errorCode == guard::kForbidden) return "denied";
    if (*errorCode == guard::kRateLimited) return "rate_limited";
    if (*errorCode == kAuditUnavailable) return "refused";
    return "error";
  }
  if (!note.refusal.empty()) return "refused";
  const auto result = message.find("result");
  if (result != message.end() && result->is_object()) {
    if (result->value("isError", false)) return "tool_error";
    if (result->value("resultType", "complete") == "input_required") return "input_required";
  }
  return "ok";
}

const Json* argumentsOf(const Message& request) {
  if (!request.params.is_object()) return nullptr;
  if (request.method != "tools/call" && request.method != "prompts/get") return nullptr;
  auto it = request.params.find("arguments");
  return it != request.params.end() && it->is_object() ? &*it : nullptr;
}

}  // namespace

std::optional<RpcError> McpRouter::auditGate() const {
  if (!data_.audit || !data_.auditFailClosed || data_.audit->healthy()) return std::nullopt;
  observe::Metrics::instance().countAudit("refused");
  // Once a second at most: a refused request is cheap for a client to repeat, the log is not.
  static std::atomic<std::int64_t> lastLogged{0};
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
  if (std::int64_t last = lastLogged.load(); now != last && lastLogged.compare_exchange_strong(last, now)) {
    log::error("audit", "refusing requests: the audit log cannot be written (audit.fail_closed)",
               {{"error", data_.audit->lastError()}});
  }
  return RpcError{kAuditUnavailable,
                  "Service unavailable: the audit log cannot be written (" + data_.audit->lastError() +
                      "), and audit.fail_closed refuses requests until it can. Ask the operator to check the "
                      "audit directory (disk space, permissions) and sinks.",
                  nullptr};
}

void McpRouter::recordAudit(const Message& request, RequestScope& scope, Reply& reply,
                            std::chrono::microseconds elapsed) const {
  const AuditNote& note = scope.audit;
  nlohmann::ordered_json record;
  record["correlation_id"] = scope.correlationId;
  record["principal"] = scope.caller.subject;
  record["auth_method"] = scope.caller.authMethod;
  if (!scope.caller.tenant.empty()) record["tenant"] = scope.caller.tenant;
  record["source_ip"] = scope.caller.sourceIp;
  record["session"] = scope.session ? scope.session->id() : std::string();
  record["method"] = request.method;
  if (!note.connector.empty()) record["connector"] = note.connector;
  if (!note.region.empty()) record["region"] = note.region;
  if (!note.target.empty()) record["target"] = note.target;
  if (const Json* arguments = argumentsOf(request)) {
    record["args_sha256"] = toHex(sha256(arguments->dump()));
    record["args_redacted"] = data_.dlp ? data_.dlp->redactForAudit(*arguments) : Json("[not recorded]");
  }
  if (!note.decision.empty()) {
    record["decision"] = note.decision;
    record["rule"] = note.rule;
  }
  if (!note.dlp.empty()) record["dlp"] = note.dlp;
  int errorCode = 0;
  record["status"] = statusOf(reply.message, note, &errorCode);
  if (errorCode != 0) record["error_code"] = errorCode;
  if (!note.refusal.empty()) record["refusal"] = note.refusal;
  record["latency_us"] = elapsed.count();
  record["request_bytes"] = scope.requestBytes;
  record["response_bytes"] = reply.message.dump().size();
  auto written = data_.audit->append(std::move(record));
  if (written) {
    observe::Metrics::instance().countAudit("written");
    return;
  }
  observe::Metrics::instance().countAudit("failed");
  log::error(
      "audit", "an audit record could not be written",
      {{"error", written.error()}, {"mcp_method", request.method}, {"correlation_id", scope.correlationId}});
  if (!data_.auditFailClosed) return;
  // Fail closed: the client must not get a result that has no audit record. The connector has
  // already run, so say that plainly.
  RpcError error{kAuditUnavailable,
                 "Service unavailable: the request ran but its audit record could not be written (" +
                     written.error() + "), so the result is withheld (audit.fail_closed).",
                 nullptr};
  reply.message = makeErrorResponse(request.id, error);
  if (scope.era == Era::kStateless) reply.httpStatus = 503;
}

}  // namespace mcphost::protocol
