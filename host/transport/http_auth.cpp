// Authentication and rate limits at the HTTP edge of the MCP endpoint: every request gets a
// principal or a refusal with the status, challenge and message the client needs to fix it.
#include <Poco/String.h>

#include "connectors/catalog.hpp"
#include "observe/log.hpp"
#include "observe/metrics.hpp"
#include "transport/exchange.hpp"

namespace mcphost::transport {

namespace {

constexpr int kServerError = -32000;

std::string schemeLabel(const Poco::Net::HTTPRequest& head, bool certificate) {
  const std::string value = head.get("Authorization", "");  // a copy: get() returns the default by reference
  if (value.size() >= 6 && Poco::icompare(value.substr(0, 6), "Basic ") == 0) return "basic";
  if (value.size() >= 7 && Poco::icompare(value.substr(0, 7), "Bearer ") == 0) return "bearer";
  if (!value.empty()) return "other";
  return certificate ? "mtls" : "none";
}

const char* resultLabel(auth::AuthError e) {
  switch (e) {
    case auth::AuthError::kNoCredentials:
      return "missing";
    case auth::AuthError::kInvalidCredentials:
      return "invalid";
    case auth::AuthError::kInsufficientScope:
      return "insufficient_scope";
    case auth::AuthError::kProviderUnavailable:
      return "unavailable";
    case auth::AuthError::kTooManyFailures:
      return "limited";
  }
  return "invalid";
}

}  // namespace

bool StreamableHttpEndpoint::authenticate(Exchange& ex) {
  auto& head = ex.request.head;
  if (options_.auth && options_.auth->enabled()) {
    auth::AuthRequest request;
    const std::string authorization = head.get("Authorization", "");
    request.authorization = authorization;
    request.peer = ex.request.peer;
    request.tls = ex.request.tls;
    request.clientCertificate = ex.request.clientCertificate.get();
    auto result = options_.auth->authenticate(request);
    const std::string scheme = schemeLabel(head, request.clientCertificate != nullptr);
    if (!result) {
      const auto& failure = result.error();
      observe::Metrics::instance().countAuth(scheme, resultLabel(failure.error));
      log::warn("auth", "request refused",
                {{"correlation_id", ex.correlationId},
                 {"peer", ex.request.peer},
                 {"scheme", scheme},
                 {"result", resultLabel(failure.error)},
                 {"reason", failure.detail}});
      HeaderList headers;
      for (auto& challenge : options_.auth->challenges(failure))
        headers.emplace_back("WWW-Authenticate", challenge);
      if (failure.error == auth::AuthError::kTooManyFailures) {
        headers.emplace_back("Retry-After", std::to_string(failure.retryAfter.count()));
      } else if (failure.error == auth::AuthError::kProviderUnavailable) {
        headers.emplace_back("Retry-After", "5");
      }
      ex.respondError(auth::httpStatusFor(failure.error), kServerError, failure.message, nullptr, nullptr,
                      std::move(headers));
      return false;
    }
    observe::Metrics::instance().countAuth(result->authMethod, "ok");
    ex.principal = std::move(result.value());
  } else {
    ex.principal.sourceIp = ex.request.peer.substr(0, ex.request.peer.rfind(':'));
  }
  if (options_.rateLimits) {
    if (auto refusal =
            options_.rateLimits->admitRequest(ex.principal.authMethod + ":" + ex.principal.subject)) {
      observe::Metrics::instance().countRateLimited();
      ex.respondError(429, guard::kRateLimited, refusal->message, nullptr,
                      {{"retryAfterSeconds", refusal->retryAfter.count()}},
                      {{"Retry-After", std::to_string(refusal->retryAfter.count())}});
      return false;
    }
  }
  return true;
}

bool StreamableHttpEndpoint::admitToolCall(Exchange& ex, const protocol::Message& message) {
  if (!options_.rateLimits || message.method != "tools/call" || !message.params.is_object()) return true;
  const auto name = message.params.find("name");
  if (name == message.params.end() || !name->is_string()) return true;  // the router explains
  const auto target = catalog_.findTool(name->get<std::string>());
  if (!target || !router_.mayCallTool(ex.principal, name->get<std::string>())) return true;  // refused later
  if (auto refusal = options_.rateLimits->admitToolCall(target->connectorId, name->get<std::string>())) {
    observe::Metrics::instance().countRateLimited();
    ex.respondError(429, guard::kRateLimited, refusal->message, message.id,
                    {{"retryAfterSeconds", refusal->retryAfter.count()}},
                    {{"Retry-After", std::to_string(refusal->retryAfter.count())}});
    return false;
  }
  return true;
}

}  // namespace mcphost::transport
