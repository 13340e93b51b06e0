// JwtAuthenticator against the in-process test identity provider: real keys, real HTTP, one test
// per way a token can be wrong. (http_fetch and token exchange: jwks_test.cpp.)
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "auth/jwt_authenticator.hpp"
#include "common/base64.hpp"
#include "common/crypto.hpp"
#include "support/test_idp.hpp"

using mcphost::auth::AuthError;
using mcphost::auth::JwtAuthenticator;
using mcphost::auth::JwtSettings;
using mcphost::test::TestIdentityProvider;
using Json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* kAudience = "https://mcp.example.com/mcp";

// A provider in its own temporary directory, removed again afterwards.
struct ScopedIdp {
  std::string directory =
      (std::filesystem::temp_directory_path() / ("mcphost-jwt-" + mcphost::randomToken(6))).string();
  TestIdentityProvider idp{directory};
  ScopedIdp() = default;
  ScopedIdp(const ScopedIdp&) = delete;
  ScopedIdp& operator=(const ScopedIdp&) = delete;
  ~ScopedIdp() {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  }
};

// For tests that neither change the provider nor count its requests (key generation is slow).
TestIdentityProvider& sharedIdp() {
  static ScopedIdp shared;
  return shared.idp;
}

JwtSettings settingsFor(const TestIdentityProvider& idp) {
  JwtSettings settings;
  settings.issuer = idp.issuer();
  settings.audience = kAudience;
  settings.jwksUri = idp.issuer() + "/jwks";
  settings.http.timeout = 3s;
  return settings;
}

// The failure of a token that must be refused as invalid credentials.
mcphost::auth::AuthFailure refused(
    const JwtAuthenticator& authenticator, const std::string& token,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
  const auto result = authenticator.authenticateAt(token, now);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().scheme == "Bearer");
  // The client-facing message never repeats the token.
  if (!token.empty()) CHECK(result.error().message.find(token) == std::string::npos);
  return result.error();
}

std::chrono::system_clock::time_point at(long long secondsSinceEpoch) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(secondsSinceEpoch));
}

long long nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---- valid tokens -----------------------------------------------------------------------------

TEST_CASE("jwt: valid RS256 token yields the principal", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  const Json claims = {{"name", "Alice Example"},      {"groups", {"eng", "ops"}}, {"roles", "admin"},
                       {"scope", "mcp:tools openid"},  {"tid", "tenant-1"},        {"jti", "id-1"},
                       {"email", "alice@example.com"}, {"nested", {{"a", 1}}}};
  const std::string token = idp.mint(claims, kAudience);
  const auto result = authenticator.authenticate(token);
  REQUIRE(result.has_value());
  const auto& p = *result;
  CHECK(p.authMethod == "jwt");
  CHECK(p.subject == "alice");
  CHECK(p.displayName == "Alice Example");
  CHECK(p.groups == std::vector<std::string>{"eng", "ops"});
  CHECK(p.roles == std::vector<std::string>{"admin"});
  CHECK(p.scopes == std::vector<std::string>{"mcp:tools", "openid"});
  CHECK(p.tenant == "tenant-1");
  CHECK(p.issuer == idp.issuer());
  CHECK(p.subjectToken == token);
  CHECK(p.sourceIp.empty());
  CHECK(p.attributes["email"] == "alice@example.com");
  CHECK(p.attributes["sub"] == "alice");
  CHECK(p.attributes["nested"]["a"] == 1);
  for (const char* dropped : {"iss", "aud", "exp", "nbf", "iat", "jti"})
    CHECK_FALSE(p.attributes.contains(dropped));
}

TEST_CASE("jwt: valid ES256 token yields the principal", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  const auto result = authenticator.authenticate(idp.mint(
      {{"sub", "bob"}, {"preferred_username", "bob@corp"}, {"groups", "staff"}}, kAudience, "ES256"));
  REQUIRE(result.has_value());
  CHECK(result->subject == "bob");
  CHECK(result->displayName == "bob@corp");  // fallback when "name" is absent
  CHECK(result->groups == std::vector<std::string>{"staff"});
}

TEST_CASE("jwt: configured claim names, including dotted paths", "[jwt]") {
  auto& idp = sharedIdp();
  auto settings = settingsFor(idp);
  settings.subjectClaim = "oid";
  settings.rolesClaim = "realm_access.roles";
  settings.tenantClaim = "org";
  const JwtAuthenticator authenticator(settings);
  const auto result = authenticator.authenticate(idp.mint(
      {{"oid", "0000-1111"}, {"realm_access", {{"roles", {"reader", 7, "writer"}}}}, {"org", "acme"}},
      kAudience));
  REQUIRE(result.has_value());
  CHECK(result->subject == "0000-1111");
  CHECK(result->roles == std::vector<std::string>{"reader", "writer"});
  CHECK(result->tenant == "acme");
}

TEST_CASE("jwt: token without kid is accepted when one key fits the algorithm", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  CHECK(authenticator.authenticate(idp.mint({}, kAudience, "RS256", "", {{"kid", nullptr}})).has_value());
  CHECK(authenticator.authenticate(idp.mint({}, kAudience, "ES256", "", {{"kid", nullptr}})).has_value());
}

TEST_CASE("jwt: audience array containing ours is accepted", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  CHECK(authenticator.authenticate(idp.mint({{"aud", {"https://other.example.com", kAudience}}}, ""))
            .has_value());
}

// ---- malformed --------------------------------------------------------------------------------

TEST_CASE("jwt: empty token is refused", "[jwt]") {
  const JwtAuthenticator authenticator(settingsFor(sharedIdp()));
  CHECK(refused(authenticator, "").error == AuthError::kInvalidCredentials);
}

TEST_CASE("jwt: token with two parts is refused", "[jwt]") {
  const JwtAuthenticator authenticator(settingsFor(sharedIdp()));
  const auto token = sharedIdp().mint({}, kAudience);
  const auto failure = refused(authenticator, token.substr(0, token.rfind('.')));
  CHECK(failure.error == AuthError::kInvalidCredentials);
  CHECK(failure.message.find("three") != std::string::npos);
}

TEST_CASE("jwt: token with four parts is refused", "[jwt]") {
  const JwtAuthenticator authenticator(settingsFor(sharedIdp()));
  CHECK(refused(authenticator, sharedIdp().mint({}, kAudience) + ".x").message.find("three") !=
        std::string::npos);
}

TEST_CASE("jwt: header that is not base64url is refused", "[jwt]") {
  const JwtAuthenticator authenticator(settingsFor(sharedIdp()));
  CHECK(refused(authenticator, "e+J=.eyJ.c2ln").message == "token header is not valid base64url");
}

TEST_CASE("jwt: header that is not JSON is refused", "[jwt]") {
  const JwtAuthenticator authenticator(settingsFor(sharedIdp()));
  const std::string token =
      mcphost::base64UrlEncode("not json") + "." + mcphost::base64UrlEncode("{}") + ".c2ln";
  CHECK(refused(authenticator, token).message == "token header is not a JSON object");
}

TEST_CASE("jwt: header that is a JSON array is refused", "[jwt]") {
  const JwtAuthenticator authenticator(settingsFor(sharedIdp()));
  const std::string token =
      mcphost::base64UrlEncode("[\"RS256\"]") + "." + mcphost::base64UrlEncode("{}") + ".c2ln";
  CHECK(refused(authenticator, token).message == "token header is not a JSON object");
}

TEST_CASE("jwt: deeply nested header is refused without recursion trouble", "[jwt]") {
  const std::string nested = std::string(5000, '[') + std::string(5000, ']');
  const std::string token = mcphost::base64UrlEncode(nested) + "." + mcphost::base64UrlEncode("{}") + ".c2ln";
  auto settings = settingsFor(sharedIdp());
  settings.maxTokenBytes = 1 << 20;
  const JwtAuthenticator roomy(settings);
  CHECK(refused(roomy, token).message == "token header is not a JSON object");
}

TEST_CASE("jwt: payload that is not base64url is refused", "[jwt]") {
  const JwtAuthenticator authenticator(settingsFor(sharedIdp()));
  const auto token = sharedIdp().mint({}, kAudience);
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  const std::string broken = token.substr(0, first) + ".*payload*" + token.substr(second);
  CHECK(refused(authenticator, broken).message == "token payload is not valid base64url");
}

TEST_CASE("jwt: signed payload that is not JSON is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  const Json header = {{"alg", "RS256"}, {"kid", idp.rsaKid()}};
  CHECK(refused(authenticator, idp.mintRaw(header, "not json at all")).message ==
        "token payload is not a JSON object");
  CHECK(refused(authenticator, idp.mintRaw(header, "[1,2,3]")).message ==
        "token payload is not a JSON object");
  CHECK(refused(authenticator, idp.mintRaw(header, "{\"sub\":\"\xff\xfe\"}")).message ==
        "token payload is not a JSON object");
}

TEST_CASE("jwt: signature that is not base64url is refused", "[jwt]") {
  const JwtAuthenticator authenticator(settingsFor(sharedIdp()));
  const auto token = sharedIdp().mint({}, kAudience);
  CHECK(refused(authenticator, token.substr(0, token.rfind('.')) + ".sig/+=").message ==
        "token signature is not valid base64url");
}

TEST_CASE("jwt: huge token is refused before parsing", "[jwt]") {
  const JwtAuthenticator authenticator(settingsFor(sharedIdp()));
  const std::string huge = sharedIdp().mint({{"padding", std::string(20000, 'x')}}, kAudience);
  CHECK(refused(authenticator, huge).message.find("too large") != std::string::npos);
  CHECK(refused(authenticator, std::string(1 << 20, 'a')).message.find("too large") != std::string::npos);
}

TEST_CASE("jwt: tampered payload fails the signature check", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  const auto genuine = idp.mint({}, kAudience);
  const auto forged = idp.mint({{"sub", "admin"}}, kAudience);
  const auto firstDot = genuine.find('.');
  const auto secondDot = genuine.find('.', firstDot + 1);
  const auto forgedPayload = forged.substr(forged.find('.') + 1, forged.rfind('.') - forged.find('.') - 1);
  const std::string spliced = genuine.substr(0, firstDot + 1) + forgedPayload + genuine.substr(secondDot);
  CHECK(refused(authenticator, spliced).message == "token signature is invalid");
}

TEST_CASE("jwt: empty signature is refused", "[jwt]") {
  const JwtAuthenticator authenticator(settingsFor(sharedIdp()));
  const auto token = sharedIdp().mint({}, kAudience);
  CHECK(refused(authenticator, token.substr(0, token.rfind('.') + 1)).message ==
        "token signature is invalid");
}

// ---- algorithms -------------------------------------------------------------------------------

TEST_CASE("jwt: alg none is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  CHECK(refused(authenticator, idp.mint({}, kAudience, "none")).message ==
        "token algorithm 'none' is not accepted");
  // Also when misconfigured to allow it, and in any spelling.
  auto settings = settingsFor(idp);
  settings.algorithms = {"none", "NONE", "None", "RS256"};
  const JwtAuthenticator lax(settings);
  CHECK(refused(lax, idp.mint({}, kAudience, "none")).message == "token algorithm 'none' is not accepted");
  CHECK(refused(lax, idp.mint({}, kAudience, "none", "", {{"alg", "NoNe"}})).message ==
        "token algorithm 'none' is not accepted");
}

TEST_CASE("jwt: algorithm outside the configured list is refused", "[jwt]") {
  auto& idp = sharedIdp();
  auto settings = settingsFor(idp);
  settings.algorithms = {"ES256"};
  const JwtAuthenticator authenticator(settings);
  CHECK(refused(authenticator, idp.mint({}, kAudience)).message == "token algorithm 'RS256' is not accepted");
  // Unknown algorithms, even if listed, and header values we do not repeat.
  settings.algorithms = {"RS512"};
  const JwtAuthenticator odd(settings);
  CHECK(refused(odd, idp.mint({}, kAudience, "RS256", "", {{"alg", "RS512"}})).message ==
        "token algorithm 'RS512' is not accepted");
  CHECK(refused(authenticator, idp.mint({}, kAudience, "RS256", "", {{"alg", std::string(100, 'A')}}))
            .message == "token algorithm is not accepted");
  CHECK(refused(authenticator, idp.mint({}, kAudience, "RS256", "", {{"alg", 256}})).message ==
        "token header has no alg");
}

TEST_CASE("jwt: RS256/HS256 key confusion with the RSA public key is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const std::string pem = idp.rsaPublicKeyPem();
  REQUIRE(pem.find("BEGIN PUBLIC KEY") != std::string::npos);
  const auto confused = idp.mint({}, kAudience, "HS256", pem, {{"kid", idp.rsaKid()}});
  // Default algorithms: HS256 is simply not accepted.
  const JwtAuthenticator defaults(settingsFor(idp));
  CHECK(refused(defaults, confused).message == "token algorithm 'HS256' is not accepted");
  // HS256 listed but no secret: still not accepted (the JWKS key is never used as a secret).
  auto settings = settingsFor(idp);
  settings.algorithms = {"RS256", "HS256"};
  const JwtAuthenticator noSecret(settings);
  CHECK(refused(noSecret, confused).message == "token algorithm 'HS256' is not accepted");
  // HS256 configured with its own secret: the PEM does not verify.
  settings.hmacSecret = "a-configured-shared-secret-of-enough-length";
  const JwtAuthenticator withSecret(settings);
  CHECK(refused(withSecret, confused).message == "token signature is invalid");
}

TEST_CASE("jwt: HS256 is accepted only when configured", "[jwt]") {
  auto& idp = sharedIdp();
  const std::string secret = "shared-secret-0123456789abcdef0123";
  const auto token = idp.mint({}, kAudience, "HS256", secret);
  auto settings = settingsFor(idp);
  settings.jwksUri.clear();
  settings.algorithms = {"HS256"};
  settings.hmacSecret = secret;
  const JwtAuthenticator configured(settings);
  const auto result = configured.authenticate(token);
  REQUIRE(result.has_value());
  CHECK(result->subject == "alice");
  CHECK(refused(configured, idp.mint({}, kAudience, "HS256", "another-secret")).message ==
        "token signature is invalid");
  const JwtAuthenticator defaults(settingsFor(idp));
  CHECK(refused(defaults, token).message == "token algorithm 'HS256' is not accepted");
}

TEST_CASE("jwt: algorithm that does not fit the key type is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  const auto esWithRsaKid = idp.mint({}, kAudience, "ES256", "", {{"kid", idp.rsaKid()}});
  CHECK(refused(authenticator, esWithRsaKid).message ==
        "token algorithm 'ES256' does not match its signing key");
  const auto rsWithEcKid = idp.mint({}, kAudience, "RS256", "", {{"kid", idp.ecKid()}});
  CHECK(refused(authenticator, rsWithEcKid).message ==
        "token algorithm 'RS256' does not match its signing key");
}

TEST_CASE("jwt: crit header is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  const auto failure =
      refused(authenticator, idp.mint({}, kAudience, "RS256", "", {{"crit", {"exp"}}, {"exp", 1}}));
  CHECK(failure.message.find("crit") != std::string::npos);
}

TEST_CASE("jwt: non-string kid is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  CHECK(refused(authenticator, idp.mint({}, kAudience, "RS256", "", {{"kid", 42}})).message ==
        "token header kid is not a string");
}

// ---- claims -----------------------------------------------------------------------------------

TEST_CASE("jwt: expired token is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  const long long now = nowSeconds();
  CHECK(refused(authenticator, idp.mint({{"iat", now - 1000}, {"exp", now - 500}}, kAudience)).message ==
        "token expired");
}

TEST_CASE("jwt: token without exp is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  CHECK(refused(authenticator, idp.mint({{"exp", nullptr}}, kAudience)).message ==
        "token has no expiry (exp)");
  CHECK(refused(authenticator, idp.mint({{"exp", "tomorrow"}}, kAudience)).message ==
        "token exp is not a number");
}

TEST_CASE("jwt: not-yet-valid token is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  const long long now = nowSeconds();
  CHECK(refused(authenticator, idp.mint({{"nbf", now + 600}, {"exp", now + 900}}, kAudience)).message ==
        "token not yet valid");
}

TEST_CASE("jwt: token issued in the future is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  const long long now = nowSeconds();
  CHECK(refused(authenticator, idp.mint({{"iat", now + 600}, {"exp", now + 900}}, kAudience)).message ==
        "token issued in the future");
}

TEST_CASE("jwt: clock skew is tolerated, and only up to the setting", "[jwt]") {
  auto& idp = sharedIdp();
  const long long base = nowSeconds();
  const auto token = idp.mint({{"iat", base}, {"nbf", base + 100}, {"exp", base + 200}}, kAudience);
  const JwtAuthenticator authenticator(settingsFor(idp));  // 60 s skew
  CHECK(authenticator.authenticateAt(token, at(base + 259)).has_value());
  CHECK(refused(authenticator, token, at(base + 261)).message == "token expired");
  CHECK(authenticator.authenticateAt(token, at(base + 41)).has_value());
  CHECK(refused(authenticator, token, at(base + 39)).message == "token not yet valid");
  auto strict = settingsFor(idp);
  strict.clockSkew = 0s;
  const JwtAuthenticator noSkew(strict);
  CHECK(refused(noSkew, token, at(base + 201)).message == "token expired");
  CHECK(refused(noSkew, token, at(base + 99)).message == "token not yet valid");
}

TEST_CASE("jwt: wrong issuer is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  CHECK(refused(authenticator, idp.mint({{"iss", "https://evil.example.com"}}, kAudience)).message ==
        "token issuer is not " + idp.issuer());
  CHECK(refused(authenticator, idp.mint({{"iss", nullptr}}, kAudience)).message ==
        "token issuer is not " + idp.issuer());
  CHECK(refused(authenticator, idp.mint({{"iss", idp.issuer() + "/"}}, kAudience)).message ==
        "token issuer is not " + idp.issuer());
}

TEST_CASE("jwt: wrong audience string is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  const std::string expected = std::string("token audience does not include ") + kAudience;
  CHECK(refused(authenticator, idp.mint({}, "https://other.example.com/mcp")).message == expected);
  CHECK(refused(authenticator, idp.mint({}, "")).message == expected);  // no aud at all
  CHECK(refused(authenticator, idp.mint({{"aud", 17}}, "")).message == expected);
}

TEST_CASE("jwt: wrong audience array is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  CHECK(refused(authenticator, idp.mint({{"aud", {"https://a.example.com", "https://mcp.example.com"}}}, ""))
            .message == std::string("token audience does not include ") + kAudience);
  CHECK(refused(authenticator, idp.mint({{"aud", Json::array()}}, "")).error ==
        AuthError::kInvalidCredentials);
}

TEST_CASE("jwt: missing or non-string subject is refused", "[jwt]") {
  auto& idp = sharedIdp();
  const JwtAuthenticator authenticator(settingsFor(idp));
  CHECK(refused(authenticator, idp.mint({{"sub", nullptr}}, kAudience)).message ==
        "token has no subject (sub)");
  CHECK(refused(authenticator, idp.mint({{"sub", ""}}, kAudience)).message == "token has no subject (sub)");
  CHECK(refused(authenticator, idp.mint({{"sub", 12345}}, kAudience)).message ==
        "token has no subject (sub)");
}

TEST_CASE("jwt: missing scope gives insufficient_scope with the required list", "[jwt]") {
  auto& idp = sharedIdp();
  auto settings = settingsFor(idp);
  settings.requiredScopes = {"mcp:tools", "mcp:admin"};
  const JwtAuthenticator authenticator(settings);
  const auto result = authenticator.authenticate(idp.mint({{"scope", "mcp:tools openid"}}, kAudience));
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().error == AuthError::kInsufficientScope);
  CHECK(mcphost::auth::httpStatusFor(result.error().error) == 403);
  CHECK(result.error().message == "token lacks required scope: mcp:admin");
  CHECK(result.error().requiredScopes == settings.requiredScopes);
  const auto none = authenticator.authenticate(idp.mint({}, kAudience));
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().message == "token lacks required scope: mcp:tools mcp:admin");
}

TEST_CASE("jwt: scopes from an scp array or string satisfy the requirement", "[jwt]") {
  auto& idp = sharedIdp();
  auto settings = settingsFor(idp);
  settings.requiredScopes = {"mcp:tools", "mcp:admin"};
  const JwtAuthenticator authenticator(settings);
  const auto fromArray =
      authenticator.authenticate(idp.mint({{"scp", {"mcp:tools", "mcp:admin"}}}, kAudience));
  REQUIRE(fromArray.has_value());
  CHECK(fromArray->scopes == std::vector<std::string>{"mcp:tools", "mcp:admin"});
  CHECK(authenticator.authenticate(idp.mint({{"scp", "mcp:admin mcp:tools"}}, kAudience)).has_value());
}

// ---- keys -------------------------------------------------------------------------------------

TEST_CASE("jwt: unknown kid refetches the JWKS after rotation", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  auto settings = settingsFor(idp);
  settings.jwksMinRefreshInterval = 0s;
  const JwtAuthenticator authenticator(settings);
  const auto before = idp.mint({}, kAudience);
  REQUIRE(authenticator.authenticate(before).has_value());
  REQUIRE(idp.jwksFetchCount() == 1);
  REQUIRE(authenticator.authenticate(before).has_value());
  CHECK(idp.jwksFetchCount() == 1);  // cached
  idp.rotateRsaKey();
  const auto after = idp.mint({}, kAudience);
  CHECK(authenticator.authenticate(after).has_value());
  CHECK(idp.jwksFetchCount() == 2);
  // The retired key is gone from the JWKS: its tokens stop working.
  CHECK(refused(authenticator, before).message == "token signing key is not known to the identity provider");
}

TEST_CASE("jwt: unknown-kid refetches are rate limited", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  const JwtAuthenticator authenticator(settingsFor(idp));  // 10 s minimum interval
  REQUIRE(authenticator.authenticate(idp.mint({}, kAudience)).has_value());
  REQUIRE(idp.jwksFetchCount() == 1);
  const auto ghost = [&](const std::string& kid) {
    return idp.mint({}, kAudience, "RS256", "", {{"kid", kid}});
  };
  CHECK(refused(authenticator, ghost("ghost-1")).message ==
        "token signing key is not known to the identity provider");
  CHECK(idp.jwksFetchCount() == 2);
  for (int i = 0; i < 5; ++i) {
    CHECK(refused(authenticator, ghost("ghost-" + std::to_string(i + 2))).error ==
          AuthError::kInvalidCredentials);
  }
  CHECK(idp.jwksFetchCount() == 2);
}

TEST_CASE("jwt: JWKS down at first use means provider unavailable", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  idp.setJwksMode(TestIdentityProvider::JwksMode::kDown);
  auto settings = settingsFor(idp);
  settings.jwksMinRefreshInterval = 0s;
  const JwtAuthenticator authenticator(settings);
  const auto result = authenticator.authenticate(idp.mint({}, kAudience));
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().error == AuthError::kProviderUnavailable);
  CHECK(mcphost::auth::httpStatusFor(result.error().error) == 503);
  CHECK(result.error().message == "identity provider unavailable: cannot fetch signing keys");
  CHECK(result.error().detail.find(idp.issuer() + "/jwks") != std::string::npos);
  CHECK(result.error().detail.find("503") != std::string::npos);
  // Back up: the next request fetches again and succeeds.
  idp.setJwksMode(TestIdentityProvider::JwksMode::kNormal);
  CHECK(authenticator.authenticate(idp.mint({}, kAudience)).has_value());
}

TEST_CASE("jwt: JWKS garbage means provider unavailable", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  idp.setJwksMode(TestIdentityProvider::JwksMode::kGarbage);
  const JwtAuthenticator authenticator(settingsFor(idp));
  const auto result = authenticator.authenticate(idp.mint({}, kAudience));
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().error == AuthError::kProviderUnavailable);
  CHECK(result.error().detail.find("unusable") != std::string::npos);
}

TEST_CASE("jwt: provider that does not listen means provider unavailable", "[jwt]") {
  auto settings = settingsFor(sharedIdp());
  settings.jwksUri = "http://127.0.0.1:1/jwks";
  settings.http.timeout = 1s;
  const JwtAuthenticator authenticator(settings);
  const auto result = authenticator.authenticate(sharedIdp().mint({}, kAudience));
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().error == AuthError::kProviderUnavailable);
  CHECK(result.error().detail.find("127.0.0.1:1/jwks") != std::string::npos);
}

TEST_CASE("jwt: cached keys survive a later outage and the refresh is retried", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  auto settings = settingsFor(idp);
  settings.jwksTtl = 0s;  // every use wants a refresh
  settings.jwksMinRefreshInterval = 0s;
  const JwtAuthenticator authenticator(settings);
  const auto token = idp.mint({}, kAudience);
  REQUIRE(authenticator.authenticate(token).has_value());
  idp.setJwksMode(TestIdentityProvider::JwksMode::kDown);
  CHECK(authenticator.authenticate(token).has_value());
  CHECK(authenticator.authenticate(token).has_value());
  CHECK(idp.jwksFetchCount() == 3);  // retried each time, the old set kept meanwhile
  idp.setJwksMode(TestIdentityProvider::JwksMode::kGarbage);
  CHECK(authenticator.authenticate(token).has_value());
}

TEST_CASE("jwt: failed refreshes are retried no more often than the minimum interval", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  auto settings = settingsFor(idp);
  settings.jwksTtl = 0s;
  const JwtAuthenticator authenticator(settings);
  const auto token = idp.mint({}, kAudience);
  REQUIRE(authenticator.authenticate(token).has_value());
  idp.setJwksMode(TestIdentityProvider::JwksMode::kDown);
  for (int i = 0; i < 5; ++i) CHECK(authenticator.authenticate(token).has_value());
  CHECK(idp.jwksFetchCount() == 2);
}

TEST_CASE("jwt: discovery through oauth-authorization-server metadata", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  auto settings = settingsFor(idp);
  settings.jwksUri.clear();
  JwtAuthenticator authenticator(settings);
  CHECK_FALSE(authenticator.warmUp().has_value());
  CHECK(idp.metadataFetchCount("/.well-known/oauth-authorization-server") == 1);
  CHECK(idp.metadataFetchCount("/.well-known/openid-configuration") == 0);
  CHECK(authenticator.authenticate(idp.mint({}, kAudience)).has_value());
  CHECK(idp.jwksFetchCount() == 1);
}

TEST_CASE("jwt: discovery falls back to openid-configuration", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  idp.setMetadataEnabled(false, true);
  auto settings = settingsFor(idp);
  settings.jwksUri.clear();
  const JwtAuthenticator authenticator(settings);
  CHECK(authenticator.authenticate(idp.mint({}, kAudience, "ES256")).has_value());
  CHECK(idp.metadataFetchCount("/.well-known/oauth-authorization-server") == 1);
  CHECK(idp.metadataFetchCount("/.well-known/openid-configuration") == 1);
}

TEST_CASE("jwt: failed discovery means provider unavailable", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  idp.setMetadataEnabled(false, false);
  auto settings = settingsFor(idp);
  settings.jwksUri.clear();
  JwtAuthenticator authenticator(settings);
  const auto warm = authenticator.warmUp();
  REQUIRE(warm.has_value());
  CHECK(warm->find("404") != std::string::npos);
  const auto result = authenticator.authenticate(idp.mint({}, kAudience));
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().error == AuthError::kProviderUnavailable);
  CHECK(result.error().detail.find("metadata discovery") != std::string::npos);
  CHECK(idp.jwksFetchCount() == 0);
}

TEST_CASE("jwt: discovery refuses metadata that names another issuer", "[jwt]") {
  auto& idp = sharedIdp();
  auto settings = settingsFor(idp);
  settings.jwksUri.clear();
  settings.issuer = idp.issuer() + "/";  // the metadata says issuer() without the slash
  JwtAuthenticator authenticator(settings);
  const auto warm = authenticator.warmUp();
  REQUIRE(warm.has_value());
  CHECK(warm->find("different issuer") != std::string::npos);
}

TEST_CASE("jwt: warmUp reports an unreachable JWKS without failing", "[jwt]") {
  ScopedIdp scoped;
  scoped.idp.setJwksMode(TestIdentityProvider::JwksMode::kDown);
  JwtAuthenticator authenticator(settingsFor(scoped.idp));
  const auto warm = authenticator.warmUp();
  REQUIRE(warm.has_value());
  CHECK(warm->find("cannot fetch the signing keys") != std::string::npos);
}

TEST_CASE("jwt: concurrent first use fetches the JWKS once", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  const JwtAuthenticator authenticator(settingsFor(idp));
  const auto token = idp.mint({}, kAudience, "ES256");
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i)
        if (authenticator.authenticate(token).has_value()) ++accepted;
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(accepted == 200);
  CHECK(idp.jwksFetchCount() == 1);
}

TEST_CASE("jwt: unverifiedIssuer peeks at iss without trusting it", "[jwt]") {
  CHECK(mcphost::auth::unverifiedIssuer(sharedIdp().mint({}, kAudience)) == sharedIdp().issuer());
  CHECK_FALSE(mcphost::auth::unverifiedIssuer("not-a-token").has_value());
  CHECK_FALSE(mcphost::auth::unverifiedIssuer("a.b.c").has_value());
}
