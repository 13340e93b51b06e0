// Authorization: which principal may list, call, read, get or complete what. Attribute based,
// deny by default, deny overrides allow. The schema is documented in config/policy.example.yaml.
//
// A Policy is immutable once loaded and shared between threads through PolicyStore; decide()
// looks only at the rules indexed under the target's connector and action.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/principal.hpp"
#include "common/expected.hpp"

namespace mcphost::policy {

enum class Action : std::uint8_t {
  kList = 1,
  kCallTool = 2,
  kReadResource = 4,
  kGetPrompt = 8,
  kComplete = 16,
  // See data unmasked that a data-protection rule would mask (the rule name is args.rule). Never
  // part of "*": seeing raw personal data must be granted by name.
  kUnmask = 32
};
// "list", "tools/call", "resources/read", "prompts/get", "completion", "unmask"
std::string_view actionName(Action a);
std::optional<Action> parseAction(std::string_view name);

struct Target {
  std::string_view kind;       // "tool", "resource", "prompt" (completion refs use the prompt or resource)
  std::string_view connector;  // connector instance id
  std::string_view name;       // the name/URI as the client sees it
  const nlohmann::json* annotations = nullptr;     // tool annotations, may be null
  const std::vector<std::string>* tags = nullptr;  // connector classification tags, may be null
};

struct Facts {
  const auth::Principal& principal;
  Action action;
  Target target;
  // tools/call arguments, prompt arguments; null when not known (listing). For tools/call,
  // prompts/get and completion a null here means "unknown": an allow rule whose `when` needs
  // arguments cannot allow and such a deny rule denies (fail closed), so pass an empty object
  // when the client sent no arguments. list and resources/read never carry arguments.
  const nlohmann::json* arguments = nullptr;
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

struct Decision {
  bool allowed = false;
  std::string ruleId;  // the rule that decided; "" = default deny
  // One line, human readable: "denied by rule 'no-prod-writes' (effect deny)",
  // "no rule allows tools/call on hr__delete for alice (default deny)".
  std::string reason;
};

namespace detail {
struct PolicyModel;  // the compiled rules and their index (policy_model.hpp)
}

class Policy {
 public:
  // FILE:LINE: key: problem on failure; unknown keys anywhere are errors.
  static Expected<std::shared_ptr<const Policy>, std::string> loadFile(const std::string& path);
  static Expected<std::shared_ptr<const Policy>, std::string> parse(const std::string& yamlText,
                                                                    const std::string& sourceName);
  // Used when authentication and policy are off (loopback demo); its decisions say so
  // (ruleId "allow-all").
  static std::shared_ptr<const Policy> allowAll();

  explicit Policy(std::unique_ptr<detail::PolicyModel> model);  // built by parse()
  ~Policy();
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  // Thread-safe; allocates only the Decision strings.
  [[nodiscard]] Decision decide(const Facts& facts) const;
  // List visibility: a user never sees what it may not call. Visible when an allow rule for
  // facts.action could match and no deny rule for facts.action surely matches; when some rule
  // names the `list` action explicitly, a deny rule for `list` that surely matches hides too
  // (an allow for `list` adds nothing). A deny whose `when` needs arguments does not hide (it
  // can only be decided at call time); an allow whose `when` needs arguments counts as a
  // possible match.
  [[nodiscard]] bool visible(const Facts& facts) const;
  // For `mcphost policy explain`: the decision first, then one line per rule saying matched or
  // why not (the first failing matcher).
  [[nodiscard]] std::vector<std::string> explain(const Facts& facts, Decision* decision = nullptr) const;
  [[nodiscard]] std::size_t ruleCount() const;
  [[nodiscard]] const std::string& source() const;

 private:
  std::unique_ptr<const detail::PolicyModel> model_;
};

// Holds the policy in force; reload keeps the old one when the new one is invalid.
class PolicyStore {
 public:
  PolicyStore(std::string path, std::shared_ptr<const Policy> initial);

  [[nodiscard]] std::shared_ptr<const Policy> current() const;  // cheap, thread-safe
  // Re-reads the file; nullopt when the new policy is in force, else the error (the old policy
  // stays).
  std::optional<std::string> reload();
  // True when the file's mtime/size/inode changed since the last load attempt (for a polling
  // watcher; a failed reload also counts, so a broken file is not re-read until it changes).
  [[nodiscard]] bool changedOnDisk() const;
  [[nodiscard]] const std::string& path() const;

 private:
  struct FileStamp {
    bool exists = false;
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::int64_t size = 0;
    std::int64_t mtimeNanoseconds = 0;
    bool operator==(const FileStamp&) const = default;
  };
  static FileStamp stampOf(const std::string& path);

  std::string path_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Policy> current_;
  FileStamp loaded_;
};

}  // namespace mcphost::policy
