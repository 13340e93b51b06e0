// OAuth 2.1 / OIDC bearer tokens (JWT access tokens, RFC 9068 style) checked against one
// configured identity provider: signature with the provider's published keys, then issuer,
// audience (RFC 8707 resource binding), lifetime and scopes. Fails closed: when the keys cannot
// be fetched, nobody gets in.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth_failure.hpp"
#include "auth/http_fetch.hpp"
#include "auth/principal.hpp"
#include "common/expected.hpp"

namespace mcphost::auth {

class JwksCache;

struct JwtSettings {
  std::string issuer;    // exact match of "iss"
  std::string audience;  // this server's canonical resource URI; "aud" (string or array) must contain it
  // Optional; else discovered: <issuer>/.well-known/oauth-authorization-server (RFC 8414), then
  // <issuer>/.well-known/openid-configuration.
  std::string jwksUri;
  std::vector<std::string> algorithms = {"RS256", "ES256"};  // supported: RS256, ES256, HS256
  std::string hmacSecret;  // HS256 accepted only when this is set AND "HS256" is in algorithms
  std::chrono::seconds clockSkew{60};
  std::vector<std::string> requiredScopes;  // all must be present ("scope" string or "scp")
  // Claim names; a name that is not a top-level claim may be a dotted path ("realm_access.roles").
  std::string subjectClaim = "sub", nameClaim = "name", groupsClaim = "groups", rolesClaim = "roles",
              tenantClaim = "tid";
  std::chrono::seconds jwksTtl{600};
  std::chrono::seconds jwksMinRefreshInterval{10};  // unknown-kid refetches are rate limited
  HttpFetchOptions http;
  std::size_t maxTokenBytes = 16384;
};

class JwtAuthenticator {  // thread-safe; one per configured provider
 public:
  explicit JwtAuthenticator(JwtSettings settings);
  ~JwtAuthenticator();
  JwtAuthenticator(const JwtAuthenticator&) = delete;
  JwtAuthenticator& operator=(const JwtAuthenticator&) = delete;
  JwtAuthenticator(JwtAuthenticator&&) noexcept;
  JwtAuthenticator& operator=(JwtAuthenticator&&) noexcept;

  // Never throws. Failures carry a client-safe message and a log-only detail.
  Expected<Principal, AuthFailure> authenticate(std::string_view token) const;
  Expected<Principal, AuthFailure> authenticateAt(std::string_view token,
                                                  std::chrono::system_clock::time_point now) const;
  // Discovery + first JWKS fetch; error text for the start-up log (not fatal: fetching is retried
  // on use).
  std::optional<std::string> warmUp();
  [[nodiscard]] const JwtSettings& settings() const;
  [[nodiscard]] int jwksFetchCount() const;

 private:
  Expected<Principal, AuthFailure> validate(std::string_view token,
                                            std::chrono::system_clock::time_point now) const;

  JwtSettings settings_;
  std::unique_ptr<JwksCache> keys_;
};

// The "iss" of a token WITHOUT checking anything: only for choosing which configured provider
// should validate it. Nullopt when the token is not a readable JWT.
std::optional<std::string> unverifiedIssuer(std::string_view token);

}  // namespace mcphost::auth
