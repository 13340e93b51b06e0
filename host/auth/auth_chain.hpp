// The configured authentication providers in one place. Every MCP request either gets a
// principal here or is refused with the status and challenge the transport should send.
// Order: a verified client certificate (mTLS), then the Authorization header: an API key
// (mcph_...), a bearer JWT (OAuth 2.1 resource server), or Basic (LDAP / Active Directory).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth_failure.hpp"
#include "auth/client_certificate.hpp"
#include "auth/principal.hpp"
#include "common/expected.hpp"
#include "config/config.hpp"

namespace mcphost::guard {
class RateLimiter;
}

namespace mcphost::auth {

class JwtAuthenticator;
class LdapAuthenticator;
class ApiKeyStore;
class MtlsMapper;
class TokenExchanger;
class VerifiedTokenCache;
struct ExchangeClients;

struct AuthRequest {
  std::string_view authorization;  // the Authorization header as sent; may be empty
  std::string_view peer;           // "ip:port"
  bool tls = false;
  const ClientCertificate* clientCertificate = nullptr;  // verified by the TLS layer
};

class AuthChain {
 public:
  static Expected<std::unique_ptr<AuthChain>, std::string> create(const config::Config& config);
  ~AuthChain();
  AuthChain(const AuthChain&) = delete;
  AuthChain& operator=(const AuthChain&) = delete;

  [[nodiscard]] bool enabled() const { return enabled_; }
  Expected<Principal, AuthFailure> authenticate(const AuthRequest& request);
  // The local user who started `mcphost serve --stdio` (the OS authenticated them).
  [[nodiscard]] Principal stdioPrincipal() const;

  // RFC 9728 protected resource metadata, and where it is served (path part only).
  [[nodiscard]] std::string resourceMetadataJson() const;
  [[nodiscard]] std::vector<std::string> resourceMetadataPaths() const;
  [[nodiscard]] std::string resourceMetadataUrl() const;
  // The WWW-Authenticate challenges for a refusal (one per accepted scheme).
  [[nodiscard]] std::vector<std::string> challenges(const AuthFailure& failure) const;

  // Fetches JWKS and probes the directory so problems show at start-up (never fatal: requests
  // fail closed until the provider answers). One line per problem.
  std::vector<std::string> warmUp();
  // RFC 8693: a token for `audience` in exchange for the caller's token; error text otherwise.
  Expected<std::string, std::string> exchangeToken(const Principal& principal, const std::string& audience);

 private:
  AuthChain() = default;
  Expected<Principal, AuthFailure> bearer(std::string_view token);
  Expected<Principal, AuthFailure> basic(std::string_view encoded, bool secureChannel, const std::string& ip);
  [[nodiscard]] AuthFailure missing() const;

  bool enabled_ = false;
  std::string resource_;
  bool basicOverPlainHttp_ = false;
  std::vector<std::string> stdioGroups_;
  std::vector<std::string> issuers_;
  std::vector<std::string> scopesSupported_;
  std::vector<std::unique_ptr<JwtAuthenticator>> jwt_;
  std::unique_ptr<VerifiedTokenCache> verifiedTokens_;
  std::unique_ptr<ExchangeClients> exchange_;  // RFC 8693 clients per issuer and audience
  std::unique_ptr<ApiKeyStore> apiKeys_;
  std::unique_ptr<LdapAuthenticator> ldap_;
  std::unique_ptr<MtlsMapper> mtls_;
  std::unique_ptr<guard::RateLimiter> failuresPerIp_;
  std::unique_ptr<guard::RateLimiter> failuresPerUser_;
};

}  // namespace mcphost::auth
