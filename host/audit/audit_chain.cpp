#include "audit/audit_chain.hpp"

#include <array>
#include <charconv>
#include <cstdio>
#include <ctime>

#include "common/crypto.hpp"

namespace mcphost::audit {

namespace {

constexpr std::string_view kMacPrefix = ",\"mac\":\"";
// `,"mac":"` + 64 hex + `"}`
constexpr std::size_t kMacSuffixLength = kMacPrefix.size() + kMacHexLength + 2;

// Parses exactly `width` decimal digits at text[pos].
std::optional<int> digits(std::string_view text, std::size_t pos, std::size_t width) {
  if (pos + width > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

bool isInternalType(std::string_view type) {
  return type == kTypeStart || type == kTypeCheckpoint || type == kTypeFileStart || type == kTypeRetention ||
         type == kTypeRecovered;
}

bool isLowerHex(std::string_view text, std::size_t length) {
  if (text.size() != length) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string keyId(std::string_view key) {
  return toHex(sha256(key)).substr(0, 16);
}

std::string formatTime(std::chrono::system_clock::time_point time) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  const auto micros = duration_cast<microseconds>(time.time_since_epoch()).count();
  // Floor division so that times before 1970 still format (tests use fixed clocks).
  std::int64_t seconds = micros / 1000000;
  std::int64_t fraction = micros % 1000000;
  if (fraction < 0) {
    fraction += 1000000;
    --seconds;
  }
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 96> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(fraction));
  return buffer.data();
}

Expected<std::chrono::system_clock::time_point, std::string> parseIsoTime(std::string_view text) {
  using namespace std::chrono;
  const std::string bad =
      "not an ISO 8601 time (want 2026-12-01 or 2026-12-01T10:00:00Z): '" + std::string(text) + "'";
  auto year = digits(text, 0, 4);
  auto month = digits(text, 5, 2);
  auto day = digits(text, 8, 2);
  if (!year || !month || !day || text.size() < 10 || text[4] != '-' || text[7] != '-') return unexpected(bad);
  const year_month_day date{std::chrono::year{*year}, std::chrono::month{static_cast<unsigned>(*month)},
                            std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok()) return unexpected(bad);
  sys_time<microseconds> result = sys_days{date};
  std::size_t pos = 10;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return unexpected(bad);
    auto hour = digits(text, pos + 1, 2);
    auto minute = digits(text, pos + 4, 2);
    if (!hour || !minute || text[pos + 3] != ':' || *hour > 23 || *minute > 59) return unexpected(bad);
    result += hours{*hour} + minutes{*minute};
    pos += 6;
    if (pos < text.size() && text[pos] == ':') {
      auto second = digits(text, pos + 1, 2);
      if (!second || *second > 60) return unexpected(bad);
      result += seconds{*second};
      pos += 3;
      if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
        ++pos;
        std::int64_t scale = 100000;
        const std::size_t start = pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
          result += microseconds{(text[pos] - '0') * scale};
          scale /= 10;
          ++pos;
        }
        if (pos == start) return unexpected(bad);
      }
    }
    if (pos < text.size()) {
      if (text[pos] == 'Z' || text[pos] == 'z') {
        ++pos;
      } else if (text[pos] == '+' || text[pos] == '-') {
        auto offsetHours = digits(text, pos + 1, 2);
        const std::size_t minutesAt = pos + 3 < text.size() && text[pos + 3] == ':' ? pos + 4 : pos + 3;
        auto offsetMinutes = digits(text, minutesAt, 2);
        if (!offsetHours || !offsetMinutes || *offsetHours > 23 || *offsetMinutes > 59)
          return unexpected(bad);
        // 10:00+02:00 is 08:00Z: subtract a positive offset.
        const auto offset = hours{*offsetHours} + minutes{*offsetMinutes};
        result = text[pos] == '+' ? result - offset : result + offset;
        pos = minutesAt + 2;
      }
    }
  }
  if (pos != text.size()) return unexpected(bad);
  return time_point_cast<system_clock::duration>(result);
}

std::string computeMac(std::string_view key, std::string_view prevMac, std::string_view body) {
  std::string data;
  data.reserve(prevMac.size() + 1 + body.size());
  data.append(prevMac).append("\n").append(body);
  return toHex(hmacSha256(key, data));
}

std::string dumpJson(const nlohmann::ordered_json& value) {
  try {
    return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  } catch (const std::exception&) {
    return "null";  // dump with the replace handler does not throw; this keeps the API noexcept.
  }
}

std::string serializeFields(const nlohmann::ordered_json& fields) {
  std::string out;
  if (!fields.is_object()) return out;
  for (const auto& [name, value] : fields.items()) {
    out += ',';
    out += dumpJson(nlohmann::ordered_json(name));
    out += ':';
    out += dumpJson(value);
  }
  return out;
}

AuditChain::AuditChain(std::string key, ChainState state) : key_(std::move(key)), state_(std::move(state)) {}

SealedRecord AuditChain::seal(std::string_view type, std::string_view fieldsText,
                              std::chrono::system_clock::time_point now) {
  SealedRecord record;
  record.seq = state_.nextSeq;
  std::string& line = record.line;
  line.reserve(fieldsText.size() + 128 + kMacSuffixLength);
  line += "{\"seq\":";
  line += std::to_string(record.seq);
  line += ",\"time\":\"";
  line += formatTime(now);
  line += "\",\"type\":";
  line += dumpJson(nlohmann::ordered_json(std::string(type)));
  line += fieldsText;
  line += ",\"prev\":\"";
  line += state_.lastMac;
  line += '"';
  std::string mac = computeMac(key_, state_.lastMac, line);
  line += kMacPrefix;
  line += mac;
  line += "\"}";
  state_.nextSeq += 1;
  state_.lastMac = std::move(mac);
  return record;
}

Expected<ParsedRecord, std::string> parseRecord(std::string_view line) {
  if (line.size() < kMacSuffixLength + 2 || line.back() != '}')
    return unexpected(std::string("not a sealed audit record (too short or no closing brace)"));
  auto json = nlohmann::ordered_json::parse(line, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return unexpected(std::string("not valid JSON"));
  // Member order is part of the format: the first three and the last two are fixed.
  const auto& items = json.items();
  std::vector<std::string> keys;
  for (const auto& item : items) keys.push_back(item.key());
  if (keys.size() < 5 || keys[0] != "seq" || keys[1] != "time" || keys[2] != "type" ||
      keys[keys.size() - 2] != "prev" || keys.back() != "mac")
    return unexpected(std::string("members are not in the sealed order seq, time, type, ..., prev, mac"));
  ParsedRecord record;
  if (!json["seq"].is_number_unsigned() || !json["time"].is_string() || !json["type"].is_string() ||
      !json["prev"].is_string() || !json["mac"].is_string())
    return unexpected(std::string("seq, time, type, prev or mac has the wrong type"));
  record.seq = json["seq"].get<std::uint64_t>();
  record.time = json["time"].get<std::string>();
  record.type = json["type"].get<std::string>();
  record.prev = json["prev"].get<std::string>();
  record.mac = json["mac"].get<std::string>();
  if (!isLowerHex(record.prev, kMacHexLength) || !isLowerHex(record.mac, kMacHexLength))
    return unexpected(std::string("prev or mac is not 64 lowercase hex digits"));
  const std::string_view suffix = line.substr(line.size() - kMacSuffixLength);
  if (suffix.substr(0, kMacPrefix.size()) != kMacPrefix ||
      suffix.substr(kMacPrefix.size(), kMacHexLength) != record.mac)
    return unexpected(std::string("the line does not end with the mac member"));
  record.json = std::move(json);
  return record;
}

bool macValid(std::string_view key, std::string_view line, const ParsedRecord& record) {
  const std::string_view body = line.substr(0, line.size() - kMacSuffixLength);
  return constantTimeEquals(computeMac(key, record.prev, body), record.mac);
}

}  // namespace mcphost::audit
