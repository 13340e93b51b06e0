// LDAP authentication against a real slapd: search-then-bind, bind-DN templates, groups and
// roles, injection attempts, TLS (StartTLS and LDAPS), outages and recovery, concurrency.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "auth/ldap_authenticator.hpp"
#include "auth/ldap_filter.hpp"
#include "support/slapd_server.hpp"

using namespace std::literals;
using mcphost::auth::AuthError;
using mcphost::auth::LdapAuthenticator;
using mcphost::auth::LdapGroupMode;
using mcphost::auth::LdapSettings;
using mcphost::test::SlapdServer;

namespace {

const char* const kDirectory = R"(dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: cn=reader,dc=example,dc=com
objectClass: simpleSecurityObject
objectClass: organizationalRole
cn: reader
userPassword: reader-secret

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice Archer
sn: Archer
displayName: Alice Archer
mail: alice@example.com
departmentNumber: tenant-a
memberOf: cn=hr,ou=groups,dc=example,dc=com
userPassword: alice-pw

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Builder
sn: Builder
mail: bob@example.com
mail: builder@example.com
memberOf: cn=eng,ou=groups,dc=example,dc=com
userPassword: bob-pw

dn: uid=o'brien (ext),ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: o'brien (ext)
cn: Pat O'Brien
sn: O'Brien
userPassword: p@ss (w0rd)*

dn: uid=smith\2C john,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: smith, john
cn: John Smith
sn: Smith
userPassword: smith-pw

dn: ou=contractors,ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: contractors

dn: uid=dup,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dup
cn: Dup One
sn: One
userPassword: dup-pw

dn: uid=dup,ou=contractors,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dup
cn: Dup Two
sn: Two
userPassword: dup-pw

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: cn=hr,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: hr
member: uid=alice,ou=people,dc=example,dc=com

dn: cn=eng,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: eng
member: uid=bob,ou=people,dc=example,dc=com

dn: cn=admins,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: admins
member: uid=o'brien (ext),ou=people,dc=example,dc=com
)";

// A temporary directory removed with everything in it (config, database, keys) at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) : path_(mcphost::test::makeTempDir(prefix)) {}
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A slapd with the test directory in a directory of its own; stopped before the directory goes.
struct TestDirectory {
  explicit TestDirectory(const std::string& prefix, bool tls = false)
      : dir(prefix), server(dir.path(), kDirectory, tls) {}
  TempDir dir;
  SlapdServer server;
};

// One plain and one TLS server shared by the read-only tests (each is started on first use).
SlapdServer& sharedServer() {
  static const auto directory = std::make_unique<TestDirectory>("mcphost-ldap-");
  return directory->server;
}
SlapdServer& sharedTlsServer() {
  static const auto directory = std::make_unique<TestDirectory>("mcphost-ldaps-", true);
  return directory->server;
}

LdapSettings settingsFor(const std::string& url) {
  LdapSettings settings;
  settings.url = url;
  settings.bindDn = "cn=reader,dc=example,dc=com";
  settings.bindPassword = "reader-secret";
  settings.userBase = "ou=people,dc=example,dc=com";
  settings.groupBase = "ou=groups,dc=example,dc=com";
  settings.groupRoles = {{"hr", {"hr-viewer"}}, {"eng", {"developer"}}, {"admins", {"admin", "developer"}}};
  settings.tenantAttribute = "departmentNumber";
  // userPassword is asked for on purpose: it must never be copied into a principal.
  settings.extraAttributes = {"mail", "userPassword"};
  settings.timeout = 2000ms;
  return settings;
}

// A TCP listener that never accepts and never answers: connects succeed (the kernel completes
// the handshake), every request hangs. Also tells whether anyone tried to connect.
class SilentListener {
 public:
  SilentListener() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  [[nodiscard]] std::string url(std::string_view scheme = "ldap") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_);
  }
  [[nodiscard]] bool someoneConnected() const {
    pollfd watch{fd_, POLLIN, 0};
    return ::poll(&watch, 1, 0) == 1;
  }

 private:
  int fd_;
  std::uint16_t port_ = 0;
};

template <typename Result>
void requireInvalid(const Result& result) {
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().error == AuthError::kInvalidCredentials);
  CHECK(result.error().message == "invalid username or password");
  CHECK(result.error().scheme == "Basic");
}

template <typename Result>
void requireUnavailable(const Result& result) {
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().error == AuthError::kProviderUnavailable);
  CHECK(result.error().message == "directory unavailable: cannot verify credentials now; try again later");
  CHECK(result.error().scheme == "Basic");
}

}  // namespace

TEST_CASE("ldap: escapeFilterValue escapes RFC 4515 specials, NUL and non-ASCII", "[ldap]") {
  using mcphost::auth::escapeFilterValue;
  CHECK(escapeFilterValue("alice") == "alice");
  CHECK(escapeFilterValue("*") == "\\2a");
  CHECK(escapeFilterValue("alice)(uid=*") == "alice\\29\\28uid=\\2a");
  CHECK(escapeFilterValue("a\\29") == "a\\5c29");
  CHECK(escapeFilterValue("a\0b"sv) == "a\\00b");
  CHECK(escapeFilterValue("tab\there") == "tab\\09here");
  CHECK(escapeFilterValue("j\xC3\xBCrgen") == "j\\c3\\bcrgen");
  CHECK(escapeFilterValue("o'brien (ext)") == "o'brien \\28ext\\29");
  CHECK(escapeFilterValue("").empty());
}

TEST_CASE("ldap: escapeDnValue escapes RFC 4514 specials and edge spaces", "[ldap]") {
  using mcphost::auth::escapeDnValue;
  CHECK(escapeDnValue("alice") == "alice");
  CHECK(escapeDnValue("smith, john") == "smith\\, john");
  CHECK(escapeDnValue("a+b=c;d<e>f\"g\\h") == "a\\+b\\=c\\;d\\<e\\>f\\\"g\\\\h");
  CHECK(escapeDnValue(" lead") == "\\ lead");
  CHECK(escapeDnValue("trail ") == "trail\\ ");
  CHECK(escapeDnValue("in side") == "in side");
  CHECK(escapeDnValue("#hash") == "\\#hash");
  CHECK(escapeDnValue("not#first") == "not#first");
  CHECK(escapeDnValue("nul\0"sv) == "nul\\00");
  CHECK(escapeDnValue("j\xC3\xBCrgen") == "j\xC3\xBCrgen");
  CHECK(escapeDnValue("o'brien (ext)") == "o'brien (ext)");
}

TEST_CASE("ldap: filter and DN builders substitute escaped values once", "[ldap]") {
  using mcphost::auth::buildBindDn;
  using mcphost::auth::buildGroupFilter;
  using mcphost::auth::buildUserFilter;
  CHECK(buildUserFilter("(uid={username})", "*)(|(uid=*") == "(uid=\\2a\\29\\28|\\28uid=\\2a)");
  CHECK(buildUserFilter("(|(uid={username})(mail={username}))", "bob") == "(|(uid=bob)(mail=bob))");
  // The replacement is never scanned again.
  CHECK(buildUserFilter("(uid={username})", "{username}") == "(uid={username})");
  CHECK(buildBindDn("uid={username},ou=people,dc=example,dc=com", "alice,ou=admins") ==
        "uid=alice\\,ou\\=admins,ou=people,dc=example,dc=com");
  CHECK(buildGroupFilter("(&(objectClass=groupOfNames)(member={dn}))", "uid=o'brien (ext),dc=x", false) ==
        "(&(objectClass=groupOfNames)(member=uid=o'brien \\28ext\\29,dc=x))");
}

TEST_CASE("ldap: nested groups use the Active Directory in-chain matching rule", "[ldap]") {
  using mcphost::auth::buildGroupFilter;
  const std::string dn = "CN=Alice (HR),OU=Users,DC=corp,DC=example";
  CHECK(buildGroupFilter("(&(objectClass=group)(member={dn}))", dn, true) ==
        "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=CN=Alice "
        "\\28HR\\29,OU=Users,DC=corp,DC=example))");
  CHECK(buildGroupFilter("(Member={dn})", "CN=a", true) == "(Member:1.2.840.113556.1.4.1941:=CN=a)");
  CHECK(buildGroupFilter("(&(objectClass=group)(member={dn}))", dn, false) ==
        "(&(objectClass=group)(member=CN=Alice \\28HR\\29,OU=Users,DC=corp,DC=example))");
  // Other membership attributes are not rewritten.
  CHECK(buildGroupFilter("(uniqueMember={dn})", "CN=a", true) == "(uniqueMember=CN=a)");
}

TEST_CASE("ldap: search-then-bind returns the principal with groups, roles and attributes", "[ldap]") {
  auto& server = sharedServer();
  LdapAuthenticator authenticator(settingsFor(server.url()));
  CHECK_FALSE(authenticator.probe().has_value());

  const auto alice = authenticator.authenticate("alice", "alice-pw");
  REQUIRE(alice.has_value());
  CHECK(alice->authMethod == "ldap");
  CHECK(alice->subject == "alice");
  CHECK(alice->displayName == "Alice Archer");
  CHECK(alice->groups == std::vector<std::string>{"hr"});
  CHECK(alice->roles == std::vector<std::string>{"hr-viewer"});
  CHECK(alice->tenant == "tenant-a");
  CHECK(alice->issuer == server.url());
  CHECK(alice->attributes.at("dn") == "uid=alice,ou=people,dc=example,dc=com");
  CHECK(alice->attributes.at("mail") == "alice@example.com");
  CHECK_FALSE(alice->attributes.contains("userPassword"));
  CHECK(publicView(*alice).dump().find("alice-pw") == std::string::npos);

  // Trimmed, and the directory's spelling of the name becomes the subject.
  const auto shouted = authenticator.authenticate("  ALICE ", "alice-pw");
  REQUIRE(shouted.has_value());
  CHECK(shouted->subject == "alice");

  const auto bob = authenticator.authenticate("bob", "bob-pw");
  REQUIRE(bob.has_value());
  CHECK(bob->groups == std::vector<std::string>{"eng"});
  CHECK(bob->roles == std::vector<std::string>{"developer"});
  CHECK(bob->displayName == "bob");  // no displayName in the entry: the subject
  CHECK(bob->attributes.at("mail") == nlohmann::json::array({"bob@example.com", "builder@example.com"}));
}

TEST_CASE("ldap: wrong password and unknown user get the same answer", "[ldap]") {
  LdapAuthenticator authenticator(settingsFor(sharedServer().url()));
  const auto wrongPassword = authenticator.authenticate("alice", "not-her-password");
  const auto unknownUser = authenticator.authenticate("mallory", "not-her-password");
  requireInvalid(wrongPassword);
  requireInvalid(unknownUser);
  CHECK(wrongPassword.error().message == unknownUser.error().message);
  CHECK(wrongPassword.error().detail.find("not-her-password") == std::string::npos);
  CHECK(unknownUser.error().detail.find("not-her-password") == std::string::npos);
}

TEST_CASE("ldap: bad credentials are refused before contacting the directory", "[ldap]") {
  const SilentListener listener;
  LdapAuthenticator authenticator(settingsFor(listener.url()));
  requireInvalid(authenticator.authenticate("alice", ""));
  requireInvalid(authenticator.authenticate("", "alice-pw"));
  requireInvalid(authenticator.authenticate("   ", "alice-pw"));
  requireInvalid(authenticator.authenticate(std::string(257, 'a'), "alice-pw"));
  requireInvalid(authenticator.authenticate("alice", std::string(1025, 'p')));
  requireInvalid(authenticator.authenticate("alice\0x"sv, "alice-pw"));
  requireInvalid(authenticator.authenticate("alice\n", "alice-pw"));
  requireInvalid(authenticator.authenticate("alice", "alice\0pw"sv));
  CHECK_FALSE(listener.someoneConnected());
}

TEST_CASE("ldap: injection usernames never match another user", "[ldap]") {
  LdapAuthenticator authenticator(settingsFor(sharedServer().url()));
  // Each would match alice (or everyone) if spliced into the filter unescaped; alice's password
  // is used so an unescaped match would actually log in.
  for (const std::string_view name :
       {"*"sv, "a*"sv, "alice*"sv, "alice)(uid=*"sv, "*)(|(uid=*"sv, "alice)(|(uid=*)"sv, "a\\2a"sv,
        "a\\29"sv, "alice\0"sv, "alice\0*"sv, "(uid=alice)"sv, "alice)"sv, "\\"sv,
        "uid=alice,ou=people,dc=example,dc=com"sv}) {
    INFO("username: " << std::string(name));
    requireInvalid(authenticator.authenticate(name, "alice-pw"));
  }
  // Still healthy afterwards.
  CHECK(authenticator.authenticate("alice", "alice-pw").has_value());
}

TEST_CASE("ldap: an ambiguous username is refused", "[ldap]") {
  LdapAuthenticator authenticator(settingsFor(sharedServer().url()));
  const auto result = authenticator.authenticate("dup", "dup-pw");
  requireInvalid(result);
  CHECK(result.error().detail.find("ambiguous") != std::string::npos);
}

TEST_CASE("ldap: names with special characters authenticate", "[ldap]") {
  LdapAuthenticator authenticator(settingsFor(sharedServer().url()));
  const auto obrien = authenticator.authenticate("o'brien (ext)", "p@ss (w0rd)*");
  REQUIRE(obrien.has_value());
  CHECK(obrien->subject == "o'brien (ext)");
  // Found through a group filter whose DN needed escaping.
  CHECK(obrien->groups == std::vector<std::string>{"admins"});
  CHECK(obrien->roles == std::vector<std::string>{"admin", "developer"});
  requireInvalid(authenticator.authenticate("o'brien (ext)", "p@ss (w0rd)"));

  const auto smith = authenticator.authenticate("smith, john", "smith-pw");
  REQUIRE(smith.has_value());
  CHECK(smith->subject == "smith, john");
  CHECK(smith->groups.empty());
}

TEST_CASE("ldap: bind DN template mode", "[ldap]") {
  auto settings = settingsFor(sharedServer().url());
  settings.bindDnTemplate = "uid={username},ou=people,dc=example,dc=com";
  SECTION("reading with the user's own connection") {
    settings.bindDn.clear();
    settings.bindPassword.clear();
  }
  SECTION("reading with the service account") {}
  LdapAuthenticator authenticator(settings);
  CHECK_FALSE(authenticator.probe().has_value());

  const auto alice = authenticator.authenticate("alice", "alice-pw");
  REQUIRE(alice.has_value());
  CHECK(alice->subject == "alice");
  CHECK(alice->displayName == "Alice Archer");
  CHECK(alice->groups == std::vector<std::string>{"hr"});
  CHECK(alice->attributes.at("mail") == "alice@example.com");

  const auto smith = authenticator.authenticate("smith, john", "smith-pw");  // DN-escaped
  REQUIRE(smith.has_value());
  CHECK(smith->attributes.at("dn") == "uid=smith\\, john,ou=people,dc=example,dc=com");
  const auto obrien = authenticator.authenticate("o'brien (ext)", "p@ss (w0rd)*");
  REQUIRE(obrien.has_value());
  CHECK(obrien->groups == std::vector<std::string>{"admins"});

  requireInvalid(authenticator.authenticate("alice", "wrong"));
  requireInvalid(authenticator.authenticate("nobody", "wrong"));
  for (const std::string_view name : {"alice,ou=people"sv, "*"sv, "alice+cn=Alice Archer"sv, "cn=admin"sv})
    requireInvalid(authenticator.authenticate(name, "alice-pw"));
}

TEST_CASE("ldap: memberOf and no-group modes", "[ldap]") {
  auto settings = settingsFor(sharedServer().url());
  settings.groupBase.clear();
  settings.groupMode = LdapGroupMode::kMemberOf;
  LdapAuthenticator memberOf(settings);
  const auto alice = memberOf.authenticate("alice", "alice-pw");
  REQUIRE(alice.has_value());
  CHECK(alice->groups == std::vector<std::string>{"hr"});
  CHECK(alice->roles == std::vector<std::string>{"hr-viewer"});

  settings.groupMode = LdapGroupMode::kNone;
  LdapAuthenticator noGroups(settings);
  const auto plain = noGroups.authenticate("alice", "alice-pw");
  REQUIRE(plain.has_value());
  CHECK(plain->groups.empty());
  CHECK(plain->roles.empty());
}

TEST_CASE("ldap: StartTLS with the test CA works", "[ldap]") {
  auto& server = sharedTlsServer();
  auto settings = settingsFor(server.url());
  settings.startTls = true;
  settings.caFile = server.caFile();
  LdapAuthenticator authenticator(settings);
  CHECK_FALSE(authenticator.probe().has_value());
  const auto alice = authenticator.authenticate("alice", "alice-pw");
  REQUIRE(alice.has_value());
  CHECK(alice->groups == std::vector<std::string>{"hr"});
}

TEST_CASE("ldap: TLS against an untrusted CA fails closed", "[ldap]") {
  auto& server = sharedTlsServer();
  const TempDir caDir("mcphost-ca-");
  const std::string wrongCa = mcphost::test::makeUnrelatedCaFile(caDir.path());
  for (const bool startTls : {true, false}) {
    INFO("startTls: " << startTls);
    auto settings = settingsFor(startTls ? server.url() : server.ldapsUrl());
    settings.startTls = startTls;
    settings.caFile = wrongCa;
    LdapAuthenticator authenticator(settings);
    CHECK(authenticator.probe().has_value());
    requireUnavailable(authenticator.authenticate("alice", "alice-pw"));

    // Verification off (a lab set-up) accepts any certificate.
    settings.verifyCertificate = false;
    LdapAuthenticator unverified(settings);
    CHECK(unverified.authenticate("alice", "alice-pw").has_value());
  }
}

TEST_CASE("ldap: StartTLS refused by the server fails closed", "[ldap]") {
  auto settings = settingsFor(sharedServer().url());  // this server has no certificate
  settings.startTls = true;
  LdapAuthenticator authenticator(settings);
  const auto result = authenticator.authenticate("alice", "alice-pw");
  requireUnavailable(result);
  CHECK(result.error().detail.find("StartTLS") != std::string::npos);
}

TEST_CASE("ldap: an LDAPS URL works", "[ldap]") {
  auto& server = sharedTlsServer();
  auto settings = settingsFor(server.ldapsUrl());
  settings.caFile = server.caFile();
  LdapAuthenticator authenticator(settings);
  CHECK_FALSE(authenticator.probe().has_value());
  const auto alice = authenticator.authenticate("alice", "alice-pw");
  REQUIRE(alice.has_value());
  CHECK(alice->issuer == server.ldapsUrl());
  requireInvalid(authenticator.authenticate("alice", "wrong"));
}

TEST_CASE("ldap: an unreachable directory is unavailable within the timeout", "[ldap]") {
  SECTION("nothing listening") {
    TestDirectory directory("mcphost-ldap-down-");
    auto& server = directory.server;
    auto settings = settingsFor(server.url());
    server.stop();
    LdapAuthenticator authenticator(settings);
    const auto started = std::chrono::steady_clock::now();
    requireUnavailable(authenticator.authenticate("alice", "alice-pw"));
    CHECK(std::chrono::steady_clock::now() - started < settings.timeout);
    CHECK(authenticator.probe().has_value());
  }
  SECTION("a server that accepts but never answers") {
    const SilentListener listener;
    for (const char* scheme : {"ldap", "ldaps"}) {
      INFO("scheme: " << scheme);
      auto settings = settingsFor(listener.url(scheme));
      settings.timeout = 500ms;
      LdapAuthenticator authenticator(settings);
      const auto started = std::chrono::steady_clock::now();
      requireUnavailable(authenticator.authenticate("alice", "alice-pw"));
      CHECK(std::chrono::steady_clock::now() - started < 3s);
    }
  }
}

TEST_CASE("ldap: a failing service bind is unavailable, not a bad password", "[ldap]") {
  auto settings = settingsFor(sharedServer().url());
  settings.bindPassword = "not-the-reader-secret";
  LdapAuthenticator authenticator(settings);
  const auto probe = authenticator.probe();
  REQUIRE(probe.has_value());
  CHECK(probe->find("not-the-reader-secret") == std::string::npos);
  const auto result = authenticator.authenticate("alice", "alice-pw");
  requireUnavailable(result);
  CHECK(result.error().detail.find("not-the-reader-secret") == std::string::npos);
}

TEST_CASE("ldap: unusable settings are reported and fail closed", "[ldap]") {
  auto settings = settingsFor(sharedServer().url());
  SECTION("service DN without a password") {
    settings.bindPassword.clear();
  }
  SECTION("filter without the placeholder") {
    settings.userFilter = "(uid=alice)";
  }
  SECTION("not an LDAP URL") {
    settings.url = "http://127.0.0.1:1";
  }
  SECTION("group search without a base") {
    settings.groupBase.clear();
  }
  LdapAuthenticator authenticator(settings);
  CHECK(authenticator.probe().has_value());
  requireUnavailable(authenticator.authenticate("alice", "alice-pw"));
}

TEST_CASE("ldap: authentication recovers when the server comes back", "[ldap]") {
  TestDirectory directory("mcphost-ldap-restart-");
  auto& server = directory.server;
  auto settings = settingsFor(server.url());
  settings.poolSize = 2;
  LdapAuthenticator authenticator(settings);
  REQUIRE(authenticator.authenticate("alice", "alice-pw").has_value());

  server.stop();
  requireUnavailable(authenticator.authenticate("alice", "alice-pw"));
  server.start();
  REQUIRE(authenticator.authenticate("alice", "alice-pw").has_value());

  // A restart between two requests leaves only dead connections in the pool.
  server.stop();
  server.start();
  REQUIRE(authenticator.authenticate("bob", "bob-pw").has_value());
  REQUIRE(authenticator.authenticate("alice", "alice-pw").has_value());
}

TEST_CASE("ldap: concurrent authentications from 8 threads all succeed", "[ldap]") {
  auto settings = settingsFor(sharedServer().url());
  SECTION("plain LDAP") {}
  SECTION("StartTLS") {  // per-handle TLS contexts and connect watchdogs in parallel
    settings = settingsFor(sharedTlsServer().url());
    settings.startTls = true;
    settings.caFile = sharedTlsServer().caFile();
  }
  settings.poolSize = 4;
  LdapAuthenticator authenticator(settings);
  constexpr int kThreads = 8;
  constexpr int kRounds = 10;
  std::atomic<int> succeeded{0};
  std::atomic<int> wrongAnswers{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const bool asAlice = (t + round) % 2 == 0;
        const auto result = asAlice ? authenticator.authenticate("alice", "alice-pw")
                                    : authenticator.authenticate("bob", "bob-pw");
        if (result.has_value() && result->subject == (asAlice ? "alice" : "bob") &&
            result->groups == std::vector<std::string>{asAlice ? "hr" : "eng"}) {
          ++succeeded;
        } else {
          ++wrongAnswers;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(wrongAnswers.load() == 0);
  CHECK(succeeded.load() == kThreads * kRounds);
}
