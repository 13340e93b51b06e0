// Username/password authentication against an LDAP directory or Active Directory (HTTP Basic):
// search-then-bind through a pooled service account, or a direct bind through a DN template,
// then group lookup and role mapping into a Principal. Fails closed: when the directory cannot
// answer, nobody is authenticated.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth_failure.hpp"
#include "auth/principal.hpp"
#include "common/expected.hpp"

namespace mcphost::auth {

enum class LdapGroupMode {
  kNone,      // no group lookup
  kMemberOf,  // the user entry's memberOf values (group name = first RDN value)
  kSearch,    // search groupBase with groupFilter
};

struct LdapSettings {
  std::string url;        // ldap://host:port or ldaps://host:port (one or more, space separated)
  bool startTls = false;  // upgrade ldap:// with StartTLS; authentication is refused if it fails
  std::string caFile;     // trust anchor for LDAPS/StartTLS (empty: the system's)
  bool verifyCertificate = true;
  std::string bindDn;        // service account for search-then-bind (empty: anonymous search)
  std::string bindPassword;  // from the host's secrets; never logged
  std::string userBase;
  std::string userFilter = "(uid={username})";  // {username} is replaced escaped (RFC 4515)
  // Alternative to the search: "uid={username},ou=people,dc=example,dc=com" ({username}
  // DN-escaped). The entry is then read after the bind (with the service account if one is
  // configured, else with the user's own connection).
  std::string bindDnTemplate;
  LdapGroupMode groupMode = LdapGroupMode::kSearch;
  std::string groupBase;
  std::string groupFilter = "(&(objectClass=groupOfNames)(member={dn}))";  // {dn} escaped
  std::string groupNameAttribute = "cn";
  // Active Directory: member:1.2.840.113556.1.4.1941:= (LDAP_MATCHING_RULE_IN_CHAIN) instead of
  // member= in the group filter. Applies to kSearch.
  bool nestedGroups = false;
  std::map<std::string, std::vector<std::string>> groupRoles;  // group name -> roles
  std::string displayNameAttribute = "displayName";
  std::string tenantAttribute;                          // optional
  std::vector<std::string> extraAttributes = {"mail"};  // copied into Principal.attributes
  // Pooled service connections (searches). User binds always use a fresh connection that is
  // closed afterwards, so a user-bound connection never serves anyone else.
  std::size_t poolSize = 4;
  std::chrono::milliseconds timeout{5000};  // network and operation timeout
};

// The caller-facing messages, shared so the transport and the tests agree on them.
inline constexpr std::string_view kLdapInvalidCredentialsMessage = "invalid username or password";
inline constexpr std::string_view kLdapUnavailableMessage =
    "directory unavailable: cannot verify credentials now; try again later";

inline constexpr std::size_t kLdapMaxUsernameBytes = 256;
inline constexpr std::size_t kLdapMaxPasswordBytes = 1024;

// Thread-safe: any number of threads may call authenticate() and probe() at once.
class LdapAuthenticator {
 public:
  explicit LdapAuthenticator(LdapSettings settings);
  ~LdapAuthenticator();
  LdapAuthenticator(const LdapAuthenticator&) = delete;
  LdapAuthenticator& operator=(const LdapAuthenticator&) = delete;

  Expected<Principal, AuthFailure> authenticate(std::string_view username, std::string_view password);

  // Connects (with StartTLS when configured) and binds the service account (or binds
  // anonymously when there is none) on a fresh connection. Error text for start-up/readiness
  // checks (no secrets), nullopt when the directory is usable.
  std::optional<std::string> probe();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcphost::auth
