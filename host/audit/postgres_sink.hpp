// Audit sink that stores every sealed record as one row of a PostgreSQL table, for querying
// ("everything alice did on crm last week") and as an off-host copy of the chain.
//
// Table (created when missing unless createTable is off, e.g. for an INSERT-only role):
//   seq bigint primary key, time timestamptz not null, type text not null, principal text,
//   method text, target text, status text, record jsonb not null, line text not null
// plus indexes on time and principal. `line` holds the exact sealed bytes, so the chain can be
// verified from the database (readPostgresAuditLines); `record` is the same JSON as jsonb.
//
// A batch is one transaction of parameterised multi-row INSERTs with ON CONFLICT (seq) DO
// NOTHING, so a batch offered again after a failure never stores a record twice. The
// connection is opened on the first write and re-opened on the next write after it broke.
// Errors start with "postgresql:" and never contain the password.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_sink.hpp"
#include "common/expected.hpp"

namespace mcphost::audit {

struct PostgresSettings {
  // A libpq connection string, key=value ("host=db port=5432 dbname=audit user=mcphost
  // password=...") or URI (postgresql://...), with the password already resolved from its
  // secret. connect_timeout is added when absent.
  std::string conninfo;
  // Lowercase identifier, optionally schema-qualified ("audit.records").
  std::string table = "mcphost_audit";
  bool createTable = true;
  std::chrono::seconds connectTimeout{5};
  std::chrono::milliseconds statementTimeout{5000};
};

// [a-z_][a-z0-9_]* per part, at most one '.', table part short enough for "<table>_time_idx".
bool isValidAuditTableName(std::string_view table);
// The connection string with every password replaced by "***", for logs and errors.
std::string redactConninfo(std::string_view conninfo);

class PostgresSink final : public AuditSink {
 public:
  // Checks the settings (table name, non-empty conninfo); does not connect.
  static Expected<std::unique_ptr<PostgresSink>, std::string> create(PostgresSettings settings);
  ~PostgresSink() override;

  [[nodiscard]] std::string_view name() const override { return "postgresql"; }
  Status write(const std::vector<SealedRecord>& batch) override;
  void close() override;

 private:
  explicit PostgresSink(PostgresSettings settings);
  struct Connection;  // the libpqxx connection, kept out of this header
  Status ensureConnected();
  Status insert(const std::vector<SealedRecord>& batch);

  PostgresSettings settings_;
  std::string conninfo_;  // settings_.conninfo with connect_timeout and application_name
  std::string quotedTable_;
  std::mutex mutex_;
  std::unique_ptr<Connection> connection_;
  bool tableReady_ = false;
};

// Reads up to `limit` lines (0: all) with seq >= fromSeq in seq order (for `audit verify`
// against the database). The connection is opened and closed by the call.
Expected<std::vector<std::string>, std::string> readPostgresAuditLines(const std::string& conninfo,
                                                                       const std::string& table,
                                                                       std::uint64_t fromSeq,
                                                                       std::size_t limit);
// Streams every line with seq >= fromSeq in seq order, in pages, without holding them all in
// memory; `visit` returns false to stop early.
Status forEachPostgresAuditLine(const std::string& conninfo, const std::string& table, std::uint64_t fromSeq,
                                const std::function<bool(std::uint64_t seq, const std::string& line)>& visit);

}  // namespace mcphost::audit
