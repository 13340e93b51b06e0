#include "audit/syslog_sink.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <utility>

namespace mcphost::audit {

namespace {

// The IANA "example" enterprise number from RFC 5424's own examples: SD-IDs with an '@' must
// carry a private enterprise number, and mcphost has none registered.
constexpr std::string_view kSdId = "mcphost@32473";
constexpr std::string_view kFallbackMsgId = "audit";
constexpr std::size_t kMaxSdValue = 128;

constexpr int kSeverityWarning = 4;
constexpr int kSeverityNotice = 5;
constexpr int kSeverityInfo = 6;

struct FacilityName {
  std::string_view name;
  int code;
};
constexpr std::array<FacilityName, 24> kFacilities = {{
    {"kern", 0},    {"user", 1},    {"mail", 2},    {"daemon", 3},  {"auth", 4},      {"syslog", 5},
    {"lpr", 6},     {"news", 7},    {"uucp", 8},    {"cron", 9},    {"authpriv", 10}, {"ftp", 11},
    {"ntp", 12},    {"audit", 13},  {"alert", 14},  {"clock", 15},  {"local0", 16},   {"local1", 17},
    {"local2", 18}, {"local3", 19}, {"local4", 20}, {"local5", 21}, {"local6", 22},   {"local7", 23},
}};

// PRINTUSASCII (%d33-126): what HOSTNAME, APP-NAME, PROCID and MSGID may contain.
bool isPrintUsAscii(std::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 33 || byte > 126) return false;
  }
  return true;
}

bool allDigits(std::string_view text) {
  for (const char c : text)
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) return false;
  return !text.empty();
}

// Accepts RFC 3339 date-times as RFC 5424 restricts them (at most 6 fractional digits) and
// returns the timestamp to use; longer fractions are cut rather than the record's time dropped.
std::optional<std::string> syslogTimestamp(std::string_view time) {
  if (time.size() < 20) return std::nullopt;
  const auto digitsAt = [&](std::size_t at, std::size_t count) {
    return at + count <= time.size() && allDigits(time.substr(at, count));
  };
  if (!digitsAt(0, 4) || time[4] != '-' || !digitsAt(5, 2) || time[7] != '-' || !digitsAt(8, 2) ||
      time[10] != 'T' || !digitsAt(11, 2) || time[13] != ':' || !digitsAt(14, 2) || time[16] != ':' ||
      !digitsAt(17, 2))
    return std::nullopt;
  std::string result(time.substr(0, 19));
  std::size_t at = 19;
  if (at < time.size() && time[at] == '.') {
    std::size_t end = at + 1;
    while (end < time.size() && std::isdigit(static_cast<unsigned char>(time[end])) != 0) ++end;
    if (end == at + 1) return std::nullopt;
    result += time.substr(at, std::min<std::size_t>(end - at, 7));
    at = end;
  }
  const std::string_view zone = time.substr(at);
  if (zone == "Z" || (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') &&
                      allDigits(zone.substr(1, 2)) && zone[3] == ':' && allDigits(zone.substr(4, 2)))) {
    result += zone;
    return result;
  }
  return std::nullopt;
}

std::string nowTimestamp() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  std::tm utc{};
  ::gmtime_r(&now.tv_sec, &utc);
  std::array<char, 40> buffer{};
  const std::size_t length = std::strftime(buffer.data(), buffer.size(), "%Y-%m-%dT%H:%M:%S", &utc);
  std::array<char, 32> fraction{};
  std::snprintf(fraction.data(), fraction.size(), ".%06ldZ", now.tv_nsec / 1000);
  return std::string(buffer.data(), length) + fraction.data();
}

std::string stringField(const nlohmann::json& record, const char* key) {
  const auto found = record.find(key);
  return found != record.end() && found->is_string() ? found->get<std::string>() : std::string();
}

int severityOf(const std::string& type, const std::string& decision, const std::string& status) {
  if (decision == "deny" || status.rfind("deny", 0) == 0 || type == "recovered") return kSeverityNotice;
  if (status.empty() || status == "ok") return kSeverityInfo;
  return kSeverityWarning;
}

// Cuts `text` to at most `size` bytes without splitting a UTF-8 sequence.
std::string_view utf8Prefix(std::string_view text, std::size_t size) {
  if (size >= text.size()) return text;
  while (size > 0 && (static_cast<unsigned char>(text[size]) & 0xC0U) == 0x80U) --size;
  return text.substr(0, size);
}

std::string hostFromSystem() {
  std::array<char, 256> buffer{};
  if (::gethostname(buffer.data(), buffer.size() - 1) != 0) return "-";
  std::string name;
  for (const char c : std::string_view(buffer.data()))
    if (isPrintUsAscii(std::string_view(&c, 1))) name += c;
  return name.empty() ? "-" : name;
}

std::string errnoText(int error) {
  return std::strerror(error);  // NOLINT(concurrency-mt-unsafe): messages for fixed errno values
}

std::string hostPort(const std::string& host, std::uint16_t port) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

Expected<int, std::string> parseSyslogFacility(std::string_view name) {
  for (const auto& facility : kFacilities)
    if (facility.name == name) return facility.code;
  return unexpected("unknown syslog facility '" + std::string(name) +
                    "' (kern, user, daemon, auth, authpriv, local0..local7, ...)");
}

Expected<Done, std::string> parseSyslogTarget(std::string_view target, SyslogSettings& settings) {
  if (target.rfind("unix:", 0) == 0) {
    std::string_view path = target.substr(5);
    if (path.rfind("//", 0) == 0) path.remove_prefix(2);  // unix:///dev/log
    if (path.empty() || path.front() != '/')
      return unexpected("syslog target '" + std::string(target) + "': unix needs an absolute socket path");
    settings.transport = SyslogTransport::Unix;
    settings.socketPath = std::string(path);
    return Done{};
  }
  SyslogTransport transport = SyslogTransport::Udp;
  std::string_view rest;
  if (target.rfind("udp://", 0) == 0) {
    rest = target.substr(6);
  } else if (target.rfind("tcp://", 0) == 0) {
    transport = SyslogTransport::Tcp;
    rest = target.substr(6);
  } else {
    return unexpected("syslog target '" + std::string(target) +
                      "': expected udp://host:port, tcp://host:port or unix:/path");
  }
  std::string_view host = rest;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos)
      return unexpected("syslog target '" + std::string(target) + "': unterminated [");
    host = rest.substr(1, close - 1);
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty() && after.front() != ':')
      return unexpected("syslog target '" + std::string(target) + "': junk after ]");
    if (!after.empty()) port = after.substr(1);
  } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  unsigned value = 514;
  if (!port.empty()) {
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (error != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
      return unexpected("syslog target '" + std::string(target) + "': bad port");
  }
  if (host.empty()) return unexpected("syslog target '" + std::string(target) + "': missing host");
  settings.transport = transport;
  settings.host = std::string(host);
  settings.port = static_cast<std::uint16_t>(value);
  return Done{};
}

std::string describeSyslogTarget(const SyslogSettings& settings) {
  switch (settings.transport) {
    case SyslogTransport::Udp:
      return "udp:" + hostPort(settings.host, settings.port);
    case SyslogTransport::Tcp:
      return "tcp:" + hostPort(settings.host, settings.port);
    case SyslogTransport::Unix:
      break;
  }
  return "unix:" + settings.socketPath;
}

std::string escapeSdValue(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  for (const char c : value) {
    if (c == '"' || c == '\\' || c == ']') escaped += '\\';
    escaped += c;
  }
  return escaped;
}

std::string formatSyslogMessage(const SyslogSettings& settings, std::string_view hostname, long pid,
                                const SealedRecord& record, std::size_t maxBytes) {
  const nlohmann::json parsed = nlohmann::json::parse(record.line, nullptr, false);
  const bool object = parsed.is_object();
  const std::string type = object ? stringField(parsed, "type") : std::string();
  const std::string decision = object ? stringField(parsed, "decision") : std::string();
  const std::string status = object ? stringField(parsed, "status") : std::string();
  const std::string principal = object ? stringField(parsed, "principal") : std::string();
  const std::string timestamp =
      syslogTimestamp(object ? stringField(parsed, "time") : std::string()).value_or(nowTimestamp());
  const bool typeIsMsgId = !type.empty() && type.size() <= 32 && isPrintUsAscii(type);

  const int pri = settings.facility * 8 + severityOf(type, decision, status);
  std::string head = "<" + std::to_string(pri) + ">1 " + timestamp + " " + std::string(hostname) + " " +
                     settings.appName + " " + std::to_string(pid) + " " +
                     std::string(typeIsMsgId ? std::string_view(type) : kFallbackMsgId) + " [" +
                     std::string(kSdId) + " seq=\"" + std::to_string(record.seq) + "\"";
  for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"type", &type},
                                   {"principal", &principal},
                                   {"decision", &decision},
                                   {"status", &status}}) {
    // Capped so that a freak principal cannot crowd the record out of a datagram; the full
    // value is in the JSON anyway.
    if (!value->empty())
      head += std::string(" ") + key + "=\"" + escapeSdValue(utf8Prefix(*value, kMaxSdValue)) + "\"";
  }
  if (maxBytes == 0 || head.size() + 2 + record.line.size() <= maxBytes) return head + "] " + record.line;
  // Too long for one datagram: say so in the SD, so nobody mistakes the cut line for the record.
  head += " truncated=\"" + std::to_string(record.line.size()) + "\"] ";
  if (head.size() >= maxBytes) return head.substr(0, maxBytes);
  return head + std::string(utf8Prefix(record.line, maxBytes - head.size()));
}

Expected<std::unique_ptr<SyslogSink>, std::string> SyslogSink::create(SyslogSettings settings) {
  if (settings.facility < 0 || settings.facility > 23)
    return unexpected(std::string("syslog: facility must be 0..23"));
  if (settings.appName.empty() || settings.appName.size() > 48 || !isPrintUsAscii(settings.appName))
    return unexpected(std::string("syslog: app-name must be 1..48 printable ASCII characters"));
  if (!settings.hostname.empty() && (settings.hostname.size() > 255 || !isPrintUsAscii(settings.hostname)))
    return unexpected(std::string("syslog: hostname must be 1..255 printable ASCII characters"));
  if (settings.timeout.count() <= 0) return unexpected(std::string("syslog: timeout must be positive"));
  if (settings.maxDatagramBytes < 480)  // RFC 5424 6.1: every receiver takes 480 octets
    return unexpected(std::string("syslog: max datagram size must be at least 480 bytes"));
  if (settings.transport == SyslogTransport::Unix) {
    if (settings.socketPath.empty() || settings.socketPath.size() >= sizeof(sockaddr_un{}.sun_path))
      return unexpected("syslog: bad unix socket path '" + settings.socketPath + "'");
  } else if (settings.host.empty() || settings.port == 0) {
    return unexpected(std::string("syslog: udp and tcp need a host and a non-zero port"));
  }
  return std::unique_ptr<SyslogSink>(new SyslogSink(std::move(settings)));  // private constructor
}

SyslogSink::SyslogSink(SyslogSettings settings)
    : settings_(std::move(settings)),
      target_(describeSyslogTarget(settings_)),
      hostname_(settings_.hostname.empty() ? hostFromSystem() : settings_.hostname),
      pid_(static_cast<long>(::getpid())) {}

SyslogSink::~SyslogSink() = default;

std::string SyslogSink::failure(std::string_view what, int error) const {
  return "syslog: " + std::string(what) + " " + target_ + ": " + errnoText(error);
}

void SyslogSink::disconnect() {
  socket_.reset();
}

Status SyslogSink::connect() {
  disconnect();
  const auto timeoutMs = static_cast<int>(settings_.timeout.count());
  const timeval sendTimeout{static_cast<time_t>(timeoutMs / 1000),
                            static_cast<suseconds_t>((timeoutMs % 1000) * 1000)};
  if (settings_.transport == SyslogTransport::Unix) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return unexpected(failure("socket for", errno));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, settings_.socketPath.c_str(), settings_.socketPath.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0)
      return unexpected(failure("connect", errno));
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, sizeof(sendTimeout));
    socket_ = std::move(fd);
    return Done{};
  }

  const bool tcp = settings_.transport == SyslogTransport::Tcp;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = tcp ? SOCK_STREAM : SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int resolved =
      ::getaddrinfo(settings_.host.c_str(), std::to_string(settings_.port).c_str(), &hints, &found);
  if (resolved != 0) return unexpected("syslog: resolve " + target_ + ": " + ::gai_strerror(resolved));
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
  int lastError = EHOSTUNREACH;
  for (const addrinfo* address = addresses.get(); address != nullptr; address = address->ai_next) {
    // Non-blocking connect, so an unreachable collector costs at most the timeout.
    UniqueFd fd(::socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                         address->ai_protocol));
    if (!fd.valid()) {
      lastError = errno;
      continue;
    }
    if (::connect(fd.get(), address->ai_addr, address->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        lastError = errno;
        continue;
      }
      pollfd watch{fd.get(), POLLOUT, 0};
      int ready = 0;
      do {
        ready = ::poll(&watch, 1, timeoutMs);
      } while (ready < 0 && errno == EINTR);
      int error = ready == 0 ? ETIMEDOUT : 0;
      socklen_t length = sizeof(error);
      if (ready > 0 && ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
      if (ready < 0) error = errno;
      if (error != 0) {
        lastError = error;
        continue;
      }
    }
    // Blocking sends with SO_SNDTIMEO: simpler than a poll loop and just as bounded.
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, sizeof(sendTimeout));
    socket_ = std::move(fd);
    return Done{};
  }
  return unexpected(failure("connect", lastError));
}

// A collector never talks back, so a readable TCP socket means it closed or reset the
// connection. Checking before a batch keeps the first record after a collector restart from
// vanishing into a socket whose peer is gone (send() would still succeed once).
bool SyslogSink::connectionLooksAlive() const {
  pollfd watch{socket_.get(), POLLIN, 0};
  if (::poll(&watch, 1, 0) <= 0) return true;
  if ((watch.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) return false;
  char byte = 0;
  const ssize_t peeked = ::recv(socket_.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return peeked > 0 || (peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

Status SyslogSink::sendMessage(const std::string& message) {
  std::string frame;
  if (settings_.transport == SyslogTransport::Tcp) frame = std::to_string(message.size()) + " " + message;
  const std::string& bytes = settings_.transport == SyslogTransport::Tcp ? frame : message;
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t written = ::send(socket_.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return unexpected("syslog: send to " + target_ + ": timed out after " +
                          std::to_string(settings_.timeout.count()) + " ms");
      return unexpected(failure("send to", errno));
    }
    // A datagram is sent whole or not at all; only a stream can come back short.
    sent += static_cast<std::size_t>(written);
  }
  return Done{};
}

Status SyslogSink::send(const SealedRecord& record) {
  const std::size_t limit = settings_.transport == SyslogTransport::Tcp ? 0 : settings_.maxDatagramBytes;
  return sendMessage(formatSyslogMessage(settings_, hostname_, pid_, record, limit));
}

Status SyslogSink::write(const std::vector<SealedRecord>& batch) {
  const std::lock_guard lock(mutex_);
  bool fresh = false;
  if (socket_.valid() && settings_.transport == SyslogTransport::Tcp && !connectionLooksAlive()) disconnect();
  for (const SealedRecord& record : batch) {
    if (lastSentSeq_ && record.seq <= *lastSentSeq_) continue;  // sent before a failed batch
    if (!socket_.valid()) {
      if (Status connected = connect(); !connected) return connected;
      fresh = true;
    }
    Status sent = send(record);
    if (!sent && !fresh) {
      // The connection predates this batch and may be stale (collector restarted, an ICMP
      // error from an earlier datagram): one retry on a new connection before giving up.
      if (Status connected = connect(); !connected) return connected;
      fresh = true;
      sent = send(record);
    }
    if (!sent) {
      disconnect();
      return sent;
    }
    lastSentSeq_ = record.seq;
  }
  return Done{};
}

void SyslogSink::close() {
  const std::lock_guard lock(mutex_);
  disconnect();
}

}  // namespace mcphost::audit
