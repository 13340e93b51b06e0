// The client side of the MCP Streamable HTTP transport for one upstream endpoint: POST one
// JSON-RPC message and read the answer as a JSON body or an SSE stream (resuming with GET +
// Last-Event-ID when the server drops the connection mid-stream), open the standalone GET
// stream, DELETE a session. Knows HTTP and SSE, nothing about MCP semantics (RemoteConnector).
//
// Exchanges block; another thread gives up on one with Exchange::abort(), which shuts the
// socket down so the blocked read returns at once (that is how cancellation stays prompt).
#pragma once

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "protocol/json_rpc.hpp"

namespace mcphost::connectors::remote {

using protocol::Json;
using Clock = std::chrono::steady_clock;

struct Endpoint {
  bool https = false;
  std::string host;
  std::uint16_t port = 0;
  std::string target;  // path and query, as sent
  std::string
      display;  // scheme://host:port/path for messages: no userinfo, no query (either may hold tokens)
};

// Accepts http:// and https:// URLs with a host; rejects userinfo (credentials belong in headers).
Expected<Endpoint, std::string> parseEndpoint(const std::string& url);

enum class Failure {
  kNone,
  kConnect,   // no connection: refused, unresolvable, TLS handshake or certificate failure
  kTimeout,   // connected, but the answer did not come in time
  kBroken,    // the connection broke after the request went out
  kProtocol,  // the server sent something that is not Streamable HTTP (bad JSON, oversized)
  kAborted,   // abort() was called
};

// One HTTP exchange. The thread that calls HttpClient::perform owns it; any thread may abort().
struct Exchange {
  std::string method = "POST";  // POST (message), GET (standalone stream), DELETE (end the session)
  Json message;                 // the POST body
  Json id;                      // the request id whose response ends the exchange; null: none expected
  std::string sessionId;
  std::string protocolVersion;
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
  // Every other message the server sends (notifications, server-to-client requests), in order,
  // on the performing thread.
  std::function<void(Json&&)> onMessage;

  int status = 0;             // HTTP status of the last response
  std::string sessionHeader;  // Mcp-Session-Id of the response, if any
  Json response;              // the JSON-RPC response (result or error), null if none came
  Failure failure = Failure::kNone;
  std::string error;        // what went wrong, for a message (never holds header values)
  std::string lastEventId;  // SSE resumption point

  void abort();
  [[nodiscard]] bool aborted() const;

 private:
  friend class HttpClient;
  mutable std::mutex mutex_;
  std::intptr_t fd_ = -1;
  bool aborted_ = false;
};

struct HttpLimits {
  std::size_t maxMessageBytes = std::size_t{8} << 20;  // one JSON body or one SSE event
  int maxJsonDepth = 64;
  std::chrono::milliseconds connectTimeout{10000};
};

class HttpClient {
 public:
  // Throws Poco::Exception when the TLS context cannot be set up (the caller reports it).
  HttpClient(Endpoint endpoint, const std::map<std::string, std::string>& headers, HttpLimits limits);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Runs the exchange to its end; never throws (the outcome is in ex).
  void perform(Exchange& ex);
  [[nodiscard]] const Endpoint& endpoint() const { return endpoint_; }

 private:
  std::unique_ptr<Poco::Net::HTTPClientSession> acquire();
  void release(std::unique_ptr<Poco::Net::HTTPClientSession> session);
  bool send(Exchange& ex, bool resume, bool& connected, int& retryMs);
  bool readStream(std::istream& in, Exchange& ex, int& retryMs);
  bool accept(Exchange& ex, const std::string& text);

  Endpoint endpoint_;
  std::map<std::string, std::string> headers_;  // configured, already resolved (may hold secrets)
  HttpLimits limits_;
  Poco::Net::Context::Ptr tls_;  // https only
  std::mutex poolMutex_;
  std::vector<std::unique_ptr<Poco::Net::HTTPClientSession>> idle_;  // keep-alive connections
};

}  // namespace mcphost::connectors::remote
