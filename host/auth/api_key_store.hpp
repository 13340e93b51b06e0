// API keys for service accounts: long random secrets handed out once and verified against
// salted HMAC-SHA256 hashes kept in a small SQLite database. The database never holds a secret,
// so a copied database file (or backup) cannot be turned into working credentials.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth_failure.hpp"
#include "auth/principal.hpp"
#include "common/expected.hpp"

namespace mcphost::auth {

struct ApiKeyInfo {
  std::string id;    // public key id (12 chars [a-z0-9]), shown in lists and logs
  std::string name;  // the service account name; several keys may share it during rotation
  std::vector<std::string> scopes;
  std::vector<std::string> groups;  // optional, for policy
  std::chrono::system_clock::time_point created;
  std::optional<std::chrono::system_clock::time_point> expires;
  std::optional<std::chrono::system_clock::time_point> lastUsed;
  bool revoked = false;
};

struct CreatedKey {
  ApiKeyInfo info;
  // The full secret "mcph_<id>_<43 chars base64url of 32 random bytes>": printed once, never
  // stored, never logged.
  std::string key;
};

// Thread-safe: one mutex around the single SQLite session (WAL mode, so a CLI process can list
// or revoke keys while the daemon verifies them). No exception escapes the public API.
class ApiKeyStore {
  struct Impl;
  // Only open() can make one: the key type is private and not constructible from `{}`.
  class ConstructionKey {
    friend class ApiKeyStore;
    explicit ConstructionKey() = default;
  };

 public:
  using TimePoint = std::chrono::system_clock::time_point;

  // Opens or creates the database file (creating a missing parent directory with mode 0700);
  // the file gets mode 0600. Refuses a database written by a newer mcphost (schema version).
  static Expected<std::unique_ptr<ApiKeyStore>, std::string> open(const std::string& databasePath);

  ApiKeyStore(ConstructionKey /*unused*/, std::unique_ptr<Impl> impl);
  ~ApiKeyStore();
  ApiKeyStore(const ApiKeyStore&) = delete;
  ApiKeyStore& operator=(const ApiKeyStore&) = delete;

  // A new key for the service account `name`; no lifetime = never expires.
  Expected<CreatedKey, std::string> create(const std::string& name, const std::vector<std::string>& scopes,
                                           std::optional<std::chrono::seconds> lifetime,
                                           const std::vector<std::string>& groups = {});

  // Overlapping rotation: a new key for `name` with the scopes, groups and lifetime length of its
  // newest active key; every other active key of that name then expires at
  // min(its expiry, now + overlap), so clients can switch over without an outage.
  Expected<CreatedKey, std::string> rotate(const std::string& name, std::chrono::seconds overlap);

  // Revokes one key by id, or every key of a service account by name. Error when nothing
  // matched; revoking an already revoked key is not an error.
  std::optional<std::string> revoke(const std::string& idOrName);

  // Every key, newest first (revoked and expired ones included, flagged).
  Expected<std::vector<ApiKeyInfo>, std::string> list();

  // Verifies a presented key "mcph_<id>_<secret>". On success the principal has subject
  // "apikey:<name>", authMethod "api_key", the key's scopes and groups and attributes.key_id.
  Expected<Principal, AuthFailure> authenticate(std::string_view presentedKey);
  // The same at an injected time (for tests and for callers with their own clock).
  Expected<Principal, AuthFailure> authenticateAt(std::string_view presentedKey, TimePoint now);

  // Cheap routing check: does this bearer token look like one of ours ("mcph_" prefix)?
  static bool looksLikeApiKey(std::string_view token);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcphost::auth
