// Escaping and template expansion for LDAP search filters and DNs. Everything a user types ends
// up inside a filter or a bind DN, so these functions are the injection boundary: a username is
// never spliced into LDAP syntax without going through them.
#pragma once

#include <string>
#include <string_view>

namespace mcphost::auth {

// RFC 4515 assertion value: '*', '(', ')', '\', NUL, control and non-ASCII bytes become \xx
// (lowercase hex), so the value can only ever match itself literally.
std::string escapeFilterValue(std::string_view value);

// RFC 4514 attribute value for use inside a DN: '"' '+' ',' ';' '<' '>' '\' '=' are
// backslash-escaped, a leading ' ' or '#' and a trailing ' ' are escaped, NUL and control bytes
// become \xx. UTF-8 is left as is (valid in a DN string).
std::string escapeDnValue(std::string_view value);

// Replaces every occurrence of `placeholder` (e.g. "{username}") in `text` by `replacement`, in
// one pass: text coming from the replacement is never scanned again.
std::string replacePlaceholder(std::string_view text, std::string_view placeholder,
                               std::string_view replacement);

// The user search filter: `{username}` replaced by the RFC 4515-escaped username.
std::string buildUserFilter(std::string_view filterTemplate, std::string_view username);

// The bind DN for template mode: `{username}` replaced by the RFC 4514-escaped username.
std::string buildBindDn(std::string_view dnTemplate, std::string_view username);

// The active directory matching rule that makes `member=` follow nested groups.
inline constexpr std::string_view kMatchingRuleInChain = "1.2.840.113556.1.4.1941";

// The group search filter: `{dn}` replaced by the RFC 4515-escaped user DN. With `nestedGroups`
// each "(member={dn})" assertion (attribute name matched case-insensitively) becomes
// "(member:1.2.840.113556.1.4.1941:={dn})" so Active Directory returns transitive membership.
std::string buildGroupFilter(std::string_view filterTemplate, std::string_view userDn, bool nestedGroups);

}  // namespace mcphost::auth
