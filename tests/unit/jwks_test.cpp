// The identity-provider plumbing under JwtAuthenticator: JWK Set parsing and JWS signature
// primitives (what a provider may publish and what we refuse to use), the strict HTTP client, and
// the RFC 8693 token-exchange client.
#include "auth/jwks.hpp"

#include <catch2/catch.hpp>
#include <filesystem>

#include "auth/http_fetch.hpp"
#include "auth/jwt_authenticator.hpp"
#include "auth/token_exchange.hpp"
#include "common/base64.hpp"
#include "common/crypto.hpp"
#include "support/test_idp.hpp"

using mcphost::auth::parseJwk;
using mcphost::auth::parseJwks;
using mcphost::test::TestIdentityProvider;
using Json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* kAudience = "https://mcp.example.com/mcp";

// A provider of its own, for tests that count its requests; removed again afterwards.
struct JwksFixture {
  std::string directory =
      (std::filesystem::temp_directory_path() / ("mcphost-jwks-" + mcphost::randomToken(6))).string();
  TestIdentityProvider idp{directory};
  JwksFixture() = default;
  JwksFixture(const JwksFixture&) = delete;
  JwksFixture& operator=(const JwksFixture&) = delete;
  ~JwksFixture() {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  }
};

using ScopedIdp = JwksFixture;

TestIdentityProvider& idp() {
  static JwksFixture fixture;
  return fixture.idp;
}
TestIdentityProvider& sharedIdp() {
  return idp();
}

mcphost::auth::JwtSettings settingsFor(const TestIdentityProvider& provider) {
  mcphost::auth::JwtSettings settings;
  settings.issuer = provider.issuer();
  settings.audience = kAudience;
  settings.jwksUri = provider.issuer() + "/jwks";
  settings.http.timeout = 3s;
  return settings;
}

Json rsaJwk() {
  return idp().jwksDocument()["keys"][0];
}
Json ecJwk() {
  return idp().jwksDocument()["keys"][1];
}

std::string errorOf(const Json& jwk) {
  const auto parsed = parseJwk(jwk);
  REQUIRE_FALSE(parsed.has_value());
  return parsed.error();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Splits a compact JWS into signing input and decoded signature.
std::pair<std::string, std::string> signedParts(const std::string& token) {
  const auto dot = token.rfind('.');
  return {token.substr(0, dot), mcphost::base64UrlDecode(token.substr(dot + 1)).value_or("")};
}

}  // namespace

TEST_CASE("jwt: jwks of the test provider parses into an RSA and an EC key", "[jwt]") {
  const auto set = parseJwks(idp().jwksDocument().dump());
  REQUIRE(set.has_value());
  REQUIRE(set->keys.size() == 2);
  CHECK(set->skipped.empty());
  const auto* rsa = set->findKid(idp().rsaKid());
  REQUIRE(rsa != nullptr);
  CHECK(rsa->kty == "RSA");
  CHECK(rsa->bits == 2048);
  CHECK(rsa->usableFor("RS256"));
  CHECK_FALSE(rsa->usableFor("ES256"));
  CHECK_FALSE(rsa->usableFor("HS256"));
  const auto* ec = set->findKid(idp().ecKid());
  REQUIRE(ec != nullptr);
  CHECK(ec->curve == "P-256");
  CHECK(ec->usableFor("ES256"));
  CHECK_FALSE(ec->usableFor("RS256"));
  CHECK(set->usableFor("RS256").size() == 1);
  CHECK(set->findKid("nope") == nullptr);
}

TEST_CASE("jwt: jwks keys with use=enc are skipped", "[jwt]") {
  auto document = idp().jwksDocument();
  document["keys"][0]["use"] = "enc";
  const auto set = parseJwks(document.dump());
  REQUIRE(set.has_value());
  CHECK(set->keys.size() == 1);
  REQUIRE(set->skipped.size() == 1);
  CHECK(contains(set->skipped[0], "not a signing key"));
  document["keys"][1]["use"] = "enc";
  const auto none = parseJwks(document.dump());
  REQUIRE_FALSE(none.has_value());
  CHECK(contains(none.error(), "no usable signing key"));
}

TEST_CASE("jwt: jwks key without use, or with key_ops verify, is kept", "[jwt]") {
  auto jwk = rsaJwk();
  jwk.erase("use");
  CHECK(parseJwk(jwk).has_value());
  jwk["key_ops"] = {"verify"};
  CHECK(parseJwk(jwk).has_value());
  jwk["key_ops"] = {"encrypt"};
  CHECK(contains(errorOf(jwk), "key_ops"));
  jwk["key_ops"] = "verify";
  CHECK(contains(errorOf(jwk), "key_ops"));
}

TEST_CASE("jwt: jwks short RSA key is refused", "[jwt]") {
  auto jwk = rsaJwk();
  // A 1024-bit odd "modulus": structurally fine, too short to trust.
  std::string modulus(128, '\x5b');
  modulus.front() = '\xc1';
  modulus.back() = '\x01';
  jwk["n"] = mcphost::base64UrlEncode(modulus);
  CHECK(contains(errorOf(jwk), "too short"));
  // Leading zero bytes do not make a short key long.
  jwk["n"] = mcphost::base64UrlEncode(std::string(200, '\0') + modulus);
  CHECK(contains(errorOf(jwk), "1024 bits"));
}

TEST_CASE("jwt: jwks RSA key with a bad exponent or huge modulus is refused", "[jwt]") {
  auto jwk = rsaJwk();
  jwk["e"] = mcphost::base64UrlEncode(std::string("\x01\x00\x00", 3));  // even
  CHECK(contains(errorOf(jwk), "exponent"));
  jwk = rsaJwk();
  jwk["e"] = mcphost::base64UrlEncode(std::string(16, '\x01'));
  CHECK(contains(errorOf(jwk), "exponent"));
  jwk = rsaJwk();
  jwk["n"] = mcphost::base64UrlEncode(std::string(4096, '\x7f'));
  CHECK(contains(errorOf(jwk), "longer than"));
}

TEST_CASE("jwt: jwks EC key on the wrong curve is refused", "[jwt]") {
  auto jwk = ecJwk();
  jwk["crv"] = "P-384";
  CHECK(contains(errorOf(jwk), "curve"));
  jwk["crv"] = "secp256k1";
  CHECK(contains(errorOf(jwk), "curve"));
  jwk.erase("crv");
  CHECK(contains(errorOf(jwk), "curve"));
}

TEST_CASE("jwt: jwks EC point that is not on the curve is refused", "[jwt]") {
  auto jwk = ecJwk();
  jwk["y"] = mcphost::base64UrlEncode(std::string(32, '\x01'));
  CHECK(contains(errorOf(jwk), "not on the P-256 curve"));
  jwk = ecJwk();
  jwk["x"] = mcphost::base64UrlEncode(std::string(31, '\x01'));
  CHECK(contains(errorOf(jwk), "32-byte"));
}

TEST_CASE("jwt: jwks keys with missing fields are refused", "[jwt]") {
  for (const char* field : {"n", "e"}) {
    auto jwk = rsaJwk();
    jwk.erase(field);
    CHECK(contains(errorOf(jwk), "n/e"));
  }
  for (const char* field : {"x", "y"}) {
    auto jwk = ecJwk();
    jwk.erase(field);
    CHECK(contains(errorOf(jwk), "x/y"));
  }
  auto noType = rsaJwk();
  noType.erase("kty");
  CHECK(contains(errorOf(noType), "not supported"));
  auto numeric = rsaJwk();
  numeric["n"] = 12345;
  CHECK(contains(errorOf(numeric), "n/e"));
  CHECK(contains(errorOf(Json::array()), "not a JSON object"));
}

TEST_CASE("jwt: jwks keys with bad base64url are refused", "[jwt]") {
  auto jwk = rsaJwk();
  jwk["n"] = jwk["n"].get<std::string>() + "==";  // padding is not base64url
  CHECK(contains(errorOf(jwk), "n/e"));
  jwk = rsaJwk();
  auto n = jwk["n"].get<std::string>();
  n[10] = '+';
  jwk["n"] = n;
  CHECK(contains(errorOf(jwk), "n/e"));
  jwk = ecJwk();
  jwk["x"] = "!!!!";
  CHECK(contains(errorOf(jwk), "x/y"));
}

TEST_CASE("jwt: jwks symmetric and unknown key types are skipped", "[jwt]") {
  CHECK(contains(errorOf({{"kty", "oct"}, {"k", "c2VjcmV0"}, {"kid", "hmac"}}), "'oct' is not supported"));
  CHECK(contains(errorOf({{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "AAAA"}}), "not supported"));
  auto document = idp().jwksDocument();
  document["keys"].push_back({{"kty", "oct"}, {"k", "c2VjcmV0"}});
  const auto set = parseJwks(document.dump());
  REQUIRE(set.has_value());
  CHECK(set->keys.size() == 2);
  CHECK(set->skipped.size() == 1);
}

TEST_CASE("jwt: jwks key whose alg does not fit is skipped", "[jwt]") {
  auto rsa = rsaJwk();
  rsa["alg"] = "ES256";
  CHECK(contains(errorOf(rsa), "does not fit"));
  rsa["alg"] = "RS384";
  CHECK(contains(errorOf(rsa), "not supported"));
  auto ec = ecJwk();
  ec["alg"] = "RS256";
  CHECK(contains(errorOf(ec), "does not fit"));
  rsa.erase("alg");
  const auto parsed = parseJwk(rsa);
  REQUIRE(parsed.has_value());
  CHECK(parsed->usableFor("RS256"));
}

TEST_CASE("jwt: jwks empty set is garbage", "[jwt]") {
  const auto empty = parseJwks(R"({"keys": []})");
  REQUIRE_FALSE(empty.has_value());
  CHECK(contains(empty.error(), "no usable signing key"));
}

TEST_CASE("jwt: jwks documents that are not key sets are refused", "[jwt]") {
  for (const std::string document : {"", "not json", "[]", "{}", R"({"keys": {}})", R"({"keys": "x"})",
                                     "null", R"({"keys": [1, "two", null]})"}) {
    CHECK_FALSE(parseJwks(document).has_value());
  }
  CHECK_FALSE(parseJwks(std::string(100, '[') + std::string(100, ']')).has_value());
}

TEST_CASE("jwt: jwks document size and key count are limited", "[jwt]") {
  auto big = idp().jwksDocument();
  big["padding"] = std::string(mcphost::auth::kMaxJwksDocumentBytes, 'x');
  const auto tooBig = parseJwks(big.dump());
  REQUIRE_FALSE(tooBig.has_value());
  CHECK(contains(tooBig.error(), "too large"));
  auto many = idp().jwksDocument();
  while (many["keys"].size() <= mcphost::auth::kMaxJwksKeys) many["keys"].push_back(rsaJwk());
  const auto tooMany = parseJwks(many.dump());
  REQUIRE_FALSE(tooMany.has_value());
  CHECK(contains(tooMany.error(), "more than"));
}

TEST_CASE("jwt: JWS signatures verify only with the right key and algorithm", "[jwt]") {
  const auto set = parseJwks(idp().jwksDocument().dump());
  REQUIRE(set.has_value());
  const auto& rsa = *set->findKid(idp().rsaKid());
  const auto& ec = *set->findKid(idp().ecKid());
  const auto [rsInput, rsSignature] = signedParts(idp().mint({}, "aud"));
  const auto [esInput, esSignature] = signedParts(idp().mint({}, "aud", "ES256"));
  CHECK(mcphost::auth::verifyJwsSignature(rsa, "RS256", rsInput, rsSignature));
  CHECK(mcphost::auth::verifyJwsSignature(ec, "ES256", esInput, esSignature));
  CHECK(esSignature.size() == 64);
  CHECK_FALSE(mcphost::auth::verifyJwsSignature(rsa, "RS256", rsInput + "x", rsSignature));
  CHECK_FALSE(mcphost::auth::verifyJwsSignature(rsa, "ES256", rsInput, rsSignature));
  CHECK_FALSE(mcphost::auth::verifyJwsSignature(ec, "RS256", esInput, esSignature));
  CHECK_FALSE(mcphost::auth::verifyJwsSignature(rsa, "HS256", rsInput, rsSignature));
  CHECK_FALSE(mcphost::auth::verifyJwsSignature(ec, "ES256", esInput, esSignature.substr(0, 63)));
  CHECK_FALSE(mcphost::auth::verifyJwsSignature(ec, "ES256", esInput, std::string(64, '\0')));
  CHECK_FALSE(mcphost::auth::verifyJwsSignature(rsa, "RS256", rsInput, ""));
}

TEST_CASE("jwt: JSON parsing bounds the nesting depth", "[jwt]") {
  CHECK(mcphost::auth::parseJsonLimited(R"({"a":[1,{"b":2}]})", 3).has_value());
  CHECK_FALSE(mcphost::auth::parseJsonLimited(R"({"a":[1,{"b":2}]})", 2).has_value());
  CHECK(mcphost::auth::parseJsonLimited(R"({"a":"[[[[[[[[["})", 1).has_value());  // brackets in strings
  CHECK(mcphost::auth::parseJsonLimited(R"({"a":"\"[[[[["})", 1).has_value());
  CHECK_FALSE(mcphost::auth::parseJsonLimited("{", 4).has_value());
}

TEST_CASE("jwt: metadata URLs follow RFC 8414 and OpenID Connect", "[jwt]") {
  CHECK(mcphost::auth::metadataUrlsFor("https://idp.example.com") ==
        std::vector<std::string>{"https://idp.example.com/.well-known/oauth-authorization-server",
                                 "https://idp.example.com/.well-known/openid-configuration"});
  CHECK(mcphost::auth::metadataUrlsFor("https://idp.example.com/realms/corp/") ==
        std::vector<std::string>{"https://idp.example.com/.well-known/oauth-authorization-server/realms/corp",
                                 "https://idp.example.com/realms/corp/.well-known/oauth-authorization-server",
                                 "https://idp.example.com/realms/corp/.well-known/openid-configuration"});
}

// ---- http_fetch -------------------------------------------------------------------------------

TEST_CASE("jwt: httpGet refuses plain http to a non-loopback host", "[jwt]") {
  const mcphost::auth::HttpFetchOptions options;
  for (const char* url : {"http://example.com/jwks", "http://10.0.0.1/keys", "http://127.0.0.1.nip.io/jwks",
                          "http://localhost.example.com/jwks", "http://[::2]/jwks"}) {
    const auto result = mcphost::auth::httpGet(url, options);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().find("loopback") != std::string::npos);
    CHECK(result.error().find("http://") != std::string::npos);
  }
  const auto ftp = mcphost::auth::httpGet("ftp://example.com/jwks", options);
  REQUIRE_FALSE(ftp.has_value());
  CHECK(ftp.error().find("scheme") != std::string::npos);
  CHECK_FALSE(mcphost::auth::httpGet("https://user:pw@example.com/jwks", options).has_value());
  const auto withUser = mcphost::auth::httpGet("https://user:pw@example.com/jwks", options);
  CHECK(withUser.error().find("pw") == std::string::npos);
}

TEST_CASE("jwt: loopback host classification", "[jwt]") {
  using mcphost::auth::isLoopbackHost;
  CHECK(isLoopbackHost("127.0.0.1"));
  CHECK(isLoopbackHost("127.45.6.7"));
  CHECK(isLoopbackHost("::1"));
  CHECK(isLoopbackHost("[::1]"));
  CHECK(isLoopbackHost("localhost"));
  CHECK(isLoopbackHost("LOCALHOST"));
  CHECK_FALSE(isLoopbackHost("128.0.0.1"));
  CHECK_FALSE(isLoopbackHost("0.0.0.0"));
  CHECK_FALSE(isLoopbackHost("localhost.evil.com"));
  CHECK_FALSE(isLoopbackHost("127.0.0.1.evil.com"));
}

TEST_CASE("jwt: httpGet fetches from loopback, limits size, does not follow redirects", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  mcphost::auth::HttpFetchOptions options;
  const auto ok = mcphost::auth::httpGet(idp.issuer() + "/jwks", options);
  REQUIRE(ok.has_value());
  CHECK(ok->status == 200);
  CHECK(ok->contentType == "application/json");
  CHECK(Json::parse(ok->body).contains("keys"));
  const auto redirect = mcphost::auth::httpGet(idp.issuer() + "/redirect", options);
  REQUIRE(redirect.has_value());
  CHECK(redirect->status == 302);
  CHECK(idp.jwksFetchCount() == 1);
  options.maxBytes = 16;
  const auto tooBig = mcphost::auth::httpGet(idp.issuer() + "/jwks", options);
  REQUIRE_FALSE(tooBig.has_value());
  CHECK(tooBig.error().find("larger than 16 bytes") != std::string::npos);
}

TEST_CASE("jwt: https to a server that does not speak TLS fails cleanly", "[jwt]") {
  mcphost::auth::HttpFetchOptions options;
  options.timeout = 2s;
  const auto result =
      mcphost::auth::httpGet("https://127.0.0.1:" + std::to_string(sharedIdp().port()) + "/jwks", options);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().find("https://127.0.0.1:") != std::string::npos);
}

// ---- token exchange ---------------------------------------------------------------------------

namespace {
mcphost::auth::TokenExchangeSettings exchangeSettingsFor(const TestIdentityProvider& idp) {
  mcphost::auth::TokenExchangeSettings settings;
  settings.tokenEndpoint = idp.issuer() + "/token";
  settings.clientId = TestIdentityProvider::kExchangeClientId;
  settings.clientSecret = TestIdentityProvider::kExchangeClientSecret;
  settings.audience = "https://backend.example.com";
  settings.scope = "backend:read";
  settings.http.timeout = 3s;
  return settings;
}
}  // namespace

TEST_CASE("jwt: token exchange returns a backend-bound token", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  mcphost::auth::TokenExchanger exchanger(exchangeSettingsFor(idp));
  const auto subjectToken = idp.mint({{"sub", "bob"}}, kAudience);
  const auto exchanged = exchanger.exchange(subjectToken);
  REQUIRE(exchanged.has_value());
  CHECK(*exchanged != subjectToken);
  CHECK(idp.tokenExchangeCount() == 1);
  const auto form = idp.lastTokenRequest();
  CHECK(form.at("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange");
  CHECK(form.at("subject_token_type") == "urn:ietf:params:oauth:token-type:access_token");
  CHECK(form.at("audience") == "https://backend.example.com");
  CHECK(form.count("client_secret") == 0);  // sent with HTTP Basic only

  auto backend = settingsFor(idp);
  backend.audience = "https://backend.example.com";
  const mcphost::auth::JwtAuthenticator backendAuthenticator(backend);
  const auto principal = backendAuthenticator.authenticate(*exchanged);
  REQUIRE(principal.has_value());
  CHECK(principal->subject == "bob");
  CHECK(principal->attributes["act"]["sub"] == "mcphost");
  CHECK(principal->scopes == std::vector<std::string>{"backend:read"});
}

TEST_CASE("jwt: token exchange results are cached per subject token", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  mcphost::auth::TokenExchanger exchanger(exchangeSettingsFor(idp));
  const auto first = idp.mint({{"sub", "bob"}}, kAudience);
  const auto a = exchanger.exchange(first);
  const auto b = exchanger.exchange(first);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(*a == *b);
  CHECK(idp.tokenExchangeCount() == 1);
  CHECK(exchanger.cachedTokens() == 1);
  const auto other = exchanger.exchange(idp.mint({{"sub", "carol"}}, kAudience));
  REQUIRE(other.has_value());
  CHECK(idp.tokenExchangeCount() == 2);
}

TEST_CASE("jwt: token exchange with a wrong client secret fails with invalid_client", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  auto settings = exchangeSettingsFor(idp);
  settings.clientSecret = "wrong-secret-value";
  mcphost::auth::TokenExchanger exchanger(settings);
  const auto subjectToken = idp.mint({}, kAudience);
  const auto result = exchanger.exchange(subjectToken);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().find("401") != std::string::npos);
  CHECK(result.error().find("invalid_client") != std::string::npos);
  CHECK(result.error().find("wrong-secret-value") == std::string::npos);
  CHECK(result.error().find(subjectToken) == std::string::npos);
  CHECK(exchanger.cachedTokens() == 0);
}

TEST_CASE("jwt: token exchange of a bad subject token fails with invalid_grant", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  mcphost::auth::TokenExchanger exchanger(exchangeSettingsFor(idp));
  const auto result = exchanger.exchange(idp.mint({}, kAudience, "HS256", "not-the-idp-key"));
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().find("invalid_grant") != std::string::npos);
  CHECK_FALSE(exchanger.exchange("").has_value());
}

TEST_CASE("jwt: token exchange discovers the token endpoint from the issuer", "[jwt]") {
  ScopedIdp scoped;
  auto& idp = scoped.idp;
  auto settings = exchangeSettingsFor(idp);
  settings.tokenEndpoint.clear();
  settings.issuer = idp.issuer();
  settings.audience.clear();
  settings.resource = "https://backend.example.com/api";
  mcphost::auth::TokenExchanger exchanger(settings);
  const auto exchanged = exchanger.exchange(idp.mint({}, kAudience));
  REQUIRE(exchanged.has_value());
  CHECK(idp.lastTokenRequest().at("resource") == "https://backend.example.com/api");
  CHECK(mcphost::auth::unverifiedIssuer(*exchanged) == idp.issuer());
}
