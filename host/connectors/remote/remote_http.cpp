#include "connectors/remote/remote_http.hpp"

#ifdef _WIN32
#include <winsock2.h>
#else
#include <sys/socket.h>
#endif

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/URI.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <istream>
#include <stdexcept>
#include <thread>

#include "observe/log.hpp"

namespace mcphost::connectors::remote {

namespace {

using namespace std::chrono_literals;

// The server broke the Streamable HTTP contract (invalid JSON, an oversized message).
struct ProtocolViolation : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// abort() came before the exchange had a socket to shut down.
struct AbortedError : std::runtime_error {
  AbortedError() : std::runtime_error("aborted") {}
};

constexpr int kMaxResumes = 5;
constexpr std::size_t kMaxIdleConnections = 8;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Headers the transport sets itself; a configured one of these would corrupt the exchange.
bool reservedHeader(const std::string& name) {
  static const char* const kReserved[] = {
      "host",   "content-length", "content-type",         "transfer-encoding", "connection",
      "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id"};
  const std::string n = lower(name);
  return std::any_of(std::begin(kReserved), std::end(kReserved), [&](const char* r) { return n == r; });
}

Poco::Timespan span(std::chrono::milliseconds ms) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(std::max<std::int64_t>(ms.count(), 1)) * 1000);
}

std::chrono::milliseconds remaining(Clock::time_point deadline) {
  return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()), 0ms);
}

std::string readBody(std::istream& in, std::size_t cap) {
  std::string body;
  char chunk[16384];
  std::streambuf* buf = in.rdbuf();
  // sgetn, not istream::read: the stream would swallow Poco's exception into badbit and with it
  // the reason (timeout, reset) the caller reports.
  for (std::streamsize n = 0; (n = buf->sgetn(chunk, sizeof chunk)) > 0;) {
    body.append(chunk, static_cast<std::size_t>(n));
    if (body.size() > cap) {
      throw ProtocolViolation("the upstream response exceeds " + std::to_string(cap) + " bytes");
    }
  }
  return body;
}

// Reads what is left of a stream that already carried its response, briefly, so that the
// connection can serve the next request; a server that keeps the stream open costs us only
// the connection.
bool drainToEnd(std::istream& in, Poco::Net::HTTPClientSession& http) {
  try {
    http.socket().setReceiveTimeout(Poco::Timespan(Poco::Timespan::TimeDiff{250} * 1000));
    std::streambuf* buf = in.rdbuf();
    for (std::size_t n = 0; n < 65536; ++n) {
      if (buf->sbumpc() == std::char_traits<char>::eof()) return true;
    }
  } catch (const Poco::Exception&) {
    // not reusable; dropped by the caller
  }
  return false;
}

}  // namespace

Expected<Endpoint, std::string> parseEndpoint(const std::string& url) {
  try {
    const Poco::URI uri(url);
    const std::string scheme = lower(uri.getScheme());
    if (scheme != "http" && scheme != "https")
      return unexpected(std::string("the url must start with http:// or https://"));
    if (uri.getHost().empty()) return unexpected(std::string("the url has no host"));
    if (!uri.getUserInfo().empty()) {
      return unexpected(
          std::string("the url carries credentials; put them in headers (value \"secret:NAME\") instead"));
    }
    Endpoint e;
    e.https = scheme == "https";
    e.host = uri.getHost();
    e.port = uri.getPort();  // Poco fills in the scheme's default port
    e.target = uri.getPathAndQuery().empty() ? "/" : uri.getPathAndQuery();
    const std::string host = e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host;
    e.display =
        scheme + "://" + host + ":" + std::to_string(e.port) + (uri.getPath().empty() ? "/" : uri.getPath());
    return e;
  } catch (const Poco::Exception&) {
    // Not the exception text: it would echo the url, which may carry a token.
    return unexpected(std::string("the url is not a valid URI"));
  }
}

void Exchange::abort() {
  std::lock_guard lock(mutex_);
  aborted_ = true;
  // shutdown, not close: the performing thread still owns the descriptor, and a shut-down
  // socket makes its blocked read return at once.
  if (fd_ >= 0) {
#ifdef _WIN32
    ::shutdown(static_cast<SOCKET>(fd_), SD_BOTH);
#else
    ::shutdown(static_cast<int>(fd_), SHUT_RDWR);
#endif
  }
}

bool Exchange::aborted() const {
  std::lock_guard lock(mutex_);
  return aborted_;
}

HttpClient::HttpClient(Endpoint endpoint, const std::map<std::string, std::string>& headers,
                       HttpLimits limits)
    : endpoint_(std::move(endpoint)), limits_(limits) {
  for (const auto& [name, value] : headers) {
    if (reservedHeader(name) || value.find_first_of("\r\n") != std::string::npos) {
      // Never the value: it is usually a credential.
      log::warn("remote", "configured header ignored (reserved by the transport, or holds a line break)",
                {{"header", name}, {"url", endpoint_.display}});
      continue;
    }
    headers_.emplace(name, value);
  }
  if (endpoint_.https) {
    // Certificate and host name verification are always on: VERIFY_STRICT makes Poco check the
    // host name even for localhost. The system CA store is the trust anchor.
    Poco::Net::Context::Params params;
    params.verificationMode = Poco::Net::Context::VERIFY_STRICT;
    std::error_code ec;
    if (std::filesystem::is_directory("/etc/ssl/certs", ec)) params.caLocation = "/etc/ssl/certs";
    params.loadDefaultCAs = true;
    params.cipherList = "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES";
    tls_ = Poco::makeAuto<Poco::Net::Context>(Poco::Net::Context::TLS_CLIENT_USE, params);
    tls_->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    tls_->enableExtendedCertificateVerification(true);
  }
}

HttpClient::~HttpClient() = default;

std::unique_ptr<Poco::Net::HTTPClientSession> HttpClient::acquire() {
  {
    std::lock_guard lock(poolMutex_);
    while (!idle_.empty()) {
      auto session = std::move(idle_.back());
      idle_.pop_back();
      // An idle connection the server has closed reads as ready (EOF). Drop it now rather than
      // learn it after sending a request that must not be sent twice.
      try {
        if (session->connected() &&
            !session->socket().poll(Poco::Timespan(0), Poco::Net::Socket::SELECT_READ)) {
          return session;
        }
      } catch (const Poco::Exception&) {
        // dropped
      }
    }
  }
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  if (endpoint_.https) {
    session = std::make_unique<Poco::Net::HTTPSClientSession>(endpoint_.host, endpoint_.port, tls_);
  } else {
    session = std::make_unique<Poco::Net::HTTPClientSession>(endpoint_.host, endpoint_.port);
  }
  session->setKeepAlive(true);
  session->setKeepAliveTimeout(Poco::Timespan(4, 0));  // below common server idle timeouts
  return session;
}

void HttpClient::release(std::unique_ptr<Poco::Net::HTTPClientSession> session) {
  std::lock_guard lock(poolMutex_);
  if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(session));
}

void HttpClient::perform(Exchange& ex) {
  bool connected = false;
  auto fail = [&ex](Failure failure, std::string why) {
    ex.failure = ex.aborted() ? Failure::kAborted : failure;
    ex.error = std::move(why);
  };
  try {
    int retryMs = 1000;
    bool resumable = send(ex, false, connected, retryMs);
    for (int round = 0; resumable && round < kMaxResumes; ++round) {
      // The server closed the connection without ending the stream (SSE polling): wait as it
      // asked, then resume after the last event seen.
      const auto until = Clock::now() + std::chrono::milliseconds(std::clamp(retryMs, 0, 5000));
      while (Clock::now() < until && Clock::now() < ex.deadline && !ex.aborted())
        std::this_thread::sleep_for(10ms);
      if (ex.aborted()) throw AbortedError();
      if (Clock::now() >= ex.deadline) throw Poco::TimeoutException();
      resumable = send(ex, true, connected, retryMs);
      if (ex.status != 200) {
        // Not a session problem to retry on: the request itself already reached the server.
        throw Poco::IOException("the upstream could not resume its response stream (HTTP " +
                                std::to_string(ex.status) + ")");
      }
    }
    if (ex.aborted()) throw AbortedError();
    if (!ex.id.is_null() && ex.response.is_null() && ex.status == 200) {
      fail(Failure::kBroken, "the upstream ended its response without answering the request");
    }
  } catch (const AbortedError&) {
    fail(Failure::kAborted, "aborted");
  } catch (const ProtocolViolation& e) {
    fail(Failure::kProtocol, e.what());
  } catch (const Poco::TimeoutException&) {
    fail(connected ? Failure::kTimeout : Failure::kConnect,
         connected ? "no answer in time" : "the connection timed out");
  } catch (const Poco::Exception& e) {
    fail(connected ? Failure::kBroken : Failure::kConnect, e.displayText());
  } catch (const std::exception& e) {
    fail(Failure::kBroken, e.what());
  }
}

bool HttpClient::send(Exchange& ex, bool resume, bool& connected, int& retryMs) {
  auto http = acquire();
  const auto left = remaining(ex.deadline) + 1s;  // the waiting caller enforces the deadline itself
  // Connecting is bounded by the exchange's deadline too (a blackholed host at shutdown).
  http->setTimeout(span(std::min<std::chrono::milliseconds>(limits_.connectTimeout, left)), span(left),
                   span(left));
  if (http->connected()) {
    http->socket().setReceiveTimeout(span(left));  // a reused connection keeps its old timeouts
    http->socket().setSendTimeout(span(left));
  }
  const bool post = ex.method == "POST" && !resume;
  Poco::Net::HTTPRequest request(resume ? std::string("GET") : ex.method, endpoint_.target,
                                 Poco::Net::HTTPMessage::HTTP_1_1);
  for (const auto& [name, value] : headers_) request.set(name, value);
  request.set("Accept",
              ex.method == "GET" || resume ? "text/event-stream" : "application/json, text/event-stream");
  if (!ex.sessionId.empty()) request.set("Mcp-Session-Id", ex.sessionId);
  if (!ex.protocolVersion.empty()) request.set("MCP-Protocol-Version", ex.protocolVersion);
  if (resume) request.set("Last-Event-ID", ex.lastEventId);
  std::string body;
  if (post) {
    body = ex.message.dump(-1, ' ', false, Json::error_handler_t::replace);
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
  }
  // Declared after `http`, so the exchange forgets the descriptor before the socket closes.
  struct Detach {
    Exchange& ex;
    ~Detach() {
      std::lock_guard lock(ex.mutex_);
      ex.fd_ = -1;
    }
  } detach{ex};
  connected = http->connected();
  std::ostream& out = http->sendRequest(request);
  connected = true;
  {
    std::lock_guard lock(ex.mutex_);
    if (ex.aborted_) throw AbortedError();
    ex.fd_ = static_cast<std::intptr_t>(http->socket().impl()->sockfd());
  }
  if (post && !out.write(body.data(), static_cast<std::streamsize>(body.size()))) {
    throw Poco::IOException("the request could not be sent");
  }
  Poco::Net::HTTPResponse response;
  std::istream& in = http->receiveResponse(response);
  ex.status = response.getStatus();
  if (response.has("Mcp-Session-Id")) ex.sessionHeader = response.get("Mcp-Session-Id");
  const std::string type = lower(response.getContentType());
  bool resumable = false;
  bool reusable = response.getKeepAlive();
  if (type.find("text/event-stream") != std::string::npos) {
    resumable = readStream(in, ex, retryMs);
    reusable = reusable && !resumable && !ex.response.is_null() && drainToEnd(in, *http);
  } else {
    const std::string text = readBody(in, limits_.maxMessageBytes);
    if (!text.empty() && type.find("json") != std::string::npos) accept(ex, text);
  }
  if (reusable && !ex.aborted()) {
    {
      std::lock_guard lock(ex.mutex_);
      ex.fd_ = -1;  // a late abort() must not shut down a pooled connection
    }
    release(std::move(http));
  }
  return resumable;
}

bool HttpClient::readStream(std::istream& in, Exchange& ex, int& retryMs) {
  std::streambuf* buf = in.rdbuf();
  std::string line;
  std::string data;
  bool hasData = false;
  for (;;) {
    const int c = buf->sbumpc();  // not istream::get: Poco's exceptions must reach perform()
    if (c == std::char_traits<char>::eof()) break;
    if (c != '\n') {
      line.push_back(static_cast<char>(c));
      if (line.size() + data.size() > limits_.maxMessageBytes) {
        throw ProtocolViolation("an event on the upstream's stream exceeds " +
                                std::to_string(limits_.maxMessageBytes) + " bytes");
      }
      continue;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {  // end of one event
      if (hasData && accept(ex, data)) return false;
      data.clear();
      hasData = false;
      continue;
    }
    const auto colon = line.find(':');
    const std::string field = line.substr(0, colon);
    std::string value = colon == std::string::npos ? std::string() : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (field == "data") {
      if (hasData) data.push_back('\n');
      data += value;
      hasData = true;
    } else if (field == "id") {
      ex.lastEventId = value;
    } else if (field == "retry") {
      int ms = 0;
      if (std::from_chars(value.data(), value.data() + value.size(), ms).ec == std::errc()) retryMs = ms;
    }
    line.clear();
  }
  // Ended without the response: resumable when the server numbered its events.
  return !ex.id.is_null() && ex.response.is_null() && !ex.lastEventId.empty() && !ex.aborted();
}

bool HttpClient::accept(Exchange& ex, const std::string& text) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return false;  // e.g. the SSE priming event
  auto parsed = protocol::parseJson(text, {limits_.maxMessageBytes, limits_.maxJsonDepth});
  if (!parsed) {
    throw ProtocolViolation("the upstream sent a message that is not valid JSON-RPC (" +
                            parsed.error().error.message + ")");
  }
  auto one = [&ex](Json& m) {
    if (!m.is_object()) return false;
    if (m.contains("method")) {
      if (ex.onMessage) ex.onMessage(std::move(m));
      return false;
    }
    const Json id = m.value("id", Json());
    if (!ex.id.is_null() && (id == ex.id || (id.is_null() && m.contains("error")))) {
      ex.response = std::move(m);
      return true;
    }
    return false;  // an answer to something else, e.g. a request we gave up on
  };
  if (parsed->is_array()) {
    for (auto& m : *parsed) {
      if (one(m)) return true;
    }
    return false;
  }
  return one(*parsed);
}

}  // namespace mcphost::connectors::remote
