// Test support: runs the real mcphost binary on 127.0.0.1 with a free port and a temporary
// directory, and a minimal raw-socket HTTP client so tests control every byte on the wire.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcphost::test {

using Json = nlohmann::json;

// A child process with optional pipes to stdin/stdout; stderr goes to a file.
class Subprocess {
 public:
  Subprocess(const std::vector<std::string>& argv, const std::string& stderrPath, bool pipeStdio);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  void writeLine(const std::string& line);
  void closeStdin();
  // Reads one line from stdout, or nullopt at EOF or after timeout.
  std::optional<std::string> readLine(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  int signalAndWait(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdinFd_ = -1;
  int stdoutFd_ = -1;
  std::string buffered_;
  std::optional<int> exitCode_;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // de-chunked
  [[nodiscard]] std::string header(const std::string& lowerName) const {
    auto it = headers.find(lowerName);
    return it == headers.end() ? std::string() : it->second;
  }
  // The JSON-RPC messages in the body: one JSON document, or every SSE data line.
  [[nodiscard]] std::vector<Json> messages() const;
  [[nodiscard]] Json lastMessage() const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class HostProcess {
 public:
  // configBody: YAML appended to a loopback config (server: section keys go in serverYaml).
  // tls: the listener speaks TLS, so readiness is checked by connecting rather than by /healthz.
  // connectorsYaml: more connector list entries after the conformance instance.
  explicit HostProcess(const std::string& serverYaml = "", const std::string& extraYaml = "",
                       bool tls = false, const std::string& connectorsYaml = "");
  ~HostProcess();

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string hostHeader() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string log() const;
  [[nodiscard]] const std::string& configPath() const { return configPath_; }
  [[nodiscard]] const std::string& dir() const { return dir_; }  // state/ lives here by default
  int stop(int signal = 15);
  [[nodiscard]] bool running();
  [[nodiscard]] pid_t pidForTests() const { return process_->pid(); }

  // One request on a fresh connection.
  HttpResponse request(const std::string& method, const std::string& path, const Headers& headers,
                       const std::string& body = "");
  // POST /mcp with the usual MCP headers plus extra ones.
  HttpResponse post(const Json& body, const Headers& extra = {});
  // initialize + notifications/initialized; returns the session id.
  std::string initialize(const std::string& version = "2025-11-25");
  // Sends a POST /mcp on a new connection without waiting for the answer; returns the socket.
  int startPost(const Json& body, const std::string& session = "");
  // Opens the session's standalone GET stream; returns the socket.
  int openStream(const std::string& session);
  Headers sessionHeaders(const std::string& session) const;

 private:
  std::string dir_;
  std::string configPath_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

std::uint16_t freePort();
std::string makeTempDir();
int connectLoopback(std::uint16_t port);
void sendAll(int fd, const std::string& data);
// Reads one full HTTP response from fd (Content-Length or chunked); status 0 on failure.
HttpResponse readResponse(int fd, std::chrono::milliseconds timeout = std::chrono::seconds(10));
// Reads from fd until `needle` appears in what arrived (returned) or the timeout passes.
std::string readUntil(int fd, std::string_view needle, std::chrono::milliseconds timeout);
std::string rawRequest(const std::string& method, const std::string& path, const Headers& headers,
                       const std::string& body);

}  // namespace mcphost::test
