// The DLP engine: rule selection, actions, where in an MCP result it looks, the pointer-rule
// echo into text content, blocking, limits, and the inbound secret scan and audit copy.
#include "dlp/dlp_engine.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

using mcphost::dlp::Action;
using mcphost::dlp::Engine;
using mcphost::dlp::Protection;
using mcphost::dlp::RuleConfig;
using mcphost::dlp::ScanTarget;
using mcphost::dlp::Settings;
using nlohmann::json;

namespace {

const std::string kKey(32, 'k');

std::shared_ptr<const Engine> engineWith(std::vector<RuleConfig> rules, bool inbound = false) {
  Settings settings;
  settings.rules = std::move(rules);
  settings.pseudonymKey = kKey;
  settings.scanInboundSecrets = inbound;
  auto engine = Engine::create(settings);
  INFO((engine ? std::string() : engine.error()));
  REQUIRE(engine);
  return *engine;
}

RuleConfig rule(std::string name, std::vector<std::string> detectors, Action action = Action::kMask) {
  RuleConfig r;
  r.name = std::move(name);
  r.detectors = std::move(detectors);
  r.action = action;
  return r;
}

json textResult(const std::string& text) {
  return {{"content", json::array({{{"type", "text"}, {"text", text}}})}};
}

ScanTarget toolTarget(std::string_view tenant = "t1") {
  return {"tool", "crm-prod", "crm.lookup", nullptr, tenant};
}

Protection protect(const Engine& engine, json& result, const ScanTarget& target = toolTarget()) {
  return engine.protect(result, target, [](std::string_view) { return false; });
}

std::string text0(const json& result) {
  return result["content"][0]["text"].get<std::string>();
}

std::string createError(const Settings& settings) {
  auto engine = Engine::create(settings);
  REQUIRE_FALSE(engine);
  return engine.error();
}

}  // namespace

TEST_CASE("dlp: mask keeps the last four and the separators") {
  using mcphost::dlp::maskValue;
  CHECK(maskValue("4111 1111 1111 1234") == "**** **** **** 1234");
  CHECK(maskValue("4111-1111-1111-1234") == "****-****-****-1234");
  CHECK(maskValue("jane.doe@example.com") == "****.***@******e.com");
  CHECK(maskValue("(415) 555-2671") == "(***) ***-2671");
  CHECK(maskValue("123-45-6789") == "***-**-6789");
  CHECK(maskValue("10.0.0.1") == "**.*.*.*");  // too short to keep four
  CHECK(maskValue("k\xC3\xA9y-\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9") ==
        "***-**\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9");
}

TEST_CASE("dlp: actions parse and print") {
  for (auto a : {Action::kMask, Action::kRedact, Action::kPseudonymize, Action::kBlock})
    CHECK(mcphost::dlp::parseAction(mcphost::dlp::actionName(a)) == a);
  CHECK_FALSE(mcphost::dlp::parseAction("encrypt"));
}

TEST_CASE("dlp: masks text content and counts findings") {
  auto engine = engineWith({rule("pii", {"*"})});
  json result = textResult("card 4111 1111 1111 1111, mail jane@example.com, order 4111111111111112");
  const Protection p = protect(*engine, result);
  CHECK(text0(result) == "card **** **** **** 1111, mail ****@******e.com, order 4111111111111112");
  CHECK_FALSE(p.blockedBy);
  REQUIRE(p.findings.size() == 2);
  CHECK(p.bytesScanned > 0);
  for (const auto& f : p.findings) {
    CHECK(f.rule == "pii");
    CHECK(f.count == 1);
    CHECK(f.action == Action::kMask);
  }
}

TEST_CASE("dlp: clean text is left untouched") {
  auto engine = engineWith({rule("pii", {"*"})});
  json result = textResult("nothing to see: version 1.2.3.4.5, order 1234567812345678, 999-12-3456");
  const json before = result;
  const Protection p = protect(*engine, result);
  CHECK(result == before);
  CHECK(p.findings.empty());
}

TEST_CASE("dlp: redact and pseudonymize") {
  auto engine = engineWith(
      {rule("cards", {"payment_card"}, Action::kRedact), rule("mails", {"email"}, Action::kPseudonymize)});
  json result = textResult("4111111111111111 Jane@Example.com");
  protect(*engine, result, toolTarget("tenant-a"));
  const std::string out = text0(result);
  CHECK(out.rfind("[REDACTED:payment_card] email_", 0) == 0);
  const std::string token = out.substr(out.find("email_"));
  CHECK(token.size() == 6 + 16);

  json again = textResult("jane@example.com");  // normalized: case does not matter
  protect(*engine, again, toolTarget("tenant-a"));
  CHECK(text0(again) == token);
  json other = textResult("jane@example.com");
  protect(*engine, other, toolTarget("tenant-b"));
  CHECK(text0(other) != token);
}

TEST_CASE("dlp: pseudonyms normalize card separators") {
  auto engine = engineWith({rule("cards", {"payment_card"}, Action::kPseudonymize)});
  json a = textResult("4111 1111 1111 1111");
  json b = textResult("4111-1111-1111-1111");
  protect(*engine, a);
  protect(*engine, b);
  CHECK(text0(a) == text0(b));
  CHECK(text0(a).rfind("payment_card_", 0) == 0);
}

TEST_CASE("dlp: block stops and names the rule") {
  auto engine =
      engineWith({rule("mask-mail", {"email"}), rule("no-keys", {"private_key", "api_key"}, Action::kBlock)});
  json result = textResult("a@example.com AKIAIOSFODNN7EXAMPLE");
  const Protection p = protect(*engine, result);
  REQUIRE(p.blockedBy);
  CHECK(*p.blockedBy == "no-keys");
  json clean = textResult("a@example.com only");
  CHECK_FALSE(protect(*engine, clean).blockedBy);
}

TEST_CASE("dlp: exempt callers see the data of that rule") {
  auto engine = engineWith({rule("mails", {"email"}), rule("cards", {"payment_card"})});
  json result = textResult("a@example.com 4111111111111111");
  const Protection p =
      engine->protect(result, toolTarget(), [](std::string_view name) { return name == "mails"; });
  CHECK(text0(result) == "a@example.com ************1111");
  REQUIRE(p.findings.size() == 1);
  CHECK(p.findings[0].rule == "cards");
}

TEST_CASE("dlp: the first applicable rule in config order wins") {
  auto engine =
      engineWith({rule("redact-cards", {"payment_card"}, Action::kRedact), rule("mask-all", {"*"})});
  json result = textResult("4111111111111111 4242424242424242 a@example.com");
  const Protection p = protect(*engine, result);
  CHECK(text0(result) == "[REDACTED:payment_card] [REDACTED:payment_card] *@******e.com");
  REQUIRE(p.findings.size() == 2);
  CHECK(p.findings[0].rule == "redact-cards");
  CHECK(p.findings[0].detector == "payment_card");
  CHECK(p.findings[0].count == 2);
  CHECK(p.findings[1].rule == "mask-all");
  CHECK(p.findings[1].detector == "email");
}

TEST_CASE("dlp: rules select by connector, item and classification") {
  RuleConfig byConnector = rule("crm-only", {"email"});
  byConnector.connectors = {"crm-*"};
  RuleConfig byItem = rule("export-only", {"payment_card"});
  byItem.items = {"*.export"};
  RuleConfig byTag = rule("pci", {"us_ssn"});
  byTag.classifications = {"pci", "restricted"};
  auto engine = engineWith({byConnector, byItem, byTag});
  const std::vector<std::string> tags = {"restricted"};
  const std::string text = "a@example.com 4111111111111111 123-45-6789";

  json r1 = textResult(text);
  protect(*engine, r1, {"tool", "crm-prod", "crm.lookup", nullptr, "t"});
  CHECK(text0(r1) == "*@******e.com 4111111111111111 123-45-6789");
  json r2 = textResult(text);
  protect(*engine, r2, {"tool", "erp", "erp.export", &tags, "t"});
  CHECK(text0(r2) == "a@example.com ************1111 ***-**-6789");
}

TEST_CASE("dlp: structured content strings and numbers") {
  auto engine = engineWith({rule("pii", {"*"})});
  json result = {{"content", json::array()},
                 {"structuredContent",
                  {{"customer", {{"email", "bob@example.com"}, {"card", 4111111111111111ULL}, {"age", 42}}},
                   {"notes", json::array({"call +14155552671", "ok"})}}}};
  protect(*engine, result);
  const json& s = result["structuredContent"];
  CHECK(s["customer"]["email"] == "***@******e.com");
  CHECK(s["customer"]["card"] == "************1111");  // the number became the masked string
  CHECK(s["customer"]["age"] == 42);
  CHECK(s["notes"][0] == "call +*******2671");
}

TEST_CASE("dlp: pointer rules apply inside structuredContent and to its text copy") {
  RuleConfig pointed = rule("customer-cards", {"payment_card", "email"}, Action::kRedact);
  pointed.pointers = {"/customers/*/card", "/owner"};
  auto engine = engineWith({pointed});
  json structured = {{"customers", json::array({{{"card", "4111111111111111"}, {"email", "x@example.com"}},
                                                {{"card", 4242424242424242ULL}}})},
                     {"owner", {{"mail", "boss@example.com"}}},
                     {"other", "5555555555554444"}};
  json result = {{"content", json::array({{{"type", "text"}, {"text", structured.dump()}},
                                          {{"type", "text"}, {"text", "unrelated 5105105105105100"}}})},
                 {"structuredContent", structured}};
  const Protection p = protect(*engine, result);
  const json& s = result["structuredContent"];
  CHECK(s["customers"][0]["card"] == "[REDACTED:payment_card]");
  CHECK(s["customers"][1]["card"] == "[REDACTED:payment_card]");
  CHECK(s["customers"][0]["email"] == "x@example.com");  // not under a pointer
  CHECK(s["owner"]["mail"] == "[REDACTED:email]");
  CHECK(s["other"] == "5555555555554444");
  const std::string echo = text0(result);
  CHECK(echo.find("4111111111111111") == std::string::npos);
  CHECK(echo.find("4242424242424242") == std::string::npos);
  CHECK(echo.find("boss@example.com") == std::string::npos);
  CHECK(echo.find("x@example.com") != std::string::npos);
  CHECK(echo.find("5555555555554444") != std::string::npos);
  CHECK(result["content"][1]["text"] == "unrelated 5105105105105100");  // pointer rules never scan text
  REQUIRE(p.findings.size() == 2);
}

TEST_CASE("dlp: pointer echo covers JSON-escaped values") {
  RuleConfig pointed = rule("keys", {"private_key"}, Action::kRedact);
  pointed.pointers = {"/key"};
  auto engine = engineWith({pointed});
  const std::string pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END PRIVATE KEY-----";
  json structured = {{"key", pem}};
  json result = {{"content", json::array({{{"type", "text"}, {"text", structured.dump()}}})},
                 {"structuredContent", structured}};
  protect(*engine, result);
  CHECK(result["structuredContent"]["key"] == "[REDACTED:private_key]");
  CHECK(text0(result) == R"({"key":"[REDACTED:private_key]"})");
}

TEST_CASE("dlp: embedded resources, resource reads and prompts") {
  auto engine = engineWith({rule("pii", {"email"}, Action::kRedact)});
  json tool = {
      {"content",
       json::array({{{"type", "resource"}, {"resource", {{"uri", "file:///a"}, {"text", "a@example.com"}}}},
                    {{"type", "resource"},
                     {"resource", {{"uri", "file:///b"}, {"blob", "YUBleGFtcGxlLmNvbQ=="}}}}})}};
  protect(*engine, tool);
  CHECK(tool["content"][0]["resource"]["text"] == "[REDACTED:email]");
  CHECK(tool["content"][1]["resource"]["blob"] == "YUBleGFtcGxlLmNvbQ==");  // binary is left alone

  json read = {{"contents", json::array({{{"uri", "file:///c"}, {"text", "to b@example.com"}}})}};
  protect(*engine, read, {"resource", "files", "file:///c", nullptr, "t"});
  CHECK(read["contents"][0]["text"] == "to [REDACTED:email]");

  json prompt = {
      {"description", "for c@example.com"},
      {"messages",
       json::array({{{"role", "user"}, {"content", {{"type", "text"}, {"text", "d@example.com"}}}},
                    {{"role", "user"},
                     {"content",
                      {{"type", "resource"}, {"resource", {{"uri", "x"}, {"text", "e@example.com"}}}}}}})}};
  const Protection p = protect(*engine, prompt, {"prompt", "files", "greet", nullptr, "t"});
  CHECK(prompt["description"] == "for [REDACTED:email]");
  CHECK(prompt["messages"][0]["content"]["text"] == "[REDACTED:email]");
  CHECK(prompt["messages"][1]["content"]["resource"]["text"] == "[REDACTED:email]");
  REQUIRE(p.findings.size() == 1);
  CHECK(p.findings[0].count == 3);
}

TEST_CASE("dlp: findings never carry the matched value") {
  auto engine = engineWith({rule("pii", {"*"})});
  json result = textResult("secret jane@example.com 4111111111111111");
  const Protection p = protect(*engine, result);
  for (const auto& f : p.findings) {
    CHECK(f.detector.find("jane") == std::string::npos);
    CHECK(f.rule.find("4111") == std::string::npos);
  }
}

TEST_CASE("dlp: the finding limit blocks huge results") {
  Settings settings;
  settings.rules = {rule("pii", {"email"})};
  settings.maxFindings = 10;
  auto engine = Engine::create(settings);
  REQUIRE(engine);
  std::string text;
  for (int i = 0; i < 20; ++i) text += "u" + std::to_string(i) + "@example.com ";
  json result = textResult(text);
  const Protection p = protect(**engine, result);
  REQUIRE(p.blockedBy);
  CHECK(*p.blockedBy == mcphost::dlp::kFindingLimit);
}

TEST_CASE("dlp: create reports configuration errors") {
  Settings s;
  s.rules = {rule("r1", {"nope"})};
  CHECK(createError(s).find("rule 'r1': unknown detector 'nope'") != std::string::npos);
  s.rules = {rule("r2", {"email"}, Action::kPseudonymize)};
  CHECK(createError(s).find("pseudonymKey") != std::string::npos);
  RuleConfig bad = rule("r3", {"email"});
  bad.pointers = {"customers/0"};
  s.rules = {bad};
  CHECK(createError(s).find("bad pointer") != std::string::npos);
  s.rules = {rule("dup", {"email"}), rule("dup", {"iban"})};
  CHECK(createError(s).find("duplicate") != std::string::npos);
  s.rules = {rule("r4", {})};
  CHECK(createError(s).find("no detectors") != std::string::npos);
  s.rules = {};
  s.detectors = {{"order", "(bad", ""}};
  CHECK(createError(s).find("detector 'order': invalid RE2 pattern") != std::string::npos);
  s.detectors = {{"order", "ORD-\\d+", "crc"}};
  CHECK(createError(s).find("unknown validator 'crc'") != std::string::npos);
  s.detectors = {{"email", "x+", ""}};
  CHECK(createError(s).find("already used") != std::string::npos);
}

TEST_CASE("dlp: custom detectors in rules") {
  Settings s;
  s.detectors = {{"order_id", R"(\bORD-\d{6}\b)", ""}, {"loyalty", R"(\b\d{12}\b)", "luhn"}};
  s.rules = {rule("orders", {"order_id", "loyalty"}, Action::kRedact)};
  auto engine = Engine::create(s);
  REQUIRE(engine);
  json result = textResult("ORD-123456 and 123456789012 and 123456789015");
  protect(**engine, result);
  // 123456789012 fails Luhn, 123456789015 passes.
  CHECK(text0(result) == "[REDACTED:order_id] and 123456789012 and [REDACTED:loyalty]");
}

TEST_CASE("dlp: empty engine and builtin names") {
  CHECK(engineWith({})->empty());
  CHECK_FALSE(engineWith({}, true)->empty());
  CHECK_FALSE(engineWith({rule("r", {"email"})})->empty());
  CHECK(Engine::builtinDetectorNames().size() == 9);
  json result = textResult("a@example.com");
  CHECK(protect(*engineWith({}), result).findings.empty());
}

TEST_CASE("dlp: inbound secret scan of tool arguments") {
  auto engine = engineWith({}, true);
  const json args = {{"query", "select 1"},
                     {"auth", {{"Authorization", "Bearer abc"}}},
                     {"db_password", "hunter2"},
                     {"apiKey", ""},
                     {"max_tokens", 100},
                     {"nested", json::array({"ok", "AKIAIOSFODNN7EXAMPLE"})},
                     {"headers", {{"x-api-key", "k"}, {"refreshToken", "r"}}}};
  const auto found = engine->findSecrets(args);
  std::vector<std::string> where;
  for (const auto& f : found) {
    where.push_back(f.detector + " " + f.pointer);
    CHECK(f.pointer.find("hunter2") == std::string::npos);
  }
  std::sort(where.begin(), where.end());
  CHECK(where == std::vector<std::string>{"api_key /nested/1", "secret_field /auth/Authorization",
                                          "secret_field /db_password", "secret_field /headers/refreshToken",
                                          "secret_field /headers/x-api-key"});
  CHECK(engineWith({})->findSecrets(args).empty());  // off unless configured
}

TEST_CASE("dlp: secret field names") {
  using mcphost::dlp::isSecretFieldName;
  for (const char* yes : {"password", "PASSWD", "client_secret", "api_key", "apikey", "X-Api-Key", "APIKey",
                          "authorization", "access_token", "refreshToken", "private_key"})
    CHECK(isSecretFieldName(yes));
  for (const char* no : {"max_tokens", "tokenizer", "name", "query", "keyword"})
    CHECK_FALSE(isSecretFieldName(no));
}

TEST_CASE("dlp: audit copy of arguments is redacted and bounded") {
  auto engine = engineWith({});
  json deep = "bottom";
  for (int i = 0; i < 40; ++i) deep = json::array({deep});
  const json args = {{"password", "hunter2"},          {"to", "jane@example.com"},
                     {"card", 4111111111111111ULL},    {"big", std::string(5000, 'x')},
                     {"list", json::array({1, 2, 3})}, {"deep", deep}};
  const json out = engine->redactForAudit(args);
  CHECK(out["password"] == "[REDACTED:secret_field]");
  CHECK(out["to"] == "[REDACTED:email]");
  CHECK(out["card"] == "[REDACTED:payment_card]");
  CHECK(out["big"].get<std::string>().size() < 1100);
  CHECK(out["big"].get<std::string>().find("[TRUNCATED:5000 bytes]") != std::string::npos);
  CHECK(out["list"] == json::array({1, 2, 3}));
  CHECK(out.dump().find("[TRUNCATED:depth]") != std::string::npos);
  CHECK(out.dump().find("hunter2") == std::string::npos);
}

TEST_CASE("dlp: protect is safe from several threads") {
  auto engine = engineWith({rule("pii", {"*"})});
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        json result = textResult("mail a@example.com card 4111111111111111 ip 10.1.2.3");
        protect(*engine, result);
        if (text0(result) == "mail *@******e.com card ************1111 ip **.*.*.*")
          ++ok[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ok == std::vector<int>(4, 200));
}

TEST_CASE("dlp: hostile nesting in structuredContent fails closed") {
  auto engine = engineWith({rule("pii", {"email"})});
  json deep = "a@example.com";
  for (int i = 0; i < 300; ++i) deep = json::array({deep});
  json result = {{"content", json::array()}, {"structuredContent", {{"x", deep}}}};
  CHECK_FALSE(protect(*engine, result).blockedBy);
  CHECK(result.dump().find("a@example.com") == std::string::npos);
  CHECK(result.dump().find("[REDACTED:depth]") != std::string::npos);
}

TEST_CASE("dlp: audit copy redacts a secret past the first KiB") {
  auto engine = engineWith({});
  const json args = {{"body", std::string(3000, 'x') + " AKIAIOSFODNN7EXAMPLE"}};
  CHECK(engine->redactForAudit(args)["body"] == "[REDACTED:api_key]");
}
