// An in-process OAuth 2.0 / OpenID Connect identity provider for tests: real RSA-2048 and EC
// P-256 keys (made with the openssl command line), metadata, a JWKS endpoint that can be taken
// down or made to serve garbage, and an RFC 8693 token-exchange endpoint. Listens on 127.0.0.1
// with a random port. Thread-safe: the host under test may call it while the test mints tokens.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace mcphost::test {

class TestIdentityProvider {
 public:
  // Creates tempDir if needed and writes the key files there. Throws std::runtime_error when the
  // keys cannot be made or the server cannot start.
  explicit TestIdentityProvider(const std::string& tempDir);
  ~TestIdentityProvider();
  TestIdentityProvider(const TestIdentityProvider&) = delete;
  TestIdentityProvider& operator=(const TestIdentityProvider&) = delete;

  [[nodiscard]] std::string issuer() const;  // "http://127.0.0.1:PORT"
  [[nodiscard]] std::uint16_t port() const;

  enum class JwksMode { kNormal, kDown /* 503 */, kGarbage /* 200 with non-JSON */ };
  void setJwksMode(JwksMode mode);
  [[nodiscard]] int jwksFetchCount() const;
  // Which discovery documents are served (404 when off); both are on by default.
  void setMetadataEnabled(bool oauthAuthorizationServer, bool openidConfiguration);
  [[nodiscard]] int metadataFetchCount(
      const std::string& path) const;  // e.g. "/.well-known/openid-configuration"

  void rotateRsaKey();  // a new RSA key with a new kid replaces the old one in the JWKS
  [[nodiscard]] std::string rsaKid() const;
  [[nodiscard]] std::string ecKid() const;
  [[nodiscard]] nlohmann::json jwksDocument() const;  // what /jwks serves in kNormal mode

  // Signs header+claims. Defaults merged under claims: iss=issuer(), sub="alice", iat=now,
  // exp=now+300, aud=audience (omitted when empty). A null value in claims or extraHeader removes
  // that field. alg: "RS256", "ES256", "HS256" (needs hmacSecret), "none" (empty signature); kid
  // defaults to the key's kid.
  [[nodiscard]] std::string mint(const nlohmann::json& claims, const std::string& audience,
                                 const std::string& alg = "RS256", const std::string& hmacSecret = "",
                                 const nlohmann::json& extraHeader = nlohmann::json::object()) const;
  // Signs an arbitrary payload text under the given header (nothing added), for malformed tokens.
  [[nodiscard]] std::string mintRaw(const nlohmann::json& header, const std::string& payload,
                                    const std::string& alg = "RS256",
                                    const std::string& hmacSecret = "") const;
  [[nodiscard]] std::string rsaPublicKeyPem() const;  // for the key-confusion test

  // GET /redirect answers 302 to /jwks (to check that clients never follow redirects).
  // POST /token: RFC 8693 token exchange for client "mcphost" / "exchange-secret"
  // (client_secret_basic). The issued token copies sub, has aud = requested audience (or
  // resource) and "act": {"sub": "mcphost"}.
  [[nodiscard]] int tokenExchangeCount() const;  // every request to /token, good or bad
  [[nodiscard]] std::map<std::string, std::string> lastTokenRequest() const;  // form fields

  static constexpr const char* kExchangeClientId = "mcphost";
  static constexpr const char* kExchangeClientSecret = "exchange-secret";

  struct State;  // shared with the server's request handlers

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mcphost::test
