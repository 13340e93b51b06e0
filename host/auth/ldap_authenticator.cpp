#include "auth/ldap_authenticator.hpp"

#include <ldap.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <utility>

#include "auth/ldap_connection.hpp"
#include "auth/ldap_filter.hpp"
#include "common/base64.hpp"

namespace mcphost::auth {

using ldap_detail::asciiLower;
using ldap_detail::BerPtr;
using ldap_detail::bindAsUser;
using ldap_detail::describe;
using ldap_detail::diagnosticOf;
using ldap_detail::DnPtr;
using ldap_detail::invalidCredentials;
using ldap_detail::isConnectionLevelError;
using ldap_detail::LdapHandle;
using ldap_detail::LdapString;
using ldap_detail::MessagePtr;
using ldap_detail::openServiceConnection;
using ldap_detail::printable;
using ldap_detail::ServiceConnectionPool;
using ldap_detail::SigpipeGuard;
using ldap_detail::splitUrls;
using ldap_detail::toTimeval;
using ldap_detail::unavailable;
using ldap_detail::ValuesPtr;

namespace {

// ---- small helpers ----------------------------------------------------------------------------

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  return asciiLower(a) == asciiLower(b);
}

bool isValidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t codePoint = 0;
    if (lead < 0x80U) {
      ++i;
      continue;
    }
    if ((lead & 0xE0U) == 0xC0U) {
      length = 2;
      codePoint = lead & 0x1FU;
    } else if ((lead & 0xF0U) == 0xE0U) {
      length = 3;
      codePoint = lead & 0x0FU;
    } else if ((lead & 0xF8U) == 0xF0U) {
      length = 4;
      codePoint = lead & 0x07U;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0U) != 0x80U) return false;
      codePoint = (codePoint << 6U) | (next & 0x3FU);
    }
    const bool overlong = (length == 2 && codePoint < 0x80U) || (length == 3 && codePoint < 0x800U) ||
                          (length == 4 && codePoint < 0x10000U);
    if (overlong || codePoint > 0x10FFFFU || (codePoint >= 0xD800U && codePoint <= 0xDFFFU)) return false;
    i += length;
  }
  return true;
}

// Attributes that hold secrets in common schemas: never copied into a Principal.
bool isSecretAttribute(std::string_view name) {
  static const char* const kSecretAttributes[] = {
      "userpassword",         "authpassword",    "unicodepwd",
      "sambantpassword",      "sambalmpassword", "supplementalcredentials",
      "ntpwdhistory",         "lmpwdhistory",    "dbcspwd",
      "msds-managedpassword", "userpkcs12",      "krbprincipalkey"};
  const std::string lower = asciiLower(name);
  return std::any_of(std::begin(kSecretAttributes), std::end(kSecretAttributes),
                     [&](const char* secret) { return lower == secret; });
}

// ---- directory operations -----------------------------------------------------------------

struct DirectoryEntry {
  std::string dn;
  std::map<std::string, std::vector<std::string>> attributes;  // keyed by lowercased name

  [[nodiscard]] const std::vector<std::string>* values(std::string_view name) const {
    const auto found = attributes.find(asciiLower(name));
    return found == attributes.end() || found->second.empty() ? nullptr : &found->second;
  }
  [[nodiscard]] std::optional<std::string> firstText(std::string_view name) const {
    const auto* all = values(name);
    if (all == nullptr) return std::nullopt;
    for (const auto& value : *all)
      if (!value.empty() && isValidUtf8(value)) return value;
    return std::nullopt;
  }
};

struct SearchOutcome {
  int code = LDAP_SUCCESS;
  std::string diagnostic;
  std::vector<DirectoryEntry> entries;
};

DirectoryEntry readEntry(LDAP* ld, LDAPMessage* message) {
  DirectoryEntry entry;
  if (const LdapString dn(ldap_get_dn(ld, message)); dn) entry.dn = dn.get();
  BerElement* rawBer = nullptr;
  LdapString attribute(ldap_first_attribute(ld, message, &rawBer));
  const BerPtr ber(rawBer);
  for (; attribute; attribute.reset(ldap_next_attribute(ld, message, ber.get()))) {
    auto& target = entry.attributes[asciiLower(attribute.get())];
    const ValuesPtr values(ldap_get_values_len(ld, message, attribute.get()));
    if (!values) continue;
    for (berval** value = values.get(); *value != nullptr; ++value)
      target.emplace_back((*value)->bv_val, (*value)->bv_len);
  }
  return entry;
}

SearchOutcome search(LDAP* ld, const std::string& base, int scope, const std::string& filter,
                     const std::vector<std::string>& attributes, int sizeLimit,
                     std::chrono::milliseconds timeout) {
  std::vector<std::string> attributeStorage = attributes;
  if (attributeStorage.empty()) attributeStorage.emplace_back(LDAP_NO_ATTRS);
  std::vector<char*> attributeList;
  attributeList.reserve(attributeStorage.size() + 1);
  for (auto& name : attributeStorage) attributeList.push_back(name.data());
  attributeList.push_back(nullptr);

  timeval limit = toTimeval(timeout);
  LDAPMessage* rawResult = nullptr;
  SearchOutcome outcome;
  outcome.code = ldap_search_ext_s(ld, base.c_str(), scope, filter.c_str(), attributeList.data(), 0, nullptr,
                                   nullptr, &limit, sizeLimit, &rawResult);
  const MessagePtr result(rawResult);  // set on success and on many errors: always freed
  if (outcome.code != LDAP_SUCCESS) outcome.diagnostic = diagnosticOf(ld);
  if (result) {
    // Search references (Active Directory returns them for partitions) are skipped: referrals
    // are never chased.
    for (LDAPMessage* message = ldap_first_entry(ld, result.get()); message != nullptr;
         message = ldap_next_entry(ld, message))
      outcome.entries.push_back(readEntry(ld, message));
  }
  return outcome;
}

// The value of the first RDN ("hr" for "cn=hr,ou=groups,dc=example,dc=com").
std::optional<std::string> firstRdnValue(const std::string& dn) {
  LDAPDN parsed = nullptr;
  if (ldap_str2dn(dn.c_str(), &parsed, LDAP_DN_FORMAT_LDAP) != LDAP_SUCCESS || parsed == nullptr)
    return std::nullopt;
  const DnPtr owner(parsed);
  if (parsed[0] == nullptr || parsed[0][0] == nullptr) return std::nullopt;
  const berval& value = parsed[0][0]->la_value;
  return std::string(value.bv_val, value.bv_len);
}

std::optional<std::string> validateSettings(const LdapSettings& s) {
  if (splitUrls(s.url).empty()) return "ldap: url is empty";
  for (const auto& url : splitUrls(s.url)) {
    const std::string lower = asciiLower(url);
    if (lower.rfind("ldap://", 0) != 0 && lower.rfind("ldaps://", 0) != 0)
      return "ldap: url must be ldap://host:port or ldaps://host:port, got '" + printable(url) + "'";
  }
  if (s.timeout <= std::chrono::milliseconds::zero()) return "ldap: timeout must be positive";
  if (!s.bindDn.empty() && s.bindPassword.empty())
    return "ldap: bindDn is set but bindPassword is empty (an unauthenticated bind would pass)";
  if (s.bindDnTemplate.empty()) {
    if (s.userBase.empty()) return "ldap: userBase is required for search-then-bind";
    if (s.userFilter.find("{username}") == std::string::npos)
      return "ldap: userFilter must contain {username}";
  } else if (s.bindDnTemplate.find("{username}") == std::string::npos) {
    return "ldap: bindDnTemplate must contain {username}";
  }
  if (s.groupMode == LdapGroupMode::kSearch) {
    if (s.groupBase.empty()) return "ldap: groupBase is required when groups are searched";
    if (s.groupFilter.find("{dn}") == std::string::npos) return "ldap: groupFilter must contain {dn}";
  }
  if (!s.caFile.empty() && access(s.caFile.c_str(), R_OK) != 0)
    return "ldap: caFile " + s.caFile + " is not readable";
  return std::nullopt;
}

}  // namespace

// ---- the authenticator ----------------------------------------------------------------------

struct LdapAuthenticator::Impl {
  explicit Impl(LdapSettings s)
      : settings(std::move(s)),
        configError(validateSettings(settings)),
        pool(settings.poolSize, settings.timeout, [this] { return openServiceConnection(settings); }) {
    auto request = [this](const std::string& name) {
      if (name.empty() || isSecretAttribute(name)) return;
      for (const auto& existing : userAttributes)
        if (equalsIgnoringCase(existing, name)) return;
      userAttributes.push_back(name);
    };
    request("uid");
    request("sAMAccountName");
    request(settings.displayNameAttribute);
    request(settings.tenantAttribute);
    for (const auto& extra : settings.extraAttributes) request(extra);
    if (settings.groupMode == LdapGroupMode::kMemberOf) request("memberOf");
  }

  // A search on a pooled service connection; a pooled connection the server dropped is
  // discarded and the search retried once on a fresh connection.
  Expected<SearchOutcome, AuthFailure> searchAsService(const std::string& base, int scope,
                                                       const std::string& filter,
                                                       const std::vector<std::string>& attributes,
                                                       int sizeLimit) {
    for (int attempt = 0;; ++attempt) {
      auto lease = pool.acquire();
      if (!lease) return unexpected(lease.error());
      SearchOutcome outcome =
          search(lease->get(), base, scope, filter, attributes, sizeLimit, settings.timeout);
      if (!isConnectionLevelError(outcome.code)) return outcome;
      lease->markBroken();
      const bool serverWentAway = outcome.code == LDAP_SERVER_DOWN || outcome.code == LDAP_CONNECT_ERROR;
      if (serverWentAway && lease->reused() && attempt == 0) {
        pool.discardIdle();
        continue;
      }
      return unexpected(unavailable("search in '" + printable(base) +
                                    "' failed: " + describe(outcome.code, outcome.diagnostic)));
    }
  }

  Expected<SearchOutcome, AuthFailure> searchOn(LDAP* userConnection, const std::string& base, int scope,
                                                const std::string& filter,
                                                const std::vector<std::string>& attributes, int sizeLimit) {
    if (userConnection == nullptr) return searchAsService(base, scope, filter, attributes, sizeLimit);
    SearchOutcome outcome =
        search(userConnection, base, scope, filter, attributes, sizeLimit, settings.timeout);
    if (isConnectionLevelError(outcome.code))
      return unexpected(unavailable("search in '" + printable(base) +
                                    "' failed: " + describe(outcome.code, outcome.diagnostic)));
    return outcome;
  }

  Expected<std::vector<std::string>, AuthFailure> lookupGroups(const DirectoryEntry& user,
                                                               LDAP* userConnection) {
    std::vector<std::string> groups;
    auto add = [&groups](std::string name) {
      if (name.empty() || !isValidUtf8(name)) return;
      for (const auto& existing : groups)
        if (equalsIgnoringCase(existing, name)) return;
      groups.push_back(std::move(name));
    };
    if (settings.groupMode == LdapGroupMode::kMemberOf) {
      if (const auto* memberOf = user.values("memberOf"))
        for (const auto& groupDn : *memberOf) add(firstRdnValue(groupDn).value_or(groupDn));
    } else if (settings.groupMode == LdapGroupMode::kSearch) {
      const std::string filter = buildGroupFilter(settings.groupFilter, user.dn, settings.nestedGroups);
      auto found = searchOn(userConnection, settings.groupBase, LDAP_SCOPE_SUBTREE, filter,
                            {settings.groupNameAttribute}, LDAP_NO_LIMIT);
      if (!found) return unexpected(found.error());
      // Partial group lists would silently drop roles: anything but success fails closed.
      if (found->code != LDAP_SUCCESS)
        return unexpected(unavailable("group search in '" + printable(settings.groupBase) +
                                      "' failed: " + describe(found->code, found->diagnostic)));
      for (const auto& group : found->entries) {
        if (auto name = group.firstText(settings.groupNameAttribute)) {
          add(std::move(*name));
        } else {
          add(firstRdnValue(group.dn).value_or(group.dn));
        }
      }
    }
    return groups;
  }

  [[nodiscard]] Principal buildPrincipal(const std::string& typedName, const DirectoryEntry& user,
                                         std::vector<std::string> groups) const {
    Principal principal;
    principal.authMethod = "ldap";
    principal.issuer = settings.url;
    principal.subject = typedName;
    // The directory's spelling of the login name, preferring the value the user typed.
    for (const char* loginAttribute : {"uid", "sAMAccountName"}) {
      const auto* values = user.values(loginAttribute);
      if (values == nullptr) continue;
      const auto typed = std::find_if(values->begin(), values->end(),
                                      [&](const std::string& v) { return equalsIgnoringCase(v, typedName); });
      if (typed != values->end() && isValidUtf8(*typed)) {
        principal.subject = *typed;
      } else if (auto first = user.firstText(loginAttribute)) {
        principal.subject = std::move(*first);
      }
      break;
    }
    principal.displayName = user.firstText(settings.displayNameAttribute).value_or(principal.subject);
    if (!settings.tenantAttribute.empty())
      principal.tenant = user.firstText(settings.tenantAttribute).value_or("");
    principal.attributes["dn"] = isValidUtf8(user.dn) ? user.dn : base64Encode(user.dn);
    for (const auto& name : settings.extraAttributes) {
      const auto* values = name.empty() || isSecretAttribute(name) ? nullptr : user.values(name);
      if (values == nullptr) continue;
      // JSON needs UTF-8; binary values (objectGUID, photos) are carried as base64.
      nlohmann::json list = nlohmann::json::array();
      for (const auto& value : *values) list.push_back(isValidUtf8(value) ? value : base64Encode(value));
      principal.attributes[name] = list.size() == 1 ? list[0] : list;
    }
    for (const auto& group : groups) {
      for (const auto& [groupName, roles] : settings.groupRoles) {
        if (!equalsIgnoringCase(groupName, group)) continue;
        for (const auto& role : roles)
          if (std::find(principal.roles.begin(), principal.roles.end(), role) == principal.roles.end())
            principal.roles.push_back(role);
      }
    }
    principal.groups = std::move(groups);
    return principal;
  }

  Expected<Principal, AuthFailure> authenticate(std::string_view rawUsername, std::string_view password) {
    if (configError) return unexpected(unavailable(*configError));
    // Checked before any network traffic. An empty password in particular must never reach the
    // directory: a simple bind with a DN and no password is an "unauthenticated" bind that
    // many servers answer with success.
    if (rawUsername.size() > kLdapMaxUsernameBytes)
      return unexpected(invalidCredentials("username too long"));
    if (std::any_of(rawUsername.begin(), rawUsername.end(), [](char c) {
          const auto byte = static_cast<unsigned char>(c);
          return byte < 0x20U || byte == 0x7FU;
        }))
      return unexpected(invalidCredentials("username contains control characters"));
    const std::size_t first = rawUsername.find_first_not_of(' ');
    if (first == std::string_view::npos) return unexpected(invalidCredentials("empty username"));
    const std::string username(rawUsername.substr(first, rawUsername.find_last_not_of(' ') - first + 1));
    if (password.empty()) return unexpected(invalidCredentials("empty password refused"));
    if (password.size() > kLdapMaxPasswordBytes) return unexpected(invalidCredentials("password too long"));
    if (password.find('\0') != std::string_view::npos)
      return unexpected(invalidCredentials("password contains NUL"));

    DirectoryEntry user;
    LdapHandle userConnection;
    if (!settings.bindDnTemplate.empty()) {
      const std::string dn = buildBindDn(settings.bindDnTemplate, username);
      auto bound = bindAsUser(settings, dn, password);
      if (!bound) return unexpected(bound.error());
      userConnection = std::move(bound).value();
      // Read with the service account when there is one (users often cannot read groups).
      LDAP* reader = settings.bindDn.empty() ? userConnection.get() : nullptr;
      auto read = searchOn(reader, dn, LDAP_SCOPE_BASE, "(objectClass=*)", userAttributes, 1);
      if (!read) return unexpected(read.error());
      if (read->code != LDAP_SUCCESS && read->code != LDAP_NO_SUCH_OBJECT)
        return unexpected(
            unavailable("reading '" + printable(dn) + "' failed: " + describe(read->code, read->diagnostic)));
      // An entry the reader may not see still bound successfully: authenticated, no attributes.
      if (read->code == LDAP_SUCCESS && !read->entries.empty()) user = std::move(read->entries.front());
      user.dn = dn;
      if (!settings.bindDn.empty()) userConnection.reset();
    } else {
      const std::string filter = buildUserFilter(settings.userFilter, username);
      // Size limit 2: enough to tell "exactly one" from "ambiguous".
      auto found = searchAsService(settings.userBase, LDAP_SCOPE_SUBTREE, filter, userAttributes, 2);
      if (!found) return unexpected(found.error());
      if (found->code == LDAP_SIZELIMIT_EXCEEDED || found->entries.size() > 1)
        return unexpected(invalidCredentials("ambiguous: more than one entry matches " + filter));
      if (found->code != LDAP_SUCCESS)
        return unexpected(unavailable("user search in '" + printable(settings.userBase) +
                                      "' failed: " + describe(found->code, found->diagnostic)));
      if (found->entries.empty() || found->entries.front().dn.empty())
        return unexpected(invalidCredentials("no entry matches " + filter));
      user = std::move(found->entries.front());
      auto bound = bindAsUser(settings, user.dn, password);
      if (!bound) return unexpected(bound.error());
      // The user-bound connection is closed here, when `bound` goes out of scope.
    }

    auto groups = lookupGroups(user, userConnection.get());
    if (!groups) return unexpected(groups.error());
    return buildPrincipal(username, user, std::move(groups).value());
  }

  std::optional<std::string> probe() const {
    if (configError) return configError;
    auto connection = openServiceConnection(settings);
    if (!connection) return connection.error().detail;
    return std::nullopt;
  }

  const LdapSettings settings;
  const std::optional<std::string> configError;
  std::vector<std::string> userAttributes;  // requested when reading the user entry
  ServiceConnectionPool pool;
};

LdapAuthenticator::LdapAuthenticator(LdapSettings settings) {
  // libldap's global defaults are initialised on first use; do it once here rather than racing
  // from several threads later.
  static std::once_flag libraryInitialised;
  std::call_once(libraryInitialised, [] {
    int version = 0;
    ldap_get_option(nullptr, LDAP_OPT_PROTOCOL_VERSION, &version);
  });
  impl_ = std::make_unique<Impl>(std::move(settings));
}

LdapAuthenticator::~LdapAuthenticator() {
  const SigpipeGuard guard;  // the pooled connections send an unbind as they close
  impl_.reset();
}

Expected<Principal, AuthFailure> LdapAuthenticator::authenticate(std::string_view username,
                                                                 std::string_view password) {
  const SigpipeGuard guard;
  try {
    return impl_->authenticate(username, password);
  } catch (const std::exception& e) {
    return unexpected(unavailable(std::string("internal error: ") + e.what()));
  } catch (...) {
    return unexpected(unavailable("internal error"));
  }
}

std::optional<std::string> LdapAuthenticator::probe() {
  const SigpipeGuard guard;
  try {
    return impl_->probe();
  } catch (const std::exception& e) {
    return std::string("ldap: internal error: ") + e.what();
  } catch (...) {
    return std::string("ldap: internal error");
  }
}

}  // namespace mcphost::auth
