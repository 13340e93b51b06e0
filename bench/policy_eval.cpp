// bench-policy: decide() latency against a 1,000-rule policy (goal: p99 <= 10 us).
//
// The policy is generated as YAML text and loaded through the real loader, so the index and
// every matcher are the ones the host uses. The rules are varied on purpose: exact and glob
// connectors, group/user/tenant/claim subjects, exact and glob names, annotations, tags, CIDR
// and time conditions, `when` predicates over arguments, and a share of denies. The requests
// are a fixed mix of principals, connectors, tools and arguments, cycled in a shuffled order;
// each decide() is timed on its own with a high-resolution clock after a warm-up.
//
//   bench-policy [--rules N] [--calls N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.hpp"

using mcphost::auth::Principal;
using mcphost::policy::Action;
using mcphost::policy::Facts;
using mcphost::policy::Policy;
using mcphost::policy::Target;
using nlohmann::json;

namespace {

constexpr int kConnectors = 60;
constexpr int kGroups = 40;

void add(std::string& out, std::initializer_list<std::string_view> parts) {
  for (const auto part : parts) out.append(part);
}

std::string generatePolicy(int ruleCount) {
  std::string y = "version: 1\nrules:\n";
  for (int i = 0; i < ruleCount; ++i) {
    // Ten consecutive rules (one of each shape below) share a connector, so every connector
    // carries a mix of allows, denies, globs and conditions.
    const std::string connector = "conn" + std::to_string((i / 10) % kConnectors);
    const std::string group = "g" + std::to_string(i % kGroups);
    add(y, {"  - id: rule-", std::to_string(i), "\n"});
    switch (i % 10) {
      case 0:
      case 1:
      case 2:
        add(y, {"    effect: allow\n    actions: [tools/call, resources/read]\n"});
        add(y, {"    subjects: {groups: [", group, ", g", std::to_string((i + 7) % kGroups), "]}\n"});
        add(y, {"    targets: {connectors: [", connector, "], names: [\"", connector, "__tool",
                std::to_string(i % 7), "*\"]}\n"});
        break;
      case 3:
        add(y, {"    effect: allow\n    actions: [tools/call]\n"});
        add(y, {"    subjects: {groups: [", group, "], auth_methods: [jwt, ldap]}\n"});
        add(y, {"    targets: {connectors: [", connector, "], names: [", connector, "__tool1_read, ",
                connector, "__tool2_read]}\n"});
        add(y, {"    conditions:\n      time: {days: [mon-fri], from: \"06:00\", to: \"22:00\"}\n"});
        break;
      case 4:
        add(y, {"    effect: allow\n    actions: [tools/call]\n"});
        add(y, {"    subjects: {roles: [role", std::to_string(i % 13), "], claims: {level: [2, 3]}}\n"});
        add(y, {"    targets: {connectors: [", connector, "]}\n"});
        add(y, {"    conditions:\n      when: \"args.amount <= ", std::to_string(100 + i),
                " && args.currency == 'EUR'\"\n"});
        break;
      case 5:
        add(y, {"    effect: deny\n    actions: [tools/call]\n"});
        add(y, {"    subjects: {users: [\"svc-", std::to_string(i % 17), "*\"]}\n"});
        add(y, {"    targets: {connectors: [", connector, "], annotations: {destructiveHint: true}}\n"});
        break;
      case 6:
        add(y, {"    effect: allow\n    actions: \"*\"\n"});
        add(y, {"    subjects: {groups: [", group, "], tenants: [acme, globex]}\n"});
        add(y, {"    targets: {connectors: [\"lab-", std::to_string((i / 10) % 5), "*\"]}\n"});
        break;
      case 7:
        add(y, {"    effect: deny\n    actions: [tools/call]\n"});
        add(y, {"    targets: {connectors: [", connector, "], names: [\"*__drop*\"]}\n"});
        add(y, {"    conditions:\n      when: \"args.confirm != true\"\n"});
        break;
      case 8:
        add(y, {"    effect: deny\n    actions: [tools/call, resources/read]\n"});
        add(y,
            {"    targets: {connectors: [", connector, "], tags: [secret-", std::to_string(i % 9), "]}\n"});
        add(y, {"    conditions:\n      source_cidr: [192.168.0.0/16, \"fd00::/8\"]\n"});
        break;
      default:
        add(y, {"    effect: allow\n    actions: [tools/call, prompts/get]\n"});
        add(y, {"    subjects: {groups: [", group, "]}\n"});
        add(y, {"    targets: {connectors: [", connector, ", conn",
                std::to_string((i / 10 + 1) % kConnectors), "]}\n"});
        add(y,
            {"    conditions:\n      source_cidr: [10.0.0.0/8]\n      when: \"principal.tenant == 'acme' || "
             "'admins' in principal.groups\"\n"});
        break;
    }
  }
  // A few connector-independent rules, which every decision has to consider.
  y += "  - id: global-deny-tenant\n    effect: deny\n    actions: \"*\"\n    subjects: {tenants: "
       "[blocked]}\n";
  y += "  - id: global-night\n    effect: allow\n    actions: \"*\"\n    subjects: {groups: [oncall]}\n"
       "    conditions:\n      time: {from: \"22:00\", to: \"06:00\"}\n";
  return y;
}

struct Sample {
  Principal principal;
  std::string connector;
  std::string name;
  json annotations;
  std::vector<std::string> tags;
  json arguments;
  Action action = Action::kCallTool;
};

std::vector<Sample> generateSamples(std::size_t count) {
  std::mt19937 rng(42);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  std::vector<Sample> out(count);
  for (auto& s : out) {
    s.principal.subject =
        pick(5) == 0 ? "svc-" + std::to_string(pick(20)) + "-bot" : "user" + std::to_string(pick(500));
    s.principal.authMethod = pick(3) == 0 ? "ldap" : "jwt";
    for (int g = 0; g < 1 + pick(4); ++g) s.principal.groups.push_back("g" + std::to_string(pick(kGroups)));
    s.principal.roles = {"role" + std::to_string(pick(13))};
    s.principal.tenant = pick(4) == 0 ? "globex" : "acme";
    s.principal.attributes = {{"level", pick(5)}, {"department", "dept" + std::to_string(pick(8))}};
    s.principal.sourceIp =
        pick(3) == 0 ? "192.168.1." + std::to_string(pick(250)) : "10.2.3." + std::to_string(pick(250));
    s.connector =
        pick(8) == 0 ? "lab-" + std::to_string(pick(5)) + "x" : "conn" + std::to_string(pick(kConnectors));
    static const char* kSuffixes[] = {"_read", "_write", "_drop_table", "_list"};
    s.name = s.connector + "__tool" + std::to_string(pick(8)) + kSuffixes[pick(4)];
    s.annotations = {{"readOnlyHint", pick(2) == 0}, {"destructiveHint", pick(3) == 0}};
    if (pick(3) == 0) s.tags = {"secret-" + std::to_string(pick(9))};
    s.arguments = {
        {"amount", pick(2000)}, {"currency", pick(4) == 0 ? "USD" : "EUR"}, {"confirm", pick(2) == 0}};
    s.action = pick(6) == 0 ? Action::kReadResource : Action::kCallTool;
  }
  return out;
}

double percentile(const std::vector<double>& sorted, double p) {
  const auto index = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[index];
}

}  // namespace

int main(int argc, char** argv) {
  int ruleCount = 1000;
  std::size_t calls = 200000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rules") == 0)
      ruleCount = static_cast<int>(std::strtol(argv[i + 1], nullptr, 10));
    if (std::strcmp(argv[i], "--calls") == 0) calls = std::strtoull(argv[i + 1], nullptr, 10);
  }
  if (ruleCount < 1 || calls < 1) {
    std::fprintf(stderr, "usage: bench-policy [--rules N] [--calls N]\n");
    return 2;
  }

  const std::string yaml = generatePolicy(ruleCount);
  const auto loadStart = std::chrono::steady_clock::now();
  auto policy = Policy::parse(yaml, "bench-policy.yaml");
  const auto loadEnd = std::chrono::steady_clock::now();
  if (!policy) {
    std::fprintf(stderr, "bench-policy: %s\n", policy.error().c_str());
    return 1;
  }
  std::printf("policy: %zu rules, %zu bytes of YAML, loaded in %.1f ms\n", (*policy)->ruleCount(),
              yaml.size(), std::chrono::duration<double, std::milli>(loadEnd - loadStart).count());

  const std::vector<Sample> samples = generateSamples(4096);
  // A weekday afternoon, so the time windows are a mix of in and out.
  const auto now =
      std::chrono::system_clock::time_point(std::chrono::seconds(1709560800));  // 2024-03-04 14:00Z
  auto decideOne = [&](const Sample& s) {
    const Facts facts{s.principal, s.action,
                      Target{s.action == Action::kCallTool ? "tool" : "resource", s.connector, s.name,
                             &s.annotations, s.tags.empty() ? nullptr : &s.tags},
                      &s.arguments, now};
    return (*policy)->decide(facts);
  };

  std::size_t allowed = 0;
  for (std::size_t i = 0; i < 20000; ++i) allowed += decideOne(samples[i % samples.size()]).allowed ? 1 : 0;

  std::vector<double> micros;
  micros.reserve(calls);
  allowed = 0;
  std::size_t byRule = 0;
  for (std::size_t i = 0; i < calls; ++i) {
    const Sample& s = samples[(i * 7919) % samples.size()];
    const auto start = std::chrono::high_resolution_clock::now();
    const auto decision = decideOne(s);
    const auto end = std::chrono::high_resolution_clock::now();
    micros.push_back(std::chrono::duration<double, std::micro>(end - start).count());
    allowed += decision.allowed ? 1 : 0;
    byRule += decision.ruleId.empty() ? 0 : 1;
  }
  std::sort(micros.begin(), micros.end());
  const double p99 = percentile(micros, 0.99);
  std::printf("decide(): %zu calls, %.1f%% allowed, %.1f%% decided by a rule (rest default deny)\n", calls,
              100.0 * static_cast<double>(allowed) / static_cast<double>(calls),
              100.0 * static_cast<double>(byRule) / static_cast<double>(calls));
  std::printf("latency us: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", percentile(micros, 0.50),
              percentile(micros, 0.90), p99, percentile(micros, 0.999), micros.back());
  std::printf("GOAL p99 <= 10 us: %s\n", p99 <= 10.0 ? "MET" : "MISSED");
  return 0;
}
