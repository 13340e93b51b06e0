#include "app/security_setup.hpp"

#include <csignal>

#include "observe/log.hpp"

namespace mcphost::app {

namespace {

std::atomic<bool> gReloadRequested{false};

extern "C" void onReloadSignal(int /*signal*/) {
  PolicyWatcher::requestReload();
}

}  // namespace

void PolicyWatcher::requestReload() {
  gReloadRequested.store(true);
}

void installReloadSignal() {
  std::signal(SIGHUP, onReloadSignal);
}

PolicyWatcher::PolicyWatcher(std::shared_ptr<policy::PolicyStore> store, bool watchFile)
    : store_(std::move(store)), watchFile_(watchFile), thread_([this] { run(); }) {}

PolicyWatcher::~PolicyWatcher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void PolicyWatcher::run() {
  std::unique_lock lock(mutex_);
  int ticks = 0;
  while (!stop_) {
    // A signal handler cannot notify a condition variable safely, so poll the flag briskly.
    wake_.wait_for(lock, std::chrono::milliseconds(250));
    if (stop_) break;
    const bool signalled = gReloadRequested.exchange(false);
    const bool checkFile = watchFile_ && (++ticks % 4 == 0);  // about once a second
    if (!signalled && !(checkFile && store_->changedOnDisk())) continue;
    lock.unlock();
    if (auto error = store_->reload()) {
      log::error("policy", "policy reload refused; the previous policy stays in force",
                 {{"file", store_->path()}, {"error", *error}});
    } else {
      log::info("policy", "policy reloaded",
                {{"file", store_->path()},
                 {"rules", store_->current()->ruleCount()},
                 {"trigger", signalled ? "SIGHUP" : "file change"}});
    }
    lock.lock();
  }
}

Expected<SecurityStack, std::string> buildSecurity(const config::Config& config) {
  SecurityStack stack;
  auto chain = auth::AuthChain::create(config);
  if (!chain) return unexpected(config.path + ": " + chain.error());
  stack.auth = std::move(chain.value());
  if (!config.policyFile.empty()) {
    auto loaded = policy::Policy::loadFile(config.policyFile);
    if (!loaded) return unexpected(loaded.error());
    stack.policy = std::make_shared<policy::PolicyStore>(config.policyFile, loaded.value());
  }
  auto limits = guard::CallLimits::create(config.rateLimits);
  if (!limits) return unexpected(config.path + ": " + limits.error());
  if (!(*limits)->empty()) stack.limits = std::move(limits.value());
  std::map<std::string, guard::AccessGuard::ConnectorFacts> facts;
  for (const auto& c : config.connectors) {
    // Per-region instances share the id (policy targets.connectors names it); each region's
    // tags add region:<name>, chosen by the routed AccessTarget::region.
    guard::AccessGuard::ConnectorFacts connectorFacts{c.tags, c.tokenExchangeAudience};
    for (const auto& region : c.regions) {
      auto& tags = connectorFacts.regionTags[region.name];
      tags = c.tags;
      tags.push_back(config::regionTag(region.name));
    }
    facts[c.id] = std::move(connectorFacts);
  }
  std::weak_ptr<auth::AuthChain> weakChain = stack.auth;
  stack.guard = std::make_shared<guard::AccessGuard>(
      stack.policy, std::move(facts),
      [weakChain](const auth::Principal& who,
                  const std::string& audience) -> Expected<std::string, std::string> {
        auto chainNow = weakChain.lock();
        if (!chainNow) return unexpected(std::string("the host is shutting down"));
        return chainNow->exchangeToken(who, audience);
      });
  return stack;
}

}  // namespace mcphost::app
