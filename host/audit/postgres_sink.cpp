#include "audit/postgres_sink.hpp"

#include <cctype>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <utility>

namespace mcphost::audit {

namespace {

// 9 parameters a row; PostgreSQL takes at most 65535 parameters per statement.
constexpr std::size_t kRowsPerStatement = 500;
constexpr std::size_t kReadPage = 1000;
constexpr std::size_t kMaxIdentifier = 63;       // NAMEDATALEN - 1
constexpr std::size_t kMaxTablePart = 63 - 10;   // room for "_principal" in index names
constexpr std::size_t kMinScrubbedPassword = 4;  // shorter ones would mangle every message

bool isUri(std::string_view conninfo) {
  return conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0;
}

bool isSpace(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// Where the password values sit in a connection string: [begin, end) byte ranges.
std::vector<std::pair<std::size_t, std::size_t>> passwordSpans(std::string_view conninfo) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  if (isUri(conninfo)) {
    const std::size_t authority = conninfo.find("://") + 3;
    const std::size_t authorityEnd = std::min(conninfo.find_first_of("/?", authority), conninfo.size());
    const std::size_t at = conninfo.rfind('@', authorityEnd);
    if (at != std::string_view::npos && at >= authority) {
      const std::size_t colon = conninfo.find(':', authority);
      if (colon < at) spans.emplace_back(colon + 1, at);
    }
    std::size_t at2 = conninfo.find('?', authority);
    while (at2 != std::string_view::npos && at2 < conninfo.size()) {
      const std::size_t start = at2 + 1;
      const std::size_t end = std::min(conninfo.find('&', start), conninfo.size());
      if (conninfo.substr(start, 9) == "password=") spans.emplace_back(start + 9, end);
      at2 = end < conninfo.size() ? end : std::string_view::npos;
    }
    return spans;
  }
  // key = value pairs as libpq reads them: values quoted with '...' (backslash escapes) or bare.
  std::size_t at = 0;
  while (at < conninfo.size()) {
    while (at < conninfo.size() && isSpace(conninfo[at])) ++at;
    const std::size_t keyStart = at;
    while (at < conninfo.size() && conninfo[at] != '=' && !isSpace(conninfo[at])) ++at;
    const std::string_view key = conninfo.substr(keyStart, at - keyStart);
    while (at < conninfo.size() && isSpace(conninfo[at])) ++at;
    if (at >= conninfo.size() || conninfo[at] != '=') break;  // malformed: libpq rejects it anyway
    ++at;
    while (at < conninfo.size() && isSpace(conninfo[at])) ++at;
    const std::size_t valueStart = at;
    if (at < conninfo.size() && conninfo[at] == '\'') {
      ++at;
      while (at < conninfo.size() && conninfo[at] != '\'') at += conninfo[at] == '\\' ? 2 : 1;
      at = std::min(at + 1, conninfo.size());
    } else {
      while (at < conninfo.size() && !isSpace(conninfo[at])) at += conninfo[at] == '\\' ? 2 : 1;
      at = std::min(at, conninfo.size());
    }
    if (key == "password") spans.emplace_back(valueStart, at);
  }
  return spans;
}

// Error text on one line, with any password that appears in it replaced.
std::string cleanMessage(std::string_view message, std::string_view conninfo) {
  std::string text;
  bool space = false;
  for (const char c : message) {
    if (isSpace(c)) {
      space = !text.empty();
      continue;
    }
    if (space) text += ' ';
    space = false;
    text += c;
  }
  for (const auto& [begin, end] : passwordSpans(conninfo)) {
    std::string secret(conninfo.substr(begin, end - begin));
    if (secret.size() >= 2 && secret.front() == '\'' && secret.back() == '\'')
      secret = secret.substr(1, secret.size() - 2);
    if (secret.size() < kMinScrubbedPassword) continue;
    for (std::size_t found = text.find(secret); found != std::string::npos; found = text.find(secret, found))
      text.replace(found, secret.size(), "***");
  }
  return text;
}

// Adds connect_timeout, application_name and TCP liveness settings unless the operator set them.
std::string withConnectDefaults(const std::string& conninfo, std::chrono::seconds connectTimeout) {
  std::string result = conninfo;
  const auto add = [&](const std::string& key, const std::string& value) {
    if (conninfo.find(key + "=") != std::string::npos) return;
    if (isUri(conninfo))
      result += (result.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
    else
      result += (result.empty() ? "" : " ") + key + "=" + value;
  };
  add("connect_timeout", std::to_string(std::max<std::int64_t>(1, connectTimeout.count())));
  add("application_name", "mcphost-audit");
  // statement_timeout is enforced by the server; these bound the wait when the server or the
  // network vanishes mid-statement without a reset (libpq would otherwise wait forever).
  add("keepalives_idle", "10");
  add("keepalives_interval", "3");
  add("keepalives_count", "3");
  add("tcp_user_timeout", "15000");
  return result;
}

bool isIdentifierPart(std::string_view part, std::size_t maxLength) {
  if (part.empty() || part.size() > maxLength) return false;
  if (!(part[0] == '_' || (part[0] >= 'a' && part[0] <= 'z'))) return false;
  for (const char c : part)
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

// "audit.records" -> "\"audit\".\"records\"": quoted although validated, so that a reserved
// word such as "user" still works as a table name.
std::string quoteTable(std::string_view table) {
  const std::size_t dot = table.find('.');
  if (dot == std::string_view::npos) return "\"" + std::string(table) + "\"";
  return "\"" + std::string(table.substr(0, dot)) + "\".\"" + std::string(table.substr(dot + 1)) + "\"";
}

std::string unqualified(std::string_view table) {
  const std::size_t dot = table.find('.');
  return std::string(dot == std::string_view::npos ? table : table.substr(dot + 1));
}

// jsonb cannot hold U+0000 and rejects the whole statement over it, so the queryable copy
// gets U+FFFD instead; `line` keeps the exact bytes. An escape is a "\u0000" preceded by an
// odd run of backslashes ("\\u0000" is a backslash followed by the text u0000).
std::string jsonbSafe(const std::string& line) {
  if (line.find("u0000") == std::string::npos) return line;
  std::string result;
  result.reserve(line.size());
  std::size_t backslashes = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (backslashes % 2 == 1 && line.compare(i, 5, "u0000") == 0) {
      result += "ufffd";
      i += 4;
      backslashes = 0;
      continue;
    }
    backslashes = line[i] == '\\' ? backslashes + 1 : 0;
    result += line[i];
  }
  return result;
}

// Only well-formed RFC 3339 times reach ::timestamptz; anything else would fail the whole
// batch (and with fail_closed, the host), so the row gets now() instead.
bool looksLikeTimestamp(const std::string& time) {
  static constexpr std::string_view kPattern = "dddd-dd-ddTdd:dd:dd";
  if (time.size() < kPattern.size() + 1) return false;
  for (std::size_t i = 0; i < kPattern.size(); ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(time[i])) != 0;
    if (kPattern[i] == 'd' ? !digit : time[i] != kPattern[i]) return false;
  }
  for (std::size_t i = kPattern.size(); i < time.size(); ++i) {
    const char c = time[i];
    if (std::isdigit(static_cast<unsigned char>(c)) == 0 && c != '.' && c != 'Z' && c != '+' && c != '-' &&
        c != ':')
      return false;
  }
  return true;
}

struct Row {
  std::string seq;
  std::optional<std::string> time, type, principal, method, target, status;
  std::string record;
};

Row rowFor(const SealedRecord& record) {
  Row row;
  row.seq = std::to_string(record.seq);
  const nlohmann::json parsed = nlohmann::json::parse(record.line, nullptr, false);
  if (!parsed.is_object()) {
    // Never expected from the chain; stored anyway (line intact) rather than blocking the sink.
    row.type = "unparseable";
    row.record = R"({"unparseable":true})";
    return row;
  }
  const auto text = [&](const char* key) -> std::optional<std::string> {
    const auto found = parsed.find(key);
    if (found == parsed.end() || !found->is_string()) return std::nullopt;
    return found->get<std::string>();
  };
  row.time = text("time");
  if (row.time && !looksLikeTimestamp(*row.time)) row.time.reset();
  row.type = text("type").value_or("unknown");
  row.principal = text("principal");
  row.method = text("method");
  row.target = text("target");
  row.status = text("status");
  row.record = jsonbSafe(record.line);
  return row;
}

const char* pointer(const std::optional<std::string>& value) {
  return value ? value->c_str() : nullptr;
}

}  // namespace

struct PostgresSink::Connection {
  explicit Connection(const std::string& conninfo) : db(conninfo) {}
  pqxx::connection db;
};

bool isValidAuditTableName(std::string_view table) {
  const std::size_t dot = table.find('.');
  if (dot == std::string_view::npos) return isIdentifierPart(table, kMaxTablePart);
  return isIdentifierPart(table.substr(0, dot), kMaxIdentifier) &&
         isIdentifierPart(table.substr(dot + 1), kMaxTablePart);
}

std::string redactConninfo(std::string_view conninfo) {
  std::string result(conninfo);
  auto spans = passwordSpans(conninfo);
  for (auto span = spans.rbegin(); span != spans.rend(); ++span)
    result.replace(span->first, span->second - span->first, "***");
  return result;
}

Expected<std::unique_ptr<PostgresSink>, std::string> PostgresSink::create(PostgresSettings settings) {
  if (settings.conninfo.empty()) return unexpected(std::string("postgresql: empty connection string"));
  if (!isValidAuditTableName(settings.table))
    return unexpected("postgresql: invalid table name '" + settings.table +
                      "' (lowercase letters, digits and _, optionally schema.table)");
  if (settings.statementTimeout.count() <= 0)
    return unexpected(std::string("postgresql: statement timeout must be positive"));
  return std::unique_ptr<PostgresSink>(new PostgresSink(std::move(settings)));  // private constructor
}

PostgresSink::PostgresSink(PostgresSettings settings)
    : settings_(std::move(settings)),
      conninfo_(withConnectDefaults(settings_.conninfo, settings_.connectTimeout)),
      quotedTable_(quoteTable(settings_.table)) {}

PostgresSink::~PostgresSink() = default;

Status PostgresSink::ensureConnected() {
  if (!connection_) {
    try {
      auto connection = std::make_unique<Connection>(conninfo_);
      // set_variable, not a raw SET: libpqxx re-applies these if it reconnects by itself.
      connection->db.set_variable("statement_timeout", std::to_string(settings_.statementTimeout.count()));
      connection->db.set_variable("client_min_messages", "warning");  // no NOTICEs on stderr
      connection_ = std::move(connection);
      tableReady_ = false;
    } catch (const std::exception& error) {
      return unexpected("postgresql: connect to " + redactConninfo(settings_.conninfo) + ": " +
                        cleanMessage(error.what(), settings_.conninfo));
    }
  }
  if (!settings_.createTable || tableReady_) return Done{};
  const std::string base = unqualified(settings_.table);
  try {
    pqxx::work transaction(connection_->db);
    transaction.exec(
        "CREATE TABLE IF NOT EXISTS " + quotedTable_ +
        " (seq bigint PRIMARY KEY, time timestamptz NOT NULL, type text NOT NULL, principal text,"
        " method text, target text, status text, record jsonb NOT NULL, line text NOT NULL)");
    transaction.exec("CREATE INDEX IF NOT EXISTS \"" + base + "_time\" ON " + quotedTable_ + " (time)");
    transaction.exec("CREATE INDEX IF NOT EXISTS \"" + base + "_principal\" ON " + quotedTable_ +
                     " (principal)");
    transaction.commit();
    tableReady_ = true;
    return Done{};
  } catch (const pqxx::sql_error& error) {
    return unexpected("postgresql: create table " + settings_.table + ": " +
                      cleanMessage(error.what(), settings_.conninfo));
  } catch (const std::exception& error) {
    connection_.reset();
    return unexpected("postgresql: create table " + settings_.table + ": " +
                      cleanMessage(error.what(), settings_.conninfo));
  }
}

Status PostgresSink::insert(const std::vector<SealedRecord>& batch) {
  std::vector<Row> rows;
  rows.reserve(batch.size());
  for (const SealedRecord& record : batch) rows.push_back(rowFor(record));
  pqxx::work transaction(connection_->db);
  for (std::size_t first = 0; first < rows.size(); first += kRowsPerStatement) {
    const std::size_t count = std::min(kRowsPerStatement, rows.size() - first);
    std::string sql = "INSERT INTO " + quotedTable_ +
                      " (seq, time, type, principal, method, target, status, record, line) VALUES ";
    std::vector<const char*> parameters;
    parameters.reserve(count * 9);
    for (std::size_t i = 0; i < count; ++i) {
      const Row& row = rows[first + i];
      const std::size_t n = i * 9;
      const auto p = [n](std::size_t k) { return "$" + std::to_string(n + k); };
      sql += (i == 0 ? "(" : ", (") + p(1) + "::bigint, COALESCE(" + p(2) + "::timestamptz, now()), " + p(3) +
             ", " + p(4) + ", " + p(5) + ", " + p(6) + ", " + p(7) + ", " + p(8) + "::jsonb, " + p(9) + ")";
      parameters.insert(
          parameters.end(),
          {row.seq.c_str(), pointer(row.time), pointer(row.type), pointer(row.principal), pointer(row.method),
           pointer(row.target), pointer(row.status), row.record.c_str(), batch[first + i].line.c_str()});
    }
    sql += " ON CONFLICT (seq) DO NOTHING";
    transaction.exec_params(sql, pqxx::prepare::make_dynamic_params(parameters));
  }
  transaction.commit();
  return Done{};
}

Status PostgresSink::write(const std::vector<SealedRecord>& batch) {
  const std::lock_guard lock(mutex_);
  if (batch.empty()) return Done{};
  for (const SealedRecord& record : batch) {
    if (record.seq > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return unexpected("postgresql: seq " + std::to_string(record.seq) + " does not fit a bigint");
    if (record.line.find('\0') != std::string::npos)
      return unexpected("postgresql: record seq " + std::to_string(record.seq) + " contains a NUL byte");
  }
  // One retry on a fresh connection when one that predates this batch turns out to be broken
  // (server restarted while idle): safe because ON CONFLICT makes the insert idempotent.
  bool mayRetry = connection_ != nullptr;
  for (;;) {
    if (Status connected = ensureConnected(); !connected) return connected;
    std::string cause;
    try {
      return insert(batch);
    } catch (const pqxx::broken_connection& error) {
      cause = "connection lost: " + std::string(error.what());
      connection_.reset();
    } catch (const pqxx::in_doubt_error& error) {
      cause = "commit in doubt: " + std::string(error.what());
      connection_.reset();
      mayRetry = true;  // the retry either inserts the rows or finds them already there
    } catch (const pqxx::sql_error& error) {
      if (error.sqlstate() == "42P01") tableReady_ = false;  // table dropped: recreate next time
      return unexpected("postgresql: insert into " + settings_.table + ": " +
                        cleanMessage(error.what(), settings_.conninfo));
    } catch (const std::exception& error) {
      cause = error.what();
      connection_.reset();
    }
    if (!mayRetry)
      return unexpected("postgresql: insert into " + settings_.table + ": " +
                        cleanMessage(cause, settings_.conninfo));
    mayRetry = false;
  }
}

void PostgresSink::close() {
  const std::lock_guard lock(mutex_);
  connection_.reset();
}

Status forEachPostgresAuditLine(
    const std::string& conninfo, const std::string& table, std::uint64_t fromSeq,
    const std::function<bool(std::uint64_t seq, const std::string& line)>& visit) {
  if (!isValidAuditTableName(table)) return unexpected("postgresql: invalid table name '" + table + "'");
  if (fromSeq > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return Done{};
  try {
    pqxx::connection db(withConnectDefaults(conninfo, std::chrono::seconds(5)));
    // One snapshot for all pages, so a writer appending meanwhile cannot shift them.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> transaction(db);
    const std::string sql = "SELECT seq, line FROM " + quoteTable(table) +
                            " WHERE seq >= $1 ORDER BY seq LIMIT " + std::to_string(kReadPage);
    auto next = static_cast<std::int64_t>(fromSeq);
    for (;;) {
      const pqxx::result page = transaction.exec_params(sql, next);
      for (const auto& row : page) {
        const auto seq = row[0].as<std::int64_t>();
        if (!visit(static_cast<std::uint64_t>(seq), row[1].as<std::string>())) return Done{};
        next = seq + 1;
      }
      if (page.size() < kReadPage || next == std::numeric_limits<std::int64_t>::max()) return Done{};
    }
  } catch (const std::exception& error) {
    return unexpected("postgresql: read " + table + " from " + redactConninfo(conninfo) + ": " +
                      cleanMessage(error.what(), conninfo));
  }
}

Expected<std::vector<std::string>, std::string> readPostgresAuditLines(const std::string& conninfo,
                                                                       const std::string& table,
                                                                       std::uint64_t fromSeq,
                                                                       std::size_t limit) {
  std::vector<std::string> lines;
  Status status =
      forEachPostgresAuditLine(conninfo, table, fromSeq, [&](std::uint64_t, const std::string& line) {
        lines.push_back(line);
        return limit == 0 || lines.size() < limit;
      });
  if (!status) return unexpected(status.error());
  return lines;
}

}  // namespace mcphost::audit
