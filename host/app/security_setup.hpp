// Builds the security stack from the configuration: authentication chain, policy (with reload
// on SIGHUP or file change), rate limits and the router's access guard.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "auth/auth_chain.hpp"
#include "common/expected.hpp"
#include "config/config.hpp"
#include "guard/access_guard.hpp"
#include "guard/call_limits.hpp"
#include "policy/policy.hpp"

namespace mcphost::app {

// Reloads the policy when SIGHUP arrives or (policy.watch) the file changes. An invalid new
// policy is logged and refused; the one in force stays.
class PolicyWatcher {
 public:
  PolicyWatcher(std::shared_ptr<policy::PolicyStore> store, bool watchFile);
  ~PolicyWatcher();
  PolicyWatcher(const PolicyWatcher&) = delete;
  PolicyWatcher& operator=(const PolicyWatcher&) = delete;
  static void requestReload();  // async-signal-safe (the SIGHUP handler calls it)

 private:
  void run();
  std::shared_ptr<policy::PolicyStore> store_;
  bool watchFile_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

struct SecurityStack {
  std::shared_ptr<auth::AuthChain> auth;
  std::shared_ptr<policy::PolicyStore> policy;  // null: everything allowed (auth and policy off)
  std::shared_ptr<guard::CallLimits> limits;    // null: no rate limits
  std::shared_ptr<guard::AccessGuard> guard;
  std::unique_ptr<PolicyWatcher> watcher;
};

// The error is ready to print; nothing half-built survives it (fail closed at start-up).
Expected<SecurityStack, std::string> buildSecurity(const config::Config& config);
void installReloadSignal();

}  // namespace mcphost::app
