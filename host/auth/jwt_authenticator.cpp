#include "auth/jwt_authenticator.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include "auth/jwks.hpp"
#include "common/base64.hpp"
#include "common/crypto.hpp"

namespace mcphost::auth {

namespace {

using Json = nlohmann::json;
using Failure = Unexpected<AuthFailure>;

constexpr std::size_t kMaxHeaderDepth = 4;
constexpr std::size_t kMaxClaimsDepth = 32;

Failure invalid(std::string message, std::string detail = "") {
  return unexpected(
      AuthFailure{AuthError::kInvalidCredentials, std::move(message), std::move(detail), "Bearer", {}, {}});
}

Failure providerUnavailable(std::string detail) {
  return unexpected(AuthFailure{AuthError::kProviderUnavailable,
                                "identity provider unavailable: cannot fetch signing keys",
                                std::move(detail),
                                "Bearer",
                                {},
                                {}});
}

// Header values come from the caller; only short printable ones are repeated in messages.
std::string quotedIfHarmless(const std::string& value) {
  const bool harmless = value.size() <= 32 && std::all_of(value.begin(), value.end(), [](char c) {
                          return c >= 0x21 && c <= 0x7e && c != '\'' && c != '"' && c != '\\';
                        });
  return harmless ? "'" + value + "' " : std::string();
}

// A top-level claim, or else a dotted path into nested objects ("realm_access.roles").
const Json* claimAt(const Json& claims, const std::string& name) {
  if (name.empty()) return nullptr;
  if (const auto found = claims.find(name); found != claims.end()) return &*found;
  const Json* node = &claims;
  std::size_t start = 0;
  while (start <= name.size()) {
    const auto dot = name.find('.', start);
    const std::string part = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object()) return nullptr;
    const auto found = node->find(part);
    if (found == node->end()) return nullptr;
    node = &*found;
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
  return nullptr;
}

std::string stringClaim(const Json& claims, const std::string& name) {
  const Json* value = claimAt(claims, name);
  if (value == nullptr) return {};
  if (value->is_string()) return value->get<std::string>();
  if (value->is_number_integer()) return value->dump();
  return {};
}

void appendSpaceSeparated(const std::string& text, std::vector<std::string>& out) {
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = std::min(text.find(' ', start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

// Array of strings or a single string (non-strings in arrays are ignored).
std::vector<std::string> stringList(const Json& claims, const std::string& name) {
  std::vector<std::string> out;
  const Json* value = claimAt(claims, name);
  if (value == nullptr) return out;
  if (value->is_string()) {
    out.push_back(value->get<std::string>());
  } else if (value->is_array()) {
    for (const auto& item : *value)
      if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

std::vector<std::string> scopesOf(const Json& claims) {
  std::vector<std::string> scopes;
  for (const char* name : {"scope", "scp"}) {
    const auto found = claims.find(name);
    if (found == claims.end()) continue;
    if (found->is_string()) {
      appendSpaceSeparated(found->get<std::string>(), scopes);  // RFC 8693 "scope"; Entra ID "scp"
    } else if (found->is_array()) {
      for (const auto& item : *found)
        if (item.is_string()) appendSpaceSeparated(item.get<std::string>(), scopes);
    }
  }
  std::vector<std::string> unique;
  for (auto& scope : scopes)
    if (std::find(unique.begin(), unique.end(), scope) == unique.end()) unique.push_back(std::move(scope));
  return unique;
}

struct NumericDate {
  bool present = false;
  bool valid = true;
  double seconds = 0;
};

NumericDate numericDate(const Json& claims, const char* name) {
  const auto found = claims.find(name);
  if (found == claims.end()) return {};
  if (!found->is_number()) return {true, false, 0};
  return {true, true, found->get<double>()};
}

bool audienceIncludes(const Json& claims, const std::string& audience) {
  if (audience.empty()) return false;  // unconfigured audience: nothing is for us (fail closed)
  const auto aud = claims.find("aud");
  if (aud == claims.end()) return false;
  if (aud->is_string()) return *aud == audience;
  if (aud->is_array())
    return std::any_of(aud->begin(), aud->end(), [&](const Json& a) { return a == audience; });
  return false;
}

bool isSupportedAlgorithm(const std::string& alg) {
  return alg == "RS256" || alg == "ES256" || alg == "HS256";
}

struct SplitToken {
  std::string_view header, payload, signature, signingInput;
};

std::optional<SplitToken> splitCompact(std::string_view token) {
  const auto first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  return SplitToken{token.substr(0, first), token.substr(first + 1, second - first - 1),
                    token.substr(second + 1), token.substr(0, second)};
}

}  // namespace

JwtAuthenticator::JwtAuthenticator(JwtSettings settings)
    : settings_(std::move(settings)),
      keys_(std::make_unique<JwksCache>(JwksSource{settings_.issuer, settings_.jwksUri, settings_.http,
                                                   settings_.jwksTtl, settings_.jwksMinRefreshInterval})) {}

JwtAuthenticator::~JwtAuthenticator() = default;
JwtAuthenticator::JwtAuthenticator(JwtAuthenticator&&) noexcept = default;
JwtAuthenticator& JwtAuthenticator::operator=(JwtAuthenticator&&) noexcept = default;

const JwtSettings& JwtAuthenticator::settings() const {
  return settings_;
}

int JwtAuthenticator::jwksFetchCount() const {
  return keys_->fetchCount();
}

std::optional<std::string> JwtAuthenticator::warmUp() {
  if (settings_.issuer.empty()) return std::string("jwt: no issuer configured; every token will be refused");
  if (settings_.audience.empty())
    return std::string("jwt: no audience configured; every token will be refused");
  const bool wantsKeys = std::any_of(settings_.algorithms.begin(), settings_.algorithms.end(),
                                     [](const std::string& a) { return a == "RS256" || a == "ES256"; });
  if (!wantsKeys) return std::nullopt;  // HS256 only: nothing to fetch
  const auto snapshot = keys_->current();
  if (!snapshot.keys)
    return "jwt: cannot fetch the signing keys of " + settings_.issuer + ": " + snapshot.error;
  return std::nullopt;
}

Expected<Principal, AuthFailure> JwtAuthenticator::authenticate(std::string_view token) const {
  return authenticateAt(token, std::chrono::system_clock::now());
}

Expected<Principal, AuthFailure> JwtAuthenticator::authenticateAt(
    std::string_view token, std::chrono::system_clock::time_point now) const {
  try {
    return validate(token, now);
  } catch (const Json::exception& e) {
    // Only the error id: JSON messages may quote parts of the token.
    return invalid("token could not be validated",
                   "JSON error " + std::to_string(e.id) + " while reading claims");
  } catch (const std::exception& e) {
    return invalid("token could not be validated", std::string("unexpected error: ") + e.what());
  }
}

Expected<Principal, AuthFailure> JwtAuthenticator::validate(std::string_view token,
                                                            std::chrono::system_clock::time_point now) const {
  // --- structure -------------------------------------------------------------------------------
  if (token.empty()) return invalid("token is empty");
  if (token.size() > settings_.maxTokenBytes) {
    return invalid("token is too large (limit " + std::to_string(settings_.maxTokenBytes) + " bytes)");
  }
  const auto parts = splitCompact(token);
  if (!parts) return invalid("token is not a compact JWS (expected three dot-separated parts)");
  const auto headerText = base64UrlDecode(parts->header);
  if (!headerText) return invalid("token header is not valid base64url");
  const auto header = parseJsonLimited(*headerText, kMaxHeaderDepth);
  if (!header || !header->is_object()) return invalid("token header is not a JSON object");
  const auto payloadText = base64UrlDecode(parts->payload);
  if (!payloadText) return invalid("token payload is not valid base64url");
  const auto signature = base64UrlDecode(parts->signature);
  if (!signature) return invalid("token signature is not valid base64url");

  // --- algorithm -------------------------------------------------------------------------------
  const auto algField = header->find("alg");
  if (algField == header->end() || !algField->is_string()) return invalid("token header has no alg");
  const std::string alg = algField->get<std::string>();
  std::string algLower = alg;
  std::transform(algLower.begin(), algLower.end(), algLower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (algLower == "none") return invalid("token algorithm 'none' is not accepted", "unsigned token");
  const bool configured =
      std::find(settings_.algorithms.begin(), settings_.algorithms.end(), alg) != settings_.algorithms.end();
  // HS256 additionally needs a configured secret: never fall back to anything else as the key.
  if (!configured || !isSupportedAlgorithm(alg) || (alg == "HS256" && settings_.hmacSecret.empty())) {
    return invalid("token algorithm " + quotedIfHarmless(alg) + "is not accepted");
  }
  if (header->contains("crit")) {
    return invalid("token uses critical header extensions (crit), which are not supported");
  }
  if (signature->empty()) return invalid("token signature is invalid", "empty signature");

  // --- signature -------------------------------------------------------------------------------
  if (alg == "HS256") {
    if (!constantTimeEquals(hmacSha256(settings_.hmacSecret, parts->signingInput), *signature)) {
      return invalid("token signature is invalid", "HS256 signature mismatch");
    }
  } else {
    std::string kid;
    const auto kidField = header->find("kid");
    if (kidField != header->end()) {
      if (!kidField->is_string()) return invalid("token header kid is not a string");
      kid = kidField->get<std::string>();
    }
    auto snapshot = keys_->current();
    if (!snapshot.keys) return providerUnavailable(snapshot.error);
    // Holding the snapshot keeps the key alive even if a refresh replaces the set meanwhile.
    const Jwk* key = nullptr;
    if (kidField != header->end()) {
      key = snapshot.keys->findKid(kid);
      if (key == nullptr) {
        snapshot = keys_->refreshForUnknownKey();  // the provider may have rotated its keys
        if (snapshot.keys) key = snapshot.keys->findKid(kid);
        if (key == nullptr) {
          const std::string where = " in the JWKS " + displayUrl(snapshot.uri);
          if (!snapshot.error.empty()) {
            return providerUnavailable("kid " + quotedIfHarmless(kid) + "not found" + where +
                                       " and refreshing failed: " + snapshot.error);
          }
          return invalid("token signing key is not known to the identity provider",
                         "kid " + quotedIfHarmless(kid) + "not found" + where + " (refetched at most every " +
                             std::to_string(settings_.jwksMinRefreshInterval.count()) + " s)");
        }
      }
      if (!key->usableFor(alg)) {
        return invalid("token algorithm " + quotedIfHarmless(alg) + "does not match its signing key",
                       "kid " + quotedIfHarmless(kid) + "is a " + key->kty + " key");
      }
    } else {
      const auto candidates = snapshot.keys->usableFor(alg);
      if (candidates.size() != 1) {
        return invalid("token has no kid and the identity provider publishes " +
                       std::string(candidates.empty() ? "no key" : "several keys") + " for " + alg);
      }
      key = candidates.front();
    }
    if (!verifyJwsSignature(*key, alg, parts->signingInput, *signature)) {
      return invalid("token signature is invalid",
                     alg + " signature does not verify with kid " + quotedIfHarmless(key->kid));
    }
  }

  // --- claims ----------------------------------------------------------------------------------
  const auto claimsOpt = parseJsonLimited(*payloadText, kMaxClaimsDepth);
  if (!claimsOpt || !claimsOpt->is_object()) return invalid("token payload is not a JSON object");
  const Json& claims = *claimsOpt;

  const auto iss = claims.find("iss");
  if (iss == claims.end() || !iss->is_string() || iss->get_ref<const std::string&>().empty() ||
      *iss != settings_.issuer) {
    return invalid("token issuer is not " + settings_.issuer);
  }
  if (!audienceIncludes(claims, settings_.audience)) {
    return invalid("token audience does not include " + settings_.audience);
  }
  const double nowSeconds = std::chrono::duration<double>(now.time_since_epoch()).count();
  const auto skew = static_cast<double>(settings_.clockSkew.count());
  const auto exp = numericDate(claims, "exp");
  if (!exp.present) return invalid("token has no expiry (exp)");
  if (!exp.valid) return invalid("token exp is not a number");
  if (nowSeconds > exp.seconds + skew) return invalid("token expired");
  const auto nbf = numericDate(claims, "nbf");
  if (!nbf.valid) return invalid("token nbf is not a number");
  if (nbf.present && nbf.seconds > nowSeconds + skew) return invalid("token not yet valid");
  const auto iat = numericDate(claims, "iat");
  if (!iat.valid) return invalid("token iat is not a number");
  if (iat.present && iat.seconds > nowSeconds + skew) return invalid("token issued in the future");

  Principal principal;
  principal.authMethod = "jwt";
  const Json* subject = claimAt(claims, settings_.subjectClaim);
  if (subject == nullptr || !subject->is_string() || subject->get_ref<const std::string&>().empty()) {
    return invalid("token has no subject (" + settings_.subjectClaim + ")");
  }
  principal.subject = subject->get<std::string>();
  principal.scopes = scopesOf(claims);
  std::vector<std::string> missing;
  for (const auto& required : settings_.requiredScopes)
    if (!principal.hasScope(required)) missing.push_back(required);
  if (!missing.empty()) {
    std::string list;
    for (const auto& scope : missing) list += (list.empty() ? "" : " ") + scope;
    return unexpected(AuthFailure{AuthError::kInsufficientScope,
                                  "token lacks required scope: " + list,
                                  "subject " + principal.subject + " lacks " + list,
                                  "Bearer",
                                  settings_.requiredScopes,
                                  {}});
  }
  principal.displayName = stringClaim(claims, settings_.nameClaim);
  if (principal.displayName.empty()) principal.displayName = stringClaim(claims, "preferred_username");
  principal.groups = stringList(claims, settings_.groupsClaim);
  principal.roles = stringList(claims, settings_.rolesClaim);
  principal.tenant = stringClaim(claims, settings_.tenantClaim);
  principal.issuer = iss->get<std::string>();
  principal.attributes = Json::object();
  for (const auto& [name, value] : claims.items()) {
    if (name == "iss" || name == "aud" || name == "exp" || name == "nbf" || name == "iat" || name == "jti")
      continue;
    principal.attributes[name] = value;
  }
  principal.subjectToken = std::string(token);
  return principal;
}

std::optional<std::string> unverifiedIssuer(std::string_view token) {
  const auto parts = splitCompact(token);
  if (!parts || token.size() > 65536) return std::nullopt;
  const auto payload = base64UrlDecode(parts->payload);
  if (!payload) return std::nullopt;
  const auto claims = parseJsonLimited(*payload, kMaxClaimsDepth);
  if (!claims || !claims->is_object()) return std::nullopt;
  const auto iss = claims->find("iss");
  if (iss == claims->end() || !iss->is_string()) return std::nullopt;
  return iss->get<std::string>();
}

}  // namespace mcphost::auth
