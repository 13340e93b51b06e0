// Shell-style globs for names in configuration (policy targets, mTLS rules).
#pragma once

#include <string_view>

namespace mcphost {

// '*' matches any run of characters (also none), '?' exactly one; everything else literally.
// Greedy with a single backtrack point: linear in practice, O(n*m) at worst, no allocation,
// no recursion.
inline bool globMatch(std::string_view pattern, std::string_view text) noexcept {
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace mcphost
