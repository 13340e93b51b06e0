// `mcphost audit export --from --to [--user]`: the request records of an audit directory as
// CSV or JSON for compliance reporting. The chain is verified first, so a report is never built
// from a tampered log; records appended after that verification are not exported.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "audit/audit_chain.hpp"  // parseIsoTime() for --from and --to
#include "common/expected.hpp"

namespace mcphost::audit {

struct ExportFilter {
  std::optional<std::chrono::system_clock::time_point> from;  // inclusive
  std::optional<std::chrono::system_clock::time_point> to;    // exclusive
  std::string user;              // matches the "principal" field exactly; empty = everyone
  bool includeInternal = false;  // also start, checkpoint, file_start, retention and recovered records
};

enum class ExportFormat { kCsv, kJson };

// CSV (RFC 4180, CRLF, a header row): time, seq, correlation_id, principal, auth_method,
// source_ip, session, method, connector, target, decision, rule, status, error_code, latency_us,
// request_bytes, response_bytes, dlp ("detector:count;..."), args_sha256. A text cell that begins
// with = + - @ (or tab / CR) gets a leading apostrophe so a spreadsheet does not run it as a
// formula. JSON: an array of the records exactly as stored (with prev and mac), streamed.
//
// Refuses a log that does not verify (the error names the first bad record) unless verifyFirst
// is false; then lines that are not records are skipped. Returns the number of records written.
Expected<std::size_t, std::string> exportAudit(const std::string& directory, std::string_view key,
                                               const ExportFilter& filter, ExportFormat format,
                                               std::ostream& out, bool verifyFirst = true);

// One CSV cell: formula neutralisation (for text) then RFC 4180 quoting.
std::string csvCell(std::string_view text, bool neutralise = true);

}  // namespace mcphost::audit
