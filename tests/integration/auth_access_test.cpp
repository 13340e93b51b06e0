// Service accounts (API keys), policy (list filtering, denials, reload, explain) and rate
// limits through the real host.
#include <catch2/catch.hpp>
#include <csignal>
#include <regex>
#include <thread>

#include "auth_test_support.hpp"

using namespace mcphost::test;

namespace {

std::string keyFrom(const std::string& output) {
  std::smatch m;
  static const std::regex kKey("(mcph_[A-Za-z0-9]+_[A-Za-z0-9_-]+)");
  return std::regex_search(output, m, kKey) ? m[1].str() : std::string();
}

const char* kPolicy = R"(version: 1
rules:
  - id: hr-tools
    effect: allow
    subjects: {groups: [hr]}
    actions: [tools/call]
    targets: {names: ["test_simple_text", "test_image_*"]}
  - id: everyone-prompts
    effect: allow
    actions: [prompts/get]
  - id: no-images-for-contractors
    effect: deny
    subjects: {groups: [contractors]}
    actions: ['*']
    targets: {names: ["test_image_*"]}
)";

struct KeyHost {
  std::string dir = makeTempDir();
  std::string policyPath = dir + "/policy.yaml";
  std::unique_ptr<HostProcess> host;
  explicit KeyHost(const std::string& extra = "", const std::string& authExtra = "") {
    writeFile(policyPath, kPolicy);
    host = std::make_unique<HostProcess>("", "state_dir: " + dir +
                                                 "/state\nauth:\n  api_keys: {enabled: true}\n" + authExtra +
                                                 "policy: " + policyPath + "\n" + extra);
  }
  ~KeyHost() { std::system(("rm -rf " + dir).c_str()); }
  std::string createKey(const std::string& name, const std::string& groups) {
    auto c = runHost({"keys", "create", "--config", host->configPath(), "--name", name, "--groups", groups,
                      "--expires", "90d"},
                     dir);
    REQUIRE(c.code == 0);
    auto key = keyFrom(c.out);
    REQUIRE_FALSE(key.empty());
    return "Bearer " + key;
  }
};

}  // namespace

TEST_CASE("api keys: created by the CLI, accepted by the host, revoked at once", "[apikeys]") {
  KeyHost h;
  const std::string key = h.createKey("etl", "hr");
  AuthSession s(*h.host, key);
  REQUIRE(s.opened.status == 200);
  auto list = runHost({"keys", "list", "--config", h.host->configPath()}, h.dir);
  CHECK(list.code == 0);
  CHECK(list.out.find("etl") != std::string::npos);
  CHECK(list.out.find(key.substr(7)) == std::string::npos);  // the secret is never shown again
  auto revoke = runHost({"keys", "revoke", "--config", h.host->configPath(), "etl"}, h.dir);
  CHECK(revoke.code == 0);
  auto refused = h.host->post(rpc(1, "initialize", initializeParams()), {{"Authorization", key}});
  CHECK(refused.status == 401);
  CHECK(refused.lastMessage()["error"]["message"] == "API key revoked");
  auto wrong = h.host->post(rpc(1, "initialize", initializeParams()),
                            {{"Authorization", "Bearer mcph_aaaaaaaaaaaa_" + std::string(43, 'x')}});
  CHECK(wrong.status == 401);
  CHECK(wrong.lastMessage()["error"]["message"] == "invalid API key");
}

TEST_CASE("policy: lists are filtered per principal and denials name the rule", "[policy]") {
  KeyHost h;
  AuthSession hr(*h.host, h.createKey("hr-bot", "hr"));
  AuthSession contractor(*h.host, h.createKey("contractor-bot", "hr,contractors"));
  AuthSession other(*h.host, h.createKey("other-bot", "sales"));
  auto hrTools = hr.toolNames();
  CHECK(std::find(hrTools.begin(), hrTools.end(), "test_simple_text") != hrTools.end());
  CHECK(std::find(hrTools.begin(), hrTools.end(), "test_image_content") != hrTools.end());
  CHECK(std::find(hrTools.begin(), hrTools.end(), "test_audio_content") == hrTools.end());
  auto contractorTools = contractor.toolNames();
  CHECK(std::find(contractorTools.begin(), contractorTools.end(), "test_simple_text") !=
        contractorTools.end());
  CHECK(std::find(contractorTools.begin(), contractorTools.end(), "test_image_content") ==
        contractorTools.end());
  CHECK(other.toolNames().empty());

  auto ok = hr.result("tools/call", {{"name", "test_simple_text"}, {"arguments", Json::object()}});
  CHECK(ok.contains("result"));
  auto denied =
      contractor.result("tools/call", {{"name", "test_image_content"}, {"arguments", Json::object()}});
  CHECK(denied["error"]["code"] == -32003);
  CHECK(denied["error"]["data"]["rule"] == "no-images-for-contractors");
  auto unlisted = other.result("tools/call", {{"name", "test_simple_text"}, {"arguments", Json::object()}});
  CHECK(unlisted["error"]["code"] == -32003);
  CHECK(unlisted["error"]["data"]["rule"] == "default-deny");
  CHECK(other.result("resources/list")["result"]["resources"].empty());
  CHECK_FALSE(other.result("prompts/list")["result"]["prompts"].empty());
  CHECK(h.host->log().find("\"rule\":\"no-images-for-contractors\"") != std::string::npos);
}

TEST_CASE("policy: SIGHUP reloads, an invalid policy is refused and the old one stays", "[policy]") {
  KeyHost h;
  AuthSession other(*h.host, h.createKey("sales-bot", "sales"));
  CHECK(other.toolNames().empty());
  writeFile(h.policyPath, std::string(kPolicy) +
                              "  - id: sales-text\n    effect: allow\n    subjects: {groups: [sales]}\n"
                              "    actions: [tools/call]\n    targets: {names: [test_simple_text]}\n");
  ::kill(h.host->pidForTests(), SIGHUP);
  std::vector<std::string> names;
  for (int i = 0; i < 40 && names.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    names = other.toolNames();
  }
  CHECK(names == std::vector<std::string>{"test_simple_text"});
  writeFile(h.policyPath, "version: 1\nrules:\n  - id: broken\n    effect: allow\n    colour: blue\n");
  ::kill(h.host->pidForTests(), SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK(other.toolNames() == std::vector<std::string>{"test_simple_text"});
  CHECK(h.host->log().find("policy reload refused") != std::string::npos);
  CHECK(h.host->log().find("colour") != std::string::npos);
}

TEST_CASE("policy explain prints the decision and the rule", "[policy]") {
  KeyHost h;
  auto allow = runHost({"policy", "explain", "--config", h.host->configPath(), "--user", "alice", "--groups",
                        "hr", "--tool", "test_simple_text"},
                       h.dir);
  CHECK(allow.code == 0);
  CHECK(allow.out.find("decision: ALLOW") != std::string::npos);
  CHECK(allow.out.find("hr-tools") != std::string::npos);
  auto deny = runHost({"policy", "explain", "--config", h.host->configPath(), "--user", "bob", "--groups",
                       "hr,contractors", "--tool", "test_image_content"},
                      h.dir);
  CHECK(deny.code == 1);
  CHECK(deny.out.find("decision: DENY") != std::string::npos);
  CHECK(deny.out.find("no-images-for-contractors") != std::string::npos);
}

TEST_CASE("rate limits: over the limit is 429 with Retry-After", "[ratelimit]") {
  KeyHost h("rate_limits:\n  per_tool: {test_simple_text: 2/min}\n");
  AuthSession s(*h.host, h.createKey("burst", "hr"));
  const Json call = {{"name", "test_simple_text"}, {"arguments", Json::object()}};
  CHECK(s.send("tools/call", call).status == 200);
  CHECK(s.send("tools/call", call).status == 200);
  auto limited = s.send("tools/call", call);
  CHECK(limited.status == 429);
  CHECK(std::stoi(limited.header("retry-after")) >= 1);
  CHECK(limited.lastMessage()["error"]["code"] == -32029);
  CHECK(limited.lastMessage()["error"]["message"].get<std::string>().find("test_simple_text") !=
        std::string::npos);
  CHECK(s.send("tools/list").status == 200);  // other methods are not limited by the tool bucket
}

TEST_CASE("rate limits: a caller who may not use a tool cannot drain its bucket", "[ratelimit]") {
  KeyHost h("rate_limits:\n  per_tool: {test_simple_text: 2/min}\n");
  AuthSession outsider(*h.host, h.createKey("outsider", "sales"));
  const Json call = {{"name", "test_simple_text"}, {"arguments", Json::object()}};
  for (int i = 0; i < 4; ++i) CHECK(outsider.result("tools/call", call)["error"]["code"] == -32003);
  AuthSession hr(*h.host, h.createKey("hr", "hr"));
  CHECK(hr.send("tools/call", call).status == 200);
  CHECK(hr.send("tools/call", call).status == 200);
}

TEST_CASE("rate limits: failed authentications are limited per source address", "[ratelimit]") {
  KeyHost h("", "  failed_attempts: {per_ip: 3/min}\n");
  const std::string good = h.createKey("good", "hr");
  const Headers bad = {{"Authorization", "Bearer mcph_aaaaaaaaaaaa_" + std::string(43, 'x')}};
  for (int i = 0; i < 3; ++i)
    CHECK(h.host->post(rpc(1, "initialize", initializeParams()), bad).status == 401);
  auto limited = h.host->post(rpc(1, "initialize", initializeParams()), bad);
  CHECK(limited.status == 429);
  CHECK(std::stoi(limited.header("retry-after")) >= 1);
  CHECK(limited.lastMessage()["error"]["message"].get<std::string>().find("too many failed") !=
        std::string::npos);
  // The source is blocked, whatever it sends next, until the bucket refills.
  CHECK(h.host->post(rpc(1, "initialize", initializeParams()), {{"Authorization", good}}).status == 429);
}

TEST_CASE("check-config refuses unsafe or broken security settings with the line and a fix", "[config]") {
  const std::string dir = makeTempDir();
  auto check = [&](const std::string& yaml) {
    writeFile(dir + "/c.yaml", "connectors:\n  - id: c\n    connector: conformance\n" + yaml);
    return runHost({"check-config", dir + "/c.yaml"}, dir);
  };
  auto noPolicy = check("auth:\n  api_keys: {enabled: true}\n");
  CHECK(noPolicy.code == 2);
  CHECK(noPolicy.out.find("no policy is set") != std::string::npos);
  auto open = check("server:\n  listen: 0.0.0.0:9999\n");
  CHECK(open.code == 2);
  CHECK(open.out.find("without authentication") != std::string::npos);
  auto unknown = check(
      "auth:\n  ldap:\n    url: ldap://127.0.0.1:1\n    user_base: dc=x\n    group_mode: none\n"
      "    colour: blue\npolicy: p.yaml\n");
  CHECK(unknown.code == 2);
  CHECK(unknown.out.find("auth.ldap.colour") != std::string::npos);
  writeFile(dir + "/p.yaml",
            "version: 1\nrules:\n  - id: a\n    effect: allow\n    conditions: {when: \"args.x <= \"}\n");
  auto badExpression =
      check("auth:\n  api_keys: {enabled: true}\npolicy: p.yaml\nstate_dir: " + dir + "/s\n");
  CHECK(badExpression.code == 2);
  CHECK(badExpression.out.find("p.yaml:") != std::string::npos);
  auto literalSecret = check(
      "auth:\n  oauth:\n    - issuer: https://idp.example\n      algorithms: [HS256]\n      hs256_secret: "
      "hunter2\n"
      "policy: p.yaml\n");
  CHECK(literalSecret.code == 2);
  CHECK(literalSecret.out.find("never the secret itself") != std::string::npos);
  const std::string ldap =
      "auth:\n  ldap:\n    url: ldap://127.0.0.1:1\n    user_base: dc=x\n    group_mode: none\n";
  auto noPassword = check(ldap + "    bind_dn: cn=reader\npolicy: p.yaml\n");
  CHECK(noPassword.code == 2);
  CHECK(noPassword.out.find("auth.ldap.bind_password") != std::string::npos);
  auto badTemplate = check(ldap + "    bind_dn_template: uid=x,dc=x\npolicy: p.yaml\n");
  CHECK(badTemplate.code == 2);
  CHECK(badTemplate.out.find("{username}") != std::string::npos);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("stdio: the local user is the principal, policy and rate limits apply", "[policy][ratelimit]") {
  const std::string dir = makeTempDir();
  writeFile(
      dir + "/policy.yaml",
      "version: 1\nrules:\n  - id: local-text\n    effect: allow\n    subjects: {auth_methods: [stdio]}\n"
      "    actions: [tools/call]\n    targets: {names: [test_simple_text]}\n");
  writeFile(dir + "/c.yaml",
            "policy: " + dir +
                "/policy.yaml\nrate_limits:\n  per_principal: 3/min\nconnectors:\n  - id: c\n"
                "    connector: conformance\n    prefix: false\n");
  Subprocess p({MCPHOST_BINARY, "serve", "--stdio", "--config", dir + "/c.yaml"}, dir + "/stderr.txt", true);
  auto ask = [&](int id, const std::string& method, const Json& params) {
    p.writeLine(rpc(id, method, params).dump());
    auto line = p.readLine(std::chrono::seconds(20));
    REQUIRE(line);
    return Json::parse(*line);
  };
  CHECK(ask(1, "initialize", initializeParams()).contains("result"));
  p.writeLine(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  const auto listed = ask(2, "tools/list", Json::object());
  REQUIRE(listed["result"]["tools"].size() == 1);
  CHECK(listed["result"]["tools"][0]["name"] == "test_simple_text");
  CHECK(ask(3, "tools/call",
            {{"name", "test_audio_content"}, {"arguments", Json::object()}})["error"]["code"] == -32003);
  const auto limited = ask(4, "tools/call", {{"name", "test_simple_text"}, {"arguments", Json::object()}});
  CHECK(limited["error"]["code"] == -32029);  // the fourth request within the minute
  CHECK(limited["error"]["data"]["retryAfterSeconds"].get<int>() >= 1);
  p.closeStdin();
  CHECK(p.wait(std::chrono::seconds(20)) == 0);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("policy: a changed file is picked up without a signal", "[policy]") {
  KeyHost h;
  AuthSession other(*h.host, h.createKey("watcher", "sales"));
  CHECK(other.toolNames().empty());
  writeFile(h.policyPath, std::string(kPolicy) +
                              "  - id: sales-text\n    effect: allow\n    subjects: {groups: [sales]}\n"
                              "    actions: [tools/call]\n    targets: {names: [test_simple_text]}\n");
  std::vector<std::string> names;
  for (int i = 0; i < 50 && names.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    names = other.toolNames();
  }
  CHECK(names == std::vector<std::string>{"test_simple_text"});
  CHECK(h.host->log().find("\"trigger\":\"file change\"") != std::string::npos);
}
