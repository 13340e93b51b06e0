// The HMAC hash chain of the audit log: how a record becomes one sealed JSON line, and how a
// line is checked again from its bytes alone.
//
// A line is one compact JSON object with its members in a fixed order:
//
//   {"seq":N,"time":"2026-12-01T23:59:59.123456Z","type":"request",<fields>,"prev":"<64 hex>","mac":"<64
//   hex>"}
//
// body = the line up to and excluding the final `,"mac":"<64 hex>"}` (so it ends with the prev
// member's closing quote), and
//
//   mac = lowercase hex(HMAC-SHA256(key, prev + "\n" + body))
//
// where prev is the mac of the record before (64 zeros for the first record ever). The MAC is
// computed over the exact bytes written, so a verifier needs no canonical re-serialisation.
// seq rises by exactly one from record to record, across files. Every record type, including
// the checkpoint, file_start and retention records, is HMAC-signed with the audit key this way.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "audit/audit_sink.hpp"
#include "common/crypto.hpp"
#include "common/expected.hpp"

namespace mcphost::audit {

inline constexpr std::string_view kGenesisMac =
    "0000000000000000000000000000000000000000000000000000000000000000";
inline constexpr std::size_t kMacHexLength = 64;
inline constexpr std::size_t kMinKeyBytes = 32;

// Record types the log writes itself; callers may not use them (see AuditLog::append).
inline constexpr std::string_view kTypeRequest = "request";
inline constexpr std::string_view kTypeStart = "start";            // the log was opened
inline constexpr std::string_view kTypeCheckpoint = "checkpoint";  // signed summary of a file so far
inline constexpr std::string_view kTypeFileStart = "file_start";   // first record of every file
inline constexpr std::string_view kTypeRetention = "retention";    // files about to be deleted
inline constexpr std::string_view kTypeRecovered = "recovered";    // a crash tail was repaired
bool isInternalType(std::string_view type);

using mcphost::toHex;  // common/crypto.hpp
bool isLowerHex(std::string_view text, std::size_t length);
// First 16 hex digits of SHA-256(key): names a key in records and errors without revealing it.
std::string keyId(std::string_view key);
// "2026-12-01T23:59:59.123456Z" (UTC, microseconds).
std::string formatTime(std::chrono::system_clock::time_point time);
// ISO 8601: "2026-12-01", "2026-12-01T10:00Z", "2026-12-01T10:00:00.5+02:00"; no zone means UTC.
Expected<std::chrono::system_clock::time_point, std::string> parseIsoTime(std::string_view text);

std::string computeMac(std::string_view key, std::string_view prevMac, std::string_view body);
// Serialises a JSON value the way sealed lines do (compact; invalid UTF-8 replaced by U+FFFD).
std::string dumpJson(const nlohmann::ordered_json& value);
// `,"key":value` for every member, in insertion order: the caller-supplied part of a line.
std::string serializeFields(const nlohmann::ordered_json& fields);

// Chain position: the next seq to assign and the mac of the last record sealed.
struct ChainState {
  std::uint64_t nextSeq = 1;
  std::string lastMac{kGenesisMac};
};

// Seals records one after another. Not thread-safe: the audit log's writer thread owns it.
class AuditChain {
 public:
  AuditChain(std::string key, ChainState state);

  // fieldsText is serializeFields() output (may be empty). Advances the chain.
  SealedRecord seal(std::string_view type, std::string_view fieldsText,
                    std::chrono::system_clock::time_point now);
  SealedRecord sealFields(std::string_view type, const nlohmann::ordered_json& fields,
                          std::chrono::system_clock::time_point now) {
    return seal(type, serializeFields(fields), now);
  }

  [[nodiscard]] const ChainState& state() const { return state_; }
  // Rolls back to an earlier state(), for a batch that could not be written.
  void restore(ChainState state) { state_ = std::move(state); }
  [[nodiscard]] const std::string& key() const { return key_; }

 private:
  std::string key_;
  ChainState state_;
};

// A line taken apart. json holds every member; the named members are copied out.
struct ParsedRecord {
  std::uint64_t seq = 0;
  std::string time;
  std::string type;
  std::string prev;
  std::string mac;
  nlohmann::ordered_json json;
};

// Checks the line's shape (member order, types, mac suffix); does not check the MAC.
Expected<ParsedRecord, std::string> parseRecord(std::string_view line);
// Recomputes the MAC from the line's bytes; record must come from parseRecord(line).
bool macValid(std::string_view key, std::string_view line, const ParsedRecord& record);

}  // namespace mcphost::audit
