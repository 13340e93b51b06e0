#include "app/admin_commands.hpp"

#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "auth/api_key_store.hpp"
#include "config/config.hpp"
#include "policy/policy.hpp"

namespace mcphost::app {

const char* const kAdminUsage =
    R"(  mcphost keys create --config FILE --name NAME [--scopes a,b] [--groups g,h] [--expires 90d]
      Create an API key for a service account; the key is printed once and stored only as a
      salted hash in the state database (auth.api_keys.database).
  mcphost keys list --config FILE
  mcphost keys revoke --config FILE ID|NAME
  mcphost keys rotate --config FILE --name NAME [--overlap 7d]
      A new key for NAME; the old ones keep working for the overlap, then expire.
  mcphost policy check --config FILE
      Load and validate the configured policy.
  mcphost policy explain --config FILE --user NAME [--groups a,b] [--roles r] [--auth-method jwt]
                         [--tenant T] [--ip ADDR] [--claims JSON] [--connector ID]
                         (--tool NAME [--args JSON] | --resource URI | --prompt NAME) [--action list]
      Print the decision the policy makes for that caller and request, and why.
)";

namespace {

using Json = nlohmann::json;

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Options as --name value pairs, plus positional words.
struct Options {
  std::map<std::string, std::string> named;
  std::vector<std::string> positional;
  std::string error;
};

Options parseOptions(const std::vector<std::string>& args, std::size_t from) {
  Options o;
  for (std::size_t i = from; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) == 0) {
      if (i + 1 >= args.size()) {
        o.error = "option " + args[i] + " needs a value";
        return o;
      }
      o.named[args[i].substr(2)] = args[i + 1];
      ++i;
    } else {
      o.positional.push_back(args[i]);
    }
  }
  return o;
}

std::optional<std::chrono::seconds> parseDays(const std::string& text, std::string& error) {
  if (text.size() > 1 && text.back() == 'd' && text.find_first_not_of("0123456789") == text.size() - 1 &&
      text.size() <= 6) {
    return std::chrono::seconds(std::stoll(text.substr(0, text.size() - 1)) * 86400);
  }
  auto d = config::parseDuration(text);
  if (!d) {
    error = "'" + text + "' is not a duration (use e.g. 90d, 12h, 30m)";
    return std::nullopt;
  }
  return std::chrono::duration_cast<std::chrono::seconds>(*d);
}

std::string formatTime(std::optional<std::chrono::system_clock::time_point> t) {
  if (!t) return "-";
  const std::time_t seconds = std::chrono::system_clock::to_time_t(*t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  std::ostringstream out;
  out << std::put_time(&utc, "%Y-%m-%dT%H:%M:%SZ");
  return out.str();
}

int fail(const std::string& message) {
  std::cerr << "mcphost: " << message << "\n";
  return 2;
}

Expected<config::Config, std::string> configFrom(const Options& o) {
  auto it = o.named.find("config");
  if (it == o.named.end()) return unexpected(std::string("--config FILE is required"));
  return config::loadConfig(it->second);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out.empty() ? "-" : out;
}

}  // namespace

int runKeysCommand(const std::vector<std::string>& args) {
  if (args.empty()) return fail("keys needs a subcommand: create, list, revoke or rotate");
  const std::string& sub = args[0];
  Options o = parseOptions(args, 1);
  if (!o.error.empty()) return fail(o.error);
  auto cfg = configFrom(o);
  if (!cfg) return fail(cfg.error());
  if (!cfg->auth.apiKeys) {
    return fail(cfg->path + ": API keys are not enabled; add `auth: {api_keys: {enabled: true}}` first");
  }
  auto store = auth::ApiKeyStore::open(cfg->auth.apiKeyDatabase);
  if (!store) return fail(store.error());
  auto& keys = **store;
  auto printCreated = [](const auth::CreatedKey& created) {
    std::cout << "API key for '" << created.info.name << "' (id " << created.info.id << ", expires "
              << formatTime(created.info.expires) << "):\n\n    " << created.key
              << "\n\nIt is shown only now: store it in your secret manager. Send it as\n"
              << "    Authorization: Bearer <key>\n";
    return 0;
  };
  if (sub == "create") {
    if (o.named.count("name") == 0) return fail("keys create needs --name NAME");
    std::optional<std::chrono::seconds> lifetime;
    if (auto e = o.named.find("expires"); e != o.named.end() && e->second != "never") {
      std::string error;
      lifetime = parseDays(e->second, error);
      if (!lifetime) return fail("--expires: " + error);
    }
    auto created =
        keys.create(o.named["name"], splitList(o.named["scopes"]), lifetime, splitList(o.named["groups"]));
    if (!created) return fail(created.error());
    return printCreated(*created);
  }
  if (sub == "rotate") {
    if (o.named.count("name") == 0) return fail("keys rotate needs --name NAME");
    std::string error;
    auto overlap = parseDays(o.named.count("overlap") != 0 ? o.named["overlap"] : "7d", error);
    if (!overlap) return fail("--overlap: " + error);
    auto created = keys.rotate(o.named["name"], *overlap);
    if (!created) return fail(created.error());
    return printCreated(*created);
  }
  if (sub == "revoke") {
    if (o.positional.size() != 1) return fail("keys revoke needs exactly one key id or name");
    if (auto error = keys.revoke(o.positional[0])) return fail(*error);
    std::cout << "revoked: " << o.positional[0] << "\n";
    return 0;
  }
  if (sub == "list") {
    auto list = keys.list();
    if (!list) return fail(list.error());
    std::cout << std::left << std::setw(14) << "ID" << std::setw(20) << "NAME" << std::setw(22) << "EXPIRES"
              << std::setw(22) << "LAST USED" << std::setw(9) << "STATE"
              << "SCOPES\n";
    const auto now = std::chrono::system_clock::now();
    for (const auto& k : *list) {
      const std::string state = k.revoked                          ? "revoked"
                                : (k.expires && *k.expires <= now) ? "expired"
                                                                   : "active";
      std::cout << std::setw(14) << k.id << std::setw(20) << k.name << std::setw(22) << formatTime(k.expires)
                << std::setw(22) << formatTime(k.lastUsed) << std::setw(9) << state << joined(k.scopes)
                << "\n";
    }
    return 0;
  }
  return fail("unknown keys subcommand '" + sub + "' (create, list, revoke, rotate)");
}

int runPolicyCommand(const std::vector<std::string>& args) {
  if (args.empty()) return fail("policy needs a subcommand: explain or check");
  const std::string& sub = args[0];
  Options o = parseOptions(args, 1);
  if (!o.error.empty()) return fail(o.error);
  auto cfg = configFrom(o);
  if (!cfg) return fail(cfg.error());
  if (cfg->policyFile.empty()) return fail(cfg->path + ": no policy is configured (policy: FILE)");
  auto loaded = policy::Policy::loadFile(cfg->policyFile);
  if (!loaded) return fail(loaded.error());
  const auto& pol = **loaded;
  if (sub == "check") {
    std::cout << cfg->policyFile << ": OK (" << pol.ruleCount() << " rules)\n";
    return 0;
  }
  if (sub != "explain") return fail("unknown policy subcommand '" + sub + "' (explain, check)");

  auth::Principal who;
  if (o.named.count("user") == 0) return fail("policy explain needs --user NAME");
  who.subject = o.named["user"];
  who.groups = splitList(o.named["groups"]);
  who.roles = splitList(o.named["roles"]);
  who.scopes = splitList(o.named["scopes"]);
  who.authMethod = o.named.count("auth-method") != 0 ? o.named["auth-method"] : "jwt";
  who.tenant = o.named["tenant"];
  who.sourceIp = o.named.count("ip") != 0 ? o.named["ip"] : "127.0.0.1";
  if (auto c = o.named.find("claims"); c != o.named.end()) {
    who.attributes = Json::parse(c->second, nullptr, false);
    if (!who.attributes.is_object()) return fail("--claims must be a JSON object");
  }
  std::string kind;
  std::string name;
  policy::Action action = policy::Action::kCallTool;
  if (o.named.count("tool") != 0) {
    kind = "tool";
    name = o.named["tool"];
  } else if (o.named.count("resource") != 0) {
    kind = "resource";
    name = o.named["resource"];
    action = policy::Action::kReadResource;
  } else if (o.named.count("prompt") != 0) {
    kind = "prompt";
    name = o.named["prompt"];
    action = policy::Action::kGetPrompt;
  } else {
    return fail("policy explain needs --tool NAME, --resource URI or --prompt NAME");
  }
  if (auto a = o.named.find("action"); a != o.named.end()) {
    auto parsed = policy::parseAction(a->second);
    if (!parsed) return fail("--action: use list, tools/call, resources/read, prompts/get or completion");
    action = *parsed;
  }
  // The connector: --connector, else the instance whose prefix the exposed name carries.
  std::string connector = o.named["connector"];
  for (const auto& c : cfg->connectors) {
    if (connector.empty() && kind != "resource" && name.rfind(c.id + cfg->separator, 0) == 0)
      connector = c.id;
  }
  const std::vector<std::string>* tags = nullptr;
  for (const auto& c : cfg->connectors)
    if (c.id == connector) tags = &c.tags;
  Json arguments = Json::object();
  if (auto a = o.named.find("args"); a != o.named.end()) {
    arguments = Json::parse(a->second, nullptr, false);
    if (!arguments.is_object()) return fail("--args must be a JSON object, e.g. '{\"amount\": 500}'");
  }
  Json annotations = Json::object();
  if (auto a = o.named.find("annotations"); a != o.named.end()) {
    annotations = Json::parse(a->second, nullptr, false);
    if (!annotations.is_object()) return fail("--annotations must be a JSON object");
  }
  policy::Target target;
  target.kind = kind;
  target.connector = connector;
  target.name = name;
  target.annotations = &annotations;
  target.tags = tags;
  policy::Facts facts{who, action, target, o.named.count("args") != 0 ? &arguments : nullptr,
                      std::chrono::system_clock::now()};
  policy::Decision decision;
  const auto lines = pol.explain(facts, &decision);
  std::cout << "decision: " << (decision.allowed ? "ALLOW" : "DENY") << "\n"
            << "rule:     " << (decision.ruleId.empty() ? "(default deny)" : decision.ruleId) << "\n"
            << "reason:   " << decision.reason << "\n"
            << "request:  " << policy::actionName(action) << " " << kind << " '" << name << "' on connector '"
            << (connector.empty() ? "?" : connector) << "' by " << who.subject << " (" << who.authMethod
            << ", groups " << joined(who.groups) << ")\n"
            << "rules:\n";
  for (const auto& line : lines) std::cout << "  " << line << "\n";
  return decision.allowed ? 0 : 1;
}

}  // namespace mcphost::app
