// Policy: decisions, visibility, explain, the loader's errors and PolicyStore reloads.
#include "policy/policy.hpp"

#include <unistd.h>

#include <bit>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "policy/policy_model.hpp"

using mcphost::auth::Principal;
using namespace mcphost::policy;
using nlohmann::json;

namespace {

std::shared_ptr<const Policy> load(const std::string& yaml) {
  auto policy = Policy::parse(yaml, "test.yaml");
  if (!policy) FAIL(policy.error());
  return *policy;
}

std::string loadError(const std::string& yaml) {
  auto policy = Policy::parse(yaml, "policy.yaml");
  INFO(yaml);
  REQUIRE_FALSE(policy);
  return policy.error();
}

Principal person(std::string subject, std::vector<std::string> groups = {}) {
  Principal p;
  p.subject = std::move(subject);
  p.authMethod = "jwt";
  p.groups = std::move(groups);
  p.sourceIp = "10.1.2.3";
  return p;
}

// 2024-03-04 was a Monday.
std::chrono::system_clock::time_point at(int day, int hour, int minute = 0) {
  using namespace std::chrono;
  return sys_days{year{2024} / March / day} + hours{hour} + minutes{minute};
}

// One request; the defaults describe alice calling hr__query on connector hr.
struct Request {
  Action action = Action::kCallTool;
  std::string kind = "tool";
  std::string connector = "hr";
  std::string name = "hr__query";
  std::optional<json> annotations;
  std::optional<std::vector<std::string>> tags;
  std::optional<json> args = json::object();
  std::chrono::system_clock::time_point now = at(4, 10);

  Facts facts(const Principal& p) const {
    return Facts{
        p, action,
        Target{kind, connector, name, annotations ? &*annotations : nullptr, tags ? &*tags : nullptr},
        args ? &*args : nullptr, now};
  }
};

Decision decide(const Policy& policy, const Principal& p, const Request& r = {}) {
  return policy.decide(r.facts(p));
}
bool allowed(const Policy& policy, const Principal& p, const Request& r = {}) {
  return decide(policy, p, r).allowed;
}

std::string rule(const std::string& id, const std::string& effect, const std::string& body) {
  return "  - id: " + id + "\n    effect: " + effect + "\n" + body;
}

}  // namespace

TEST_CASE("policy: allow, deny and default deny", "[policy]") {
  const auto policy =
      load("version: 1\nrules:\n" +
           rule("hr-read", "allow", "    actions: [tools/call]\n    subjects: {groups: [hr]}\n") +
           rule("no-delete", "deny", "    actions: [tools/call]\n    targets: {names: [hr__delete]}\n"));
  CHECK(policy->ruleCount() == 2);
  CHECK(policy->source() == "test.yaml");
  const Principal alice = person("alice", {"hr"});
  const Decision allow = decide(*policy, alice);
  CHECK(allow.allowed);
  CHECK(allow.ruleId == "hr-read");
  CHECK(allow.reason == "allowed by rule 'hr-read' (effect allow)");

  Request del;
  del.name = "hr__delete";
  const Decision deny = decide(*policy, alice, del);
  CHECK_FALSE(deny.allowed);
  CHECK(deny.ruleId == "no-delete");
  CHECK(deny.reason == "denied by rule 'no-delete' (effect deny)");

  const Decision none = decide(*policy, person("bob", {"eng"}));
  CHECK_FALSE(none.allowed);
  CHECK(none.ruleId.empty());
  CHECK(none.reason == "no rule allows tools/call on hr__query for bob (default deny)");

  CHECK_FALSE(allowed(*load("version: 1\nrules: []\n"), alice));
}

TEST_CASE("policy: deny overrides allow regardless of order, the first deny is reported", "[policy]") {
  const auto policy = load("version: 1\nrules:\n" + rule("deny-a", "deny", "    actions: \"*\"\n") +
                           rule("allow-all", "allow", "    actions: \"*\"\n") +
                           rule("deny-b", "deny", "    actions: \"*\"\n"));
  const Decision d = decide(*policy, person("alice"));
  CHECK_FALSE(d.allowed);
  CHECK(d.ruleId == "deny-a");
}

TEST_CASE("policy: subject matchers", "[policy]") {
  auto only = [](const std::string& subjects) {
    return load("version: 1\nrules:\n" +
                rule("r", "allow", "    actions: \"*\"\n    subjects: " + subjects + "\n"));
  };
  Principal p = person("svc-backup", {"ops"});
  p.roles = {"operator"};
  p.scopes = {"mcp:tools", "mcp:read"};
  p.tenant = "acme";
  p.attributes = {{"department", "hr"}, {"level", 3}, {"amr", {"pwd", "mfa"}}};

  CHECK(allowed(*only("{users: [alice, \"svc-*\"]}"), p));
  CHECK_FALSE(allowed(*only("{users: [alice]}"), p));
  CHECK(allowed(*only("{groups: [hr, ops]}"), p));
  CHECK_FALSE(allowed(*only("{groups: [hr]}"), p));
  CHECK(allowed(*only("{groups: [\"o?s\"]}"), p));
  CHECK(allowed(*only("{roles: [operator]}"), p));
  CHECK_FALSE(allowed(*only("{roles: [admin]}"), p));
  CHECK(allowed(*only("{auth_methods: [ldap, jwt]}"), p));
  CHECK_FALSE(allowed(*only("{auth_methods: [mtls]}"), p));
  CHECK(allowed(*only("{tenants: [acme]}"), p));
  CHECK_FALSE(allowed(*only("{tenants: [globex]}"), p));
  CHECK(allowed(*only("{scopes: [\"mcp:tools\"]}"), p));
  CHECK_FALSE(allowed(*only("{scopes: [\"mcp:admin\"]}"), p));
  CHECK(allowed(*only("{claims: {department: hr, level: [3, 4]}}"), p));
  CHECK_FALSE(allowed(*only("{claims: {level: \"3\"}}"), p));  // a string is not the number 3
  CHECK_FALSE(allowed(*only("{claims: {department: eng}}"), p));
  CHECK_FALSE(allowed(*only("{claims: {missing: x}}"), p));
  CHECK(allowed(*only("{claims: {amr: mfa}}"), p));  // any element of an array claim
  // All given matchers must hold.
  CHECK_FALSE(allowed(*only("{groups: [ops], tenants: [globex]}"), p));
  CHECK(allowed(*only("{groups: [ops], tenants: [acme], users: [\"*\"]}"), p));
}

TEST_CASE("policy: glob matching", "[policy]") {
  using detail::globMatch;
  CHECK(globMatch("*", ""));
  CHECK(globMatch("svc-*", "svc-backup"));
  CHECK_FALSE(globMatch("svc-*", "user-svc-x"));
  CHECK(globMatch("*__query*", "hr__query_people"));
  CHECK(globMatch("a*b*c", "aXXbYYbZc"));
  CHECK_FALSE(globMatch("a*b*c", "aXXbYYbZ"));
  CHECK(globMatch("h?__*", "hr__x"));
  CHECK_FALSE(globMatch("h?", "h"));
  CHECK(globMatch("**a", "bba"));
  CHECK_FALSE(globMatch("exact", "exactly"));

  detail::NameMatcher m;
  CHECK(m.matches("anything"));  // unconfigured: no restriction
  m.add("lab-*");
  m.add("lab-x");
  m.add("lib?");
  m.finish();
  CHECK(m.literalPrefix() == "l");
  CHECK(m.matches("lib1"));
  CHECK(m.matches("lab-x"));
  CHECK_FALSE(m.matches("lab"));
  CHECK(m.describe() == "[lab-*, lab-x, lib?]");
  detail::NameMatcher any;
  any.add("*");
  any.finish();
  CHECK(any.literalPrefix().empty());
  CHECK(any.matches(""));

  // The Bloom bits that pre-filter exact subject lists must spread similar names.
  std::uint64_t bits = 0;
  for (int i = 0; i < 40; ++i) bits |= detail::nameBit("g" + std::to_string(i));
  CHECK(std::popcount(bits) >= 20);
}

TEST_CASE("policy: actions", "[policy]") {
  const auto policy =
      load("version: 1\nrules:\n" + rule("read", "allow", "    actions: [resources/read, prompts/get]\n"));
  const Principal p = person("alice");
  Request r;
  CHECK_FALSE(allowed(*policy, p, r));
  r.action = Action::kReadResource;
  CHECK(allowed(*policy, p, r));
  r.action = Action::kGetPrompt;
  CHECK(allowed(*policy, p, r));
  r.action = Action::kComplete;
  CHECK_FALSE(allowed(*policy, p, r));
  r.action = static_cast<Action>(3);  // not a single action
  CHECK_FALSE(allowed(*policy, p, r));
  for (const Action a :
       {Action::kList, Action::kCallTool, Action::kReadResource, Action::kGetPrompt, Action::kComplete})
    CHECK(parseAction(actionName(a)) == a);
  CHECK_FALSE(parseAction("tools/list"));
}

TEST_CASE("policy: annotations (with MCP defaults) and tags", "[policy]") {
  const auto policy = load(
      "version: 1\nrules:\n" +
      rule("read-only", "allow", "    actions: \"*\"\n    targets: {annotations: {readOnlyHint: true}}\n") +
      rule("no-destroy", "deny",
           "    actions: \"*\"\n    targets: {annotations: {destructiveHint: true}}\n") +
      rule("no-pii", "deny", "    actions: \"*\"\n    targets: {tags: [pii, secret]}\n"));
  const Principal p = person("alice");
  Request r;
  r.annotations = json{{"readOnlyHint", true}, {"destructiveHint", false}};
  CHECK(allowed(*policy, p, r));
  r.tags = std::vector<std::string>{"finance", "pii"};
  CHECK(decide(*policy, p, r).ruleId == "no-pii");
  r.tags = std::vector<std::string>{"finance"};
  CHECK(allowed(*policy, p, r));
  r.annotations = json{{"readOnlyHint", true}};  // destructiveHint absent: MCP says true
  CHECK(decide(*policy, p, r).ruleId == "no-destroy");
  r.annotations.reset();
  CHECK(decide(*policy, p, r).ruleId == "no-destroy");
  r.annotations = json{{"readOnlyHint", "true"}, {"destructiveHint", false}};  // a string is not true
  CHECK_FALSE(allowed(*policy, p, r));
  // Resources have no annotations: neither the allow nor the deny applies.
  Request resource;
  resource.action = Action::kReadResource;
  resource.kind = "resource";
  resource.name = "hr://employees/1";
  CHECK(decide(*policy, p, resource).ruleId.empty());
}

TEST_CASE("policy: time windows, days, offsets and wrap past midnight", "[policy]") {
  const auto office =
      load("version: 1\nrules:\n" + rule("office", "allow",
                                         "    actions: \"*\"\n    conditions:\n      time: {days: [mon-fri], "
                                         "from: \"08:00\", to: \"18:00\", timezone: UTC}\n"));
  const Principal p = person("alice");
  Request r;
  r.now = at(4, 10);
  CHECK(allowed(*office, p, r));
  r.now = at(4, 8, 0);
  CHECK(allowed(*office, p, r));
  r.now = at(4, 7, 59);
  CHECK_FALSE(allowed(*office, p, r));
  r.now = at(4, 18, 0);  // `to` is exclusive
  CHECK_FALSE(allowed(*office, p, r));
  r.now = at(9, 10);  // Saturday
  CHECK_FALSE(allowed(*office, p, r));

  const auto shifted =
      load("version: 1\nrules:\n" + rule("berlin", "allow",
                                         "    actions: \"*\"\n    conditions:\n      time: {from: \"08:00\", "
                                         "to: \"18:00\", timezone: \"+02:00\"}\n"));
  r.now = at(4, 6, 30);  // 08:30 at +02:00
  CHECK(allowed(*shifted, p, r));
  r.now = at(4, 16, 0);  // 18:00 at +02:00
  CHECK_FALSE(allowed(*shifted, p, r));

  const auto night = load("version: 1\nrules:\n" +
                          rule("night", "allow",
                               "    actions: \"*\"\n    conditions:\n      time:\n        - {days: [fri], "
                               "from: \"22:00\", to: \"06:00\"}\n        - {days: [sun]}\n"));
  r.now = at(8, 23);  // Friday 23:00
  CHECK(allowed(*night, p, r));
  r.now = at(9, 3);  // Saturday 03:00 belongs to Friday's window
  CHECK(allowed(*night, p, r));
  r.now = at(9, 6);  // Saturday 06:00: over
  CHECK_FALSE(allowed(*night, p, r));
  r.now = at(8, 3);  // Friday 03:00 belongs to Thursday: no window
  CHECK_FALSE(allowed(*night, p, r));
  r.now = at(10, 13);  // Sunday, whole day
  CHECK(allowed(*night, p, r));
  r.now = at(11, 3);  // Monday 03:00 (Sunday's window is not wrapping)
  CHECK_FALSE(allowed(*night, p, r));
}

TEST_CASE("policy: source CIDR, IPv4 and IPv6", "[policy]") {
  const auto policy = load(
      "version: 1\nrules:\n" +
      rule("office", "allow",
           "    actions: \"*\"\n    conditions:\n      source_cidr: [10.0.0.0/8, 192.0.2.7, \"::1/128\", "
           "\"fd00::/8\"]\n"));
  Principal p = person("alice");
  auto from = [&](const std::string& ip) {
    p.sourceIp = ip;
    return allowed(*policy, p);
  };
  CHECK(from("10.1.2.3"));
  CHECK(from("10.255.255.255"));
  CHECK_FALSE(from("11.0.0.1"));
  CHECK(from("192.0.2.7"));
  CHECK_FALSE(from("192.0.2.8"));
  CHECK(from("::1"));
  CHECK(from("[::1]"));
  CHECK(from("::ffff:10.9.8.7"));  // IPv4-mapped counts as IPv4
  CHECK(from("fd12:3456::1"));
  CHECK_FALSE(from("fe80::1"));
  CHECK_FALSE(from(""));
  CHECK_FALSE(from("not-an-ip"));
  const auto everyone =
      load("version: 1\nrules:\n" +
           rule("any", "allow", "    actions: \"*\"\n    conditions: {source_cidr: [0.0.0.0/0]}\n"));
  p.sourceIp = "203.0.113.9";
  CHECK(allowed(*everyone, p));
}

TEST_CASE("policy: when predicates over arguments", "[policy]") {
  const auto policy =
      load("version: 1\nrules:\n" +
           rule("pay", "allow",
                "    actions: [tools/call]\n    conditions:\n      when: \"args.amount <= 1000 && "
                "args.currency == 'EUR'\"\n") +
           rule("confirm", "deny",
                "    actions: [tools/call]\n    targets: {names: [\"prod__*\"]}\n    conditions: {when: "
                "\"args.confirm != true\"}\n"));
  const Principal p = person("alice");
  Request r;
  r.args = json{{"amount", 1000}, {"currency", "EUR"}};
  CHECK(allowed(*policy, p, r));
  r.args = json{{"amount", 1001}, {"currency", "EUR"}};
  CHECK_FALSE(allowed(*policy, p, r));
  r.args = json{{"amount", 10}, {"currency", "USD"}};
  CHECK_FALSE(allowed(*policy, p, r));
  r.args = json{{"amount", "10"}, {"currency", "EUR"}};  // a string amount never compares
  CHECK_FALSE(allowed(*policy, p, r));
  r.args = json::object();  // missing arguments are null
  CHECK_FALSE(allowed(*policy, p, r));
  r.args.reset();  // not known at all: the allow cannot match
  CHECK(decide(*policy, p, r).reason.find("default deny") != std::string::npos);

  r.name = "prod__write";
  r.args = json{{"amount", 5}, {"currency", "EUR"}, {"confirm", true}};
  CHECK(allowed(*policy, p, r));
  r.args = json{{"amount", 5}, {"currency", "EUR"}};
  CHECK(decide(*policy, p, r).ruleId == "confirm");
  r.args.reset();  // a deny that needs unknown arguments fails closed
  const Decision d = decide(*policy, p, r);
  CHECK_FALSE(d.allowed);
  CHECK(d.ruleId == "confirm");
  CHECK(d.reason.find("needs the call's arguments") != std::string::npos);
}

TEST_CASE("policy: connector index with exact and glob connectors", "[policy]") {
  std::string yaml = "version: 1\nrules:\n";
  for (int i = 0; i < 50; ++i) {
    yaml += rule("c" + std::to_string(i), "allow",
                 "    actions: [tools/call]\n    targets: {connectors: [conn" + std::to_string(i) +
                     "]}\n    subjects: {groups: [g" + std::to_string(i) + "]}\n");
  }
  yaml += rule("globbed", "allow", "    actions: [tools/call]\n    targets: {connectors: [\"lab-*\"]}\n");
  yaml +=
      rule("mixed", "allow", "    actions: [tools/call]\n    targets: {connectors: [\"lib-?\", other]}\n");
  yaml +=
      rule("deny-lab-x", "deny", "    actions: [tools/call]\n    targets: {connectors: [lab-x, conn7]}\n");
  const auto policy = load(yaml);
  Request r;
  r.connector = "conn7";
  CHECK(decide(*policy, person("a", {"g7"}), r).ruleId == "deny-lab-x");
  r.connector = "conn8";
  CHECK(decide(*policy, person("a", {"g8"}), r).ruleId == "c8");
  CHECK_FALSE(allowed(*policy, person("a", {"g9"}), r));
  r.connector = "lab-y";
  CHECK(decide(*policy, person("a"), r).ruleId == "globbed");
  r.connector = "lab-x";
  CHECK(decide(*policy, person("a"), r).ruleId == "deny-lab-x");
  r.connector = "lib-1";
  CHECK(decide(*policy, person("a"), r).ruleId == "mixed");
  r.connector = "other";
  CHECK(decide(*policy, person("a"), r).ruleId == "mixed");
  r.connector = "elsewhere";
  CHECK_FALSE(allowed(*policy, person("a", {"g1"}), r));
}

TEST_CASE("policy: visible() hides what may not be called", "[policy]") {
  const auto policy = load(
      "version: 1\nrules:\n" +
      rule("hr", "allow", "    actions: [tools/call]\n    subjects: {groups: [hr]}\n") +
      rule("pay", "allow",
           "    actions: [tools/call]\n    subjects: {groups: [fin]}\n    conditions: {when: \"args.amount "
           "<= 1000\"}\n") +
      rule("confirm", "deny",
           "    actions: [tools/call]\n    targets: {names: [\"*__write\"]}\n    conditions: {when: "
           "\"args.confirm != true\"}\n") +
      rule("no-drop", "deny", "    actions: [tools/call]\n    targets: {names: [\"*__drop\"]}\n"));
  Request listing;
  listing.args.reset();
  auto visible = [&](const Principal& p, const std::string& name) {
    listing.name = name;
    return policy->visible(listing.facts(p));
  };
  CHECK(visible(person("alice", {"hr"}), "hr__query"));
  CHECK_FALSE(visible(person("bob", {"eng"}), "hr__query"));
  CHECK(visible(person("carol", {"fin"}), "hr__query"));      // an allow that needs arguments could match
  CHECK(visible(person("alice", {"hr"}), "hr__write"));       // a deny that needs arguments does not hide
  CHECK_FALSE(visible(person("alice", {"hr"}), "hr__drop"));  // a deny that surely matches hides
  CHECK(Policy::allowAll()->visible(listing.facts(person("x"))));
}

TEST_CASE("policy: visible() with explicit list rules", "[policy]") {
  const auto policy =
      load("version: 1\nrules:\n" + rule("call", "allow", "    actions: [tools/call]\n") +
           rule("list-hr", "allow", "    actions: [list]\n    subjects: {groups: [hr]}\n") +
           rule("hide-secret", "deny", "    actions: [list]\n    targets: {names: [\"*secret*\"]}\n"));
  Request listing;
  listing.args.reset();
  const Principal hr = person("alice", {"hr"});
  const Principal eng = person("bob", {"eng"});
  CHECK(policy->visible(listing.facts(hr)));
  // The call permission makes an item visible; an allow for list alone adds nothing, so a
  // catch-all deny rule with actions ['*'] does not hide everything that has no list allow.
  CHECK(policy->visible(listing.facts(eng)));
  listing.name = "hr__secret_salaries";
  CHECK_FALSE(policy->visible(listing.facts(hr)));  // a list deny hides
  CHECK_FALSE(policy->visible(listing.facts(eng)));
  // Without any list rule, the call permission alone makes an item visible.
  const auto implicitList =
      load("version: 1\nrules:\n" + rule("call", "allow", "    actions: [tools/call]\n"));
  CHECK(implicitList->visible(listing.facts(eng)));
}

TEST_CASE("policy: explain names the deciding rule and why others did not match", "[policy]") {
  const auto policy = load(
      "version: 1\nrules:\n" +
      rule("hr-read", "allow", "    actions: [tools/call]\n    subjects: {groups: [hr]}\n") +
      rule("lists", "allow", "    actions: [list]\n") +
      rule("office", "deny", "    actions: [tools/call]\n    conditions: {source_cidr: [192.168.0.0/16]}\n") +
      rule("pay", "allow", "    actions: [tools/call]\n    conditions: {when: \"args.amount < 5\"}\n"));
  Decision d;
  const auto lines = policy->explain(Request{}.facts(person("alice", {"hr"})), &d);
  REQUIRE(lines.size() == 5);
  CHECK(d.allowed);
  CHECK(d.ruleId == "hr-read");
  CHECK(lines[0] == "allowed: allowed by rule 'hr-read' (effect allow)");
  CHECK(lines[1] == "rule 'hr-read' (allow, line 3): matched -> decides");
  CHECK(lines[2] == "rule 'lists' (allow, line 7): no match: actions: tools/call is not in [list]");
  CHECK(lines[3].find("no match: conditions.source_cidr: '10.1.2.3' is not in [192.168.0.0/16]") !=
        std::string::npos);
  CHECK(lines[4].find("no match: conditions.when: false: args.amount < 5") != std::string::npos);

  const auto bob = policy->explain(Request{}.facts(person("bob", {"eng"})), &d);
  CHECK_FALSE(d.allowed);
  CHECK(bob[0] == "denied: no rule allows tools/call on hr__query for bob (default deny)");
  CHECK(bob[1].find("subjects.groups: none of [eng] is in [hr]") != std::string::npos);

  Decision all;
  const auto open = Policy::allowAll()->explain(Request{}.facts(person("x")), &all);
  CHECK(all.allowed);
  CHECK(all.ruleId == "allow-all");
  REQUIRE(open.size() == 1);
  CHECK(open[0].find("allow-all") != std::string::npos);
}

TEST_CASE("policy: loader errors carry FILE:LINE and the key", "[policy]") {
  const std::string head = "version: 1\nrules:\n  - id: r\n    effect: allow\n    actions: [tools/call]\n";
  CHECK(loadError("version: 1\nrules: []\nextra: 1\n") ==
        "policy.yaml:3: extra: unknown key (known keys: rules, version)");
  CHECK(loadError(head + "    priority: 3\n")
            .find("policy.yaml:6: rules[0].priority: unknown key (known keys:") == 0);
  CHECK(loadError(head + "    subjects:\n      user: [a]\n")
            .find("policy.yaml:7: rules[0].subjects.user: unknown key") == 0);
  CHECK(loadError(head + "    targets:\n      connector: [a]\n")
            .find("policy.yaml:7: rules[0].targets.connector: unknown key") == 0);
  CHECK(loadError(head + "    conditions:\n      cidr: [10.0.0.0/8]\n")
            .find("policy.yaml:7: rules[0].conditions.cidr: unknown key") == 0);
  CHECK(loadError(head + "    conditions:\n      time: {from: \"08:00\", to: \"09:00\", tz: UTC}\n")
            .find("policy.yaml:7: rules[0].conditions.time.tz: unknown key") == 0);
  CHECK(loadError("version: 1\nrules:\n  - id: r\n    effect: permit\n    actions: [list]\n") ==
        "policy.yaml:4: rules[0].effect: must be allow or deny");
  CHECK(loadError(head + "  - id: r\n    effect: deny\n    actions: [list]\n") ==
        "policy.yaml:6: rules[1].id: duplicate id 'r' (first used on line 3)");
  CHECK(loadError("version: 1\nrules:\n  - id: r\n    effect: allow\n    actions: [tools/list]\n")
            .find("policy.yaml:5: rules[0].actions: unknown action 'tools/list'") == 0);
  CHECK(loadError(head + "    conditions:\n      source_cidr: [10.0.0.0/33]\n")
            .find("policy.yaml:7: rules[0].conditions.source_cidr: '10.0.0.0/33': the prefix length must be "
                  "0-32") == 0);
  CHECK(loadError(head + "    conditions:\n      source_cidr: [10.1.0.0/8]\n")
            .find("did you mean 10.0.0.0/8?") != std::string::npos);
  CHECK(loadError(head + "    conditions:\n      source_cidr: [\"10.0.0.300\"]\n").find("policy.yaml:7:") ==
        0);
  CHECK(loadError(head + "    conditions:\n      time: {from: \"25:00\", to: \"26:00\"}\n")
            .find("policy.yaml:7: rules[0].conditions.time.from: expected a time of day HH:MM") == 0);
  CHECK(loadError(head + "    conditions:\n      time: {days: [mon, funday]}\n")
            .find("policy.yaml:7: rules[0].conditions.time.days: 'funday' is not a day") == 0);
  CHECK(loadError(head + "    conditions:\n      time: {timezone: Europe/Berlin}\n")
            .find("rules[0].conditions.time.timezone: expected UTC or a fixed offset") != std::string::npos);
  CHECK(loadError(head + "    conditions:\n      time: {from: \"08:00\"}\n").find("set both from and to") !=
        std::string::npos);
  CHECK(loadError(head + "    conditions:\n      when: \"args.amount <= \"\n") ==
        "policy.yaml:7: rules[0].conditions.when: column 16: expected a value after '<='");
  CHECK(loadError(
            "version: 1\nrules:\n  - id: r\n    effect: allow\n    actions: [list]\n    conditions: {when: "
            "\"args.x == 1\"}\n")
            .find("refers to args, but none of this rule's actions carries arguments") != std::string::npos);
  CHECK(loadError(head + "    subjects:\n      groups: hr\n") ==
        "policy.yaml:7: rules[0].subjects.groups: expected a list, e.g. [a, b]");
  CHECK(loadError(head + "    subjects:\n      groups: []\n").find("empty list") != std::string::npos);
  CHECK(loadError("version: 1\nrules: {id: r}\n") == "policy.yaml:2: rules: expected a list of rules");
  CHECK(loadError("version: 1\nrules:\n  - id: r\n    effect: allow\n    actions: tools/call\n") ==
        "policy.yaml:5: rules[0].actions: expected a list, e.g. [a, b]");
  CHECK(
      loadError(head + "    subjects:\n      auth_methods: [kerberos]\n").find("'kerberos' is not one of") !=
      std::string::npos);
  CHECK(loadError(head + "    effect: deny\n") == "policy.yaml:6: rules[0].effect: given twice");
  CHECK(loadError("version: 1\nrules:\n  - effect: allow\n    actions: [list]\n") ==
        "policy.yaml:3: rules[0].id: required (a unique name such as hr-read)");
  CHECK(loadError("version: 1\nrules:\n  - id: r\n    effect: allow\n")
            .find("policy.yaml:3: rules[0].actions: required") == 0);
  CHECK(loadError("version: 1\nrules:\n  - id: \"bad id\"\n    effect: allow\n    actions: [list]\n")
            .find("policy.yaml:3: rules[0].id: must be") == 0);
  CHECK(loadError("rules: []\n") == "policy.yaml:1: version: required (use version: 1)");
  CHECK(loadError("version: 2\nrules: []\n").find("policy.yaml:1: version: unsupported version") == 0);
  CHECK(loadError("version: 1\n") ==
        "policy.yaml:1: rules: required (a list of rules; everything not allowed is denied)");
  CHECK(loadError("") == "policy.yaml: the policy is empty (expected version: 1 and a list of rules)");
  CHECK(loadError("# only a comment\n") ==
        "policy.yaml: the policy is empty (expected version: 1 and a list of rules)");
  CHECK(loadError("version: 1\nrules: [\n  - id: x\n").find("policy.yaml:") == 0);
  CHECK(loadError("version: 1\nrules:\n  - id: r\n   effect: [allow\n").find("invalid YAML") !=
        std::string::npos);
  CHECK(loadError("- just\n- a list\n") == "policy.yaml:1: (top level): expected a mapping");
  CHECK(loadError(head + "    targets:\n      annotations: {readOnlyHint: [true]}\n")
            .find("rules[0].targets.annotations.readOnlyHint: expected a scalar") != std::string::npos);
  CHECK(loadError(head + "    subjects:\n      claims: {level: {a: 1}}\n")
            .find("rules[0].subjects.claims.level:") != std::string::npos);
  CHECK(loadError(head + "    targets:\n      kinds: [tools]\n").find("'tools' is not one of") !=
        std::string::npos);
}

TEST_CASE("policy: the documented example loads and decides", "[policy]") {
  auto policy = Policy::loadFile(std::string(MCPHOST_SOURCE_DIR) + "/config/policy.example.yaml");
  if (!policy) FAIL(policy.error());
  CHECK((*policy)->ruleCount() == 7);
  Principal clerk = person("carol");
  clerk.roles = {"payments-clerk"};
  clerk.tenant = "acme";
  Request pay;
  pay.connector = "erp";
  pay.name = "erp__pay_invoice";
  pay.annotations = json{{"destructiveHint", false}};
  pay.args = json{{"amount", 900}, {"currency", "EUR"}};
  CHECK(decide(**policy, clerk, pay).ruleId == "finance-payments");
  pay.args = json{{"amount", 1001}, {"currency", "EUR"}};
  CHECK_FALSE(allowed(**policy, clerk, pay));
  CHECK_FALSE(Policy::loadFile("/nonexistent/policy.yaml"));
}

TEST_CASE("policy: PolicyStore reloads, keeps the old policy on errors, watches the file", "[policy]") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("mcphost-policy-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "policy.yaml").string();
  auto write = [&](const std::string& text) { std::ofstream(path, std::ios::trunc) << text; };
  write("version: 1\nrules:\n" + rule("everyone", "allow", "    actions: \"*\"\n"));
  auto first = Policy::loadFile(path);
  REQUIRE(first);
  PolicyStore store(path, *first);
  CHECK(store.path() == path);
  CHECK_FALSE(store.changedOnDisk());
  const Principal p = person("alice");
  CHECK(allowed(*store.current(), p));

  write("version: 1\nrules:\n  - id: broken\n    effect: maybe\n    actions: \"*\"\n");
  CHECK(store.changedOnDisk());
  const auto error = store.reload();
  REQUIRE(error);
  CHECK(error->find(path + ":4: rules[0].effect: must be allow or deny") == 0);
  CHECK(store.current() == *first);    // the old policy stays in force
  CHECK_FALSE(store.changedOnDisk());  // a failed attempt counts: no retry until the next edit

  write("version: 1\nrules:\n" + rule("nobody", "deny", "    actions: \"*\"\n") + "# now valid\n");
  CHECK(store.changedOnDisk());
  CHECK_FALSE(store.reload());
  CHECK(store.current() != *first);
  CHECK(decide(*store.current(), p).ruleId == "nobody");
  CHECK_FALSE(store.changedOnDisk());

  std::filesystem::remove(path);
  CHECK(store.changedOnDisk());
  CHECK(store.reload());
  CHECK(decide(*store.current(), p).ruleId == "nobody");
  std::filesystem::remove_all(dir);

  PolicyStore empty("/nonexistent/policy.yaml", nullptr);  // no policy: deny everything
  CHECK_FALSE(allowed(*empty.current(), p));
}
