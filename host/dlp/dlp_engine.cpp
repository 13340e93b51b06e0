#include "dlp/dlp_engine.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "common/crypto.hpp"
#include "common/glob.hpp"
#include "dlp/detectors.hpp"
#include "dlp/result_walker.hpp"

namespace mcphost::dlp {

namespace {

constexpr std::size_t kMinPseudonymKey = 32;
constexpr std::size_t kMaskKeep = 4;
constexpr std::size_t kMaskMinSignificant = 8;
constexpr int kNoRule = -1;

struct Rule {
  RuleConfig config;
  std::vector<char> detectors;  // per detector index
  std::vector<JsonPath> pointers;
};

bool maskSeparator(char c) {
  switch (c) {
    case ' ':
    case '\t':
    case '\r':
    case '\n':
    case '-':
    case '.':
    case '@':
    case '(':
    case ')':
    case '+':
    case ':':
      return true;
    default:
      return false;
  }
}

bool utf8Continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U;
}

std::string toHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char b : bytes) {
    out.push_back(kDigits[(static_cast<unsigned char>(b) >> 4U) & 0xFU]);
    out.push_back(kDigits[static_cast<unsigned char>(b) & 0xFU]);
  }
  return out;
}

bool validDetectorName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '-';
  });
}

bool anyGlob(const std::vector<std::string>& globs, std::string_view text) {
  return globs.empty() ||
         std::any_of(globs.begin(), globs.end(), [text](const std::string& g) { return globMatch(g, text); });
}

}  // namespace

struct Engine::Impl {
  DetectorSet detectors;
  std::vector<Rule> rules;
  std::string pseudonymKey;
  bool scanInbound = false;
  std::size_t maxFindings = 0;
};

namespace {

// Which rule (if any) handles each detector at one location; enabled mirrors ruleFor for the
// scanner.
struct Selection {
  std::vector<int> ruleFor;
  std::vector<char> enabled;
  bool any = false;
};

// The state of one protect() call: the rules that apply to this target and caller, the
// findings so far, and the originals replaced through pointer rules (to be replaced again in
// the text copy of structuredContent).
class Protector {
 public:
  Protector(const Engine::Impl& impl, const ScanTarget& target,
            const std::function<bool(std::string_view)>& exempt, Protection& out)
      : impl_(impl), target_(target), out_(out) {
    for (std::size_t r = 0; r < impl.rules.size(); ++r) {
      const RuleConfig& c = impl.rules[r].config;
      if (!anyGlob(c.connectors, target.connector) || !anyGlob(c.items, target.name)) continue;
      if (!c.classifications.empty()) {
        const auto* tags = target.classifications;
        const bool tagged =
            tags != nullptr &&
            std::any_of(c.classifications.begin(), c.classifications.end(), [tags](const std::string& want) {
              return std::find(tags->begin(), tags->end(), want) != tags->end();
            });
        if (!tagged) continue;
      }
      if (exempt && exempt(c.name)) continue;
      applicable_.push_back(r);
      if (!impl.rules[r].pointers.empty()) hasPointerRules_ = true;
    }
    base_ = select(nullptr);
  }

  void run(nlohmann::json& result) {
    if (applicable_.empty()) return;
    ResultSlots slots = collectSlots(result, target_.kind);
    if (base_.any) {
      for (std::string* text : slots.texts)
        if (!rewrite(*text, base_, false)) return;
    }
    if (slots.structured != nullptr && (base_.any || hasPointerRules_)) {
      const bool go = forEachLeaf(*slots.structured, [this](nlohmann::json& leaf, const JsonPath& path) {
        return leafVisit(leaf, path);
      });
      if (!go) return;
    }
    if (!pairs_.empty()) replaceEchoes(slots.texts);
  }

  [[nodiscard]] bool blocked() const { return out_.blockedBy.has_value(); }

  void finish() {
    for (const auto& [key, count] : counts_) {
      const Rule& rule = impl_.rules[static_cast<std::size_t>(key.first)];
      out_.findings.push_back(
          {impl_.detectors.spec(key.second).name, rule.config.name, rule.config.action, count});
    }
  }

 private:
  // The first applicable rule per detector: non-pointer rules everywhere, pointer rules only
  // at or below one of their pointers (path == nullptr: outside structuredContent).
  Selection select(const JsonPath* path) const {
    Selection s{std::vector<int>(impl_.detectors.size(), kNoRule),
                std::vector<char>(impl_.detectors.size(), 0), false};
    for (std::size_t r : applicable_) {
      const Rule& rule = impl_.rules[r];
      if (!rule.pointers.empty()) {
        if (path == nullptr || std::none_of(rule.pointers.begin(), rule.pointers.end(),
                                            [path](const JsonPath& p) { return pointerCovers(p, *path); }))
          continue;
      }
      for (std::size_t d = 0; d < s.ruleFor.size(); ++d) {
        if (rule.detectors[d] == 0 || s.ruleFor[d] != kNoRule) continue;
        s.ruleFor[d] = static_cast<int>(r);
        s.enabled[d] = 1;
        s.any = true;
      }
    }
    return s;
  }

  bool leafVisit(nlohmann::json& leaf, const JsonPath& path) {
    const Selection pointed = hasPointerRules_ ? select(&path) : Selection{};
    const Selection& sel = hasPointerRules_ ? pointed : base_;
    if (!sel.any) return true;
    if (leaf.is_string()) return rewrite(leaf.get_ref<std::string&>(), sel, true);
    // A card number stored as a JSON number: scan its decimal form, and if anything matches
    // the leaf becomes the transformed string.
    std::string digits = leaf.is_number_unsigned() ? std::to_string(leaf.get<std::uint64_t>())
                                                   : std::to_string(leaf.get<std::int64_t>());
    const std::string before = digits;
    if (!rewrite(digits, sel, true)) return false;
    if (digits != before) leaf = std::move(digits);
    return true;
  }

  // Scans text and rewrites it in place if anything matched; false when the result is blocked.
  bool rewrite(std::string& text, const Selection& sel, bool structured) {
    out_.bytesScanned += text.size();
    std::string rewritten;
    std::size_t copied = 0;
    const bool done = impl_.detectors.scan(text, sel.enabled, [&](const DetectorMatch& m) {
      const int r = sel.ruleFor[m.detector];
      const Rule& rule = impl_.rules[static_cast<std::size_t>(r)];
      ++counts_[{r, m.detector}];
      if (++total_ > impl_.maxFindings) {
        out_.blockedBy = std::string(kFindingLimit);
        return false;
      }
      if (rule.config.action == Action::kBlock) {
        out_.blockedBy = rule.config.name;
        return false;
      }
      const std::string_view value = std::string_view(text).substr(m.begin, m.end - m.begin);
      std::string replacement = transform(rule.config.action, m.detector, value);
      if (structured && !rule.pointers.empty()) rememberEcho(value, replacement);
      rewritten.append(text, copied, m.begin - copied);
      rewritten += replacement;
      copied = m.end;
      return true;
    });
    if (!done) return false;
    if (copied > 0) {
      rewritten.append(text, copied, std::string::npos);
      text = std::move(rewritten);
    }
    return true;
  }

  std::string transform(Action action, std::size_t detector, std::string_view value) {
    const DetectorSpec& spec = impl_.detectors.spec(detector);
    switch (action) {
      case Action::kMask:
        return maskValue(value);
      case Action::kRedact:
        return "[REDACTED:" + spec.name + "]";
      case Action::kPseudonymize: {
        if (tenantKey_.empty())
          tenantKey_ = hmacSha256(impl_.pseudonymKey, "tenant:" + std::string(target_.tenant));
        const std::string mac = hmacSha256(tenantKey_, normalizeValue(spec.normalization, value));
        return spec.name + "_" + toHex(mac).substr(0, 16);
      }
      case Action::kBlock:
        break;
    }
    return "[REDACTED:" + spec.name + "]";
  }

  // Servers usually repeat structuredContent as JSON text in content[]: remember the original
  // both raw and JSON-escaped (private keys contain newlines).
  void rememberEcho(std::string_view original, const std::string& replacement) {
    pairs_.emplace(std::string(original), replacement);
    std::string escaped = nlohmann::json(std::string(original)).dump();
    escaped = escaped.substr(1, escaped.size() - 2);
    if (escaped != original) {
      std::string escapedReplacement = nlohmann::json(replacement).dump();
      pairs_.emplace(std::move(escaped), escapedReplacement.substr(1, escapedReplacement.size() - 2));
    }
  }

  // One pass per text over an alternation of every remembered original (longest first, so
  // a value that contains another one wins). If that pattern cannot be built, the text copies
  // are redacted whole: leaking them is not an option.
  void replaceEchoes(const std::vector<std::string*>& texts) {
    std::vector<const std::string*> originals;
    originals.reserve(pairs_.size());
    for (const auto& [original, replacement] : pairs_) originals.push_back(&original);
    std::sort(originals.begin(), originals.end(),
              [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
    std::string pattern;
    for (const std::string* o : originals) {
      if (!pattern.empty()) pattern += '|';
      pattern += RE2::QuoteMeta(*o);
    }
    RE2::Options options;
    options.set_max_mem(256LL << 20);
    options.set_log_errors(false);
    const RE2 echoes(pattern, options);
    for (std::string* text : texts) {
      if (!echoes.ok()) {
        *text = "[REDACTED:structuredContent]";
        continue;
      }
      std::string out;
      std::size_t pos = 0;
      std::size_t copied = 0;
      re2::StringPiece match;
      const re2::StringPiece piece(*text);
      while (pos < text->size() && echoes.Match(piece, pos, text->size(), RE2::UNANCHORED, &match, 1)) {
        const auto at = static_cast<std::size_t>(match.data() - text->data());
        out.append(*text, copied, at - copied);
        out += pairs_.at(std::string(match.data(), match.size()));
        copied = pos = at + match.size();
      }
      if (copied > 0) {
        out.append(*text, copied, std::string::npos);
        *text = std::move(out);
      }
    }
  }

  const Engine::Impl& impl_;
  const ScanTarget& target_;
  Protection& out_;
  std::vector<std::size_t> applicable_;
  bool hasPointerRules_ = false;
  Selection base_;
  std::map<std::pair<int, std::size_t>, std::size_t> counts_;
  std::size_t total_ = 0;
  std::string tenantKey_;
  std::unordered_map<std::string, std::string> pairs_;
};

Expected<std::vector<DetectorSpec>, std::string> detectorSpecs(const Settings& settings) {
  std::vector<DetectorSpec> specs = builtinDetectors();
  std::unordered_set<std::string> names;
  for (const auto& spec : specs) names.insert(spec.name);
  for (const auto& custom : settings.detectors) {
    if (!validDetectorName(custom.name))
      return unexpected("detector '" + custom.name + "': the name must be non-empty [A-Za-z0-9_.-]");
    if (!names.insert(custom.name).second)
      return unexpected("detector '" + custom.name + "': the name is already used (built-in or duplicate)");
    const auto validator = parseCustomValidator(custom.validator);
    if (!validator)
      return unexpected("detector '" + custom.name + "': unknown validator '" + custom.validator +
                        "' (expected luhn, iban or none)");
    const Normalization norm = *validator == Validator::kLuhn   ? Normalization::kDigits
                               : *validator == Validator::kIban ? Normalization::kUpperAlnum
                                                                : Normalization::kNone;
    specs.push_back({custom.name, custom.pattern, *validator, norm, ""});
  }
  return specs;
}

std::string quoted(std::string prefix, std::string_view value) {
  prefix += '\'';
  prefix += value;
  prefix += '\'';
  return prefix;
}

Expected<Rule, std::string> compileRule(const RuleConfig& config, const DetectorSet& detectors,
                                        const Settings& settings) {
  const std::string where = "rule '" + config.name + "': ";
  Rule rule{config, std::vector<char>(detectors.size(), 0), {}};
  if (config.detectors.empty()) return unexpected(where + "no detectors");
  for (const auto& name : config.detectors) {
    if (name == "*") {
      std::fill(rule.detectors.begin(), rule.detectors.end(), 1);
      continue;
    }
    const auto index = detectors.indexOf(name);
    if (!index) return unexpected(quoted(where + "unknown detector ", name));
    rule.detectors[*index] = 1;
  }
  for (const auto& pointer : config.pointers) {
    auto parsed = parsePointerPattern(pointer);
    if (!parsed)
      return unexpected(quoted(where + "bad pointer ", pointer) +
                        " (a JSON pointer: empty or starting with '/')");
    rule.pointers.push_back(std::move(*parsed));
  }
  if (config.action == Action::kPseudonymize && settings.pseudonymKey.size() < kMinPseudonymKey)
    return unexpected(where + "pseudonymize needs pseudonymKey of at least 32 bytes");
  return rule;
}

}  // namespace

std::optional<Action> parseAction(std::string_view name) {
  if (name == "mask") return Action::kMask;
  if (name == "redact") return Action::kRedact;
  if (name == "pseudonymize") return Action::kPseudonymize;
  if (name == "block") return Action::kBlock;
  return std::nullopt;
}

std::string_view actionName(Action action) {
  switch (action) {
    case Action::kMask:
      return "mask";
    case Action::kRedact:
      return "redact";
    case Action::kPseudonymize:
      return "pseudonymize";
    case Action::kBlock:
      return "block";
  }
  return "mask";
}

std::string maskValue(std::string_view value) {
  std::size_t significant = 0;
  for (char c : value)
    if (!maskSeparator(c) && !utf8Continuation(c)) ++significant;
  const std::size_t keep = significant >= kMaskMinSignificant ? kMaskKeep : 0;
  std::string out;
  out.reserve(value.size());
  std::size_t seen = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (maskSeparator(c)) {
      out.push_back(c);
      continue;
    }
    if (utf8Continuation(c)) {
      if (seen > significant - keep) out.push_back(c);  // part of a kept character
      continue;
    }
    ++seen;
    out.push_back(seen > significant - keep ? c : '*');
  }
  return out;
}

Engine::Engine(std::unique_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Expected<std::shared_ptr<const Engine>, std::string> Engine::create(const Settings& settings) {
  auto specs = detectorSpecs(settings);
  if (!specs) return unexpected(specs.error());
  auto detectors = DetectorSet::compile(std::move(*specs));
  if (!detectors) return unexpected(detectors.error());
  auto impl = std::make_unique<Impl>(Impl{
      std::move(*detectors), {}, settings.pseudonymKey, settings.scanInboundSecrets, settings.maxFindings});
  std::unordered_set<std::string> ruleNames;
  for (const auto& config : settings.rules) {
    if (config.name.empty()) return unexpected(std::string("rule '': a rule needs a name"));
    if (!ruleNames.insert(config.name).second)
      return unexpected("rule '" + config.name + "': duplicate name");
    auto rule = compileRule(config, impl->detectors, settings);
    if (!rule) return unexpected(rule.error());
    impl->rules.push_back(std::move(*rule));
  }
  return std::shared_ptr<const Engine>(std::make_shared<Engine>(std::move(impl)));
}

bool Engine::empty() const {
  return impl_->rules.empty() && !impl_->scanInbound;
}

Protection Engine::protect(nlohmann::json& result, const ScanTarget& target,
                           const std::function<bool(std::string_view)>& exempt) const {
  Protection out;
  if (impl_->rules.empty()) return out;
  try {
    Protector protector(*impl_, target, exempt, out);
    protector.run(result);
    protector.finish();
  } catch (const std::exception&) {
    out.blockedBy = std::string(kInternalError);  // fail closed; the message may quote data
  }
  return out;
}

std::vector<SecretFinding> Engine::findSecrets(const nlohmann::json& arguments) const {
  if (!impl_->scanInbound) return {};
  try {
    return dlp::findSecrets(impl_->detectors, arguments);
  } catch (const std::exception&) {
    return {{"error", ""}};
  }
}

nlohmann::json Engine::redactForAudit(const nlohmann::json& arguments) const {
  try {
    return dlp::redactForAudit(impl_->detectors, arguments);
  } catch (const std::exception&) {
    return "[REDACTED:error]";
  }
}

std::vector<std::string> Engine::builtinDetectorNames() {
  std::vector<std::string> names;
  for (const auto& spec : builtinDetectors()) names.push_back(spec.name);
  return names;
}

}  // namespace mcphost::dlp
