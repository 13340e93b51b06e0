// RFC 8693 OAuth 2.0 Token Exchange client: trades the caller's access token (issued for this
// host) for one issued for a backend, so connectors never forward a token minted for someone else
// (no token passthrough) while the backend still learns who the user is.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>

#include "auth/http_fetch.hpp"
#include "common/expected.hpp"

namespace mcphost::auth {

struct TokenExchangeSettings {
  std::string tokenEndpoint;  // or discovered from issuer metadata "token_endpoint" when empty
  std::string issuer;
  std::string clientId;      // client_secret_basic when clientSecret is set, else sent as client_id
  std::string clientSecret;  // never logged, never part of an error
  std::string audience;      // RFC 8693 "audience" of the requested token (optional)
  std::string resource;      // RFC 8693 / RFC 8707 "resource" (optional)
  std::string scope;         // space-separated (optional)
  HttpFetchOptions http;
};

class TokenExchanger {  // thread-safe
 public:
  explicit TokenExchanger(TokenExchangeSettings settings);

  // Trades the client's access token for one bound to the backend. Cached (key = SHA-256 of the
  // subject token) until expires_in minus 30 s. Errors are for the log and hold no tokens.
  Expected<std::string, std::string> exchange(const std::string& subjectToken);

  [[nodiscard]] const TokenExchangeSettings& settings() const { return settings_; }
  [[nodiscard]] std::size_t cachedTokens() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct CachedToken {
    std::string accessToken;
    Clock::time_point reuseUntil;
  };
  Expected<std::string, std::string> endpoint();
  void remember(const std::string& key, std::string accessToken, Clock::time_point reuseUntil);

  const TokenExchangeSettings settings_;
  mutable std::mutex mutex_;
  std::string discoveredEndpoint_;
  std::map<std::string, CachedToken> cache_;
};

}  // namespace mcphost::auth
