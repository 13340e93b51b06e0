#include "dlp/secret_scan.hpp"

#include <array>
#include <cctype>
#include <optional>

#include "dlp/detectors.hpp"
#include "dlp/result_walker.hpp"

namespace mcphost::dlp {
namespace {

constexpr std::size_t kMaxSecretDepth = 64;
constexpr std::size_t kMaxAuditDepth = 16;
constexpr std::size_t kMaxAuditString = 1024;
constexpr std::size_t kMaxAuditMembers = 256;
constexpr std::string_view kSecretField = "secret_field";

std::vector<std::string> keyWords(std::string_view key) {
  std::vector<std::string> words(1);
  for (std::size_t i = 0; i < key.size(); ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (std::isalnum(c) == 0) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    // camelCase and APIKey-style boundaries
    const bool upper = std::isupper(c) != 0;
    if (upper && i > 0 && !words.back().empty()) {
      const auto prev = static_cast<unsigned char>(key[i - 1]);
      const bool nextLower = i + 1 < key.size() && std::islower(static_cast<unsigned char>(key[i + 1])) != 0;
      if (std::islower(prev) != 0 || std::isdigit(prev) != 0 || (std::isupper(prev) != 0 && nextLower))
        words.emplace_back();
    }
    words.back().push_back(static_cast<char>(std::tolower(c)));
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

bool nonEmpty(const nlohmann::json& v) {
  if (v.is_null()) return false;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  if (v.is_object() || v.is_array()) return !v.empty();
  return true;
}

std::vector<char> enabledFor(const DetectorSet& detectors, std::initializer_list<std::string_view> names) {
  std::vector<char> enabled(detectors.size(), 0);
  for (auto name : names)
    if (auto index = detectors.indexOf(name)) enabled[*index] = 1;
  return enabled;
}

// The integer's decimal form, so a card number sent as a JSON number is still seen.
std::optional<std::string> scannableText(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_unsigned()) return std::to_string(v.get<std::uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
  return std::nullopt;
}

class SecretFinder {
 public:
  SecretFinder(const DetectorSet& detectors, std::vector<SecretFinding>& out)
      : detectors_(detectors),
        enabled_(enabledFor(detectors, {"jwt", "api_key", "private_key"})),
        out_(out) {}

  void visit(const nlohmann::json& v, JsonPath& path) {
    if (path.size() > kMaxSecretDepth) {
      out_.push_back({"nesting_limit", pointerText(path)});
      return;
    }
    if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        path.push_back(it.key());
        if (isSecretFieldName(it.key()) && nonEmpty(it.value())) {
          out_.push_back({std::string(kSecretField), pointerText(path)});
        } else {
          visit(it.value(), path);
        }
        path.pop_back();
      }
    } else if (v.is_array()) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        path.push_back(std::to_string(i));
        visit(v[i], path);
        path.pop_back();
      }
    } else if (v.is_string()) {
      std::vector<char> seen(detectors_.size(), 0);
      detectors_.scan(v.get_ref<const std::string&>(), enabled_, [&](const DetectorMatch& m) {
        if (seen[m.detector] == 0) out_.push_back({detectors_.spec(m.detector).name, pointerText(path)});
        seen[m.detector] = 1;
        return true;
      });
    }
  }

 private:
  const DetectorSet& detectors_;
  std::vector<char> enabled_;
  std::vector<SecretFinding>& out_;
};

std::string truncateUtf8(const std::string& s) {
  std::size_t cut = kMaxAuditString;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0U) == 0x80U) --cut;  // continuation byte
  return s.substr(0, cut) + "...[TRUNCATED:" + std::to_string(s.size()) + " bytes]";
}

class AuditRedactor {
 public:
  explicit AuditRedactor(const DetectorSet& detectors) : detectors_(detectors), all_(detectors.size(), 1) {}

  nlohmann::json copy(const nlohmann::json& v, std::size_t depth) const {
    if ((v.is_object() || v.is_array()) && depth >= kMaxAuditDepth) return "[TRUNCATED:depth]";
    if (v.is_object()) {
      nlohmann::json out = nlohmann::json::object();
      std::size_t kept = 0;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (kept++ == kMaxAuditMembers) {
          out["[TRUNCATED]"] = std::to_string(v.size() - kMaxAuditMembers) + " more keys";
          break;
        }
        out[it.key()] = isSecretFieldName(it.key()) && nonEmpty(it.value())
                            ? nlohmann::json("[REDACTED:" + std::string(kSecretField) + "]")
                            : copy(it.value(), depth + 1);
      }
      return out;
    }
    if (v.is_array()) {
      nlohmann::json out = nlohmann::json::array();
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i == kMaxAuditMembers) {
          out.push_back("[TRUNCATED:" + std::to_string(v.size() - i) + " more]");
          break;
        }
        out.push_back(copy(v[i], depth + 1));
      }
      return out;
    }
    const auto text = scannableText(v);
    if (!text) return v;
    std::optional<std::size_t> hit;
    detectors_.scan(*text, all_, [&hit](const DetectorMatch& m) {
      hit = m.detector;
      return false;  // the first finding redacts the whole value
    });
    if (hit) return "[REDACTED:" + detectors_.spec(*hit).name + "]";
    if (v.is_string() && text->size() > kMaxAuditString) return truncateUtf8(*text);
    return v;
  }

 private:
  const DetectorSet& detectors_;
  std::vector<char> all_;
};

}  // namespace

bool isSecretFieldName(std::string_view key) {
  std::string compact;
  for (char c : key)
    if (std::isalnum(static_cast<unsigned char>(c)) != 0)
      compact.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  static constexpr std::array<std::string_view, 7> kInside = {
      "password", "passwd", "secret", "apikey", "authorization", "privatekey", "passphrase"};
  for (auto word : kInside)
    if (compact.find(word) != std::string::npos) return true;
  for (const auto& word : keyWords(key))
    if (word == "token") return true;
  return false;
}

std::vector<SecretFinding> findSecrets(const DetectorSet& detectors, const nlohmann::json& arguments) {
  std::vector<SecretFinding> out;
  JsonPath path;
  SecretFinder(detectors, out).visit(arguments, path);
  return out;
}

nlohmann::json redactForAudit(const DetectorSet& detectors, const nlohmann::json& arguments) {
  return AuditRedactor(detectors).copy(arguments, 0);
}

}  // namespace mcphost::dlp
