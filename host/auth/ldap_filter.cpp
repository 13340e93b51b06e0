#include "auth/ldap_filter.hpp"

#include <array>
#include <cstddef>
#include <utility>

namespace mcphost::auth {

namespace {

constexpr std::array<char, 16> kHexDigits = {'0', '1', '2', '3', '4', '5', '6', '7',
                                             '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};

void appendHexEscape(std::string& out, unsigned char byte) {
  out.push_back('\\');
  out.push_back(kHexDigits[byte >> 4U]);
  out.push_back(kHexDigits[byte & 0x0FU]);
}

bool isControlByte(unsigned char byte) {
  return byte < 0x20U || byte == 0x7FU;
}

char asciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Case-insensitive (ASCII) search for `needle` in `haystack` from `from`.
std::size_t findIgnoringCase(std::string_view haystack, std::string_view needle, std::size_t from) {
  if (needle.size() > haystack.size()) return std::string_view::npos;
  for (std::size_t i = from; i + needle.size() <= haystack.size(); ++i) {
    bool matches = true;
    for (std::size_t j = 0; j < needle.size(); ++j) {
      if (asciiLower(haystack[i + j]) != asciiLower(needle[j])) {
        matches = false;
        break;
      }
    }
    if (matches) return i;
  }
  return std::string_view::npos;
}

}  // namespace

std::string escapeFilterValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    // Non-ASCII is escaped too: it keeps the filter pure ASCII, and an escaped octet still
    // matches the same UTF-8 value on the server.
    if (c == '*' || c == '(' || c == ')' || c == '\\' || isControlByte(byte) || byte >= 0x80U) {
      appendHexEscape(out, byte);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string escapeDnValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    const auto byte = static_cast<unsigned char>(c);
    const bool leading = i == 0;
    const bool trailing = i + 1 == value.size();
    if (isControlByte(byte)) {
      appendHexEscape(out, byte);
    } else if (c == '"' || c == '+' || c == ',' || c == ';' || c == '<' || c == '>' || c == '\\' ||
               c == '=' || (leading && c == '#') || ((leading || trailing) && c == ' ')) {
      out.push_back('\\');
      out.push_back(c);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string replacePlaceholder(std::string_view text, std::string_view placeholder,
                               std::string_view replacement) {
  if (placeholder.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + replacement.size());
  std::size_t position = 0;
  while (true) {
    const std::size_t found = text.find(placeholder, position);
    if (found == std::string_view::npos) break;
    out.append(text.substr(position, found - position));
    out.append(replacement);
    position = found + placeholder.size();
  }
  out.append(text.substr(position));
  return out;
}

std::string buildUserFilter(std::string_view filterTemplate, std::string_view username) {
  return replacePlaceholder(filterTemplate, "{username}", escapeFilterValue(username));
}

std::string buildBindDn(std::string_view dnTemplate, std::string_view username) {
  return replacePlaceholder(dnTemplate, "{username}", escapeDnValue(username));
}

std::string buildGroupFilter(std::string_view filterTemplate, std::string_view userDn, bool nestedGroups) {
  std::string expanded(filterTemplate);
  if (nestedGroups) {
    // Only the exact "(member={dn})" assertion is rewritten, so "(uniqueMember={dn})" or a
    // hand-written extensible match in the template is left alone.
    constexpr std::string_view kAssertion = "(member={dn})";
    constexpr std::size_t kAttributeLength = 6;  // "member"
    std::string rewritten;
    std::size_t position = 0;
    while (true) {
      const std::size_t found = findIgnoringCase(expanded, kAssertion, position);
      if (found == std::string::npos) break;
      rewritten.append(expanded, position, found - position);
      rewritten.push_back('(');
      rewritten.append(expanded, found + 1, kAttributeLength);  // keep the template's spelling
      rewritten.push_back(':');
      rewritten.append(kMatchingRuleInChain);
      rewritten.append(":={dn})");
      position = found + kAssertion.size();
    }
    rewritten.append(expanded, position, std::string::npos);
    expanded = std::move(rewritten);
  }
  return replacePlaceholder(expanded, "{dn}", escapeFilterValue(userDn));
}

}  // namespace mcphost::auth
