// Audit sink that forwards every sealed record as one RFC 5424 syslog message, so a SIEM that
// already collects syslog sees the audit trail without reading the host's files.
//
// Message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [mcphost@32473 seq=".." ...] JSON-LINE
//  - TIMESTAMP is the record's own "time" (the moment the host decided), not the send time;
//  - MSGID is the record type (request, start, checkpoint, ...), "audit" when it has none;
//  - the structured data repeats seq, type, principal, decision and status for filtering;
//  - MSG is the sealed line unchanged (no UTF-8 BOM: collectors would otherwise hand the BOM
//    to JSON parsers), so the chain can still be verified from the collector's copy;
//  - severity: info for allowed/ok records, notice for denials and "recovered", warning for
//    every other status (error, timeout, ...).
// Transports: udp (one datagram per record), tcp (octet counting, RFC 6587) and unix (a
// datagram socket such as /dev/log). Datagrams longer than maxDatagramBytes are cut at a UTF-8
// boundary and carry truncated="<full length>" in the structured data, because an oversized
// datagram is dropped whole by the kernel or the collector; tcp never truncates.
//
// Delivery is at most once per process: a record whose seq was already handed to the kernel is
// not sent again when a failed batch is retried. Syslog has no acknowledgement, so this sink is
// a copy for monitoring; the file sink stays the chain of record.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_sink.hpp"
#include "common/expected.hpp"
#include "common/unique_fd.hpp"

namespace mcphost::audit {

enum class SyslogTransport { Udp, Tcp, Unix };

struct SyslogSettings {
  SyslogTransport transport = SyslogTransport::Unix;
  std::string host = "127.0.0.1";       // udp/tcp: name or IPv4/IPv6 literal
  std::uint16_t port = 514;             // udp/tcp
  std::string socketPath = "/dev/log";  // unix
  // authpriv by default: audit records name principals and carry call arguments, and authpriv
  // is the facility syslog daemons conventionally route to a root-only file.
  int facility = 10;
  std::string appName = "mcphost";
  std::string hostname;  // empty: gethostname()
  // Bounds connect and send, so a stuck collector cannot hang the audit writer.
  std::chrono::milliseconds timeout{2000};
  std::size_t maxDatagramBytes = 8192;  // udp/unix only
};

// "kern", "user", ..., "auth", "authpriv", "local0".."local7" -> facility code 0..23.
Expected<int, std::string> parseSyslogFacility(std::string_view name);
// "udp://host:port", "tcp://host:port" (port defaults to 514, IPv6 as [::1]) or
// "unix:/dev/log"; sets transport, host, port and socketPath of `settings`.
Expected<Done, std::string> parseSyslogTarget(std::string_view target, SyslogSettings& settings);
// "udp:127.0.0.1:514", "tcp:[::1]:6514", "unix:/dev/log": how errors name the collector.
std::string describeSyslogTarget(const SyslogSettings& settings);

// Builds the RFC 5424 message for one record (without transport framing). Exposed for tests.
// `maxBytes` = 0 means no limit.
std::string formatSyslogMessage(const SyslogSettings& settings, std::string_view hostname, long pid,
                                const SealedRecord& record, std::size_t maxBytes = 0);
// Escapes '"', '\' and ']' in an SD-PARAM value (RFC 5424 section 6.3.3).
std::string escapeSdValue(std::string_view value);

class SyslogSink final : public AuditSink {
 public:
  // Checks the settings; does not connect (that happens on the first write, so a collector
  // that is down at start-up shows up as a failed write, which fail_closed acts upon).
  static Expected<std::unique_ptr<SyslogSink>, std::string> create(SyslogSettings settings);
  ~SyslogSink() override;

  [[nodiscard]] std::string_view name() const override { return "syslog"; }
  Status write(const std::vector<SealedRecord>& batch) override;
  void close() override;

  [[nodiscard]] const SyslogSettings& settings() const { return settings_; }

 private:
  explicit SyslogSink(SyslogSettings settings);
  Status connect();
  [[nodiscard]] bool connectionLooksAlive() const;
  Status sendMessage(const std::string& message);
  Status send(const SealedRecord& record);
  void disconnect();
  [[nodiscard]] std::string failure(std::string_view what, int error) const;

  SyslogSettings settings_;
  std::string target_;  // describeSyslogTarget(settings_)
  std::string hostname_;
  long pid_ = 0;
  std::mutex mutex_;
  UniqueFd socket_;
  std::optional<std::uint64_t> lastSentSeq_;
};

}  // namespace mcphost::audit
