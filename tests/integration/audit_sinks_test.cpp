// The syslog and PostgreSQL audit sinks against real receivers on loopback: syslog against
// in-test UDP, TCP and Unix datagram listeners (no syslog daemon is installed; the frames are
// parsed strictly per RFC 5424 and RFC 6587), PostgreSQL against a real server started here.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "audit/postgres_sink.hpp"
#include "audit/syslog_sink.hpp"
#include "support/postgres_server.hpp"

using mcphost::audit::PostgresSettings;
using mcphost::audit::PostgresSink;
using mcphost::audit::SealedRecord;
using mcphost::audit::SyslogSettings;
using mcphost::audit::SyslogSink;
using mcphost::audit::SyslogTransport;

namespace {

// ---------------------------------------------------------------- records

SealedRecord makeRecord(std::uint64_t seq, const std::string& principal = "alice",
                        const std::string& status = "ok",
                        const nlohmann::json& args = nlohmann::json::object()) {
  nlohmann::json line = {{"seq", seq},
                         {"time", "2026-12-01T23:59:59.123456Z"},
                         {"type", "request"},
                         {"correlation_id", "c-" + std::to_string(seq)},
                         {"principal", principal},
                         {"auth_method", "jwt"},
                         {"source_ip", "127.0.0.1"},
                         {"method", "tools/call"},
                         {"connector", "crm"},
                         {"target", "crm__find"},
                         {"args", args},
                         {"decision", status == "denied" ? "deny" : "allow"},
                         {"status", status},
                         {"latency_us", 1234},
                         {"prev", std::string(64, 'a')},
                         {"mac", std::string(64, 'b')}};
  return {seq, line.dump()};
}

std::vector<SealedRecord> makeBatch(std::uint64_t first, std::uint64_t count) {
  std::vector<SealedRecord> batch;
  for (std::uint64_t seq = first; seq < first + count; ++seq)
    batch.push_back(makeRecord(seq, seq % 2 == 0 ? "bob" : "alice"));
  return batch;
}

// ---------------------------------------------------------------- strict RFC 5424 parsing

struct SyslogMessage {
  int pri = -1;
  std::string timestamp, hostname, appName, procId, msgId;
  std::map<std::string, std::map<std::string, std::string>> sd;
  std::string msg;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  SyslogMessage parse() {
    SyslogMessage message;
    expect('<');
    const std::string pri = digits(1, 3);
    message.pri = std::stoi(pri);
    if (message.pri > 191 || (pri.size() > 1 && pri[0] == '0')) fail("bad PRI");
    expect('>');
    if (digits(1, 2) != "1") fail("version is not 1");
    expect(' ');
    message.timestamp = token(128);
    checkTimestamp(message.timestamp);
    expect(' ');
    message.hostname = token(255);
    expect(' ');
    message.appName = token(48);
    expect(' ');
    message.procId = token(128);
    expect(' ');
    message.msgId = token(32);
    expect(' ');
    if (peek() == '-') {
      ++at_;
    } else {
      if (peek() != '[') fail("structured data must be - or [");
      while (peek() == '[') parseElement(message);
    }
    if (at_ < text_.size()) {
      expect(' ');
      message.msg = std::string(text_.substr(at_));
    }
    return message;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error(why + " at offset " + std::to_string(at_) + " in: " + std::string(text_));
  }
  char peek() const { return at_ < text_.size() ? text_[at_] : '\0'; }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++at_;
  }
  std::string digits(std::size_t min, std::size_t max) {
    const std::size_t start = at_;
    while (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_])) != 0) ++at_;
    if (at_ - start < min || at_ - start > max) fail("digit count");
    return std::string(text_.substr(start, at_ - start));
  }
  // PRINTUSASCII run of 1..max characters.
  std::string token(std::size_t max) {
    const std::size_t start = at_;
    while (at_ < text_.size() && text_[at_] >= 33 && text_[at_] <= 126) ++at_;
    if (at_ == start || at_ - start > max) fail("header field length");
    return std::string(text_.substr(start, at_ - start));
  }
  std::string sdName() {
    const std::size_t start = at_;
    while (at_ < text_.size() && text_[at_] >= 33 && text_[at_] <= 126 && text_[at_] != '=' &&
           text_[at_] != ']' && text_[at_] != '"')
      ++at_;
    if (at_ == start || at_ - start > 32) fail("SD-NAME length");
    return std::string(text_.substr(start, at_ - start));
  }
  void parseElement(SyslogMessage& message) {
    expect('[');
    auto& params = message.sd[sdName()];
    while (peek() == ' ') {
      ++at_;
      const std::string name = sdName();
      expect('=');
      expect('"');
      std::string value;
      for (;;) {
        if (at_ >= text_.size()) fail("unterminated PARAM-VALUE");
        const char c = text_[at_++];
        if (c == '"') break;
        if (c == ']') fail("unescaped ] in PARAM-VALUE");
        if (c == '\\' && (peek() == '"' || peek() == '\\' || peek() == ']')) {
          value += text_[at_++];
          continue;
        }
        value += c;
      }
      params[name] = value;
    }
    expect(']');
  }
  void checkTimestamp(const std::string& timestamp) const {
    // FULL-DATE "T" FULL-TIME, at most 6 fractional digits, Z or +hh:mm.
    const std::string pattern = "dddd-dd-ddTdd:dd:dd";
    bool ok = timestamp.size() > pattern.size();
    for (std::size_t i = 0; ok && i < pattern.size(); ++i)
      ok = pattern[i] == 'd' ? std::isdigit(static_cast<unsigned char>(timestamp[i])) != 0
                             : timestamp[i] == pattern[i];
    std::size_t i = pattern.size();
    if (ok && timestamp[i] == '.') {
      const std::size_t start = ++i;
      while (i < timestamp.size() && std::isdigit(static_cast<unsigned char>(timestamp[i])) != 0) ++i;
      ok = i > start && i - start <= 6;
    }
    if (ok)
      ok = timestamp.substr(i) == "Z" ||
           (timestamp.size() - i == 6 && (timestamp[i] == '+' || timestamp[i] == '-'));
    if (!ok) fail("bad TIMESTAMP " + timestamp);
  }

  std::string_view text_;
  std::size_t at_ = 0;
};

SyslogMessage parseSyslog(std::string_view text) {
  return Parser(text).parse();
}

// ---------------------------------------------------------------- receivers

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    reset();
    fd_ = std::exchange(other.fd_, -1);
    return *this;
  }
  [[nodiscard]] int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

 private:
  int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Binds 127.0.0.1:<port> (0: any free port) and returns the socket and the port.
std::pair<Fd, std::uint16_t> bindLoopback(int type, std::uint16_t port) {
  Fd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address = loopback(port);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  socklen_t length = sizeof(address);
  REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
  if (type == SOCK_STREAM) REQUIRE(::listen(fd.get(), 8) == 0);
  return {std::move(fd), ntohs(address.sin_port)};
}

bool readable(int fd, int timeoutMs) {
  pollfd watch{fd, POLLIN, 0};
  return ::poll(&watch, 1, timeoutMs) == 1;
}

// One datagram, or nullopt after the timeout.
std::optional<std::string> receiveDatagram(int fd, int timeoutMs = 2000) {
  if (!readable(fd, timeoutMs)) return std::nullopt;
  std::string buffer(70000, '\0');
  const ssize_t size = ::recv(fd, buffer.data(), buffer.size(), 0);
  if (size < 0) return std::nullopt;
  buffer.resize(static_cast<std::size_t>(size));
  return buffer;
}

// Reads octet-counted frames (RFC 6587 3.4.1: MSG-LEN SP SYSLOG-MSG) until `count` arrived.
std::vector<std::string> receiveFrames(int fd, std::size_t count, std::string& pending,
                                       int timeoutMs = 3000) {
  std::vector<std::string> frames;
  for (;;) {
    while (true) {
      const std::size_t space = pending.find(' ');
      if (space == std::string::npos) break;
      const std::string length = pending.substr(0, space);
      REQUIRE(!length.empty());
      REQUIRE(length[0] != '0');
      for (const char c : length) REQUIRE(std::isdigit(static_cast<unsigned char>(c)) != 0);
      const std::size_t size = std::stoul(length);
      if (pending.size() < space + 1 + size) break;
      frames.push_back(pending.substr(space + 1, size));
      pending.erase(0, space + 1 + size);
    }
    if (frames.size() >= count || !readable(fd, timeoutMs)) return frames;
    std::array<char, 65536> buffer{};
    const ssize_t size = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (size <= 0) return frames;
    pending.append(buffer.data(), static_cast<std::size_t>(size));
  }
}

int acceptWithin(int listener, int timeoutMs = 3000) {
  if (!readable(listener, timeoutMs)) return -1;
  return ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
}

std::unique_ptr<SyslogSink> makeSyslogSink(SyslogSettings settings) {
  settings.hostname = "testhost";
  auto sink = SyslogSink::create(std::move(settings));
  REQUIRE(sink);
  return std::move(sink).value();
}

}  // namespace

// ================================================================ syslog

TEST_CASE("audit sink: syslog over UDP sends one RFC 5424 datagram per record", "[audit][syslog]") {
  auto [receiver, port] = bindLoopback(SOCK_DGRAM, 0);
  SyslogSettings settings;
  settings.transport = SyslogTransport::Udp;
  settings.port = port;
  auto sink = makeSyslogSink(settings);
  const auto batch = makeBatch(1, 3);
  REQUIRE(sink->write(batch));
  for (const auto& record : batch) {
    const auto datagram = receiveDatagram(receiver.get());
    REQUIRE(datagram);
    const SyslogMessage message = parseSyslog(*datagram);
    CHECK(message.pri == 10 * 8 + 6);  // authpriv.info
    CHECK(message.timestamp == "2026-12-01T23:59:59.123456Z");
    CHECK(message.hostname == "testhost");
    CHECK(message.appName == "mcphost");
    CHECK(message.procId == std::to_string(::getpid()));
    CHECK(message.msgId == "request");
    REQUIRE(message.sd.count("mcphost@32473") == 1);
    const auto& params = message.sd.at("mcphost@32473");
    CHECK(params.at("seq") == std::to_string(record.seq));
    CHECK(params.at("type") == "request");
    CHECK(params.at("principal") == (record.seq % 2 == 0 ? "bob" : "alice"));
    CHECK(params.at("status") == "ok");
    CHECK(message.msg == record.line);  // the sealed line, byte for byte
  }
  CHECK_FALSE(receiveDatagram(receiver.get(), 100));
  // A retried batch is not sent again; new records are.
  REQUIRE(sink->write(makeBatch(3, 2)));
  const auto next = receiveDatagram(receiver.get());
  REQUIRE(next);
  CHECK(parseSyslog(*next).sd.at("mcphost@32473").at("seq") == "4");
  CHECK_FALSE(receiveDatagram(receiver.get(), 100));
}

TEST_CASE("audit sink: syslog escapes structured data and maps severity and facility", "[audit][syslog]") {
  auto [receiver, port] = bindLoopback(SOCK_DGRAM, 0);
  SyslogSettings settings;
  settings.transport = SyslogTransport::Udp;
  settings.port = port;
  const auto facility = mcphost::audit::parseSyslogFacility("local3");
  REQUIRE(facility);
  settings.facility = *facility;
  auto sink = makeSyslogSink(settings);
  const std::string tricky = R"(al"i]c\e)";
  REQUIRE(sink->write(
      {makeRecord(1, tricky, "ok"), makeRecord(2, "bob", "denied"), makeRecord(3, "carol", "error")}));

  const auto first = receiveDatagram(receiver.get());
  REQUIRE(first);
  CHECK(first->find(R"(principal="al\"i\]c\\e")") != std::string::npos);
  const SyslogMessage escaped = parseSyslog(*first);
  CHECK(escaped.sd.at("mcphost@32473").at("principal") == tricky);
  CHECK(escaped.pri == 19 * 8 + 6);  // local3.info
  CHECK(nlohmann::json::parse(escaped.msg).at("principal") == tricky);

  const auto denied = receiveDatagram(receiver.get());
  REQUIRE(denied);
  CHECK(parseSyslog(*denied).pri == 19 * 8 + 5);  // notice
  const auto failed = receiveDatagram(receiver.get());
  REQUIRE(failed);
  CHECK(parseSyslog(*failed).pri == 19 * 8 + 4);  // warning

  CHECK(mcphost::audit::escapeSdValue(R"(a"b\c]d)") == R"(a\"b\\c\]d)");
  CHECK_FALSE(mcphost::audit::parseSyslogFacility("local9"));
}

TEST_CASE("audit sink: syslog truncates oversized datagrams and says so", "[audit][syslog]") {
  auto [receiver, port] = bindLoopback(SOCK_DGRAM, 0);
  SyslogSettings settings;
  settings.transport = SyslogTransport::Udp;
  settings.port = port;
  settings.maxDatagramBytes = 2048;
  auto sink = makeSyslogSink(settings);
  // Multi-byte characters so that the cut has to respect UTF-8 boundaries.
  std::string big;
  for (int i = 0; i < 3000; ++i) big += "\xc3\xa9";  // é
  const SealedRecord record = makeRecord(1, "alice", "ok", {{"text", big}});
  REQUIRE(sink->write({record}));
  const auto datagram = receiveDatagram(receiver.get());
  REQUIRE(datagram);
  CHECK(datagram->size() <= 2048);
  const SyslogMessage message = parseSyslog(*datagram);
  CHECK(message.sd.at("mcphost@32473").at("truncated") == std::to_string(record.line.size()));
  CHECK(record.line.compare(0, message.msg.size(), message.msg) == 0);
  // The cut falls before a lead byte, never inside a character.
  CHECK((static_cast<unsigned char>(record.line[message.msg.size()]) & 0xC0U) != 0x80U);
}

TEST_CASE("audit sink: syslog over TCP uses octet counting and recovers after the collector restarts",
          "[audit][syslog]") {
  auto listening = bindLoopback(SOCK_STREAM, 0);
  Fd listener = std::move(listening.first);
  const std::uint16_t port = listening.second;
  SyslogSettings settings;
  settings.transport = SyslogTransport::Tcp;
  settings.port = port;
  settings.timeout = std::chrono::milliseconds(1000);
  auto sink = makeSyslogSink(settings);

  // Newlines inside the record must not matter with octet counting.
  const SealedRecord multiline = makeRecord(1, "alice", "ok", {{"note", "line one\nline two"}});
  std::vector<SealedRecord> batch = {multiline, makeRecord(2), makeRecord(3, "bob")};
  REQUIRE(sink->write(batch));
  Fd connection(acceptWithin(listener.get()));
  REQUIRE(connection.get() >= 0);
  std::string pending;
  auto frames = receiveFrames(connection.get(), 3, pending);
  REQUIRE(frames.size() == 3);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const SyslogMessage message = parseSyslog(frames[i]);
    CHECK(message.msg == batch[i].line);
    CHECK(message.sd.at("mcphost@32473").at("seq") == std::to_string(batch[i].seq));
  }
  CHECK(pending.empty());

  // The collector goes away: the next write fails, naming the target and the cause.
  connection.reset();
  listener.reset();
  const auto down = sink->write({makeRecord(4)});
  REQUIRE_FALSE(down);
  CHECK(down.error().find("syslog") != std::string::npos);
  CHECK(down.error().find("tcp:127.0.0.1:" + std::to_string(port)) != std::string::npos);
  CHECK(down.error().find("refused") != std::string::npos);

  // Back on the same port: the retried batch arrives once, on a new connection.
  auto again = bindLoopback(SOCK_STREAM, port);
  listener = std::move(again.first);
  REQUIRE(sink->write({makeRecord(4), makeRecord(5)}));
  connection = Fd(acceptWithin(listener.get()));
  REQUIRE(connection.get() >= 0);
  pending.clear();
  frames = receiveFrames(connection.get(), 3, pending, 300);  // 3: a duplicate would show
  REQUIRE(frames.size() == 2);
  CHECK(parseSyslog(frames[0]).sd.at("mcphost@32473").at("seq") == "4");
  CHECK(parseSyslog(frames[1]).sd.at("mcphost@32473").at("seq") == "5");
  sink->close();
}

TEST_CASE("audit sink: syslog to a Unix datagram socket like /dev/log", "[audit][syslog]") {
  char pattern[] = "/tmp/mcphost-syslog-XXXXXX";
  REQUIRE(::mkdtemp(pattern) != nullptr);
  const std::string dir = pattern;
  const std::string path = dir + "/log";
  SyslogSettings settings;
  REQUIRE(mcphost::audit::parseSyslogTarget("unix:" + path, settings));
  CHECK(settings.transport == SyslogTransport::Unix);
  auto sink = makeSyslogSink(settings);

  // Nobody listening yet: a clear error, and no hang.
  const auto down = sink->write({makeRecord(1)});
  REQUIRE_FALSE(down);
  CHECK(down.error().find("unix:" + path) != std::string::npos);

  {
    Fd receiver(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    REQUIRE(::bind(receiver.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(sink->write({makeRecord(1), makeRecord(2)}));
    for (const std::string seq : {"1", "2"}) {
      const auto datagram = receiveDatagram(receiver.get());
      REQUIRE(datagram);
      CHECK(parseSyslog(*datagram).sd.at("mcphost@32473").at("seq") == seq);
    }
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("audit sink: syslog targets and settings are validated", "[audit][syslog]") {
  SyslogSettings settings;
  REQUIRE(mcphost::audit::parseSyslogTarget("tcp://[::1]:6514", settings));
  CHECK(settings.transport == SyslogTransport::Tcp);
  CHECK(settings.host == "::1");
  CHECK(settings.port == 6514);
  CHECK(mcphost::audit::describeSyslogTarget(settings) == "tcp:[::1]:6514");
  REQUIRE(mcphost::audit::parseSyslogTarget("udp://logs.example.com", settings));
  CHECK(settings.port == 514);
  CHECK_FALSE(mcphost::audit::parseSyslogTarget("udp://host:0", settings));
  CHECK_FALSE(mcphost::audit::parseSyslogTarget("http://host", settings));
  CHECK_FALSE(mcphost::audit::parseSyslogTarget("unix:relative", settings));
  SyslogSettings bad;
  bad.appName = "has space";
  CHECK_FALSE(SyslogSink::create(bad));
}

// ================================================================ PostgreSQL

namespace {

std::unique_ptr<PostgresSink> makePostgresSink(const mcphost::test::PostgresServer& server,
                                               const std::string& table = "mcphost_audit") {
  PostgresSettings settings;
  settings.conninfo = server.connectionString("audit");
  settings.table = table;
  settings.connectTimeout = std::chrono::seconds(2);
  auto sink = PostgresSink::create(settings);
  REQUIRE(sink);
  return std::move(sink).value();
}

std::string scalar(const mcphost::test::PostgresServer& server, const std::string& sql) {
  const auto rows = server.query(sql, "audit");
  REQUIRE(rows.size() == 1);
  REQUIRE(rows[0].size() == 1);
  return rows[0][0].value_or("NULL");
}

}  // namespace

TEST_CASE("audit sink: postgresql stores batches idempotently and survives a server restart",
          "[audit][postgresql]") {
  if (!mcphost::test::PostgresServer::available()) {
    WARN("PostgreSQL server binaries not installed: skipped");
    return;
  }
  mcphost::test::PostgresServer server;
  server.createDatabase("audit");
  auto sink = makePostgresSink(server);
  CHECK(sink->name() == "postgresql");

  // First write creates the table and indexes.
  const auto first = makeBatch(1, 5);
  REQUIRE(sink->write(first));
  CHECK(scalar(server, "SELECT count(*) FROM mcphost_audit") == "5");
  CHECK(scalar(server, "SELECT count(*) FROM pg_indexes WHERE tablename = 'mcphost_audit'") == "3");

  // A batch offered again (after an apparent failure) does not duplicate rows.
  REQUIRE(sink->write(makeBatch(4, 4)));
  CHECK(scalar(server, "SELECT count(*) FROM mcphost_audit") == "7");

  // Columns and the jsonb copy are queryable.
  CHECK(scalar(server, "SELECT count(*) FROM mcphost_audit WHERE principal = 'bob'") == "3");
  CHECK(scalar(server, "SELECT count(*) FROM mcphost_audit WHERE record->>'principal' = 'alice'") == "4");
  CHECK(scalar(server, "SELECT record->>'connector' FROM mcphost_audit WHERE seq = 2") == "crm");
  CHECK(scalar(server,
               "SELECT method || ' ' || target || ' ' || status || ' ' || type FROM mcphost_audit "
               "WHERE seq = 3") == "tools/call crm__find ok request");
  CHECK(scalar(server,
               "SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM mcphost_audit "
               "WHERE seq = 1") == "2026-12-01 23:59:59.123456");

  // Lines come back exactly, in seq order (what `audit verify` will check).
  const std::string conninfo = server.connectionString("audit");
  auto lines = mcphost::audit::readPostgresAuditLines(conninfo, "mcphost_audit", 1, 0);
  REQUIRE(lines);
  const auto all = makeBatch(1, 7);
  REQUIRE(lines->size() == 7);
  for (std::size_t i = 0; i < all.size(); ++i) CHECK((*lines)[i] == all[i].line);
  lines = mcphost::audit::readPostgresAuditLines(conninfo, "mcphost_audit", 3, 2);
  REQUIRE(lines);
  REQUIRE(lines->size() == 2);
  CHECK((*lines)[0] == all[2].line);

  // The server goes away: the write fails naming the sink, without the password.
  server.stop();
  const auto down = sink->write(makeBatch(8, 2));
  REQUIRE_FALSE(down);
  CHECK(down.error().rfind("postgresql:", 0) == 0);
  CHECK(down.error().find(mcphost::test::PostgresServer::superuserPassword()) == std::string::npos);
  CHECK(down.error().find("password=***") != std::string::npos);

  // Back again: the retried batch goes in, once.
  server.start();
  REQUIRE(sink->write(makeBatch(8, 2)));
  CHECK(scalar(server, "SELECT count(*) FROM mcphost_audit") == "9");

  // A restart while the sink is idle costs no failed write: the stale connection is replaced.
  server.stop();
  server.start();
  REQUIRE(sink->write(makeBatch(10, 1)));
  CHECK(scalar(server, "SELECT max(seq) FROM mcphost_audit") == "10");
  sink->close();
}

TEST_CASE("audit sink: postgresql keeps odd records intact", "[audit][postgresql]") {
  if (!mcphost::test::PostgresServer::available()) {
    WARN("PostgreSQL server binaries not installed: skipped");
    return;
  }
  mcphost::test::PostgresServer server;
  server.createDatabase("audit");
  auto sink = makePostgresSink(server, "audit_records");
  // A NUL escape (jsonb refuses U+0000), quotes, and a record type without principal.
  const SealedRecord nul =
      makeRecord(1, "o'brien", "ok", {{"blob", std::string("a\0b", 3)}, {"q", "\\u0000"}});
  const SealedRecord start{2,
                           R"({"seq":2,"time":"2026-12-02T00:00:00Z","type":"start","prev":"x","mac":"y"})"};
  std::vector<SealedRecord> big;
  for (std::uint64_t seq = 3; seq < 1203; ++seq) big.push_back(makeRecord(seq));  // more than one INSERT
  REQUIRE(sink->write({nul, start}));
  REQUIRE(sink->write(big));
  CHECK(scalar(server, "SELECT count(*) FROM audit_records") == "1202");
  CHECK(scalar(server, "SELECT principal FROM audit_records WHERE seq = 1") == "o'brien");
  CHECK(
      scalar(server, "SELECT coalesce(principal, 'none') || ' ' || type FROM audit_records WHERE seq = 2") ==
      "none start");
  auto lines =
      mcphost::audit::readPostgresAuditLines(server.connectionString("audit"), "audit_records", 1, 0);
  REQUIRE(lines);
  REQUIRE(lines->size() == 1202);
  CHECK((*lines)[0] == nul.line);
  CHECK((*lines)[1] == start.line);
  CHECK((*lines)[1201] == big.back().line);
  // A URI works as well as key=value.
  lines = mcphost::audit::readPostgresAuditLines(server.connectionUri("audit"), "audit_records", 1202, 0);
  REQUIRE(lines);
  CHECK(lines->size() == 1);

  // An ordinary role owning its database, with a password that needs quoting.
  const std::string password = R"(it's a \secret)";
  server.createRole("auditor", password);
  server.createDatabase("audit_owned", "auditor");
  PostgresSettings settings;
  settings.conninfo = server.connectionString("audit_owned", "auditor", password);
  settings.table = "trail";
  auto owned = PostgresSink::create(settings);
  REQUIRE(owned);
  REQUIRE((*owned)->write(makeBatch(1, 3)));
  CHECK(server.query("SELECT count(*) FROM trail", "audit_owned").at(0).at(0) == "3");
  CHECK(
      server.query("SELECT tableowner FROM pg_tables WHERE tablename = 'trail'", "audit_owned").at(0).at(0) ==
      "auditor");

  std::size_t visited = 0;
  REQUIRE(mcphost::audit::forEachPostgresAuditLine(server.connectionString("audit"), "audit_records", 1000,
                                                   [&](std::uint64_t seq, const std::string&) {
                                                     CHECK(seq == 1000 + visited);
                                                     return ++visited < 5;
                                                   }));
  CHECK(visited == 5);
}

TEST_CASE("audit sink: postgresql refuses bad table names and hides passwords", "[audit][postgresql]") {
  for (const std::string& table :
       std::vector<std::string>{"", "Audit", "audit-log", "1audit", "a.b.c", "audit; drop table x", "\"x\"",
                                std::string(60, 'a')}) {
    PostgresSettings settings;
    settings.conninfo = "host=127.0.0.1";
    settings.table = table;
    const auto sink = PostgresSink::create(settings);
    REQUIRE_FALSE(sink);
    CHECK(sink.error().find("table") != std::string::npos);
  }
  CHECK(mcphost::audit::isValidAuditTableName("audit.mcphost_audit"));
  CHECK(mcphost::audit::isValidAuditTableName("user"));
  CHECK_FALSE(mcphost::audit::readPostgresAuditLines("host=127.0.0.1", "bad-name", 0, 0));

  using mcphost::audit::redactConninfo;
  CHECK(redactConninfo("host=db user=u password=s3cret dbname=a") == "host=db user=u password=*** dbname=a");
  CHECK(redactConninfo("host=db password = 'a \\' b' port=1") == "host=db password = *** port=1");
  CHECK(redactConninfo("postgresql://u:s3cret@db:5432/a?sslmode=require&password=other") ==
        "postgresql://u:***@db:5432/a?sslmode=require&password=***");
  CHECK(redactConninfo("postgresql://db/a") == "postgresql://db/a");

  // Nothing listens: the error names the sink and the target, never the password.
  PostgresSettings settings;
  settings.conninfo = "host=127.0.0.1 port=1 dbname=audit user=u password=very-secret-pw";
  settings.connectTimeout = std::chrono::seconds(1);
  auto sink = PostgresSink::create(settings);
  REQUIRE(sink);
  const auto failed = (*sink)->write(makeBatch(1, 1));
  REQUIRE_FALSE(failed);
  CHECK(failed.error().rfind("postgresql: connect to host=127.0.0.1 port=1", 0) == 0);
  CHECK(failed.error().find("very-secret-pw") == std::string::npos);
}
