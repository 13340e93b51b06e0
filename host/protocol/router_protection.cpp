// The router's data-protection stages: tools/call arguments are checked against the tool's
// inputSchema and scanned for secrets before any connector sees them, and results are passed
// through the DLP rules (masking, redaction, pseudonyms, blocking) before the client sees them.
#include "dlp/dlp_engine.hpp"
#include "guard/argument_validator.hpp"
#include "observe/log.hpp"
#include "observe/metrics.hpp"
#include "protocol/mcp_router.hpp"

namespace mcphost::protocol {

namespace {

Json findingsJson(const std::vector<dlp::Finding>& findings) {
  Json out = Json::array();
  for (const auto& f : findings) {
    out.push_back({{"detector", f.detector},
                   {"rule", f.rule},
                   {"action", std::string(dlp::actionName(f.action))},
                   {"count", f.count}});
  }
  return out;
}

}  // namespace

std::optional<Json> McpRouter::refuseArguments(const std::string& tool, const Json& arguments,
                                               RequestScope& scope) const {
  if (data_.dlp) {
    const auto secrets = data_.dlp->findSecrets(arguments);
    if (!secrets.empty()) {
      std::string where;
      Json details = Json::array();
      for (const auto& s : secrets) {
        if (!where.empty()) where += ", ";
        where += s.detector + " at " + (s.pointer.empty() ? std::string("/") : s.pointer);
        details.push_back({{"detector", s.detector}, {"path", s.pointer}});
      }
      scope.audit.refusal = "secret_in_arguments";
      observe::Metrics::instance().countArgumentRefusal(scope.audit.refusal);
      log::warn("guard", "tool call refused: the arguments carry a secret",
                {{"tool", tool}, {"subject", scope.caller.subject}, {"findings", details}});
      return guard::ArgumentValidator::toolError(
          "The call was refused: the arguments carry what looks like a secret (" + where +
              "). Secrets must not be passed to tools; connectors get their credentials from the host.",
          {{"reason", "secret_in_arguments"}, {"findings", std::move(details)}});
    }
  }
  if (!data_.validator) return std::nullopt;
  auto invalid = data_.validator->check(tool, catalog_.toolInputSchema(tool), arguments);
  if (invalid) {
    scope.audit.refusal = "invalid_arguments";
    observe::Metrics::instance().countArgumentRefusal(scope.audit.refusal);
  }
  return invalid;
}

std::optional<RpcError> McpRouter::protectResult(std::string_view kind,
                                                 const connectors::Catalog::Target& target,
                                                 std::string_view name, Json& result,
                                                 RequestScope& scope) const {
  if (!data_.dlp || data_.dlp->empty()) return std::nullopt;
  const auto* tags = guard_ ? guard_->connectorTags(target.connectorId, target.region) : nullptr;
  dlp::ScanTarget scanTarget;
  scanTarget.kind = kind;
  scanTarget.connector = target.connectorId;
  scanTarget.name = name;
  scanTarget.classifications = tags;
  scanTarget.tenant = scope.caller.tenant;
  // The policy decides who may see data unmasked (action `unmask`, args.rule = the DLP rule);
  // without a policy nobody may.
  auto exempt = [&](std::string_view rule) {
    if (!guard_ || !guard_->enforcing()) return false;
    return guard_->mayUnmask(scope.caller, {kind, target.connectorId, name, nullptr, target.region}, rule);
  };
  auto protection = data_.dlp->protect(result, scanTarget, exempt);
  if (!protection.findings.empty()) {
    for (const auto& f : protection.findings)
      observe::Metrics::instance().countDlpFindings(f.detector, dlp::actionName(f.action), f.count);
    scope.audit.dlp = findingsJson(protection.findings);
  }
  if (!protection.blockedBy) return std::nullopt;
  log::warn("dlp", "result withheld by a data-protection rule",
            {{"rule", *protection.blockedBy},
             {"connector", target.connectorId},
             {"target", std::string(name)},
             {"subject", scope.caller.subject}});
  // dlp:finding-limit and dlp:error are the engine's own refusals: it could not finish the scan,
  // so nothing unscanned leaves (fail closed).
  const bool engineRefused = protection.blockedBy->rfind("dlp:", 0) == 0;
  const std::string message =
      engineRefused ? "The result was withheld: data protection could not finish checking it (" +
                          *protection.blockedBy + "); ask the operator to look at the host log."
                    : "The result was withheld: it contains data that rule '" + *protection.blockedBy +
                          "' does not let leave the host.";
  if (kind == "tool") {
    // A tool error, not a protocol error: the model learns the call succeeded but the data may
    // not be shown, and can tell the user.
    result = guard::ArgumentValidator::toolError(
        message, {{"reason", "blocked_by_dlp"}, {"rule", *protection.blockedBy}});
    return std::nullopt;
  }
  return RpcError{
      guard::kForbidden, message, {{"rule", *protection.blockedBy}, {"reason", "blocked_by_dlp"}}};
}

}  // namespace mcphost::protocol
