// Where sealed audit records go. The audit log (audit_log.hpp) builds the hash chain and hands
// each batch, in chain order, to every configured sink: the file sink (the chain of record that
// `mcphost audit verify` checks), and optionally syslog (RFC 5424) and PostgreSQL.
//
// A sink reports failure instead of throwing: with audit.fail_closed the host then refuses calls
// until the sink recovers, so an error must say which sink failed and why ("file: write
// /var/lib/mcphost/audit/audit-...jsonl: No space left on device").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace mcphost::audit {

// One record after sealing: its sequence number and the exact JSON line (no trailing newline)
// whose MAC the chain carries. Sinks store the line unchanged so that it can still be verified.
struct SealedRecord {
  std::uint64_t seq = 0;
  std::string line;
};

// Success of an operation that returns nothing.
struct Done {};
using Status = Expected<Done, std::string>;

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  AuditSink() = default;
  AuditSink(const AuditSink&) = delete;
  AuditSink& operator=(const AuditSink&) = delete;

  // "file", "syslog", "postgresql": used in log lines, errors and metric labels.
  [[nodiscard]] virtual std::string_view name() const = 0;
  // Writes the batch. Returns once the sink has accepted every record (for a file: written to
  // the kernel; durability on disk is sync()'s job). A failed batch may be offered again: a
  // sink must not store a record twice (the file sink truncates a partial write; PostgreSQL
  // uses seq as the primary key).
  virtual Status write(const std::vector<SealedRecord>& batch) = 0;
  // Makes everything written so far durable (fdatasync for a file). Called per the fsync policy.
  virtual Status sync() { return Done{}; }
  // Flushes and releases resources; called once at shutdown, after the last write.
  virtual void close() {}
};

}  // namespace mcphost::audit
