#include "auth/api_key_store.hpp"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <sys/stat.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

using mcphost::auth::ApiKeyStore;
using mcphost::auth::AuthError;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device seed;
    path =
        fs::temp_directory_path() / ("mcphost-keys-test-" + std::to_string(seed()) + std::to_string(seed()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return (path / name).string(); }
};

std::unique_ptr<ApiKeyStore> openStore(const std::string& databasePath) {
  auto store = ApiKeyStore::open(databasePath);
  INFO((store ? std::string() : store.error()));
  REQUIRE(store);
  return std::move(store).value();
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The database plus its WAL side files: everything SQLite may have written.
std::string databaseBytes(const std::string& path) {
  std::string bytes;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"})
    if (fs::exists(path + suffix)) bytes += readAll(path + suffix);
  return bytes;
}

void requireInvalidKey(ApiKeyStore& store, std::string_view presented) {
  const auto result = store.authenticate(presented);
  REQUIRE_FALSE(result);
  CHECK(result.error().error == AuthError::kInvalidCredentials);
  CHECK(result.error().message == "invalid API key");
  CHECK(result.error().scheme == "Bearer");
}

std::string secretOf(const std::string& key) {
  return key.substr(key.size() - 43);
}

}  // namespace

TEST_CASE("api keys: create then authenticate yields the service account principal", "[apikeys]") {
  TempDir dir;
  auto store = openStore(dir.file("keys.db"));
  const auto created = store->create("ci-bot", {"tools:read", "tools:call"}, std::nullopt, {"build", "ops"});
  REQUIRE(created);
  const auto& key = created->key;
  CHECK(ApiKeyStore::looksLikeApiKey(key));
  REQUIRE(key.size() == 5 + 12 + 1 + 43);
  CHECK(key.substr(0, 5) == "mcph_");
  CHECK(key.substr(5, 12) == created->info.id);
  CHECK(key[17] == '_');
  for (char c : created->info.id) CHECK(((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')));
  CHECK(created->info.name == "ci-bot");
  CHECK_FALSE(created->info.expires);
  CHECK_FALSE(created->info.revoked);

  const auto principal = store->authenticate(key);
  REQUIRE(principal);
  CHECK(principal->subject == "apikey:ci-bot");
  CHECK(principal->displayName == "ci-bot");
  CHECK(principal->authMethod == "api_key");
  CHECK(principal->scopes == std::vector<std::string>{"tools:read", "tools:call"});
  CHECK(principal->groups == std::vector<std::string>{"build", "ops"});
  CHECK(principal->attributes == nlohmann::json{{"key_id", created->info.id}});
  CHECK(principal->subjectToken.empty());
  CHECK(principal->hasScope("tools:call"));
}

TEST_CASE("api keys: the secret never reaches the database file", "[apikeys]") {
  TempDir dir;
  const auto path = dir.file("keys.db");
  std::vector<std::string> secrets;
  {
    auto store = openStore(path);
    for (int i = 0; i < 5; ++i) {
      const auto created = store->create("svc" + std::to_string(i), {"a"}, 3600s);
      REQUIRE(created);
      secrets.push_back(secretOf(created->key));
      REQUIRE(store->authenticate(created->key));
    }
    const auto bytes = databaseBytes(path);
    REQUIRE_FALSE(bytes.empty());
    for (const auto& secret : secrets) CHECK(bytes.find(secret) == std::string::npos);
  }
  const auto bytes = databaseBytes(path);
  for (const auto& secret : secrets) CHECK(bytes.find(secret) == std::string::npos);
}

TEST_CASE("api keys: wrong, unknown, malformed and odd inputs all get the same answer", "[apikeys]") {
  TempDir dir;
  auto store = openStore(dir.file("keys.db"));
  const auto created = store->create("svc", {"a"}, std::nullopt);
  REQUIRE(created);
  const std::string key = created->key;

  std::string wrongSecret = key;
  wrongSecret.back() = wrongSecret.back() == 'A' ? 'B' : 'A';
  requireInvalidKey(*store, wrongSecret);

  std::string unknownId = key;
  unknownId[5] = unknownId[5] == 'a' ? 'b' : 'a';
  requireInvalidKey(*store, unknownId);

  requireInvalidKey(*store, key.substr(0, key.size() - 1));  // truncated
  requireInvalidKey(*store, key + "A");                      // one too long
  requireInvalidKey(*store, "");
  requireInvalidKey(*store, "mcph_");
  requireInvalidKey(*store, "mcph_" + created->info.id);
  requireInvalidKey(*store, "Bearer " + key);
  requireInvalidKey(*store, std::string(1 << 20, 'x'));  // huge
  requireInvalidKey(*store, "mcph_" + std::string(1 << 16, 'a'));
  std::string separatorWrong = key;
  separatorWrong[17] = '-';
  requireInvalidKey(*store, separatorWrong);
  std::string badAlphabet = key;
  badAlphabet[30] = '+';
  requireInvalidKey(*store, badAlphabet);
  std::string upperId = key;
  upperId[6] = 'Z';
  requireInvalidKey(*store, upperId);
  requireInvalidKey(*store, std::string("mcph_\0", 6) + key.substr(6));

  // The detail (host log only) never contains the secret.
  const auto failure = store->authenticate(wrongSecret);
  REQUIRE_FALSE(failure);
  CHECK(failure.error().detail.find(secretOf(wrongSecret)) == std::string::npos);
  CHECK(failure.error().detail.find(secretOf(key)) == std::string::npos);

  CHECK(store->authenticate(key));  // the real key still works afterwards
  CHECK_FALSE(ApiKeyStore::looksLikeApiKey("eyJhbGciOi.x.y"));
  CHECK_FALSE(ApiKeyStore::looksLikeApiKey(""));
}

TEST_CASE("api keys: an expired key is refused with a message that says what to do", "[apikeys]") {
  TempDir dir;
  auto store = openStore(dir.file("keys.db"));
  const auto created = store->create("short-lived", {"a"}, 60s);
  REQUIRE(created);
  REQUIRE(created->info.expires);
  CHECK(*created->info.expires - created->info.created == 60s);
  const auto start = std::chrono::system_clock::now();

  CHECK(store->authenticateAt(created->key, start));
  CHECK(store->authenticateAt(created->key, start + 30s));
  const auto expired = store->authenticateAt(created->key, start + 62s);
  REQUIRE_FALSE(expired);
  CHECK(expired.error().error == AuthError::kInvalidCredentials);
  CHECK(expired.error().message ==
        "API key expired: create a new one with `mcphost keys create` or rotate it");

  // Only the holder of the secret learns about the expiry.
  std::string wrong = created->key;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  const auto wrongLater = store->authenticateAt(wrong, start + 62s);
  REQUIRE_FALSE(wrongLater);
  CHECK(wrongLater.error().message == "invalid API key");

  SECTION("with the real clock") {
    const auto oneSecond = store->create("one-second", {}, 1s);
    REQUIRE(oneSecond);
    std::this_thread::sleep_for(2100ms);
    const auto late = store->authenticate(oneSecond->key);
    REQUIRE_FALSE(late);
    CHECK(late.error().message.starts_with("API key expired"));
  }
}

TEST_CASE("api keys: revoke by id and by name", "[apikeys]") {
  TempDir dir;
  auto store = openStore(dir.file("keys.db"));
  const auto first = store->create("worker", {"a"}, std::nullopt);
  const auto second = store->create("worker", {"a"}, std::nullopt);
  const auto other = store->create("other", {"a"}, std::nullopt);
  REQUIRE((first && second && other));

  REQUIRE_FALSE(store->revoke(first->info.id));
  const auto revoked = store->authenticate(first->key);
  REQUIRE_FALSE(revoked);
  CHECK(revoked.error().error == AuthError::kInvalidCredentials);
  CHECK(revoked.error().message == "API key revoked");
  CHECK(store->authenticate(second->key));
  CHECK_FALSE(store->revoke(first->info.id));  // again: already revoked is fine

  REQUIRE_FALSE(store->revoke("worker"));
  CHECK_FALSE(store->authenticate(second->key));
  CHECK(store->authenticate(other->key));

  const auto nothing = store->revoke("no-such-account");
  REQUIRE(nothing);
  CHECK(nothing->find("no-such-account") != std::string::npos);
  CHECK(store->revoke(""));

  const auto keys = store->list();
  REQUIRE(keys);
  for (const auto& info : *keys) CHECK(info.revoked == (info.name == "worker"));
}

TEST_CASE("api keys: overlapping rotation keeps both keys valid, then only the new one", "[apikeys]") {
  TempDir dir;
  auto store = openStore(dir.file("keys.db"));
  const auto old = store->create("deployer", {"tools:call"}, 3600s * 24, {"release"});
  REQUIRE(old);
  const auto start = std::chrono::system_clock::now();
  const auto rotated = store->rotate("deployer", 300s);
  REQUIRE(rotated);
  CHECK(rotated->info.name == "deployer");
  CHECK(rotated->info.id != old->info.id);
  CHECK(rotated->info.scopes == std::vector<std::string>{"tools:call"});
  CHECK(rotated->info.groups == std::vector<std::string>{"release"});
  REQUIRE(rotated->info.expires);
  CHECK(*rotated->info.expires - rotated->info.created == 24h);  // same lifetime length

  CHECK(store->authenticateAt(old->key, start));
  CHECK(store->authenticateAt(rotated->key, start));
  CHECK(store->authenticateAt(old->key, start + 290s));
  const auto oldLater = store->authenticateAt(old->key, start + 302s);
  REQUIRE_FALSE(oldLater);
  CHECK(oldLater.error().message.starts_with("API key expired"));
  const auto newLater = store->authenticateAt(rotated->key, start + 302s);
  REQUIRE(newLater);
  CHECK(newLater->scopes == std::vector<std::string>{"tools:call"});

  SECTION("rotation never extends an expiry that was already sooner") {
    const auto soon = store->create("soon", {}, 10s);
    REQUIRE(soon);
    REQUIRE(store->rotate("soon", 3600s));
    const auto keys = store->list();
    REQUIRE(keys);
    for (const auto& info : *keys)
      if (info.id == soon->info.id) CHECK(info.expires == soon->info.expires);
  }
  SECTION("a key without expiry rotates to a key without expiry") {
    REQUIRE(store->create("forever", {"x"}, std::nullopt));
    const auto next = store->rotate("forever", 0s);
    REQUIRE(next);
    CHECK_FALSE(next->info.expires);
  }
  SECTION("nothing to rotate") {
    const auto missing = store->rotate("nobody", 60s);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().find("mcphost keys create") != std::string::npos);
    CHECK_FALSE(store->rotate("deployer", -1s));
    CHECK_FALSE(store->rotate("bad name", 60s));
  }
}

TEST_CASE("api keys: list shows keys with last use", "[apikeys]") {
  TempDir dir;
  auto store = openStore(dir.file("keys.db"));
  const auto used = store->create("used", {"a", "b"}, 3600s);
  const auto unused = store->create("unused", {}, std::nullopt);
  REQUIRE((used && unused));
  REQUIRE(store->authenticate(used->key));
  // Repeated use within the minute: served without rewriting last_used.
  for (int i = 0; i < 20; ++i) REQUIRE(store->authenticate(used->key));

  const auto keys = store->list();
  REQUIRE(keys);
  REQUIRE(keys->size() == 2);
  for (const auto& info : *keys) {
    if (info.id == used->info.id) {
      CHECK(info.name == "used");
      CHECK(info.scopes == std::vector<std::string>{"a", "b"});
      REQUIRE(info.lastUsed);
      CHECK(*info.lastUsed >= info.created);
      CHECK(info.expires == used->info.expires);
    } else {
      CHECK(info.id == unused->info.id);
      CHECK_FALSE(info.lastUsed);
      CHECK_FALSE(info.expires);
    }
    CHECK_FALSE(info.revoked);
  }

  // A use more than a minute later refreshes it.
  const auto later = std::chrono::system_clock::now() + 120s;
  REQUIRE(store->authenticateAt(used->key, later));
  const auto again = store->list();
  REQUIRE(again);
  for (const auto& info : *again)
    if (info.id == used->info.id) CHECK(*info.lastUsed == std::chrono::floor<std::chrono::seconds>(later));
}

TEST_CASE("api keys: keys survive reopening the database, files are private", "[apikeys]") {
  TempDir dir;
  const auto path = (dir.path / "nested" / "state" / "keys.db").string();
  std::string key;
  {
    auto store = openStore(path);
    const auto created = store->create("persistent", {"s"}, std::nullopt);
    REQUIRE(created);
    key = created->key;
  }
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  REQUIRE(::stat((dir.path / "nested" / "state").c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0700);
  REQUIRE(::stat((dir.path / "nested").c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0700);

  auto reopened = openStore(path);
  const auto principal = reopened->authenticate(key);
  REQUIRE(principal);
  CHECK(principal->subject == "apikey:persistent");
  for (const char* suffix : {"-wal", "-shm"})
    if (::stat((path + suffix).c_str(), &info) == 0) CHECK((info.st_mode & 0777) == 0600);

  SECTION("an existing file with a wider mode is tightened") {
    reopened.reset();
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    auto again = openStore(path);
    REQUIRE(::stat(path.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);
  }
}

TEST_CASE("api keys: a database from a newer mcphost is refused", "[apikeys]") {
  TempDir dir;
  const auto path = dir.file("keys.db");
  { openStore(path); }
  {
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session session("SQLite", path);
    session << "UPDATE meta SET value = '7' WHERE key = 'schema_version'", Poco::Data::Keywords::now;
  }
  const auto refused = ApiKeyStore::open(path);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().find("schema version 7") != std::string::npos);
  CHECK(refused.error().find("upgrade mcphost") != std::string::npos);

  SECTION("a file that is not a database is an error, not a crash") {
    const auto junk = dir.file("junk.db");
    std::ofstream(junk) << std::string(4096, 'j');
    const auto bad = ApiKeyStore::open(junk);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().find(junk) != std::string::npos);
  }
  SECTION("an empty path is an error") {
    CHECK_FALSE(ApiKeyStore::open(""));
  }
}

TEST_CASE("api keys: invalid names, scopes, groups and lifetimes are refused", "[apikeys]") {
  TempDir dir;
  auto store = openStore(dir.file("keys.db"));
  const std::vector<std::string> badNames{
      "",           "has space",   "slash/name",         "semi;colon",
      "quote'name", "uni\xc3\xa9", std::string(65, 'a'), std::string("nul\0x", 5)};
  for (const auto& name : badNames) {
    INFO(name);
    CHECK_FALSE(store->create(name, {"a"}, std::nullopt));
  }
  CHECK(store->create(std::string(64, 'a'), {}, std::nullopt));
  CHECK(store->create("A.b_c-9", {}, std::nullopt));

  for (const std::string scope : {"", "two words", "tab\there", "new\nline", "del\x7f"}) {
    INFO(scope);
    CHECK_FALSE(store->create("svc", {"ok", scope}, std::nullopt));
    CHECK_FALSE(store->create("svc", {"ok"}, std::nullopt, {scope}));
  }
  CHECK_FALSE(store->create("svc", {"a"}, 0s));
  CHECK_FALSE(store->create("svc", {"a"}, -5s));
  CHECK_FALSE(store->create("svc", {"a"}, std::chrono::seconds::max()));

  // SQL metacharacters in scopes are data, not SQL.
  const auto tricky = store->create("svc", {"x');DROP_TABLE_api_keys;--"}, std::nullopt);
  REQUIRE(tricky);
  const auto principal = store->authenticate(tricky->key);
  REQUIRE(principal);
  CHECK(principal->scopes == std::vector<std::string>{"x');DROP_TABLE_api_keys;--"});
}

TEST_CASE("api keys: concurrent authentication from 8 threads", "[apikeys]") {
  TempDir dir;
  auto store = openStore(dir.file("keys.db"));
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i) {
    const auto created = store->create("svc" + std::to_string(i), {"a"}, std::nullopt);
    REQUIRE(created);
    keys.push_back(created->key);
  }
  std::string wrong = keys.front();
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';

  std::atomic<int> accepted{0};
  std::atomic<int> refused{0};
  std::atomic<int> mismatched{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const auto& key = keys[static_cast<std::size_t>((t + i) % 4)];
        const auto good = store->authenticate(key);
        if (good && good->subject == "apikey:svc" + std::to_string((t + i) % 4))
          ++accepted;
        else
          ++mismatched;
        if (!store->authenticate(wrong)) ++refused;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(accepted == 400);
  CHECK(refused == 400);
  CHECK(mismatched == 0);
}
