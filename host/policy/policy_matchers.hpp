// The low-level matchers of compiled policy rules: globs, name lists, IP ranges, time windows.
// Inline: they run for every candidate rule on the decision path. Internal to the policy module.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/glob.hpp"

namespace mcphost::policy::detail {

// One bit of a 64-bit Bloom filter per name: a rule that needs one of its exact groups, roles
// or users is rejected without reading the rule when the principal has none of the bits.
inline std::uint64_t nameBit(std::string_view name) noexcept {
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a
  for (const char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  // FNV leaves the top bits of short, similar names ("g16", "g26") alike: mix before choosing.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return std::uint64_t{1} << (h >> 58);
}

using mcphost::globMatch;  // common/glob.hpp

// A list of names where exact entries are looked up by binary search and only the patterns
// with '*' or '?' are matched one by one. An unconfigured matcher (the key was omitted)
// matches everything.
class NameMatcher {
 public:
  void add(std::string pattern);
  void finish();  // sorts the exact names; call once after the last add()

  [[nodiscard]] bool configured() const { return configured_; }
  [[nodiscard]] bool matchesEverything() const { return !configured_ || any_; }
  [[nodiscard]] bool matches(std::string_view name) const noexcept;
  [[nodiscard]] bool matchesAnyOf(const std::vector<std::string>& names) const noexcept;
  // Exact entries only (no globs, no "*"): the connector index can file the rule under them.
  [[nodiscard]] bool exactOnly() const { return configured_ && !any_ && globs_.empty(); }
  [[nodiscard]] const std::vector<std::string>& exact() const { return exact_; }
  [[nodiscard]] std::string describe() const;  // "[hr, fin-*]" in the order written
  // The longest literal text every name this matcher accepts starts with ("" when any may do).
  [[nodiscard]] std::string literalPrefix() const;
  // The nameBit()s of the exact names; 0 (no filter) unless exactOnly().
  [[nodiscard]] std::uint64_t bloom() const;

 private:
  bool configured_ = false;
  bool any_ = false;
  std::vector<std::string> exact_;
  std::vector<std::string> globs_;
  std::vector<std::string> written_;
};

struct Cidr {
  bool v6 = false;
  std::array<std::uint8_t, 16> address{};  // network bytes; IPv4 uses the first 4
  std::uint8_t prefix = 0;
  std::string text;
};

// A peer address in binary; IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4.
struct IpAddress {
  bool valid = false;
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};
};
IpAddress parseIp(std::string_view text) noexcept;
bool cidrContains(const Cidr& cidr, const IpAddress& ip) noexcept;

// Minutes of the day in a fixed-offset zone; `to` is exclusive and may be smaller than `from`
// (the window wraps past midnight and belongs to the day it starts on).
struct TimeWindow {
  std::uint8_t days = 0x7f;  // bit 0 = Monday ... bit 6 = Sunday
  std::uint16_t from = 0;
  std::uint16_t to = 24 * 60;
  std::int32_t offsetMinutes = 0;
  std::string text;  // "mon-fri 08:00-18:00 UTC" for explain
};
bool timeWindowContains(const TimeWindow& window, std::int64_t epochSeconds) noexcept;
std::string describeTime(std::int64_t epochSeconds, std::int32_t offsetMinutes);

// ---------------------------------------------------------------------------------------------
// Definitions

inline void NameMatcher::add(std::string pattern) {
  configured_ = true;
  written_.push_back(pattern);
  if (pattern == "*") {
    any_ = true;
  } else if (pattern.find_first_of("*?") != std::string::npos) {
    globs_.push_back(std::move(pattern));
  } else {
    exact_.push_back(std::move(pattern));
  }
}

inline void NameMatcher::finish() {
  std::sort(exact_.begin(), exact_.end());
  exact_.erase(std::unique(exact_.begin(), exact_.end()), exact_.end());
}

inline bool NameMatcher::matches(std::string_view name) const noexcept {
  if (!configured_ || any_) return true;
  // Short lists (the usual case) are scanned: == rejects on the length before comparing bytes.
  if (exact_.size() <= 8) {
    if (std::any_of(exact_.begin(), exact_.end(), [&](const std::string& e) { return e == name; }))
      return true;
  } else if (const auto it = std::lower_bound(exact_.begin(), exact_.end(), name);
             it != exact_.end() && *it == name) {
    return true;
  }
  return std::any_of(globs_.begin(), globs_.end(), [&](const std::string& g) { return globMatch(g, name); });
}

inline bool NameMatcher::matchesAnyOf(const std::vector<std::string>& names) const noexcept {
  if (!configured_ || any_) return true;
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return matches(n); });
}

inline std::string NameMatcher::literalPrefix() const {
  if (!configured_ || any_ || written_.empty()) return {};
  std::string prefix = written_.front().substr(0, written_.front().find_first_of("*?"));
  for (const auto& w : written_) {
    const std::string_view literal = std::string_view(w).substr(0, w.find_first_of("*?"));
    std::size_t common = 0;
    while (common < prefix.size() && common < literal.size() && prefix[common] == literal[common]) ++common;
    prefix.resize(common);
  }
  return prefix;
}

inline std::uint64_t NameMatcher::bloom() const {
  std::uint64_t bits = 0;
  if (exactOnly())
    for (const auto& e : exact_) bits |= nameBit(e);
  return bits;
}

inline std::string NameMatcher::describe() const {
  std::string out = "[";
  for (const auto& w : written_) out += (out.size() > 1 ? ", " : "") + w;
  return out + "]";
}

inline IpAddress parseIp(std::string_view text) noexcept {
  IpAddress ip;
  if (!text.empty() && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  text = text.substr(0, text.find('%'));  // fe80::1%eth0: the zone does not matter here
  std::array<char, INET6_ADDRSTRLEN + 1> buffer{};
  if (text.empty() || text.size() >= buffer.size()) return ip;
  std::memcpy(buffer.data(), text.data(), text.size());
  if (::inet_pton(AF_INET, buffer.data(), ip.bytes.data()) == 1) {
    ip.valid = true;
    return ip;
  }
  if (::inet_pton(AF_INET6, buffer.data(), ip.bytes.data()) != 1) return ip;
  ip.valid = true;
  static constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), ip.bytes.begin())) {
    std::memmove(ip.bytes.data(), ip.bytes.data() + 12, 4);
    std::fill(ip.bytes.begin() + 4, ip.bytes.end(), 0);
  } else {
    ip.v6 = true;
  }
  return ip;
}

inline bool cidrContains(const Cidr& cidr, const IpAddress& ip) noexcept {
  if (!ip.valid || ip.v6 != cidr.v6) return false;
  const std::size_t fullBytes = cidr.prefix / 8;
  if (!std::equal(cidr.address.begin(), cidr.address.begin() + static_cast<std::ptrdiff_t>(fullBytes),
                  ip.bytes.begin())) {
    return false;
  }
  const unsigned restBits = cidr.prefix % 8;
  if (restBits == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xffU << (8 - restBits));
  return (cidr.address[fullBytes] & mask) == (ip.bytes[fullBytes] & mask);
}

struct LocalTime {
  int weekday = 0;  // 0 = Monday
  int minute = 0;   // of the day
};
inline LocalTime localTime(std::int64_t epochSeconds, std::int32_t offsetMinutes) {
  const std::int64_t local = epochSeconds + std::int64_t{offsetMinutes} * 60;
  std::int64_t days = local / 86400;
  if (local % 86400 < 0) --days;  // floor, for instants before 1970
  const std::int64_t secondOfDay = local - days * 86400;
  // 1970-01-01 was a Thursday (weekday 3 counting from Monday = 0).
  const auto weekday = static_cast<int>(((days + 3) % 7 + 7) % 7);
  return {weekday, static_cast<int>(secondOfDay / 60)};
}

inline bool timeWindowContains(const TimeWindow& window, std::int64_t epochSeconds) noexcept {
  const LocalTime now = localTime(epochSeconds, window.offsetMinutes);
  auto onDay = [&](int weekday) { return (window.days >> weekday) & 1U; };
  if (window.from < window.to)
    return onDay(now.weekday) && now.minute >= window.from && now.minute < window.to;
  // Wraps past midnight: the early-morning part belongs to the previous day's window.
  if (now.minute >= window.from) return onDay(now.weekday);
  return now.minute < window.to && onDay((now.weekday + 6) % 7);
}

inline std::string describeTime(std::int64_t epochSeconds, std::int32_t offsetMinutes) {
  static constexpr std::array<const char*, 7> kDays = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  const LocalTime t = localTime(epochSeconds, offsetMinutes);
  const int offset = offsetMinutes < 0 ? -offsetMinutes : offsetMinutes;
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%s %02d:%02d %c%02d:%02d",
                kDays[static_cast<std::size_t>(t.weekday)], t.minute / 60, t.minute % 60,
                offsetMinutes < 0 ? '-' : '+', offset / 60, offset % 60);
  return text.data();
}

}  // namespace mcphost::policy::detail
