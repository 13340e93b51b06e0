// bench-bare-poco: the upper-bound baseline for bench/run.sh. A bare Poco::Net::HTTPServer
// (thread per connection from a pool, keep-alive) that answers every POST with the bytes
// mcphost sends for a stateless (2026-07-28) tools/call of test_simple_text, with the request's
// JSON-RPC id copied in so that mcp-loadgen can check it. It parses nothing else: no JSON, no
// routing, no session, no protocol checks, so it bounds what any Poco-based MCP server can do.
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>

#include <cctype>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view kResultTail =
    R"(,"jsonrpc":"2.0","result":{"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"mcphost-demo","version":"0.1.0"}},)"
    R"("content":[{"text":"This is a simple text response for testing.","type":"text"}],"resultType":"complete"}})";

// The value of the top-level "id" member as raw JSON text (a number or a string), or "null".
// Good enough for the load generator's requests, which put "id" right after "jsonrpc".
std::string requestId(const std::string& body) {
  const auto key = body.find("\"id\":");
  if (key == std::string::npos) return "null";
  std::size_t pos = key + 5;
  while (pos < body.size() && body[pos] == ' ') ++pos;
  std::size_t end = pos;
  if (end < body.size() && body[end] == '"') {
    end = body.find('"', end + 1);
    return end == std::string::npos ? "null" : body.substr(pos, end + 1 - pos);
  }
  while (end < body.size() && (std::isdigit(static_cast<unsigned char>(body[end])) != 0 || body[end] == '-'))
    ++end;
  return end == pos ? "null" : body.substr(pos, end - pos);
}

class FixedResponse final : public Poco::Net::HTTPRequestHandler {
 public:
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    std::string body;
    Poco::StreamCopier::copyToString(request.stream(), body);
    if (request.getMethod() != Poco::Net::HTTPRequest::HTTP_POST) {
      response.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
      response.setContentType("text/plain");
      response.setContentLength(3);
      response.send() << "ok\n";
      return;
    }
    std::string out;
    out.reserve(kResultTail.size() + 32);
    out += "{\"id\":";
    out += requestId(body);
    out += kResultTail;
    response.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
    response.setContentType("application/json");
    response.setContentLength(static_cast<std::streamsize>(out.size()));
    response.send().write(out.data(), static_cast<std::streamsize>(out.size()));
  }
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new FixedResponse;
  }
};

volatile std::sig_atomic_t stopRequested = 0;
void onSignal(int) {
  stopRequested = 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 8766;
  int threads = 64;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      port = static_cast<int>(std::strtol(argv[++i], nullptr, 10));
    } else if (arg == "--host" && i + 1 < argc) {
      host = argv[++i];
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = static_cast<int>(std::strtol(argv[++i], nullptr, 10));
    } else {
      std::cerr << "usage: bench-bare-poco [--port PORT] [--host 127.0.0.1] [--threads 64]\n";
      return 2;
    }
  }
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  try {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress(host, static_cast<Poco::UInt16>(port)), 1024);
    auto* params = new Poco::Net::HTTPServerParams;  // owned by the server (reference counted)
    params->setMaxThreads(threads);
    params->setMaxQueued(1024);
    params->setKeepAlive(true);
    params->setMaxKeepAliveRequests(0);  // unlimited
    params->setKeepAliveTimeout(Poco::Timespan(120, 0));
    Poco::ThreadPool pool(2, threads);
    Poco::Net::HTTPServer server(new Factory, pool, socket, params);
    server.start();
    std::cout << "bench-bare-poco listening on http://" << host << ":" << socket.address().port() << "/\n"
              << std::flush;
    while (stopRequested == 0) ::pause();
    server.stopAll(true);
  } catch (const Poco::Exception& e) {
    std::cerr << "bench-bare-poco: " << e.displayText() << "\n";
    return 1;
  }
  return 0;
}
