// Input validation, the inbound secret scan and DLP through the real host: arguments are
// checked before the connector runs, results are masked before the client sees them, and the
// policy decides who may see data unmasked.
#include <catch2/catch.hpp>
#include <regex>

#include "auth_test_support.hpp"

using namespace mcphost::test;

namespace {

const std::string kFaulty = faultyConnectorYaml("bad");

std::string toolText(const Json& reply) {
  const Json& content = reply["result"]["content"];
  return content.is_array() && !content.empty() ? content[0].value("text", "") : "";
}

bool isToolError(const Json& reply) {
  return reply.contains("result") && reply["result"].value("isError", false);
}

Json callTool(AuthSession& s, const std::string& name, const Json& arguments) {
  return s.result("tools/call", {{"name", name}, {"arguments", arguments}});
}

const char* kMaskEverything = R"(data_protection:
  pseudonym_key: {env: MCPHOST_TEST_PSEUDONYM_KEY}
  detectors:
    - {name: employee_id, pattern: 'EMP-[0-9]{6}'}
  rules:
    - name: block-keys
      detectors: [private_key]
      action: block
    - name: pseudonymize-customer-mail
      detectors: [email]
      action: pseudonymize
      connectors: [bad]
      pointers: [/customer/email]
    - name: redact-ssn
      detectors: [us_ssn, employee_id]
      action: redact
    - name: mask-rest
      detectors: ["*"]
      action: mask
)";

}  // namespace

TEST_CASE("validation: every keyword kind of the inputSchema is checked by the host", "[validation]") {
  HostProcess host("", "", false, kFaulty);
  AuthSession s(host, "");
  const Json valid = {{"count", 3}, {"name", "abc"}};
  CHECK(toolText(callTool(s, "bad__strict", valid)) == "valid");
  struct Case {
    Json change;  // merged into the valid arguments (null removes)
    std::string path;
    std::string rule;
  };
  const std::vector<Case> cases = {
      {{{"count", nullptr}}, "", "count"},
      {{{"count", "three"}}, "/count", "integer"},
      {{{"count", 0}}, "/count", ">= 1"},
      {{{"count", 11}}, "/count", "<= 10"},
      {{{"ratio", 0}}, "/ratio", "> 0"},
      {{{"ratio", 1}}, "/ratio", "< 1"},
      {{{"name", "a"}}, "/name", "at least 2"},
      {{{"name", "abcdefghij"}}, "/name", "at most 8"},
      {{{"name", "ABC"}}, "/name", "pattern"},
      {{{"mode", "slow"}}, "/mode", "one of"},
      {{{"version", 3}}, "/version", "2"},
      {{{"when", "yesterday"}}, "/when", "date-time"},
      {{{"tags", Json::array()}}, "/tags", "at least 1"},
      {{{"tags", {"a", "b", "c", "d"}}}, "/tags", "at most 3"},
      {{{"tags", {"a", "a"}}}, "/tags", "unique"},
      {{{"tags", {1}}}, "/tags/0", "string"},
      {{{"owner", Json::object()}}, "/owner", "id"},
      {{{"owner", {{"id", "x"}}}}, "/owner/id", "integer"},
      {{{"either", 1.5}}, "/either", "oneOf"},
      {{{"any", "x"}}, "/any", "anyOf"},
      {{{"not_zero", 0}}, "/not_zero", "not"},
      {{{"limits", Json::object()}}, "/limits", "at least 1"},
      {{{"limits", {{"a", 1}, {"b", 2}, {"c", 3}}}}, "/limits", "at most 2"},
      {{{"extra", true}}, "extra", ""},
  };
  for (const auto& c : cases) {
    Json args = valid;
    args.merge_patch(c.change);
    INFO("arguments " << args.dump());
    const Json reply = callTool(s, "bad__strict", args);
    REQUIRE(isToolError(reply));
    const std::string text = toolText(reply);
    INFO(text);
    CHECK(text.find("Invalid arguments for tool 'bad__strict'") != std::string::npos);
    CHECK(text.find(c.path) != std::string::npos);
    CHECK(text.find(c.rule) != std::string::npos);
    CHECK(reply["result"]["_meta"]["io.mcphost/refusal"]["reason"] == "invalid_arguments");
  }
  const auto metrics = host.request("GET", "/metrics", {{"Host", host.hostHeader()}});
  CHECK(metrics.body.find("mcphost_argument_refusals_total{reason=\"invalid_arguments\"} 24") !=
        std::string::npos);
}

TEST_CASE("validation: deeply nested and huge arguments never reach a connector", "[validation]") {
  HostProcess host("  max_body_bytes: 65536\n  max_json_depth: 32\n", "", false, kFaulty);
  AuthSession s(host, "");
  const std::string nested = std::string(40, '[') + "1" + std::string(40, ']');
  const std::string body = R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"bad__echo",)"
                           R"("arguments":{"structured":{"deep":)" +
                           nested + "}}}}";
  auto deep = host.request("POST", "/mcp",
                           {{"Host", host.hostHeader()},
                            {"Content-Type", "application/json"},
                            {"Accept", "application/json, text/event-stream"},
                            {"Mcp-Session-Id", s.id},
                            {"MCP-Protocol-Version", "2025-11-25"}},
                           body);
  CHECK(deep.status == 400);
  CHECK(deep.body.find("nesting exceeds the limit of 32") != std::string::npos);
  auto huge =
      s.send("tools/call", {{"name", "bad__echo"}, {"arguments", {{"text", std::string(70000, 'x')}}}});
  CHECK(huge.status == 413);
  // The host is still fine.
  CHECK(toolText(callTool(s, "bad__echo", {{"text", "still here"}})) == "still here");
}

TEST_CASE("secret scan: arguments that carry keys, tokens or passwords are refused", "[validation]") {
  HostProcess host("", "guard:\n  scan_secrets: true\n", false, kFaulty);
  AuthSession s(host, "");
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  const Json token = callTool(s, "bad__echo", {{"text", "use " + jwt + " please"}});
  REQUIRE(isToolError(token));
  CHECK(toolText(token).find("jwt at /text") != std::string::npos);
  CHECK(toolText(token).find(jwt) == std::string::npos);
  const Json password = callTool(s, "bad__echo", {{"structured", {{"db", {{"password", "hunter2"}}}}}});
  REQUIRE(isToolError(password));
  CHECK(toolText(password).find("/structured/db/password") != std::string::npos);
  const Json key = callTool(s, "bad__echo", {{"text", "AKIAIOSFODNN7EXAMPLE"}});
  CHECK(isToolError(key));
  CHECK(host.log().find("hunter2") == std::string::npos);
  CHECK(host.log().find(jwt) == std::string::npos);
  // Ordinary text passes.
  CHECK(toolText(callTool(s, "bad__echo", {{"text", "the password policy is 12 characters"}})) ==
        "the password policy is 12 characters");
}

TEST_CASE("dlp: results are masked in text, structured content, resources and prompts", "[dlp]") {
  ::setenv("MCPHOST_TEST_PSEUDONYM_KEY", "0123456789abcdef0123456789abcdef-test-key", 1);
  HostProcess host("", kMaskEverything, false, kFaulty);
  AuthSession s(host, "");
  const Json masked = callTool(
      s, "bad__echo",
      {{"text", "mail alice@example.com, card 4111 1111 1111 1111, order 4111111111111112, ssn 078-05-1120"},
       {"structured",
        {{"customer", {{"email", "bob@example.org"}, {"iban", "DE89370400440532013000"}}},
         {"wrong_iban", "DE00370400440532013000"},
         {"staff", "EMP-123456"}}}});
  REQUIRE(masked.contains("result"));
  const std::string text = toolText(masked);
  INFO(text);
  CHECK(text.find("alice@example.com") == std::string::npos);
  CHECK(text.find("4111 1111 1111 1111") == std::string::npos);
  CHECK(text.find("1111") != std::string::npos);                    // mask keeps the last four
  CHECK(text.find("order 4111111111111112") != std::string::npos);  // fails Luhn: not a card
  CHECK(text.find("078-05-1120") == std::string::npos);
  CHECK(text.find("[REDACTED:us_ssn]") != std::string::npos);
  const Json& structured = masked["result"]["structuredContent"];
  INFO(structured.dump());
  const std::string pseudonym = structured["customer"]["email"].get<std::string>();
  CHECK(pseudonym.rfind("email_", 0) == 0);
  CHECK(structured["customer"]["iban"] != "DE89370400440532013000");
  CHECK(structured["wrong_iban"] == "DE00370400440532013000");  // fails mod-97: not an IBAN
  CHECK(structured["staff"] == "[REDACTED:employee_id]");
  // Pseudonyms are stable: the same value maps to the same token on the next call.
  const Json again =
      callTool(s, "bad__echo", {{"structured", {{"customer", {{"email", "bob@example.org"}}}}}});
  CHECK(again["result"]["structuredContent"]["customer"]["email"] == pseudonym);

  const Json resource = s.result("resources/read", {{"uri", "test://template/carol@example.com/data"}});
  REQUIRE(resource.contains("result"));
  // The text is masked; the URI is the client's own request and stays as sent.
  CHECK(resource["result"]["contents"][0]["text"].get<std::string>().find("carol@example.com") ==
        std::string::npos);
  const Json prompt =
      s.result("prompts/get", {{"name", "test_prompt_with_arguments"},
                               {"arguments", {{"arg1", "dave@example.com"}, {"arg2", "+1 415-555-0100"}}}});
  REQUIRE(prompt.contains("result"));
  CHECK(prompt.dump().find("dave@example.com") == std::string::npos);
  CHECK(prompt.dump().find("415-555-0100") == std::string::npos);

  const Json blocked = callTool(s, "bad__echo",
                                {{"text",
                                  "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
                                  "-----END PRIVATE KEY-----"}});
  REQUIRE(isToolError(blocked));
  CHECK(toolText(blocked).find("block-keys") != std::string::npos);
  CHECK(toolText(blocked).find("MIIEvQ") == std::string::npos);

  const auto metrics = host.request("GET", "/metrics", {{"Host", host.hostHeader()}});
  CHECK(metrics.body.find("mcphost_dlp_findings_total{detector=\"email\",action=\"mask\"}") !=
        std::string::npos);
  CHECK(metrics.body.find("mcphost_dlp_findings_total{detector=\"email\",action=\"pseudonymize\"}") !=
        std::string::npos);
  CHECK(host.log().find("alice@example.com") == std::string::npos);
}

TEST_CASE("dlp: the policy decides who sees data unmasked", "[dlp]") {
  const std::string dir = makeTempDir();
  const std::string policyPath = dir + "/policy.yaml";
  writeFile(policyPath, R"(version: 1
rules:
  - id: everyone-echo
    effect: allow
    actions: [tools/call]
    targets: {names: ["bad__echo"]}
  - id: dpo-sees-mail
    effect: allow
    subjects: {groups: [dpo]}
    actions: [unmask]
    conditions: {when: 'args.rule == "mask-mail"'}
)");
  HostProcess host(
      "",
      "state_dir: " + dir + "/state\nauth:\n  api_keys: {enabled: true}\npolicy: " + policyPath +
          "\ndata_protection:\n  rules:\n    - {name: mask-mail, detectors: [email], action: mask}\n"
          "    - {name: mask-phone, detectors: [phone], action: mask}\n",
      false, kFaulty);
  auto keyFor = [&](const std::string& name, const std::string& groups) {
    auto c =
        runHost({"keys", "create", "--config", host.configPath(), "--name", name, "--groups", groups}, dir);
    REQUIRE(c.code == 0);
    std::smatch m;
    static const std::regex kKey("(mcph_[A-Za-z0-9]+_[A-Za-z0-9_-]+)");
    REQUIRE(std::regex_search(c.out, m, kKey));
    return "Bearer " + m[1].str();
  };
  AuthSession dpo(host, keyFor("dpo-agent", "dpo"));
  AuthSession analyst(host, keyFor("analyst-agent", "analysts"));
  const Json args = {{"text", "erin@example.com +1 415-555-0100"}};
  const std::string seenByDpo = toolText(callTool(dpo, "bad__echo", args));
  const std::string seenByAnalyst = toolText(callTool(analyst, "bad__echo", args));
  CHECK(seenByDpo.find("erin@example.com") != std::string::npos);  // unmask granted for mask-mail
  CHECK(seenByDpo.find("415-555-0100") == std::string::npos);      // but not for mask-phone
  CHECK(seenByAnalyst.find("erin@example.com") == std::string::npos);
  std::system(("rm -rf " + dir).c_str());
}
