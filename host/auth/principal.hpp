// Who is calling: the one identity type every layer shares. Authentication fills it, policy
// decides on it, rate limits key on it, audit records it and connectors receive it through the
// SDK's caller-identity service.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mcphost::auth {

struct Principal {
  std::string subject = "anonymous";
  std::string displayName;
  // "none" (authentication off), "jwt", "api_key", "ldap", "mtls", "stdio".
  std::string authMethod = "none";
  std::vector<std::string> groups;
  std::vector<std::string> roles;
  std::vector<std::string> scopes;  // OAuth scopes or API-key scopes
  std::string tenant;
  // Claims (JWT), directory attributes (LDAP), certificate fields (mTLS); never secrets.
  nlohmann::json attributes = nlohmann::json::object();
  std::string sourceIp;  // the peer address, without the port
  std::string issuer;    // the token issuer (jwt) or the directory URL (ldap)
  // The client's bearer token, kept only so an RFC 8693 exchange can trade it for a
  // backend-bound token. Never logged, never serialised, never forwarded to a connector.
  std::string subjectToken;
  // Set per call, only for a connector with token_exchange: the RFC 8693 token bound to that
  // connector's audience. The connector receives it as caller.accessToken.
  std::string exchangedToken;

  [[nodiscard]] bool hasScope(const std::string& scope) const {
    for (const auto& s : scopes)
      if (s == scope) return true;
    return false;
  }
};

// What a connector, the audit log or `policy explain` may see of a principal: everything but
// the subject token.
inline nlohmann::json publicView(const Principal& p) {
  return {{"subject", p.subject},       {"displayName", p.displayName},
          {"authMethod", p.authMethod}, {"groups", p.groups},
          {"roles", p.roles},           {"scopes", p.scopes},
          {"tenant", p.tenant},         {"attributes", p.attributes},
          {"sourceIp", p.sourceIp},     {"issuer", p.issuer}};
}

}  // namespace mcphost::auth
