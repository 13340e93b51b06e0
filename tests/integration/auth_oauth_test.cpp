// OAuth 2.1 resource server end to end: the real host against the test identity provider
// (real RSA/EC keys, discovery and JWKS on loopback).
#include <catch2/catch.hpp>
#include <thread>

#include "auth_test_support.hpp"
#include "common/base64.hpp"
#include "support/test_idp.hpp"

using namespace mcphost::test;

namespace {

struct OAuthHost {
  std::string dir = makeTempDir();
  TestIdentityProvider idp{dir + "/idp"};
  std::string policyPath = dir + "/policy.yaml";
  std::unique_ptr<HostProcess> host;

  explicit OAuthHost(const std::string& oauthExtra = "", const std::string& connectors = "") {
    writeFile(policyPath,
              "version: 1\nrules:\n"
              "  - id: staff\n    effect: allow\n    subjects: {groups: [staff]}\n    actions: ['*']\n");
    host = std::make_unique<HostProcess>(
        "",
        "auth:\n  oauth:\n    - issuer: " + idp.issuer() + "\n" + oauthExtra + "policy: " + policyPath + "\n",
        false, connectors);
  }
  ~OAuthHost() { std::system(("rm -rf " + dir).c_str()); }
  [[nodiscard]] std::string audience() const {
    return "http://127.0.0.1:" + std::to_string(host->port()) + "/mcp";
  }
  [[nodiscard]] std::string bearer(const Json& claims = Json::object(),
                                   const std::string& alg = "RS256") const {
    Json c = {{"groups", {"staff"}}};
    c.update(claims);
    return "Bearer " + idp.mint(c, audience(), alg);
  }
};

}  // namespace

TEST_CASE("oauth: no token gets 401 with the resource metadata, which names the issuer", "[oauth]") {
  OAuthHost h;
  auto r = h.host->post(rpc(1, "initialize", initializeParams()));
  CHECK(r.status == 401);
  const std::string challenge = r.header("www-authenticate");
  CHECK(challenge.rfind("Bearer ", 0) == 0);
  CHECK(challenge.find("resource_metadata=\"http://127.0.0.1:" + std::to_string(h.host->port()) +
                       "/.well-known/oauth-protected-resource/mcp\"") != std::string::npos);
  CHECK(challenge.find("error=") == std::string::npos);  // RFC 6750: no error code without credentials
  CHECK(r.lastMessage()["error"]["message"].get<std::string>().find("authentication required") !=
        std::string::npos);
  for (const char* path :
       {"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"}) {
    auto meta = h.host->request("GET", path, {});
    REQUIRE(meta.status == 200);
    auto doc = Json::parse(meta.body);
    CHECK(doc["resource"] == h.audience());
    CHECK(doc["authorization_servers"] == Json::array({h.idp.issuer()}));
  }
  CHECK(h.host->request("GET", "/healthz", {}).status == 200);  // probes stay open
}

TEST_CASE("oauth: a valid RS256 or ES256 token opens a session, the principal reaches the connector",
          "[oauth]") {
  OAuthHost h("", faultyConnectorYaml("fx"));
  for (const char* alg : {"RS256", "ES256"}) {
    AuthSession s(*h.host, h.bearer({{"sub", "alice"}, {"name", "Alice A"}, {"tid", "acme"}}, alg));
    REQUIRE(s.opened.status == 200);
    REQUIRE_FALSE(s.id.empty());
    auto answer = s.result("tools/call", {{"name", "fx__caller"}, {"arguments", Json::object()}});
    const auto caller = Json::parse(answer["result"]["content"][0]["text"].get<std::string>());
    CHECK(caller["subject"] == "alice");
    CHECK(caller["authMethod"] == "jwt");
    CHECK(caller["groups"] == Json::array({"staff"}));
    CHECK(caller["tenant"] == "acme");
    CHECK(caller["displayName"] == "Alice A");
    CHECK_FALSE(caller.contains("accessToken"));  // the client's token is never passed on
    CHECK(answer.dump().find(h.idp.mint({}, h.audience()).substr(0, 20)) == std::string::npos);
  }
}

TEST_CASE("oauth: bad tokens are refused with 401 invalid_token and a clear reason", "[oauth]") {
  OAuthHost h;
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  struct Case {
    std::string name;
    std::string token;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"expired", h.idp.mint({{"exp", now - 3600}, {"groups", {"staff"}}}, h.audience()), "expired"},
      {"not yet valid", h.idp.mint({{"nbf", now + 3600}, {"groups", {"staff"}}}, h.audience()),
       "not yet valid"},
      {"wrong audience", h.idp.mint({{"groups", {"staff"}}}, "https://other.example/mcp"), "audience"},
      {"wrong issuer", h.idp.mint({{"iss", "https://evil.example"}}, h.audience()), "issuer"},
      {"alg none", h.idp.mint({}, h.audience(), "none"), "none"},
      {"key confusion", h.idp.mint({}, h.audience(), "HS256", h.idp.rsaPublicKeyPem()), "HS256"},
      {"malformed", "not.a.jwt", ""},
      {"garbage", std::string(3000, 'A'), ""},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto r = h.host->post(rpc(1, "initialize", initializeParams()), {{"Authorization", "Bearer " + c.token}});
    CHECK(r.status == 401);
    CHECK(r.header("www-authenticate").find("error=\"invalid_token\"") != std::string::npos);
    const std::string message = r.lastMessage()["error"]["message"].get<std::string>();
    if (!c.expect.empty()) CHECK(message.find(c.expect) != std::string::npos);
    CHECK(message.find(c.token.substr(0, 16)) == std::string::npos);  // never echoed
  }
  CHECK(h.host->running());
  CHECK(h.host->log().find(h.idp.mint({}, h.audience()).substr(0, 40)) == std::string::npos);
}

TEST_CASE("oauth: a missing scope is 403 insufficient_scope", "[oauth]") {
  OAuthHost h("      required_scopes: [mcp:tools]\n");
  auto r = h.host->post(rpc(1, "initialize", initializeParams()),
                        {{"Authorization", h.bearer({{"scope", "email"}})}});
  CHECK(r.status == 403);
  CHECK(r.header("www-authenticate").find("error=\"insufficient_scope\", scope=\"mcp:tools\"") !=
        std::string::npos);
  AuthSession ok(*h.host, h.bearer({{"scope", "email mcp:tools"}}));
  CHECK(ok.opened.status == 200);
}

TEST_CASE("oauth: JWKS down or garbage fails closed with 503, it recovers when the IdP does", "[oauth]") {
  OAuthHost h;
  h.idp.setJwksMode(TestIdentityProvider::JwksMode::kDown);
  h.idp.rotateRsaKey();  // the host's cached key set no longer has the signing key
  auto down = h.host->post(rpc(1, "initialize", initializeParams()), {{"Authorization", h.bearer()}});
  CHECK(down.status == 503);
  CHECK(down.lastMessage()["error"]["message"].get<std::string>().find("identity provider unavailable") !=
        std::string::npos);
  h.idp.setJwksMode(TestIdentityProvider::JwksMode::kGarbage);
  std::this_thread::sleep_for(std::chrono::seconds(11));  // past the unknown-kid refetch interval
  CHECK(h.host->post(rpc(1, "initialize", initializeParams()), {{"Authorization", h.bearer()}}).status ==
        503);
  h.idp.setJwksMode(TestIdentityProvider::JwksMode::kNormal);
  std::this_thread::sleep_for(std::chrono::seconds(11));
  AuthSession s(*h.host, h.bearer());
  CHECK(s.opened.status == 200);
}

TEST_CASE("oauth: a session belongs to the principal that opened it", "[oauth]") {
  OAuthHost h;
  AuthSession alice(*h.host, h.bearer({{"sub", "alice"}}));
  REQUIRE(alice.opened.status == 200);
  AuthSession mallory(*h.host, h.bearer({{"sub", "mallory"}}));
  mallory.id = alice.id;  // a leaked session id
  CHECK(mallory.send("tools/list").status == 404);
  CHECK(h.host->request("DELETE", "/mcp", mallory.headers(alice.id)).status == 404);
  CHECK(alice.send("tools/list").status == 200);
}

TEST_CASE("oauth: oversize Authorization headers are refused without harm", "[oauth]") {
  OAuthHost h;
  auto r = h.host->post(rpc(1, "initialize", initializeParams()),
                        {{"Authorization", "Bearer " + std::string(200000, 'x')}});
  CHECK(r.status >= 400);
  CHECK(r.status < 500);
  CHECK(h.host->running());
  CHECK(h.host->request("GET", "/healthz", {}).status == 200);
}

TEST_CASE("oauth: RFC 8693 token exchange gives the connector a backend token, not the client's", "[oauth]") {
  ::setenv("MCPHOST_TEST_EXCHANGE", TestIdentityProvider::kExchangeClientSecret, 1);
  OAuthHost h(
      "      token_exchange:\n        client_id: mcphost\n        client_secret: {env: "
      "MCPHOST_TEST_EXCHANGE}\n",
      faultyConnectorYaml("fx", "    token_exchange: {audience: https://backend.example}\n"));
  const std::string clientToken = h.bearer({{"sub", "alice"}});
  AuthSession s(*h.host, clientToken);
  REQUIRE(s.opened.status == 200);
  auto answer = s.result("tools/call", {{"name", "fx__caller"}, {"arguments", Json::object()}});
  const auto caller = Json::parse(answer["result"]["content"][0]["text"].get<std::string>());
  REQUIRE(caller.contains("accessToken"));
  const std::string backendToken = caller["accessToken"].get<std::string>();
  CHECK(backendToken != clientToken.substr(7));
  // The exchanged token is for the backend and says who acts for whom.
  const auto dot = backendToken.find('.');
  auto payload = Json::parse(
      *mcphost::base64UrlDecode(backendToken.substr(dot + 1, backendToken.find('.', dot + 1) - dot - 1)));
  CHECK(payload["sub"] == "alice");
  CHECK(payload["aud"] == "https://backend.example");
  CHECK(payload["act"]["sub"] == "mcphost");
  const int exchanges = h.idp.tokenExchangeCount();
  s.result("tools/call", {{"name", "fx__caller"}, {"arguments", Json::object()}});
  CHECK(h.idp.tokenExchangeCount() == exchanges);  // cached until it expires
  CHECK(h.idp.lastTokenRequest()["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange");
}

TEST_CASE("residency: calls go to the instance of the caller's region claim, never elsewhere",
          "[residency]") {
  const std::string manifest = std::string(MCPHOST_TEST_CONNECTORS_DIR) + "/faulty/connector.json";
  OAuthHost h("", "  - id: geo\n    manifest: " + manifest +
                      "\n    regions:\n      eu: {config: {label: eu-instance}}\n"
                      "      us: {config: {label: us-instance}}\n");
  auto labelFor = [&](const Json& claims) {
    AuthSession s(*h.host, h.bearer(claims));
    REQUIRE(s.opened.status == 200);
    return s.result("tools/call", {{"name", "geo__label"}});
  };
  CHECK(labelFor({{"region", "eu"}})["result"]["content"][0]["text"] == "eu-instance");
  CHECK(labelFor({{"region", "us"}})["result"]["content"][0]["text"] == "us-instance");
  const Json unknown = labelFor({{"region", "apac"}});
  REQUIRE(unknown.contains("error"));
  CHECK(unknown["error"]["code"] == -32003);
  CHECK(unknown["error"]["message"].get<std::string>().find("'apac'") != std::string::npos);
  const Json none = labelFor(Json::object());
  REQUIRE(none.contains("error"));
  CHECK(none["error"]["message"].get<std::string>().find("default_region") != std::string::npos);
  // One listing for the group, not one per region.
  AuthSession s(*h.host, h.bearer({{"region", "eu"}}));
  const Json listed = s.result("tools/list");
  int labels = 0;
  for (const auto& t : listed["result"]["tools"]) labels += t["name"] == "geo__label" ? 1 : 0;
  CHECK(labels == 1);
}
