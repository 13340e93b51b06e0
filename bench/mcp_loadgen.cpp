// mcp-loadgen: a closed-loop load generator for MCP over Streamable HTTP.
//
// Each worker thread owns one keep-alive TCP connection (plain blocking sockets, a minimal
// HTTP/1.1 client below) and sends the next request as soon as the previous answer is in, for
// a warm-up and then a measured period. Every latency of the measured period is kept (a full
// sample, not a histogram), so the percentiles are exact.
//
//   --mode stateful   initialize + notifications/initialized per connection (2025-11-25 era),
//                     then tools/call with Mcp-Session-Id
//   --mode stateless  tools/call only, with the 2026-07-28 per-request _meta and the
//                     Mcp-Method/Mcp-Name headers (--protocol-version 2025-11-25 sends a plain
//                     tools/call without _meta, for SDK servers that predate 2026-07-28)
//   --mode raw        GET or POST of the URL's path; only the HTTP status is checked
//
// Capacity probes instead of a load run:
//   --idle-sessions N     create N sessions, leave them idle, report the server's RSS growth
//   --idle-connections N  hold N idle TCP connections, then check that requests still succeed
//
// Responses may be application/json or text/event-stream (chunked or not); for SSE the body is
// split into events and the one whose data is the JSON-RPC response with the request's id is
// taken. An error is a transport failure, a non-2xx status, a JSON-RPC error, a missing or
// mismatched response, or a tool result with isError: true.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr std::string_view kUsage = R"(usage: mcp-loadgen [options]
  --url URL              endpoint, http://HOST:PORT/PATH (default http://127.0.0.1:8765/mcp)
  --mode MODE            stateful | stateless | raw (default stateful)
  --connections N        concurrent keep-alive connections (default 16)
  --threads T            client threads; T < N drives the connections with epoll, N/T per
                         thread (default: one thread per connection, blocking sockets)
  --duration SECONDS     measured period (default 10)
  --warmup SECONDS       unmeasured period before it (default 2)
  --tool NAME            tool to call (default test_simple_text)
  --args JSON            tool arguments (default {})
  --header 'N: V'        an extra request header on every POST (repeatable), e.g. Authorization
  --protocol-version V   stateful default 2025-11-25, stateless default 2026-07-28
  --method GET|POST      raw mode only (default GET)
  --body TEXT            raw mode POST body (default: a tools/call request)
  --server-pid PID       report the server's VmRSS (and CPU time) from /proc/PID
  --idle-sessions N      create N idle sessions and report the server's RSS growth
  --idle-connections N   hold N idle TCP connections, then check normal requests still succeed
  --settle SECONDS       wait before the "after" RSS reading of the idle probes (default 2)
  --timeout SECONDS      per-response receive timeout (default 10)
  --json                 one JSON object on stdout instead of the text report
)";

// ------------------------------------------------------------------------------------ options

enum class Mode { kStateful, kStateless, kRaw };

struct Options {
  std::string url = "http://127.0.0.1:8765/mcp";
  std::string host = "127.0.0.1";
  std::uint16_t port = 8765;
  std::string path = "/mcp";
  Mode mode = Mode::kStateful;
  std::string modeName = "stateful";
  int connections = 16;
  int threads = 0;  // 0: one per connection
  double duration = 10;
  double warmup = 2;
  std::string tool = "test_simple_text";
  std::string args = "{}";
  std::string protocolVersion;
  std::string rawMethod = "GET";
  std::optional<std::string> rawBody;
  int serverPid = 0;
  long idleSessions = 0;
  long idleConnections = 0;
  double settle = 2;
  double timeout = 10;
  bool jsonOutput = false;
  std::vector<std::string> headers;  // extra "Name: value" lines (e.g. Authorization)
};

[[noreturn]] void die(const std::string& message) {
  std::cerr << "mcp-loadgen: " << message << "\n";
  std::exit(2);
}

template <typename T>
T parseNumber(const std::string& name, const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) die("bad value for " + name + ": '" + text + "'");
  return value;
}

double parseSeconds(const std::string& name, const std::string& text) {
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used != text.size() || v < 0) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    die("bad value for " + name + ": '" + text + "'");
  }
}

void parseUrl(Options& o) {
  constexpr std::string_view kScheme = "http://";
  std::string_view rest = o.url;
  if (rest.substr(0, kScheme.size()) != kScheme) die("--url must start with http:// (no TLS here)");
  rest.remove_prefix(kScheme.size());
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  o.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) {
    o.host = std::string(authority);
    o.port = 80;
  } else {
    o.host = std::string(authority.substr(0, colon));
    o.port = parseNumber<std::uint16_t>("--url port", std::string(authority.substr(colon + 1)));
  }
  if (o.host == "localhost") o.host = "127.0.0.1";
}

Options parseOptions(int argc, char** argv) {
  Options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string key = args[i];
    std::optional<std::string> inlineValue;
    if (auto eq = key.find('='); key.rfind("--", 0) == 0 && eq != std::string::npos) {
      inlineValue = key.substr(eq + 1);
      key = key.substr(0, eq);
    }
    auto value = [&]() -> std::string {
      if (inlineValue) return *inlineValue;
      if (i + 1 >= args.size()) die(key + " needs a value");
      return args[++i];
    };
    if (key == "--help" || key == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (key == "--url") {
      o.url = value();
    } else if (key == "--mode") {
      o.modeName = value();
      if (o.modeName == "stateful")
        o.mode = Mode::kStateful;
      else if (o.modeName == "stateless")
        o.mode = Mode::kStateless;
      else if (o.modeName == "raw")
        o.mode = Mode::kRaw;
      else
        die("--mode must be stateful, stateless or raw");
    } else if (key == "--connections") {
      o.connections = parseNumber<int>(key, value());
    } else if (key == "--threads") {
      o.threads = parseNumber<int>(key, value());
    } else if (key == "--duration") {
      o.duration = parseSeconds(key, value());
    } else if (key == "--warmup") {
      o.warmup = parseSeconds(key, value());
    } else if (key == "--tool") {
      o.tool = value();
    } else if (key == "--args") {
      o.args = value();
    } else if (key == "--header") {
      const std::string header = value();
      if (header.find(':') == std::string::npos || header.find_first_of("\r\n") != std::string::npos)
        die("--header must be 'Name: value' on one line");
      o.headers.push_back(header);
    } else if (key == "--protocol-version") {
      o.protocolVersion = value();
    } else if (key == "--method") {
      o.rawMethod = value();
      if (o.rawMethod != "GET" && o.rawMethod != "POST") die("--method must be GET or POST");
    } else if (key == "--body") {
      o.rawBody = value();
    } else if (key == "--server-pid") {
      o.serverPid = parseNumber<int>(key, value());
    } else if (key == "--idle-sessions") {
      o.idleSessions = parseNumber<long>(key, value());
    } else if (key == "--idle-connections") {
      o.idleConnections = parseNumber<long>(key, value());
    } else if (key == "--settle") {
      o.settle = parseSeconds(key, value());
    } else if (key == "--timeout") {
      o.timeout = parseSeconds(key, value());
    } else if (key == "--json") {
      o.jsonOutput = true;
    } else {
      die("unknown option '" + key + "' (see --help)");
    }
  }
  parseUrl(o);
  if (o.connections < 1) die("--connections must be at least 1");
  if (o.protocolVersion.empty()) o.protocolVersion = o.mode == Mode::kStateless ? "2026-07-28" : "2025-11-25";
  try {
    const auto parsed = json::parse(o.args);
    if (!parsed.is_object()) die("--args must be a JSON object");
    o.args = parsed.dump();
  } catch (const json::exception& e) {
    die(std::string("--args is not valid JSON: ") + e.what());
  }
  return o;
}

// ------------------------------------------------------------------------------ server /proc

struct ProcSample {
  long rssKb = -1;
  long hwmKb = -1;
  double cpuSeconds = -1;  // user + system, all threads
};

ProcSample readProc(int pid) {
  ProcSample s;
  if (pid <= 0) return s;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rssKb = std::strtol(line.c_str() + 6, nullptr, 10);
    if (line.rfind("VmHWM:", 0) == 0) s.hwmKb = std::strtol(line.c_str() + 6, nullptr, 10);
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The command name (field 2) may contain spaces; fields restart after the last ')'.
  if (const auto close = all.rfind(')'); close != std::string::npos) {
    std::istringstream rest(all.substr(close + 2));
    std::string field;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    for (int index = 3; rest >> field; ++index) {
      if (index == 14) utime = std::stoull(field);
      if (index == 15) {
        stime = std::stoull(field);
        s.cpuSeconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
        break;
      }
    }
  }
  return s;
}

double selfCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void raiseFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

long fileLimit() {
  rlimit limit{};
  return ::getrlimit(RLIMIT_NOFILE, &limit) == 0 ? static_cast<long>(limit.rlim_cur) : -1;
}

// ------------------------------------------------------------------------------- HTTP client

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

struct Response {
  int status = 0;
  std::string contentType;
  std::string sessionId;
  bool connectionClose = false;
  std::string body;
};

enum class Parse { kDone, kNeedMore, kError };

// One keep-alive connection. Blocking by default (send/readResponse); the event-driven runner
// switches it to non-blocking and uses sendSome/receiveSome/tryParse instead. Every failure
// closes the connection (it is reopened by the caller).
class HttpConnection {
 public:
  HttpConnection() = default;
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  ~HttpConnection() { close(); }

  bool connect(const sockaddr_in& address, double timeoutSeconds) {
    close();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail("socket");
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeoutSeconds);
    tv.tv_usec = static_cast<suseconds_t>((timeoutSeconds - std::floor(timeoutSeconds)) * 1e6);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
      return fail("connect");
    buffer_.clear();
    return true;
  }

  [[nodiscard]] bool isOpen() const { return fd_ >= 0; }
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] const std::string& lastError() const { return error_; }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buffer_.clear();
  }

  void setNonBlocking(bool on) {
    const int flags = ::fcntl(fd_, F_GETFL);
    ::fcntl(fd_, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
  }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail("send");
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Non-blocking send: how much went out, or -1 (closed) on failure.
  ssize_t sendSome(std::string_view data) {
    for (;;) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      fail("send");
      return -1;
    }
  }

  // Non-blocking receive of what is there; false when the connection failed or closed.
  bool receiveSome() {
    char chunk[16384];
    for (;;) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buffer_.append(chunk, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof chunk) return true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n == 0) errno = 0;
      return fail(n == 0 ? "connection closed by the server" : "recv");
    }
  }

  // Blocking: one whole response.
  bool readResponse(Response& r) {
    for (;;) {
      switch (tryParse(r)) {
        case Parse::kDone:
          return true;
        case Parse::kError:
          return false;
        case Parse::kNeedMore:
          if (!fill()) return bodyToEof_ && eof_ ? finishAtEof(r) : false;
      }
    }
  }

  // One whole response from what has been received so far; consumes it when complete.
  Parse tryParse(Response& r) {
    r = Response{};
    const auto headEnd = buffer_.find("\r\n\r\n");
    if (headEnd == std::string::npos) {
      if (buffer_.size() > (std::size_t{64} << 10)) return failParse("response head too large");
      return Parse::kNeedMore;
    }
    if (!parseHead(std::string_view(buffer_).substr(0, headEnd), r))
      return failParse("malformed response head");
    const std::size_t bodyStart = headEnd + 4;
    bodyToEof_ = false;
    if (chunked_) {
      std::size_t end = 0;
      const Parse p = parseChunked(bodyStart, r.body, end);
      if (p == Parse::kDone) buffer_.erase(0, end);
      return p;
    }
    if (contentLength_) {
      if (buffer_.size() < bodyStart + *contentLength_) return Parse::kNeedMore;
      r.body.assign(buffer_, bodyStart, *contentLength_);
      buffer_.erase(0, bodyStart + *contentLength_);
      return Parse::kDone;
    }
    if (r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200)) {
      buffer_.erase(0, bodyStart);
      return Parse::kDone;
    }
    bodyToEof_ = true;  // no length: the body runs to the end of the connection
    return Parse::kNeedMore;
  }

 private:
  bool fail(const std::string& what) {
    error_ = what + (errno != 0 ? std::string(": ") + std::strerror(errno) : std::string());
    close();
    return false;
  }

  Parse failParse(const std::string& what) {
    errno = 0;
    fail(what);
    return Parse::kError;
  }

  bool finishAtEof(Response& r) {
    const auto headEnd = buffer_.find("\r\n\r\n");
    if (!parseHead(std::string_view(buffer_).substr(0, headEnd), r)) return false;
    r.body = buffer_.substr(headEnd + 4);
    r.connectionClose = true;
    close();
    return true;
  }

  // Blocking: appends what the socket has; false on EOF (eof_ set) or error.
  bool fill() {
    char chunk[16384];
    for (;;) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) {
        eof_ = true;
        if (bodyToEof_) {
          ::close(fd_);
          fd_ = -1;
          return false;
        }
        errno = 0;
        return fail("connection closed by the server");
      }
      return fail(errno == EAGAIN || errno == EWOULDBLOCK ? "receive timeout" : "recv");
    }
  }

  bool parseHead(std::string_view head, Response& r) {
    chunked_ = false;
    contentLength_.reset();
    eof_ = false;
    auto lineEnd = head.find("\r\n");
    const std::string_view statusLine = head.substr(0, lineEnd);
    if (statusLine.substr(0, 5) != "HTTP/" || statusLine.size() < 12) return false;
    const bool http10 = statusLine.substr(0, 8) == "HTTP/1.0";
    if (std::from_chars(statusLine.data() + 9, statusLine.data() + 12, r.status).ec != std::errc())
      return false;
    r.connectionClose = http10;
    while (lineEnd != std::string_view::npos) {
      const std::size_t start = lineEnd + 2;
      lineEnd = head.find("\r\n", start);
      std::string_view line =
          head.substr(start, lineEnd == std::string_view::npos ? std::string_view::npos : lineEnd - start);
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string_view name = line.substr(0, colon);
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      if (iequals(name, "content-length")) {
        std::size_t length = 0;
        if (std::from_chars(value.data(), value.data() + value.size(), length).ec != std::errc())
          return false;
        contentLength_ = length;
      } else if (iequals(name, "transfer-encoding")) {
        chunked_ = value.find("chunked") != std::string_view::npos;
      } else if (iequals(name, "content-type")) {
        r.contentType = std::string(value);
      } else if (iequals(name, "mcp-session-id")) {
        r.sessionId = std::string(value);
      } else if (iequals(name, "connection")) {
        if (iequals(value, "close")) r.connectionClose = true;
        if (iequals(value, "keep-alive")) r.connectionClose = false;
      }
    }
    return true;
  }

  // The chunked body starting at `pos`; `end` is where the message ends when complete.
  Parse parseChunked(std::size_t pos, std::string& body, std::size_t& end) {
    for (;;) {
      std::size_t lineEnd = buffer_.find("\r\n", pos);
      if (lineEnd == std::string::npos) return Parse::kNeedMore;
      std::size_t size = 0;
      const char* first = buffer_.data() + pos;
      const char* last = buffer_.data() + lineEnd;
      auto [ptr, ec] = std::from_chars(first, last, size, 16);
      if (ec != std::errc() || ptr == first) return failParse("malformed chunk size");
      pos = lineEnd + 2;
      if (size == 0) {
        // Trailer fields (normally none), then the empty line.
        for (;;) {
          lineEnd = buffer_.find("\r\n", pos);
          if (lineEnd == std::string::npos) return Parse::kNeedMore;
          const bool empty = lineEnd == pos;
          pos = lineEnd + 2;
          if (empty) break;
        }
        end = pos;
        return Parse::kDone;
      }
      if (buffer_.size() < pos + size + 2) return Parse::kNeedMore;
      body.append(buffer_, pos, size);
      pos += size + 2;
    }
  }

  int fd_ = -1;
  std::string buffer_;
  std::string error_;
  bool chunked_ = false;
  bool eof_ = false;
  bool bodyToEof_ = false;
  std::optional<std::size_t> contentLength_;
};

// ------------------------------------------------------------------------------ MCP requests

struct Outcome {
  bool ok = false;
  std::string problem;  // first error seen, for the report
};

// The JSON-RPC message answering `id`: the body itself (application/json) or the data of one
// SSE event (text/event-stream). Notifications and requests on the stream are skipped.
std::optional<json> findResponse(const Response& r, std::int64_t id) {
  auto matches = [id](const json& m) {
    return m.is_object() && m.contains("id") && m["id"].is_number_integer() &&
           m["id"].get<std::int64_t>() == id && (m.contains("result") || m.contains("error"));
  };
  if (r.contentType.find("text/event-stream") == std::string::npos) {
    auto message = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (message.is_discarded()) return std::nullopt;
    if (message.is_array()) {
      for (auto& m : message) {
        if (matches(m)) return m;
      }
      return std::nullopt;
    }
    return message;  // a mismatched id is reported by the caller
  }
  std::string_view rest = r.body;
  while (!rest.empty()) {
    // One event: lines up to an empty line.
    std::string data;
    bool hasData = false;
    for (;;) {
      const auto nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) break;
      if (line.substr(0, 5) == "data:") {
        std::string_view value = line.substr(5);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (hasData) data += '\n';
        data.append(value);
        hasData = true;
      }
      if (rest.empty()) break;
    }
    if (data.empty()) continue;
    auto message = json::parse(data, nullptr, false);
    if (!message.is_discarded() && matches(message)) return message;
  }
  return std::nullopt;
}

Outcome judgeRpc(const Response& r, std::int64_t id) {
  Outcome o;
  if (r.status < 200 || r.status > 299) {
    o.problem = "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200);
    return o;
  }
  const auto message = findResponse(r, id);
  if (!message) {
    o.problem = "no JSON-RPC response with id " + std::to_string(id) + " in: " + r.body.substr(0, 200);
    return o;
  }
  if (!message->contains("id") || (*message)["id"] != id) {
    o.problem = "response id mismatch: " + message->dump().substr(0, 200);
    return o;
  }
  if (message->contains("error")) {
    o.problem = "JSON-RPC error: " + (*message)["error"].dump().substr(0, 200);
    return o;
  }
  const auto& result = (*message)["result"];
  if (result.is_object() && result.value("isError", false)) {
    o.problem = "tool returned isError: " + result.dump().substr(0, 200);
    return o;
  }
  o.ok = true;
  return o;
}

class RequestBuilder {
 public:
  explicit RequestBuilder(const Options& o) : o_(o) { hostHeader_ = o.host + ":" + std::to_string(o.port); }

  [[nodiscard]] std::string initialize(std::int64_t id) const {
    const std::string body = R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
                             R"(,"method":"initialize","params":{"protocolVersion":")" + o_.protocolVersion +
                             R"(","capabilities":{},"clientInfo":{"name":"mcp-loadgen","version":"1.0.0"}}})";
    return post(body, "", /*withVersion=*/false, "initialize");
  }

  [[nodiscard]] std::string initialized(const std::string& sessionId) const {
    return post(R"({"jsonrpc":"2.0","method":"notifications/initialized"})", sessionId, true,
                "notifications/initialized");
  }

  [[nodiscard]] std::string toolCall(std::int64_t id, const std::string& sessionId) const {
    std::string body;
    body.reserve(256);
    body += R"({"jsonrpc":"2.0","id":)";
    body += std::to_string(id);
    body += R"(,"method":"tools/call","params":{"name":)";
    body += json(o_.tool).dump();
    body += R"(,"arguments":)";
    body += o_.args;
    if (o_.mode == Mode::kStateless && o_.protocolVersion >= "2026") {
      body += R"(,"_meta":{"io.modelcontextprotocol/protocolVersion":")";
      body += o_.protocolVersion;
      body += R"(","io.modelcontextprotocol/clientCapabilities":{}})";
    }
    body += "}}";
    return post(body, sessionId, true, "tools/call");
  }

  [[nodiscard]] std::string raw(std::int64_t id) const {
    if (o_.rawMethod == "GET") {
      return "GET " + o_.path + " HTTP/1.1\r\nHost: " + hostHeader_ + "\r\nAccept: */*\r\n\r\n";
    }
    if (o_.rawBody) {
      return "POST " + o_.path + " HTTP/1.1\r\nHost: " + hostHeader_ +
             "\r\nContent-Type: application/json\r\nAccept: application/json, "
             "text/event-stream\r\nContent-Length: " +
             std::to_string(o_.rawBody->size()) + "\r\n\r\n" + *o_.rawBody;
    }
    return toolCall(id, "");
  }

 private:
  [[nodiscard]] std::string post(const std::string& body, const std::string& sessionId, bool withVersion,
                                 std::string_view method) const {
    std::string r;
    r.reserve(400 + body.size());
    r += "POST ";
    r += o_.path;
    r += " HTTP/1.1\r\nHost: ";
    r += hostHeader_;
    r += "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n";
    for (const auto& header : o_.headers) {
      r += header;
      r += "\r\n";
    }
    if (!sessionId.empty()) {
      r += "Mcp-Session-Id: ";
      r += sessionId;
      r += "\r\n";
    }
    if (withVersion) {
      r += "MCP-Protocol-Version: ";
      r += o_.protocolVersion;
      r += "\r\n";
    }
    if (o_.mode == Mode::kStateless && o_.protocolVersion >= "2026") {
      r += "Mcp-Method: ";
      r += method;
      r += "\r\n";
      if (method == "tools/call") {
        r += "Mcp-Name: ";
        r += o_.tool;
        r += "\r\n";
      }
    }
    r += "Content-Length: ";
    r += std::to_string(body.size());
    r += "\r\n\r\n";
    r += body;
    return r;
  }

  const Options& o_;
  std::string hostHeader_;
};

// One client connection with its MCP session (stateful mode).
class McpClient {
 public:
  McpClient(const Options& o, const RequestBuilder& builder, const sockaddr_in& address)
      : o_(o), builder_(builder), address_(address) {}

  [[nodiscard]] const std::string& sessionId() const { return sessionId_; }
  [[nodiscard]] const std::string& lastProblem() const { return problem_; }
  void forgetSession() { sessionId_.clear(); }
  void adoptSession(std::string id) { sessionId_ = std::move(id); }

  bool ensureConnected() {
    if (connection_.isOpen()) return true;
    if (!connection_.connect(address_, o_.timeout)) {
      problem_ = connection_.lastError();
      return false;
    }
    return true;
  }

  // initialize + notifications/initialized; the new session id is kept.
  bool openSession() {
    if (!ensureConnected()) return false;
    const std::int64_t id = nextId_++;
    Response r;
    if (!exchange(builder_.initialize(id), r)) return false;
    const Outcome outcome = judgeRpc(r, id);
    if (!outcome.ok) {
      problem_ = "initialize: " + outcome.problem;
      return false;
    }
    if (r.sessionId.empty()) {
      problem_ = "initialize answered without an Mcp-Session-Id header";
      return false;
    }
    sessionId_ = r.sessionId;
    if (!exchange(builder_.initialized(sessionId_), r)) return false;
    if (r.status < 200 || r.status > 299) {
      problem_ = "notifications/initialized: HTTP " + std::to_string(r.status);
      return false;
    }
    return true;
  }

  // One measured request of the configured mode. False: the request failed (problem_ says why).
  bool call() {
    if (!ensureConnected()) return false;
    if (o_.mode == Mode::kStateful && sessionId_.empty() && !openSession()) return false;
    const std::int64_t id = nextId_;
    Response r;
    if (!exchange(nextRequest(), r)) return false;
    return judge(r, id);
  }

  // The split form of call() for the event-driven runner: the request bytes (the id is
  // consumed), then the verdict on its response.
  std::string nextRequest() {
    const std::int64_t id = nextId_++;
    return o_.mode == Mode::kRaw ? builder_.raw(id) : builder_.toolCall(id, sessionId_);
  }
  [[nodiscard]] std::int64_t lastId() const { return nextId_ - 1; }

  bool judge(const Response& r, std::int64_t id) {
    if (o_.mode == Mode::kRaw) {
      if (r.status >= 200 && r.status <= 299) return true;
      problem_ = "HTTP " + std::to_string(r.status);
      return false;
    }
    const Outcome outcome = judgeRpc(r, id);
    if (!outcome.ok) {
      problem_ = outcome.problem;
      if (r.status == 404 && o_.mode == Mode::kStateful) sessionId_.clear();  // expired: start over
      return false;
    }
    return true;
  }

  HttpConnection& connection() { return connection_; }
  void setProblem(std::string problem) { problem_ = std::move(problem); }

 private:
  bool exchange(const std::string& request, Response& r) {
    if (!connection_.send(request) || !connection_.readResponse(r)) {
      problem_ = connection_.lastError();
      return false;
    }
    if (r.connectionClose) connection_.close();
    return true;
  }

  const Options& o_;
  const RequestBuilder& builder_;
  sockaddr_in address_;
  HttpConnection connection_;
  std::string sessionId_;
  std::string problem_;
  std::int64_t nextId_ = 1;
};

sockaddr_in resolve(const Options& o) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(o.port);
  if (::inet_pton(AF_INET, o.host.c_str(), &address.sin_addr) != 1) {
    die("--url host must be an IPv4 address or localhost, got '" + o.host + "'");
  }
  return address;
}

// ------------------------------------------------------------------------------ statistics

struct Latencies {
  std::uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;  // microseconds
};

Latencies summarize(std::vector<std::uint64_t>& nanos) {
  Latencies l;
  l.count = nanos.size();
  if (nanos.empty()) return l;
  std::sort(nanos.begin(), nanos.end());
  auto at = [&](double q) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(nanos.size())));
    return static_cast<double>(nanos[std::min(nanos.size() - 1, rank == 0 ? 0 : rank - 1)]) / 1000.0;
  };
  l.p50 = at(0.50);
  l.p90 = at(0.90);
  l.p99 = at(0.99);
  l.p999 = at(0.999);
  l.max = static_cast<double>(nanos.back()) / 1000.0;
  long double sum = 0;
  for (auto n : nanos) sum += n;
  l.mean = static_cast<double>(sum / static_cast<long double>(nanos.size()) / 1000.0L);
  return l;
}

double round1(double v) {
  return std::round(v * 10.0) / 10.0;
}

json latencyJson(const Latencies& l) {
  return {{"p50", round1(l.p50)},   {"p90", round1(l.p90)}, {"p99", round1(l.p99)},
          {"p999", round1(l.p999)}, {"max", round1(l.max)}, {"mean", round1(l.mean)}};
}

json procJson(const ProcSample& s) {
  return {{"rss_kb", s.rssKb}, {"hwm_kb", s.hwmKb}};
}

// ------------------------------------------------------------------------------ load run

enum class Phase : int { kWarmup, kMeasure, kStop };

// What the workers share during a load run.
struct LoadState {
  explicit LoadState(const Options& options)
      : o(options), address(resolve(options)), builder(options), origin(Clock::now()) {}

  const Options& o;
  const sockaddr_in address;
  const RequestBuilder builder;
  const Clock::time_point origin;
  std::atomic<int> phase{static_cast<int>(Phase::kWarmup)};
  std::atomic<std::int64_t> measureStartNs{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> setupFailures{0};
  std::mutex problemMutex;
  std::string firstProblem;

  [[nodiscard]] bool stopping() const {
    return phase.load(std::memory_order_relaxed) == static_cast<int>(Phase::kStop);
  }

  void note(const std::string& problem) {
    std::lock_guard lock(problemMutex);
    if (firstProblem.empty()) firstProblem = problem;
  }

  // A finished request: kept when it started inside the measured period and ended before its end.
  void record(std::vector<std::uint64_t>& samples, Clock::time_point t0, Clock::time_point t1, bool ok) {
    const int now = phase.load(std::memory_order_relaxed);
    const auto started = std::chrono::duration_cast<std::chrono::nanoseconds>(t0 - origin).count();
    if (now == static_cast<int>(Phase::kMeasure) &&
        started >= measureStartNs.load(std::memory_order_relaxed)) {
      samples.push_back(
          static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
      if (!ok) ++errors;
    }
  }

  void setupFailed(const McpClient& client) {
    ++setupFailures;
    if (phase.load() == static_cast<int>(Phase::kMeasure)) ++errors;
    note(client.lastProblem());
  }
};

// One thread, one blocking connection (the default).
void blockingWorker(LoadState& st, std::vector<std::uint64_t>& samples) {
  McpClient client(st.o, st.builder, st.address);
  while (!st.stopping()) {
    // Session set-up is not part of a measured request.
    if (st.o.mode == Mode::kStateful && client.sessionId().empty() && !client.openSession()) {
      st.setupFailed(client);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    const auto t0 = Clock::now();
    const bool ok = client.call();
    st.record(samples, t0, Clock::now(), ok);
    if (!ok) {
      st.note(client.lastProblem());
      // A server that refuses connections must not turn this loop into a connect() storm.
      if (client.lastProblem().rfind("connect", 0) == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

// One thread driving several non-blocking connections with epoll (--threads below
// --connections): the same closed loop, one request in flight per connection, without a
// context switch per request. Connection and session set-up stay blocking.
void eventWorker(LoadState& st, std::vector<std::uint64_t>& samples, int connections) {
  struct Slot {
    std::unique_ptr<McpClient> client;
    std::string out;
    std::size_t sent = 0;
    std::int64_t id = 0;
    Clock::time_point t0;
    bool inFlight = false;
    bool ready = false;  // connected, session open, registered with epoll
    Clock::time_point retryAt;
  };
  const int epollFd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epollFd < 0) die(std::string("epoll_create1: ") + std::strerror(errno));
  std::vector<Slot> slots(static_cast<std::size_t>(connections));
  for (auto& slot : slots) slot.client = std::make_unique<McpClient>(st.o, st.builder, st.address);
  const auto timeout =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(st.o.timeout));

  auto watch = [&](std::size_t index, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = index;
    ::epoll_ctl(epollFd, EPOLL_CTL_MOD, slots[index].client->connection().fd(), &ev);
  };
  auto prepare = [&](std::size_t index) {
    Slot& slot = slots[index];
    McpClient& client = *slot.client;
    HttpConnection& connection = client.connection();
    const bool wasOpen = connection.isOpen();
    if (wasOpen) connection.setNonBlocking(false);
    if (!client.ensureConnected() ||
        (st.o.mode == Mode::kStateful && client.sessionId().empty() && !client.openSession())) {
      st.setupFailed(client);
      connection.close();
      slot.retryAt = Clock::now() + std::chrono::milliseconds(10);
      return false;
    }
    connection.setNonBlocking(true);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = index;
    if (::epoll_ctl(epollFd, EPOLL_CTL_ADD, connection.fd(), &ev) != 0 && errno == EEXIST) {
      ::epoll_ctl(epollFd, EPOLL_CTL_MOD, connection.fd(), &ev);
    }
    slot.ready = true;
    return true;
  };
  auto failed = [&](Slot& slot, const std::string& problem) {
    st.record(samples, slot.t0, Clock::now(), false);
    st.note(problem);
    slot.client->connection().close();  // also leaves the epoll set
    slot.inFlight = false;
    slot.ready = false;
    slot.retryAt = Clock::now();
  };
  auto begin = [&](std::size_t index) {
    Slot& slot = slots[index];
    slot.out = slot.client->nextRequest();
    slot.id = slot.client->lastId();
    slot.t0 = Clock::now();
    slot.inFlight = true;
    const ssize_t n = slot.client->connection().sendSome(slot.out);
    if (n < 0) return failed(slot, slot.client->connection().lastError());
    slot.sent = static_cast<std::size_t>(n);
    if (slot.sent < slot.out.size()) watch(index, EPOLLIN | EPOLLOUT);
  };

  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (prepare(i)) begin(i);
  }
  std::vector<epoll_event> events(slots.size());
  Response response;
  while (!st.stopping()) {
    const int n = ::epoll_wait(epollFd, events.data(), static_cast<int>(events.size()), 20);
    for (int e = 0; e < n; ++e) {
      const auto index = static_cast<std::size_t>(events[static_cast<std::size_t>(e)].data.u64);
      Slot& slot = slots[index];
      if (!slot.inFlight) continue;
      HttpConnection& connection = slot.client->connection();
      if (slot.sent < slot.out.size()) {
        const ssize_t sent = connection.sendSome(std::string_view(slot.out).substr(slot.sent));
        if (sent < 0) {
          failed(slot, connection.lastError());
          continue;
        }
        slot.sent += static_cast<std::size_t>(sent);
        if (slot.sent == slot.out.size()) watch(index, EPOLLIN);
        continue;
      }
      if (!connection.receiveSome()) {
        failed(slot, connection.lastError());
        continue;
      }
      const Parse parsed = connection.tryParse(response);
      if (parsed == Parse::kNeedMore) continue;
      if (parsed == Parse::kError) {
        failed(slot, connection.lastError());
        continue;
      }
      const auto t1 = Clock::now();
      const bool ok = slot.client->judge(response, slot.id);
      st.record(samples, slot.t0, t1, ok);
      if (!ok) st.note(slot.client->lastProblem());
      slot.inFlight = false;
      if (response.connectionClose) {
        connection.close();
        slot.ready = false;
      } else if (st.o.mode == Mode::kStateful && slot.client->sessionId().empty()) {
        slot.ready = false;  // the session expired: a new one before the next request
      }
      if (slot.ready || prepare(index)) begin(index);
    }
    // Overdue answers, and connections waiting to be reopened.
    const auto now = Clock::now();
    for (std::size_t i = 0; i < slots.size(); ++i) {
      Slot& slot = slots[i];
      if (slot.inFlight && now - slot.t0 > timeout) {
        failed(slot, "receive timeout");
      } else if (!slot.inFlight && !slot.ready && now >= slot.retryAt && !st.stopping() && prepare(i)) {
        begin(i);
      }
    }
  }
  ::close(epollFd);
}

int runLoad(const Options& o) {
  LoadState st(o);
  const int threads = o.threads <= 0 || o.threads >= o.connections ? o.connections : o.threads;
  std::vector<std::vector<std::uint64_t>> samples(static_cast<std::size_t>(threads));
  for (auto& s : samples) s.reserve(1 << 16);
  const ProcSample before = readProc(o.serverPid);

  std::vector<std::thread> workers;
  workers.reserve(static_cast<std::size_t>(threads));
  for (int w = 0; w < threads; ++w) {
    auto& mine = samples[static_cast<std::size_t>(w)];
    if (threads == o.connections) {
      workers.emplace_back([&st, &mine] { blockingWorker(st, mine); });
    } else {
      const int share = o.connections / threads + (w < o.connections % threads ? 1 : 0);
      workers.emplace_back([&st, &mine, share] { eventWorker(st, mine, share); });
    }
  }
  auto& phase = st.phase;
  auto& errors = st.errors;
  auto& setupFailures = st.setupFailures;
  const auto sinceOrigin = [&st](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t - st.origin).count();
  };
  auto& measureStartNs = st.measureStartNs;

  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup));
  const double cpuStart = selfCpuSeconds();
  const ProcSample serverStart = readProc(o.serverPid);
  const auto measureStart = Clock::now();
  measureStartNs = sinceOrigin(measureStart);
  phase = static_cast<int>(Phase::kMeasure);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration));
  phase = static_cast<int>(Phase::kStop);
  const auto measureEnd = Clock::now();
  const double cpuEnd = selfCpuSeconds();
  const ProcSample serverEnd = readProc(o.serverPid);
  for (auto& t : workers) t.join();
  const ProcSample after = readProc(o.serverPid);

  std::vector<std::uint64_t> all;
  for (auto& s : samples) all.insert(all.end(), s.begin(), s.end());
  const Latencies lat = summarize(all);
  const double elapsed = std::chrono::duration<double>(measureEnd - measureStart).count();
  // Successful requests only: a server answering errors fast must not look fast.
  const double rps =
      static_cast<double>(lat.count - std::min<std::uint64_t>(lat.count, errors.load())) / elapsed;
  const double clientCpu = (cpuEnd - cpuStart) / elapsed * 100.0;
  const double serverCpu = (serverStart.cpuSeconds >= 0 && serverEnd.cpuSeconds >= 0)
                               ? (serverEnd.cpuSeconds - serverStart.cpuSeconds) / elapsed * 100.0
                               : -1;

  if (o.jsonOutput) {
    json out = {{"mode", o.modeName},
                {"url", o.url},
                {"tool", o.tool},
                {"protocol_version", o.protocolVersion},
                {"connections", o.connections},
                {"threads", threads},
                {"duration_s", std::round(elapsed * 100) / 100},
                {"warmup_s", o.warmup},
                {"requests", lat.count},
                {"errors", errors.load()},
                {"session_setup_failures", setupFailures.load()},
                {"rps", round1(rps)},
                {"latency_us", latencyJson(lat)},
                {"client_cpu_pct", round1(clientCpu)}};
    if (o.serverPid > 0) {
      out["server_pid"] = o.serverPid;
      out["server_before"] = procJson(before);
      out["server_after"] = procJson(after);
      out["server_cpu_pct"] = round1(serverCpu);
    }
    if (!st.firstProblem.empty()) out["first_error"] = st.firstProblem;
    std::cout << out.dump() << "\n";
  } else {
    std::printf("mcp-loadgen %s %s tool=%s connections=%d threads=%d warmup=%.1fs duration=%.2fs\n",
                o.modeName.c_str(), o.url.c_str(), o.tool.c_str(), o.connections, threads, o.warmup, elapsed);
    std::printf("  requests   %llu, errors %llu: %.0f successful req/s\n",
                static_cast<unsigned long long>(lat.count), static_cast<unsigned long long>(errors.load()),
                rps);
    std::printf("  latency us p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n", lat.p50,
                lat.p90, lat.p99, lat.p999, lat.max, lat.mean);
    std::printf("  client cpu %.0f%%\n", clientCpu);
    if (o.serverPid > 0) {
      std::printf("  server pid %d: VmRSS %ld kB before, %ld kB after (VmHWM %ld kB), cpu %.0f%%\n",
                  o.serverPid, before.rssKb, after.rssKb, after.hwmKb, serverCpu);
    }
    if (!st.firstProblem.empty()) std::printf("  first error: %s\n", st.firstProblem.c_str());
  }
  return errors.load() == 0 && lat.count > 0 ? 0 : 1;
}

// ------------------------------------------------------------------------------ idle probes

void settle(const Options& o) {
  std::this_thread::sleep_for(std::chrono::duration<double>(o.settle));
}

int runIdleSessions(const Options& o) {
  if (o.mode != Mode::kStateful) die("--idle-sessions needs --mode stateful");
  const sockaddr_in address = resolve(o);
  const RequestBuilder builder(o);
  const ProcSample before = readProc(o.serverPid);
  const int workerCount = static_cast<int>(std::min<long>(o.connections, o.idleSessions));
  std::atomic<long> next{0};
  std::atomic<long> failures{0};
  std::mutex mutex;
  std::vector<std::string> sessionIds;
  sessionIds.reserve(static_cast<std::size_t>(o.idleSessions));
  std::string firstProblem;
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  workers.reserve(static_cast<std::size_t>(workerCount));
  for (int w = 0; w < workerCount; ++w) {
    workers.emplace_back([&] {
      McpClient client(o, builder, address);
      while (next.fetch_add(1) < o.idleSessions) {
        if (client.openSession()) {
          std::lock_guard lock(mutex);
          sessionIds.push_back(client.sessionId());
        } else {
          ++failures;
          std::lock_guard lock(mutex);
          if (firstProblem.empty()) firstProblem = client.lastProblem();
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  settle(o);
  const ProcSample after = readProc(o.serverPid);

  // The sessions must still be usable: call the tool on a spread of them.
  McpClient probe(o, builder, address);
  int probed = 0;
  int usable = 0;
  const std::size_t n = sessionIds.size();
  for (std::size_t i : {std::size_t{0}, n / 4, n / 2, 3 * n / 4, n - 1}) {
    if (n == 0) break;
    probe.adoptSession(sessionIds[i]);
    ++probed;
    if (probe.call())
      ++usable;
    else if (firstProblem.empty())
      firstProblem = "probe: " + probe.lastProblem();
  }

  const long addedKb = before.rssKb >= 0 && after.rssKb >= 0 ? after.rssKb - before.rssKb : -1;
  const double perSession =
      n > 0 && addedKb >= 0 ? static_cast<double>(addedKb) * 1024.0 / static_cast<double>(n) : -1;
  if (o.jsonOutput) {
    json out = {{"probe", "idle-sessions"},
                {"url", o.url},
                {"requested", o.idleSessions},
                {"created", n},
                {"failures", failures.load()},
                {"seconds", round1(seconds)},
                {"sessions_per_s", round1(static_cast<double>(n) / seconds)},
                {"probed", probed},
                {"usable", usable},
                {"server_before", procJson(before)},
                {"server_after", procJson(after)},
                {"rss_added_kb", addedKb},
                {"bytes_per_session", round1(perSession)}};
    if (!firstProblem.empty()) out["first_error"] = firstProblem;
    std::cout << out.dump() << "\n";
  } else {
    std::printf(
        "mcp-loadgen idle sessions %s: created %zu of %ld in %.1fs (%ld failures) over %d connections\n",
        o.url.c_str(), n, o.idleSessions, seconds, failures.load(), workerCount);
    std::printf("  server VmRSS %ld kB before, %ld kB after: +%ld kB (%.0f bytes per session)\n",
                before.rssKb, after.rssKb, addedKb, perSession);
    std::printf("  sessions still usable afterwards: %d of %d probed\n", usable, probed);
    if (!firstProblem.empty()) std::printf("  first error: %s\n", firstProblem.c_str());
  }
  return failures.load() == 0 && usable == probed ? 0 : 1;
}

int runIdleConnections(const Options& o) {
  raiseFileLimit();
  const sockaddr_in address = resolve(o);
  const RequestBuilder builder(o);
  const ProcSample before = readProc(o.serverPid);
  std::vector<std::unique_ptr<HttpConnection>> idle;
  idle.reserve(static_cast<std::size_t>(o.idleConnections));
  long failures = 0;
  std::string firstProblem;
  const auto start = Clock::now();
  for (long i = 0; i < o.idleConnections; ++i) {
    auto c = std::make_unique<HttpConnection>();
    if (c->connect(address, o.timeout)) {
      idle.push_back(std::move(c));
    } else {
      ++failures;
      if (firstProblem.empty()) firstProblem = c->lastError();
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  settle(o);
  const ProcSample after = readProc(o.serverPid);

  // Normal traffic on fresh connections while the idle ones are held.
  std::vector<std::uint64_t> nanos;
  int callFailures = 0;
  const int calls = 200;
  {
    McpClient client(o, builder, address);
    for (int i = 0; i < calls; ++i) {
      if (o.mode == Mode::kStateful && client.sessionId().empty() && !client.openSession()) {
        ++callFailures;
        if (firstProblem.empty()) firstProblem = "initialize: " + client.lastProblem();
        continue;
      }
      const auto t0 = Clock::now();
      const bool ok = client.call();
      nanos.push_back(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
      if (!ok) {
        ++callFailures;
        if (firstProblem.empty()) firstProblem = "request: " + client.lastProblem();
      }
    }
  }
  const Latencies lat = summarize(nanos);

  // How many idle connections did the server keep (not closed on us)?
  long stillOpen = 0;
  for (auto& c : idle) {
    pollfd p{c->fd(), POLLIN, 0};
    const int ready = ::poll(&p, 1, 0);
    if (ready == 0) {
      ++stillOpen;
    } else {
      char byte;
      if (::recv(c->fd(), &byte, 1, MSG_DONTWAIT | MSG_PEEK) > 0) ++stillOpen;  // data, but alive
    }
  }
  const long addedKb = before.rssKb >= 0 && after.rssKb >= 0 ? after.rssKb - before.rssKb : -1;
  const auto opened = static_cast<long>(idle.size());
  const double perConnection =
      opened > 0 && addedKb >= 0 ? static_cast<double>(addedKb) * 1024.0 / static_cast<double>(opened) : -1;
  if (o.jsonOutput) {
    json out = {{"probe", "idle-connections"},
                {"url", o.url},
                {"requested", o.idleConnections},
                {"opened", opened},
                {"connect_failures", failures},
                {"still_open", stillOpen},
                {"fd_limit", fileLimit()},
                {"seconds", round1(seconds)},
                {"calls", calls},
                {"call_failures", callFailures},
                {"latency_us", latencyJson(lat)},
                {"server_before", procJson(before)},
                {"server_after", procJson(after)},
                {"rss_added_kb", addedKb},
                {"bytes_per_connection", round1(perConnection)}};
    if (!firstProblem.empty()) out["first_error"] = firstProblem;
    std::cout << out.dump() << "\n";
  } else {
    std::printf(
        "mcp-loadgen idle connections %s: opened %ld of %ld in %.1fs (fd limit %ld), %ld still open at the "
        "end\n",
        o.url.c_str(), opened, o.idleConnections, seconds, fileLimit(), stillOpen);
    std::printf("  server VmRSS %ld kB before, %ld kB after: +%ld kB (%.0f bytes per connection)\n",
                before.rssKb, after.rssKb, addedKb, perConnection);
    std::printf("  %d %s calls while they were held: %d failed; latency us p50 %.1f p99 %.1f max %.1f\n",
                calls, o.modeName.c_str(), callFailures, lat.p50, lat.p99, lat.max);
    if (!firstProblem.empty()) std::printf("  first error: %s\n", firstProblem.c_str());
  }
  return failures == 0 && callFailures == 0 && stillOpen == opened ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parseOptions(argc, argv);
  raiseFileLimit();
  if (o.idleSessions > 0 && o.idleConnections > 0)
    die("--idle-sessions and --idle-connections are separate probes");
  if (o.idleSessions > 0) return runIdleSessions(o);
  if (o.idleConnections > 0) return runIdleConnections(o);
  return runLoad(o);
}
