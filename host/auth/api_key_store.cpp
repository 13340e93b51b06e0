#include "auth/api_key_store.hpp"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/base64.hpp"
#include "common/crypto.hpp"

namespace mcphost::auth {

using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;
using TimePoint = ApiKeyStore::TimePoint;

namespace {

constexpr std::string_view kKeyPrefix = "mcph_";
constexpr std::size_t kIdLength = 12;
constexpr std::size_t kSecretBytes = 32;
constexpr std::size_t kSecretLength = 43;  // base64url of 32 bytes, no padding
constexpr std::size_t kKeyLength = kKeyPrefix.size() + kIdLength + 1 + kSecretLength;
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kMaxNameLength = 64;
constexpr std::size_t kMaxTokenLength = 256;
constexpr int kSchemaVersion = 1;
// last_used is informational ("which keys are still in use?"); writing it on every request would
// turn each authentication into a database write, so it is refreshed at most once a minute.
constexpr std::int64_t kLastUsedRefreshSeconds = 60;
// Upper bound for lifetimes and overlaps: keeps unix-second arithmetic far from overflow.
constexpr std::chrono::seconds kMaxDuration{std::chrono::hours(24) * 365 * 100};

constexpr std::string_view kInvalidKeyMessage = "invalid API key";
constexpr std::string_view kExpiredKeyMessage =
    "API key expired: create a new one with `mcphost keys create` or rotate it";
constexpr std::string_view kRevokedKeyMessage = "API key revoked";
constexpr std::string_view kUnavailableMessage = "API key store unavailable";

std::int64_t toUnix(TimePoint t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}
TimePoint fromUnix(std::int64_t seconds) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::seconds(seconds)));
}
// Columns that may be NULL are read through COALESCE(column, 0); 0 (1970) never is a real value.
std::optional<TimePoint> optionalFromUnix(std::int64_t seconds) {
  if (seconds == 0) return std::nullopt;
  return fromUnix(seconds);
}

bool isIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool isBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}
bool isNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

bool looksLikeKeyId(std::string_view text) {
  if (text.size() != kIdLength) return false;
  for (char c : text)
    if (!isIdChar(c)) return false;
  return true;
}

std::optional<std::string> validateName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength)
    return "invalid service account name: use 1 to 64 characters from A-Z a-z 0-9 . _ -";
  for (char c : name)
    if (!isNameChar(c))
      return "invalid service account name '" + name + "': use only the characters A-Z a-z 0-9 . _ -";
  return std::nullopt;
}

std::optional<std::string> validateTokens(const std::vector<std::string>& tokens, std::string_view what) {
  for (const auto& token : tokens) {
    if (token.empty() || token.size() > kMaxTokenLength)
      return "invalid " + std::string(what) + ": each must be 1 to 256 characters";
    for (unsigned char c : token)
      if (c <= 0x20 || c == 0x7f)
        return "invalid " + std::string(what) + ": '" + (token.size() > 64 ? token.substr(0, 64) : token) +
               "' contains a space or control character";
  }
  return std::nullopt;
}

std::optional<std::string> validateDuration(std::chrono::seconds value, std::string_view what,
                                            bool allowZero) {
  if (value.count() < 0 || (!allowZero && value.count() == 0)) return std::string(what) + " must be positive";
  if (value > kMaxDuration) return std::string(what) + " is too long (at most 100 years)";
  return std::nullopt;
}

// 12 characters from [a-z0-9]; rejection sampling keeps every character uniformly distributed.
std::string newKeyId() {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  constexpr unsigned kUnbiasedLimit = 256 - (256 % kAlphabet.size());  // 252
  std::string id;
  while (id.size() < kIdLength) {
    for (unsigned char byte : randomBytes(2 * kIdLength)) {
      if (byte >= kUnbiasedLimit) continue;
      id += kAlphabet[byte % kAlphabet.size()];
      if (id.size() == kIdLength) break;
    }
  }
  return id;
}

struct ParsedKey {
  std::string_view id;
  std::string_view secret;
};

// "mcph_" + 12 id chars + "_" + 43 base64url chars. Positions are fixed because the secret's
// alphabet contains '_' itself, so splitting on '_' would be ambiguous.
std::optional<ParsedKey> parseKey(std::string_view key) {
  if (key.size() != kKeyLength || !key.starts_with(kKeyPrefix)) return std::nullopt;
  const std::string_view id = key.substr(kKeyPrefix.size(), kIdLength);
  if (!looksLikeKeyId(id) || key[kKeyPrefix.size() + kIdLength] != '_') return std::nullopt;
  const std::string_view secret = key.substr(kKeyPrefix.size() + kIdLength + 1);
  for (char c : secret)
    if (!isBase64UrlChar(c)) return std::nullopt;
  return ParsedKey{id, secret};
}

std::optional<std::vector<std::string>> parseStringArray(const std::string& text) {
  const auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_array()) return std::nullopt;
  std::vector<std::string> out;
  out.reserve(parsed.size());
  for (const auto& item : parsed) {
    if (!item.is_string()) return std::nullopt;
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::string describe(const std::exception& e) {
  if (const auto* poco = dynamic_cast<const Poco::Exception*>(&e)) return poco->displayText();
  return e.what();
}

AuthFailure failure(AuthError error, std::string_view message, std::string detail) {
  AuthFailure result;
  result.error = error;
  result.message = std::string(message);
  result.detail = std::move(detail);
  result.scheme = "Bearer";
  return result;
}
AuthFailure invalidKey(std::string detail) {
  return failure(AuthError::kInvalidCredentials, kInvalidKeyMessage, std::move(detail));
}
AuthFailure keyFailure(std::string_view message, std::string detail) {
  return failure(AuthError::kInvalidCredentials, message, std::move(detail));
}
AuthFailure storeUnavailable(std::string detail) {
  return failure(AuthError::kProviderUnavailable, kUnavailableMessage, std::move(detail));
}

// Creates the missing ancestors of `directory` one by one with mode 0700; existing directories
// (say /var/lib) are left exactly as they are.
std::optional<std::string> createPrivateDirectories(const std::filesystem::path& directory) {
  std::error_code ec;
  if (directory.empty() || std::filesystem::exists(directory, ec)) return std::nullopt;
  if (auto error = createPrivateDirectories(directory.parent_path())) return error;
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST)
    return "cannot create directory " + directory.string() + ": " + std::strerror(errno);
  if (::chmod(directory.c_str(), 0700) != 0)
    return "cannot set mode 0700 on " + directory.string() + ": " + std::strerror(errno);
  return std::nullopt;
}

// Creates the database file with 0600 before SQLite opens it, so it never exists with the
// umask's wider mode; an existing file is tightened to 0600. SQLite gives the -wal and -shm
// files the mode of the database file.
std::optional<std::string> preparePrivateFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return "cannot open " + path + ": " + std::strerror(errno);
  std::optional<std::string> error;
  if (::fchmod(fd, 0600) != 0) error = "cannot set mode 0600 on " + path + ": " + std::strerror(errno);
  ::close(fd);
  return error;
}

void registerSqliteConnector() {
  static std::once_flag once;
  std::call_once(once, [] { Poco::Data::SQLite::Connector::registerConnector(); });
}

// One row of api_keys as read by list() and authenticate().
struct KeyRows {
  std::vector<std::string> ids, names, scopes, groups;
  std::vector<Poco::Int64> created, expires, lastUsed, revokedAt;
};

}  // namespace

struct ApiKeyStore::Impl {
  Impl(std::string databasePath, Poco::Data::Session openedSession)
      : path(std::move(databasePath)), session(std::move(openedSession)) {}

  std::string path;
  std::mutex mutex;  // guards session and lastUsedWriteAttempt
  Poco::Data::Session session;
  // When we last tried to write last_used per key id (unix seconds), so a failing or slow write
  // (database locked by a CLI process) is not retried on every request.
  std::unordered_map<std::string, std::int64_t> lastUsedWriteAttempt;

  // Explicit BEGIN IMMEDIATE: takes the write lock up front, so two processes cannot both read
  // and then deadlock upgrading to a writer.
  void begin() { session << "BEGIN IMMEDIATE", now; }
  void commit() { session << "COMMIT", now; }
  void rollbackQuietly() noexcept {
    try {
      session << "ROLLBACK", now;
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing left to undo if ROLLBACK fails
    }
  }

  Poco::Int64 changes() {
    Poco::Int64 count = 0;
    session << "SELECT changes()", into(count), now;
    return count;
  }

  std::optional<std::string> migrate() {
    begin();
    try {
      session << "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)", now;
      std::vector<std::string> versions;
      std::string versionKey = "schema_version";
      session << "SELECT value FROM meta WHERE key = ?", use(versionKey), into(versions), now;
      if (versions.empty()) {
        session << "CREATE TABLE api_keys ("
                   " id TEXT PRIMARY KEY NOT NULL,"
                   " name TEXT NOT NULL,"
                   " salt TEXT NOT NULL,"         // base64 of 16 random bytes
                   " hash TEXT NOT NULL,"         // base64 of HMAC-SHA256(salt, secret)
                   " scopes_json TEXT NOT NULL,"  // JSON array of strings
                   " groups_json TEXT NOT NULL,"  // JSON array of strings
                   " created INTEGER NOT NULL,"   // unix seconds
                   " expires INTEGER,"            // unix seconds, last valid second; NULL = never
                   " last_used INTEGER,"
                   " revoked_at INTEGER)",
            now;
        session << "CREATE INDEX api_keys_by_name ON api_keys (name)", now;
        std::string version = std::to_string(kSchemaVersion);
        session << "INSERT INTO meta (key, value) VALUES (?, ?)", use(versionKey), use(version), now;
      } else {
        int found = 0;
        try {
          found = std::stoi(versions.front());
        } catch (const std::exception&) {
          found = -1;
        }
        if (found > kSchemaVersion) {
          rollbackQuietly();
          return "API key database " + path + " has schema version " + versions.front() +
                 ", newer than this mcphost supports (" + std::to_string(kSchemaVersion) +
                 "): upgrade mcphost or point it at another database";
        }
        if (found < 1) {
          rollbackQuietly();
          return "API key database " + path + " has an invalid schema version '" + versions.front() + "'";
        }
        // Version 1 is the only one so far; future migrations go here, one step per version.
      }
      commit();
    } catch (...) {
      rollbackQuietly();
      throw;
    }
    return std::nullopt;
  }

  CreatedKey insertKey(const std::string& name, const std::vector<std::string>& scopes,
                       const std::vector<std::string>& groups, std::int64_t createdUnix,
                       std::optional<std::int64_t> expiresUnix) {
    CreatedKey created;
    created.info.id = newKeyId();
    created.info.name = name;
    created.info.scopes = scopes;
    created.info.groups = groups;
    created.info.created = fromUnix(createdUnix);
    if (expiresUnix) created.info.expires = fromUnix(*expiresUnix);

    const std::string secret = base64UrlEncode(randomBytes(kSecretBytes));
    const std::string salt = randomBytes(kSaltBytes);
    std::string id = created.info.id;
    std::string boundName = name;
    std::string saltText = base64Encode(salt);
    std::string hashText = base64Encode(hmacSha256(salt, secret));
    std::string scopesJson = nlohmann::json(scopes).dump();
    std::string groupsJson = nlohmann::json(groups).dump();
    Poco::Int64 createdValue = createdUnix;
    Poco::Int64 expiresValue = expiresUnix.value_or(0);
    session << "INSERT INTO api_keys (id, name, salt, hash, scopes_json, groups_json, created, expires)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, NULLIF(?, 0))",
        use(id), use(boundName), use(saltText), use(hashText), use(scopesJson), use(groupsJson),
        use(createdValue), use(expiresValue), now;
    created.key = std::string(kKeyPrefix) + created.info.id + "_" + secret;
    return created;
  }
};

ApiKeyStore::ApiKeyStore(ConstructionKey /*unused*/, std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiKeyStore::~ApiKeyStore() = default;

Expected<std::unique_ptr<ApiKeyStore>, std::string> ApiKeyStore::open(const std::string& databasePath) {
  if (databasePath.empty()) return unexpected(std::string("no API key database path configured"));
  try {
    if (auto error = createPrivateDirectories(std::filesystem::path(databasePath).parent_path()))
      return unexpected(*error);
    if (auto error = preparePrivateFile(databasePath)) return unexpected(*error);
    registerSqliteConnector();
    auto impl = std::make_unique<Impl>(databasePath, Poco::Data::Session("SQLite", databasePath));
    // Wait for a concurrent writer (the CLI, another host) instead of failing at once.
    int busyTimeout = 0;
    impl->session << "PRAGMA busy_timeout = 5000", into(busyTimeout), now;
    std::string journalMode;
    impl->session << "PRAGMA journal_mode = WAL", into(journalMode), now;
    if (auto error = impl->migrate()) return unexpected(*error);
    return std::make_unique<ApiKeyStore>(ConstructionKey(), std::move(impl));
  } catch (const std::exception& e) {
    return unexpected("cannot open API key database " + databasePath + ": " + describe(e));
  }
}

Expected<CreatedKey, std::string> ApiKeyStore::create(const std::string& name,
                                                      const std::vector<std::string>& scopes,
                                                      std::optional<std::chrono::seconds> lifetime,
                                                      const std::vector<std::string>& groups) {
  if (auto error = validateName(name)) return unexpected(*error);
  if (auto error = validateTokens(scopes, "scope")) return unexpected(*error);
  if (auto error = validateTokens(groups, "group")) return unexpected(*error);
  if (lifetime)
    if (auto error = validateDuration(*lifetime, "lifetime", false)) return unexpected(*error);
  const std::int64_t nowUnix = toUnix(std::chrono::system_clock::now());
  std::optional<std::int64_t> expires;
  if (lifetime) expires = nowUnix + lifetime->count();
  std::lock_guard lock(impl_->mutex);
  try {
    return impl_->insertKey(name, scopes, groups, nowUnix, expires);
  } catch (const std::exception& e) {
    return unexpected("cannot store the new API key: " + describe(e));
  }
}

Expected<CreatedKey, std::string> ApiKeyStore::rotate(const std::string& name, std::chrono::seconds overlap) {
  if (auto error = validateName(name)) return unexpected(*error);
  if (auto error = validateDuration(overlap, "overlap", true)) return unexpected(*error);
  const std::int64_t nowUnix = toUnix(std::chrono::system_clock::now());
  std::lock_guard lock(impl_->mutex);
  auto& session = impl_->session;
  try {
    impl_->begin();
    try {
      std::string boundName = name;
      Poco::Int64 nowValue = nowUnix;
      std::vector<std::string> scopesJson, groupsJson;
      std::vector<Poco::Int64> created, expires;
      session << "SELECT scopes_json, groups_json, created, COALESCE(expires, 0) FROM api_keys"
                 " WHERE name = ? AND revoked_at IS NULL AND (expires IS NULL OR expires >= ?)"
                 " ORDER BY created DESC, rowid DESC LIMIT 1",
          use(boundName), use(nowValue), into(scopesJson), into(groupsJson), into(created), into(expires),
          now;
      if (scopesJson.empty()) {
        impl_->rollbackQuietly();
        return unexpected("no active API key named '" + name +
                          "' to rotate: create one with `mcphost keys create`");
      }
      auto scopes = parseStringArray(scopesJson.front());
      auto groups = parseStringArray(groupsJson.front());
      if (!scopes || !groups) {
        impl_->rollbackQuietly();
        return unexpected("the newest API key named '" + name + "' has corrupt scopes or groups");
      }
      // The new key keeps the lifetime length of the key it replaces (none stays none).
      std::optional<std::int64_t> newExpires;
      if (expires.front() != 0) newExpires = nowUnix + (expires.front() - created.front());
      // Shorten, never extend: keys already expiring before the cutoff keep their expiry.
      Poco::Int64 cutoff = nowUnix + overlap.count();
      session << "UPDATE api_keys SET expires = ?"
                 " WHERE name = ? AND revoked_at IS NULL AND (expires IS NULL OR expires > ?)",
          use(cutoff), use(boundName), use(cutoff), now;
      CreatedKey createdKey = impl_->insertKey(name, *scopes, *groups, nowUnix, newExpires);
      impl_->commit();
      return createdKey;
    } catch (...) {
      impl_->rollbackQuietly();
      throw;
    }
  } catch (const std::exception& e) {
    return unexpected("cannot rotate the API keys of '" + name + "': " + describe(e));
  }
}

std::optional<std::string> ApiKeyStore::revoke(const std::string& idOrName) {
  const std::string shown = idOrName.size() > kMaxNameLength ? idOrName.substr(0, kMaxNameLength) : idOrName;
  if (idOrName.empty()) return std::string("give the id or the name of the API key to revoke");
  std::lock_guard lock(impl_->mutex);
  auto& session = impl_->session;
  try {
    std::string target = idOrName;
    Poco::Int64 nowValue = toUnix(std::chrono::system_clock::now());
    Poco::Int64 matches = 0;
    // An id wins over a name: a service account that happens to be called like a key id must not
    // lose all its keys when one key is revoked.
    session << "SELECT COUNT(*) FROM api_keys WHERE id = ?", use(target), into(matches), now;
    if (matches > 0) {
      session << "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", use(nowValue),
          use(target), now;
      return std::nullopt;
    }
    session << "SELECT COUNT(*) FROM api_keys WHERE name = ?", use(target), into(matches), now;
    if (matches == 0) return "no API key with id or name '" + shown + "'";
    session << "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", use(nowValue),
        use(target), now;
    return std::nullopt;
  } catch (const std::exception& e) {
    return "cannot revoke '" + shown + "': " + describe(e);
  }
}

Expected<std::vector<ApiKeyInfo>, std::string> ApiKeyStore::list() {
  std::lock_guard lock(impl_->mutex);
  try {
    KeyRows rows;
    impl_->session << "SELECT id, name, scopes_json, groups_json, created, COALESCE(expires, 0),"
                      " COALESCE(last_used, 0), COALESCE(revoked_at, 0) FROM api_keys"
                      " ORDER BY created DESC, rowid DESC",
        into(rows.ids), into(rows.names), into(rows.scopes), into(rows.groups), into(rows.created),
        into(rows.expires), into(rows.lastUsed), into(rows.revokedAt), now;
    std::vector<ApiKeyInfo> keys;
    keys.reserve(rows.ids.size());
    for (std::size_t i = 0; i < rows.ids.size(); ++i) {
      ApiKeyInfo info;
      info.id = rows.ids[i];
      info.name = rows.names[i];
      auto scopes = parseStringArray(rows.scopes[i]);
      auto groups = parseStringArray(rows.groups[i]);
      if (!scopes || !groups) return unexpected("API key " + info.id + " has corrupt scopes or groups");
      info.scopes = std::move(*scopes);
      info.groups = std::move(*groups);
      info.created = fromUnix(rows.created[i]);
      info.expires = optionalFromUnix(rows.expires[i]);
      info.lastUsed = optionalFromUnix(rows.lastUsed[i]);
      info.revoked = rows.revokedAt[i] != 0;
      keys.push_back(std::move(info));
    }
    return keys;
  } catch (const std::exception& e) {
    return unexpected("cannot list API keys: " + describe(e));
  }
}

Expected<Principal, AuthFailure> ApiKeyStore::authenticate(std::string_view presentedKey) {
  return authenticateAt(presentedKey, std::chrono::system_clock::now());
}

Expected<Principal, AuthFailure> ApiKeyStore::authenticateAt(std::string_view presentedKey, TimePoint at) {
  // Malformed, unknown and wrong keys all get the same message, so the answer is no oracle. The
  // detail (for the host log) names at most the public key id, never the secret.
  const auto parsed = parseKey(presentedKey);
  if (!parsed)
    return unexpected(invalidKey("malformed API key (" + std::to_string(presentedKey.size()) + " bytes)"));
  const std::int64_t nowUnix = toUnix(at);
  std::string id(parsed->id);

  std::lock_guard lock(impl_->mutex);
  KeyRows rows;
  std::vector<std::string> salts, hashes;
  try {
    impl_->session << "SELECT name, salt, hash, scopes_json, groups_json, COALESCE(expires, 0),"
                      " COALESCE(last_used, 0), COALESCE(revoked_at, 0) FROM api_keys WHERE id = ?",
        use(id), into(rows.names), into(salts), into(hashes), into(rows.scopes), into(rows.groups),
        into(rows.expires), into(rows.lastUsed), into(rows.revokedAt), now;
  } catch (const std::exception& e) {
    return unexpected(storeUnavailable("API key lookup failed: " + describe(e)));
  }
  if (rows.names.empty()) {
    // Spend the same HMAC work as for a known id, so timing does not tell ids apart either.
    static const std::string kDummySalt(kSaltBytes, '\0');
    (void)hmacSha256(kDummySalt, parsed->secret);
    return unexpected(invalidKey("unknown API key id " + id));
  }
  const auto salt = base64Decode(salts.front());
  const auto storedHash = base64Decode(hashes.front());
  if (!salt || !storedHash)
    return unexpected(storeUnavailable("API key " + id + " has a corrupt salt or hash"));
  if (!constantTimeEquals(hmacSha256(*salt, parsed->secret), *storedHash))
    return unexpected(invalidKey("wrong secret for API key id " + id));

  // Only a caller who holds the secret learns that the key was revoked or has expired.
  if (rows.revokedAt.front() != 0)
    return unexpected(keyFailure(kRevokedKeyMessage, "API key " + id + " is revoked"));
  if (rows.expires.front() != 0 && nowUnix > rows.expires.front())
    return unexpected(keyFailure(kExpiredKeyMessage, "API key " + id + " expired at unix time " +
                                                         std::to_string(rows.expires.front())));

  auto scopes = parseStringArray(rows.scopes.front());
  auto groups = parseStringArray(rows.groups.front());
  if (!scopes || !groups)
    return unexpected(storeUnavailable("API key " + id + " has corrupt scopes or groups"));

  auto& lastAttempt = impl_->lastUsedWriteAttempt[id];
  if (nowUnix - rows.lastUsed.front() >= kLastUsedRefreshSeconds &&
      nowUnix - lastAttempt >= kLastUsedRefreshSeconds) {
    lastAttempt = nowUnix;
    try {
      Poco::Int64 nowValue = nowUnix;
      impl_->session << "UPDATE api_keys SET last_used = ? WHERE id = ?", use(nowValue), use(id), now;
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch)
      // last_used is informational: a locked database must not turn a valid key away.
    }
  }

  Principal principal;
  principal.subject = "apikey:" + rows.names.front();
  principal.displayName = rows.names.front();
  principal.authMethod = "api_key";
  principal.scopes = std::move(*scopes);
  principal.groups = std::move(*groups);
  principal.attributes = nlohmann::json{{"key_id", id}};
  // subjectToken stays empty: an API key is ours, not an IdP token to exchange or forward.
  return principal;
}

bool ApiKeyStore::looksLikeApiKey(std::string_view token) {
  return token.starts_with(kKeyPrefix);
}

}  // namespace mcphost::auth
