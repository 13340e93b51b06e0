// Remembers bearer tokens that passed full validation, so a client that sends the same token
// on every request pays for the signature check once a minute rather than every time. Keyed by
// the token's SHA-256 (the exact bytes: any change is a different token); an entry lives until
// the token's own expiry or one minute, whichever is first, so a key withdrawn from the JWKS
// stops being honoured within a minute.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "auth/principal.hpp"

namespace mcphost::auth {

class VerifiedTokenCache {
 public:
  using Clock = std::chrono::system_clock;
  static constexpr std::chrono::seconds kMaxAge{60};
  static constexpr std::size_t kMaxEntries = 10000;

  std::optional<Principal> find(const std::string& digest, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(digest);
    if (it == entries_.end()) return std::nullopt;
    if (now >= it->second.validUntil) {
      entries_.erase(it);
      return std::nullopt;
    }
    return it->second.principal;
  }

  void store(const std::string& digest, const Principal& principal, Clock::time_point expires,
             Clock::time_point now) {
    std::lock_guard lock(mutex_);
    // Bounded: when full, start over (every entry can be re-earned by one full validation).
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_[digest] = Entry{principal, std::min(expires, now + kMaxAge)};
  }

 private:
  struct Entry {
    Principal principal;
    Clock::time_point validUntil;
  };
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace mcphost::auth
