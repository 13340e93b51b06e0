#include "auth/token_exchange.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "auth/jwks.hpp"

namespace mcphost::auth {

namespace {

constexpr std::size_t kMaxCachedTokens = 10000;
constexpr auto kExpiryMargin = std::chrono::seconds(30);

std::string sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

// The provider's own words are useful in a log, but bounded and without control characters.
std::string sanitised(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (out.size() >= 200) {
      out += "...";
      break;
    }
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

// A token goes into an Authorization header later: anything but visible ASCII would allow
// header injection.
bool isHeaderSafeToken(const std::string& token) {
  return !token.empty() &&
         std::all_of(token.begin(), token.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

TokenExchanger::TokenExchanger(TokenExchangeSettings settings) : settings_(std::move(settings)) {}

std::size_t TokenExchanger::cachedTokens() const {
  const std::lock_guard lock(mutex_);
  return cache_.size();
}

Expected<std::string, std::string> TokenExchanger::endpoint() {
  if (!settings_.tokenEndpoint.empty()) return settings_.tokenEndpoint;
  {
    const std::lock_guard lock(mutex_);
    if (!discoveredEndpoint_.empty()) return discoveredEndpoint_;
  }
  if (settings_.issuer.empty())
    return unexpected(std::string("token exchange: no token endpoint or issuer configured"));
  auto metadata = discoverIssuerMetadata(settings_.issuer, settings_.http);
  if (!metadata) return unexpected("token exchange: " + metadata.error());
  const auto found = metadata->find("token_endpoint");
  if (found == metadata->end() || !found->is_string() || found->get_ref<const std::string&>().empty()) {
    return unexpected("token exchange: the metadata of " + displayUrl(settings_.issuer) +
                      " has no token_endpoint");
  }
  const std::lock_guard lock(mutex_);
  discoveredEndpoint_ = found->get<std::string>();
  return discoveredEndpoint_;
}

void TokenExchanger::remember(const std::string& key, std::string accessToken, Clock::time_point reuseUntil) {
  const std::lock_guard lock(mutex_);
  if (cache_.size() >= kMaxCachedTokens) {
    const auto now = Clock::now();
    std::erase_if(cache_, [now](const auto& entry) { return entry.second.reuseUntil <= now; });
    if (cache_.size() >= kMaxCachedTokens) cache_.clear();  // bounded memory beats a perfect hit rate
  }
  cache_[key] = CachedToken{std::move(accessToken), reuseUntil};
}

Expected<std::string, std::string> TokenExchanger::exchange(const std::string& subjectToken) {
  if (subjectToken.empty()) return unexpected(std::string("token exchange: no subject token to exchange"));
  const std::string key = sha256Hex(subjectToken);
  {
    const std::lock_guard lock(mutex_);
    const auto cached = cache_.find(key);
    if (cached != cache_.end()) {
      if (Clock::now() < cached->second.reuseUntil) return cached->second.accessToken;
      cache_.erase(cached);
    }
  }
  auto url = endpoint();
  if (!url) return unexpected(url.error());

  std::vector<std::pair<std::string, std::string>> form = {
      {"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"},
      {"subject_token", subjectToken},
      {"subject_token_type", "urn:ietf:params:oauth:token-type:access_token"},
      {"requested_token_type", "urn:ietf:params:oauth:token-type:access_token"},
  };
  if (!settings_.audience.empty()) form.emplace_back("audience", settings_.audience);
  if (!settings_.resource.empty()) form.emplace_back("resource", settings_.resource);
  if (!settings_.scope.empty()) form.emplace_back("scope", settings_.scope);
  const bool basicAuth = !settings_.clientId.empty() && !settings_.clientSecret.empty();
  if (!settings_.clientId.empty() && !basicAuth) form.emplace_back("client_id", settings_.clientId);

  const auto response =
      basicAuth ? httpPostForm(*url, form, settings_.http, settings_.clientId, settings_.clientSecret)
                : httpPostForm(*url, form, settings_.http);
  if (!response) return unexpected("token exchange: " + response.error());
  const std::string where = "token exchange at " + displayUrl(*url);
  const auto body = parseJsonLimited(response->body, 16);
  if (response->status != 200) {
    std::string why = where + " failed: HTTP " + std::to_string(response->status);
    if (body && body->is_object()) {
      if (const auto error = body->find("error"); error != body->end() && error->is_string()) {
        why += " " + sanitised(error->get<std::string>());
      }
      if (const auto text = body->find("error_description"); text != body->end() && text->is_string()) {
        why += ": " + sanitised(text->get<std::string>());
      }
    }
    return unexpected(why);
  }
  if (!body || !body->is_object())
    return unexpected(where + " returned a response that is not a JSON object");
  const auto accessToken = body->find("access_token");
  if (accessToken == body->end() || !accessToken->is_string() ||
      !isHeaderSafeToken(accessToken->get_ref<const std::string&>())) {
    return unexpected(where + " returned no usable access_token");
  }
  if (const auto issued = body->find("issued_token_type");
      issued != body->end() &&
      (!issued->is_string() || *issued != "urn:ietf:params:oauth:token-type:access_token")) {
    return unexpected(where + " issued a token that is not an access token");
  }
  std::string token = accessToken->get<std::string>();
  if (const auto expiresIn = body->find("expires_in"); expiresIn != body->end() && expiresIn->is_number()) {
    const auto lifetime =
        std::chrono::seconds(static_cast<long long>(std::min(expiresIn->get<double>(), 86400.0 * 365)));
    // Tokens without a known lifetime, or about to expire, are not reused.
    if (lifetime > kExpiryMargin) remember(key, token, Clock::now() + lifetime - kExpiryMargin);
  }
  return token;
}

}  // namespace mcphost::auth
