#include "auth/auth_chain.hpp"

#include <Poco/Exception.h>
#include <Poco/URI.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "auth/api_key_store.hpp"
#include "auth/jwt_authenticator.hpp"
#include "auth/ldap_authenticator.hpp"
#include "auth/mtls_mapper.hpp"
#include "auth/token_exchange.hpp"
#include "auth/verified_token_cache.hpp"
#include "common/base64.hpp"
#include "common/crypto.hpp"
#include "config/secret_reader.hpp"
#include "guard/rate_limiter.hpp"

namespace mcphost::auth {

namespace {

using Json = nlohmann::json;

std::string ipOf(std::string_view peer) {
  if (!peer.empty() && peer.front() == '[') {
    auto end = peer.find(']');
    return std::string(peer.substr(1, end == std::string_view::npos ? peer.size() - 1 : end - 1));
  }
  auto colon = peer.rfind(':');
  return std::string(colon == std::string_view::npos ? peer : peer.substr(0, colon));
}

bool isLoopback(const std::string& ip) {
  return ip.rfind("127.", 0) == 0 || ip == "::1";
}

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The unverified "iss" of a JWT, only to pick which provider verifies it.
std::string peekIssuer(std::string_view token) {
  const auto first = token.find('.');
  const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || second - first - 1 > 8192) return {};
  auto payload = base64UrlDecode(token.substr(first + 1, second - first - 1));
  if (!payload) return {};
  Json claims = Json::parse(*payload, nullptr, false);
  if (!claims.is_object() || !claims.contains("iss") || !claims["iss"].is_string()) return {};
  return claims["iss"].get<std::string>();
}

// The "exp" of a token that has just passed validation, as a time point (none: far future).
std::chrono::system_clock::time_point expiryOf(std::string_view token) {
  const auto first = token.find('.');
  const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  auto payload = second == std::string_view::npos
                     ? std::nullopt
                     : base64UrlDecode(token.substr(first + 1, second - first - 1));
  Json claims = payload ? Json::parse(*payload, nullptr, false) : Json();
  if (!claims.is_object() || !claims.contains("exp") || !claims["exp"].is_number())
    return std::chrono::system_clock::time_point::max();
  return std::chrono::system_clock::time_point(std::chrono::seconds(claims["exp"].get<long long>()));
}

// Quotes are not allowed inside an auth-param value we build; drop them rather than escape.
std::string quoteSafe(std::string text) {
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '"' || c == '\\' || c < 0x20; }, ' ');
  return text;
}

std::chrono::seconds ceilSeconds(std::chrono::milliseconds ms) {
  return std::chrono::seconds(std::max<long long>(1, (ms.count() + 999) / 1000));
}

AuthFailure tooMany(const std::string& who, std::chrono::milliseconds wait, const std::string& scheme) {
  const auto seconds = ceilSeconds(wait);
  AuthFailure f{AuthError::kTooManyFailures,
                "too many failed authentication attempts " + who + "; retry in " +
                    std::to_string(seconds.count()) + " s",
                "failed-attempt limit reached " + who,
                scheme,
                {},
                seconds};
  return f;
}

}  // namespace

struct ExchangeClients {
  std::mutex mutex;
  std::vector<std::pair<std::string, TokenExchangeSettings>> byIssuer;
  std::map<std::string, std::unique_ptr<TokenExchanger>> clients;  // issuer + '\n' + audience
};

AuthChain::~AuthChain() = default;

Expected<std::unique_ptr<AuthChain>, std::string> AuthChain::create(const config::Config& config) {
  std::unique_ptr<AuthChain> chain(
      new AuthChain());  // NOLINT(cppcoreguidelines-owning-memory): private constructor
  chain->exchange_ = std::make_unique<ExchangeClients>();
  chain->verifiedTokens_ = std::make_unique<VerifiedTokenCache>();
  const auto& ac = config.auth;
  chain->enabled_ = ac.enabled;
  chain->resource_ = ac.resource;
  chain->basicOverPlainHttp_ = ac.basicOverPlainHttp;
  chain->stdioGroups_ = ac.stdioGroups;
  if (!ac.enabled) return chain;

  auto& exchange = *chain->exchange_;
  for (const auto& o : ac.oauth) {
    JwtSettings s;
    s.issuer = o.issuer;
    s.audience = o.audience;
    s.jwksUri = o.jwksUri;
    s.algorithms = o.algorithms;
    if (config::isSet(o.hmacSecret)) {
      auto secret = config::readSecret("auth.oauth hs256_secret", o.hmacSecret);
      if (!secret) return unexpected(secret.error());
      if (secret->size() < 32) {
        return unexpected("auth.oauth hs256_secret: at least 32 bytes are needed for HS256 (got " +
                          std::to_string(secret->size()) + ")");
      }
      s.hmacSecret = *secret;
    }
    s.clockSkew = std::chrono::duration_cast<std::chrono::seconds>(o.clockSkew);
    s.requiredScopes = o.requiredScopes;
    if (auto it = o.claims.find("subject"); it != o.claims.end()) s.subjectClaim = it->second;
    if (auto it = o.claims.find("name"); it != o.claims.end()) s.nameClaim = it->second;
    if (auto it = o.claims.find("groups"); it != o.claims.end()) s.groupsClaim = it->second;
    if (auto it = o.claims.find("roles"); it != o.claims.end()) s.rolesClaim = it->second;
    if (auto it = o.claims.find("tenant"); it != o.claims.end()) s.tenantClaim = it->second;
    s.jwksTtl = std::chrono::duration_cast<std::chrono::seconds>(o.jwksTtl);
    s.http.timeout = o.timeout;
    s.http.caFile = o.caFile;
    chain->issuers_.push_back(o.issuer);
    for (const auto& scope : o.requiredScopes) {
      if (std::find(chain->scopesSupported_.begin(), chain->scopesSupported_.end(), scope) ==
          chain->scopesSupported_.end())
        chain->scopesSupported_.push_back(scope);
    }
    chain->jwt_.push_back(std::make_unique<JwtAuthenticator>(std::move(s)));
    if (!o.clientId.empty()) {
      TokenExchangeSettings t;
      t.issuer = o.issuer;
      t.tokenEndpoint = o.tokenEndpoint;
      t.clientId = o.clientId;
      if (config::isSet(o.clientSecret)) {
        auto secret = config::readSecret("auth.oauth token_exchange client_secret", o.clientSecret);
        if (!secret) return unexpected(secret.error());
        t.clientSecret = *secret;
      }
      t.http.timeout = o.timeout;
      t.http.caFile = o.caFile;
      exchange.byIssuer.emplace_back(o.issuer, std::move(t));
    }
  }
  if (ac.apiKeys) {
    auto store = ApiKeyStore::open(ac.apiKeyDatabase);
    if (!store) return unexpected("auth.api_keys: " + store.error());
    chain->apiKeys_ = std::move(store.value());
  }
  if (ac.ldap.enabled) {
    const auto& l = ac.ldap;
    LdapSettings s;
    s.url = l.url;
    s.startTls = l.startTls;
    s.caFile = l.caFile;
    s.verifyCertificate = l.verifyCertificate;
    s.bindDn = l.bindDn;
    if (config::isSet(l.bindPassword)) {
      auto secret = config::readSecret("auth.ldap bind_password", l.bindPassword);
      if (!secret) return unexpected(secret.error());
      s.bindPassword = *secret;
    }
    s.userBase = l.userBase;
    s.userFilter = l.userFilter;
    s.bindDnTemplate = l.bindDnTemplate;
    s.groupMode = l.groupMode == "none"        ? LdapGroupMode::kNone
                  : l.groupMode == "member_of" ? LdapGroupMode::kMemberOf
                                               : LdapGroupMode::kSearch;
    s.groupBase = l.groupBase;
    s.groupFilter = l.groupFilter;
    s.groupNameAttribute = l.groupNameAttribute;
    s.nestedGroups = l.nestedGroups;
    s.groupRoles = l.groupRoles;
    s.displayNameAttribute = l.displayNameAttribute;
    s.tenantAttribute = l.tenantAttribute;
    s.extraAttributes = l.attributes;
    s.poolSize = l.poolSize;
    s.timeout = l.timeout;
    chain->ldap_ = std::make_unique<LdapAuthenticator>(std::move(s));
  }
  if (!ac.mtlsRules.empty()) chain->mtls_ = std::make_unique<MtlsMapper>(ac.mtlsRules);
  auto perIp = guard::parseRate(ac.failuresPerIp);
  auto perUser = guard::parseRate(ac.failuresPerUser);
  if (!perIp) return unexpected("auth.failed_attempts.per_ip: " + perIp.error());
  if (!perUser) return unexpected("auth.failed_attempts.per_user: " + perUser.error());
  chain->failuresPerIp_ = std::make_unique<guard::RateLimiter>(*perIp);
  chain->failuresPerUser_ = std::make_unique<guard::RateLimiter>(*perUser);
  return chain;
}

AuthFailure AuthChain::missing() const {
  std::string how;
  if (!jwt_.empty()) how = "Authorization: Bearer <access token from " + issuers_.front() + ">";
  if (apiKeys_) how += std::string(how.empty() ? "" : ", or ") + "Authorization: Bearer <API key>";
  if (ldap_) how += std::string(how.empty() ? "" : ", or ") + "Authorization: Basic (directory user)";
  if (mtls_) how += std::string(how.empty() ? "" : ", or ") + "a client certificate";
  return AuthFailure{AuthError::kNoCredentials,
                     "authentication required: send " + how,
                     "no credentials",
                     ldap_ && jwt_.empty() && !apiKeys_ ? "Basic" : "Bearer",
                     {},
                     {}};
}

Expected<Principal, AuthFailure> AuthChain::authenticate(const AuthRequest& request) {
  const std::string ip = ipOf(request.peer);
  if (!enabled_) {
    Principal anonymous;
    anonymous.sourceIp = ip;
    return anonymous;
  }
  if (auto wait = failuresPerIp_->blocked(ip)) return unexpected(tooMany("from " + ip, *wait, "Bearer"));

  Expected<Principal, AuthFailure> result = unexpected(missing());
  const std::string_view header = trim(request.authorization);
  if (request.clientCertificate != nullptr && mtls_ && header.empty()) {
    result = mtls_->map(*request.clientCertificate);
  } else if (startsWithNoCase(header, "Bearer ")) {
    result = bearer(trim(header.substr(7)));
  } else if (startsWithNoCase(header, "Basic ")) {
    result = basic(trim(header.substr(6)), request.tls || isLoopback(ip) || basicOverPlainHttp_, ip);
  } else if (!header.empty()) {
    result = unexpected(
        AuthFailure{AuthError::kInvalidCredentials,
                    "unsupported Authorization scheme: use Bearer" + std::string(ldap_ ? " or Basic" : ""),
                    "unsupported scheme",
                    "Bearer",
                    {},
                    {}});
  }
  if (!result) {
    if (result.error().error == AuthError::kInvalidCredentials) failuresPerIp_->consume(ip);
    return result;
  }
  result->sourceIp = ip;
  return result;
}

Expected<Principal, AuthFailure> AuthChain::bearer(std::string_view token) {
  if (token.empty()) {
    return unexpected(
        AuthFailure{AuthError::kInvalidCredentials, "empty bearer token", "empty", "Bearer", {}, {}});
  }
  if (apiKeys_ && ApiKeyStore::looksLikeApiKey(token)) return apiKeys_->authenticate(token);
  if (jwt_.empty()) {
    return unexpected(AuthFailure{AuthError::kInvalidCredentials,
                                  apiKeys_ ? "invalid API key" : "bearer tokens are not accepted here",
                                  "no oauth provider configured",
                                  "Bearer",
                                  {},
                                  {}});
  }
  const auto now = std::chrono::system_clock::now();
  const std::string digest = sha256(token);
  if (auto cached = verifiedTokens_->find(digest, now)) {
    cached->subjectToken = std::string(token);
    return std::move(*cached);
  }
  const std::string issuer = peekIssuer(token);
  JwtAuthenticator* provider = nullptr;
  for (const auto& p : jwt_) {
    if (p->settings().issuer == issuer) provider = p.get();
  }
  if (provider == nullptr && jwt_.size() == 1) provider = jwt_.front().get();  // it explains what is wrong
  if (provider == nullptr) {
    return unexpected(AuthFailure{AuthError::kInvalidCredentials,
                                  "token issuer is not trusted by this server",
                                  "issuer not configured",
                                  "Bearer",
                                  {},
                                  {}});
  }
  auto result = provider->authenticate(token);
  if (result) {
    Principal stored = *result;
    stored.subjectToken.clear();  // the cache holds no tokens, only their digests
    verifiedTokens_->store(digest, stored, expiryOf(token), now);
  }
  return result;
}

Expected<Principal, AuthFailure> AuthChain::basic(std::string_view encoded, bool secureChannel,
                                                  const std::string& ip) {
  if (!ldap_) {
    return unexpected(AuthFailure{AuthError::kInvalidCredentials,
                                  "Basic authentication is not enabled here",
                                  "basic without ldap",
                                  "Bearer",
                                  {},
                                  {}});
  }
  if (!secureChannel) {
    return unexpected(AuthFailure{AuthError::kInvalidCredentials,
                                  "Basic credentials are accepted only over TLS or from loopback; use https",
                                  "basic over plain http from " + ip,
                                  "Basic",
                                  {},
                                  {}});
  }
  auto decoded = encoded.size() <= 4096 ? base64Decode(encoded) : std::nullopt;
  const auto colon = decoded ? decoded->find(':') : std::string::npos;
  if (colon == std::string::npos) {
    return unexpected(AuthFailure{AuthError::kInvalidCredentials,
                                  "malformed Basic credentials: send base64(username:password)",
                                  "bad basic",
                                  "Basic",
                                  {},
                                  {}});
  }
  // The failure bucket is keyed by the normalised name, so "Alice" and " alice" share one.
  std::string user(trim(std::string_view(*decoded).substr(0, colon)));
  std::transform(user.begin(), user.end(), user.begin(), [](unsigned char c) { return std::tolower(c); });
  if (auto wait = failuresPerUser_->blocked(user))
    return unexpected(tooMany("for this user", *wait, "Basic"));
  auto result = ldap_->authenticate(std::string_view(*decoded).substr(0, colon),
                                    std::string_view(*decoded).substr(colon + 1));
  std::fill(decoded->begin(), decoded->end(), '\0');  // do not leave the password in freed memory
  if (!result && result.error().error == AuthError::kInvalidCredentials) failuresPerUser_->consume(user);
  return result;
}

Principal AuthChain::stdioPrincipal() const {
  Principal p;
  const passwd* pw = ::getpwuid(::geteuid());
  p.subject = pw != nullptr && pw->pw_name != nullptr ? pw->pw_name : "uid:" + std::to_string(::geteuid());
  p.displayName = p.subject;
  p.authMethod = "stdio";
  p.groups = stdioGroups_;
  p.sourceIp = "local";
  return p;
}

std::string AuthChain::resourceMetadataUrl() const {
  try {
    Poco::URI uri(resource_);
    std::string origin = uri.getScheme() + "://" + uri.getAuthority();
    return origin + "/.well-known/oauth-protected-resource" + (uri.getPath() == "/" ? "" : uri.getPath());
  } catch (const Poco::Exception&) {
    return "/.well-known/oauth-protected-resource";
  }
}

std::vector<std::string> AuthChain::resourceMetadataPaths() const {
  std::string path;
  try {
    path = Poco::URI(resource_).getPath();
  } catch (const Poco::Exception&) {
    path.clear();
  }
  std::vector<std::string> paths = {"/.well-known/oauth-protected-resource"};
  if (!path.empty() && path != "/") paths.push_back(paths.front() + path);
  return paths;
}

std::string AuthChain::resourceMetadataJson() const {
  Json doc = {{"resource", resource_},
              {"authorization_servers", issuers_},
              {"bearer_methods_supported", Json::array({"header"})},
              {"resource_name", "mcphost"}};
  if (!scopesSupported_.empty()) doc["scopes_supported"] = scopesSupported_;
  return doc.dump();
}

std::vector<std::string> AuthChain::challenges(const AuthFailure& failure) const {
  std::vector<std::string> out;
  if (!jwt_.empty() || apiKeys_) {
    std::string bearerChallenge = "Bearer resource_metadata=\"" + resourceMetadataUrl() + "\"";
    if (failure.error == AuthError::kInvalidCredentials) {
      bearerChallenge +=
          ", error=\"invalid_token\", error_description=\"" + quoteSafe(failure.message) + "\"";
    } else if (failure.error == AuthError::kInsufficientScope) {
      std::string scopes;
      for (const auto& s : failure.requiredScopes) scopes += (scopes.empty() ? "" : " ") + s;
      bearerChallenge += ", error=\"insufficient_scope\", scope=\"" + quoteSafe(scopes) + "\"";
    } else if (!scopesSupported_.empty()) {
      std::string scopes;
      for (const auto& s : scopesSupported_) scopes += (scopes.empty() ? "" : " ") + s;
      bearerChallenge += ", scope=\"" + quoteSafe(scopes) + "\"";
    }
    out.push_back(std::move(bearerChallenge));
  }
  if (ldap_) out.emplace_back("Basic realm=\"mcphost\", charset=\"UTF-8\"");
  return out;
}

std::vector<std::string> AuthChain::warmUp() {
  std::vector<std::string> problems;
  for (const auto& provider : jwt_) {
    if (auto problem = provider->warmUp()) problems.push_back(provider->settings().issuer + ": " + *problem);
  }
  if (ldap_) {
    if (auto problem = ldap_->probe()) problems.push_back("ldap: " + *problem);
  }
  return problems;
}

Expected<std::string, std::string> AuthChain::exchangeToken(const Principal& principal,
                                                            const std::string& audience) {
  if (principal.authMethod != "jwt" || principal.subjectToken.empty()) {
    return unexpected(
        std::string("token exchange needs a caller signed in with an OAuth access token (this caller used " +
                    principal.authMethod + ")"));
  }
  TokenExchanger* client = nullptr;
  {
    auto& exchange = *exchange_;
    std::lock_guard lock(exchange.mutex);
    const std::string key = principal.issuer + "\n" + audience;
    auto it = exchange.clients.find(key);
    if (it == exchange.clients.end()) {
      const TokenExchangeSettings* base = nullptr;
      for (const auto& [issuer, settings] : exchange.byIssuer)
        if (issuer == principal.issuer) base = &settings;
      if (base == nullptr) {
        return unexpected("no token_exchange client is configured for issuer " + principal.issuer);
      }
      TokenExchangeSettings s = *base;
      s.audience = audience;
      it = exchange.clients.emplace(key, std::make_unique<TokenExchanger>(std::move(s))).first;
    }
    client = it->second.get();
  }
  return client->exchange(principal.subjectToken);  // thread-safe; no lock held over the network
}

}  // namespace mcphost::auth
