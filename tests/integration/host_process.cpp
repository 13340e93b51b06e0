#include "host_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "transport/http_wire.hpp"

extern char** environ;

namespace mcphost::test {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

// ------------------------------------------------------------------ Subprocess

Subprocess::Subprocess(const std::vector<std::string>& argv, const std::string& stderrPath, bool pipeStdio) {
  int in[2] = {-1, -1};
  int out[2] = {-1, -1};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (pipeStdio) {
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_addopen(&actions, 2, stderrPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int rc = posix_spawn(&pid_, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (pipeStdio) {
    ::close(in[0]);
    ::close(out[1]);
    stdinFd_ = in[1];
    stdoutFd_ = out[0];
  }
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
}

Subprocess::~Subprocess() {
  if (!exitCode_ && pid_ > 0) signalAndWait(SIGKILL, std::chrono::seconds(5));
  if (stdinFd_ >= 0) ::close(stdinFd_);
  if (stdoutFd_ >= 0) ::close(stdoutFd_);
}

void Subprocess::writeLine(const std::string& line) {
  std::string data = line + "\n";
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(stdinFd_, data.data() + off, data.size() - off);
    if (n <= 0) throw std::runtime_error("write to child stdin failed");
    off += static_cast<std::size_t>(n);
  }
}

void Subprocess::closeStdin() {
  if (stdinFd_ >= 0) ::close(stdinFd_);
  stdinFd_ = -1;
}

std::optional<std::string> Subprocess::readLine(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto nl = buffered_.find('\n'); nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{stdoutFd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::read(stdoutFd_, buf, sizeof buf);
    if (n <= 0) {
      if (buffered_.empty()) return std::nullopt;
      std::string last;  // a final line without a newline
      last.swap(buffered_);
      return last;
    }
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
}

int Subprocess::wait(std::chrono::milliseconds timeout) {
  if (exitCode_) return *exitCode_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exitCode_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return *exitCode_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

int Subprocess::signalAndWait(int sig, std::chrono::milliseconds timeout) {
  if (exitCode_) return *exitCode_;
  ::kill(pid_, sig);
  const int code = wait(timeout);
  if (code == -1) {
    ::kill(pid_, SIGKILL);
    return wait(std::chrono::seconds(5)) == -1 ? -1 : -2;  // -2: had to be killed
  }
  return code;
}

// ------------------------------------------------------------------ HTTP

std::vector<Json> HttpResponse::messages() const {
  std::vector<Json> out;
  if (header("content-type").find("text/event-stream") != std::string::npos) {
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("data: ", 0) == 0 && line.size() > 6) {
        auto j = Json::parse(line.substr(6), nullptr, false);
        if (!j.is_discarded()) out.push_back(j);
      }
    }
  } else if (!body.empty()) {
    auto j = Json::parse(body, nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

Json HttpResponse::lastMessage() const {
  auto all = messages();
  return all.empty() ? Json() : all.back();
}

std::uint16_t freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) throw std::runtime_error("bind failed");
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

std::string makeTempDir() {
  std::string templ = "/tmp/mcphost-test.XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return templ;
}

int connectLoopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void sendAll(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

std::string readUntil(int fd, std::string_view needle, std::chrono::milliseconds timeout) {
  std::string seen;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (seen.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    seen.append(buf, static_cast<std::size_t>(n));
  }
  return seen;
}

std::string rawRequest(const std::string& method, const std::string& path, const Headers& headers,
                       const std::string& body) {
  std::string req = method + " " + path + " HTTP/1.1\r\n";
  for (const auto& [k, v] : headers) req.append(k).append(": ").append(v).append("\r\n");
  if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  return req;
}

HttpResponse readResponse(int fd, std::chrono::milliseconds timeout) {
  HttpResponse r;
  std::string data;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t headEnd = std::string::npos;
  auto fill = [&]() -> bool {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[8192];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    data.append(buf, static_cast<std::size_t>(n));
    return true;
  };
  while ((headEnd = data.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return r;
  }
  std::istringstream head(data.substr(0, headEnd));
  std::string line;
  std::getline(head, line);
  if (line.size() < 12) return r;
  r.status = std::stoi(line.substr(9, 3));
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers[lower(line.substr(0, colon))] = value;
  }
  std::string rest = data.substr(headEnd + 4);
  if (r.header("transfer-encoding") == "chunked") {
    std::size_t used = 0;
    while (transport::decodeChunked(rest, 64U << 20, r.body, used) == transport::ChunkedStatus::kNeedMore) {
      const std::size_t before = data.size();
      if (!fill()) break;
      rest += data.substr(before);
    }
  } else {
    const std::size_t length =
        r.headers.count("content-length") != 0 ? std::stoul(r.header("content-length")) : 0;
    while (rest.size() < length) {
      const std::size_t before = data.size();
      if (!fill()) break;
      rest += data.substr(before);
    }
    r.body = rest.substr(0, length);
  }
  return r;
}

// ------------------------------------------------------------------ HostProcess

HostProcess::HostProcess(const std::string& serverYaml, const std::string& extraYaml, bool tls,
                         const std::string& connectorsYaml) {
  dir_ = makeTempDir();
  port_ = freePort();
  configPath_ = dir_ + "/mcphost.yaml";
  std::ofstream(configPath_)
      << "name: integration\n"
      << "server:\n  listen: 127.0.0.1:" << port_ << "\n"
      << serverYaml << "logging:\n  level: info\n"
      << extraYaml << "connectors:\n  - id: conformance\n    connector: conformance\n    prefix: false\n"
      << connectorsYaml;
  process_ = std::make_unique<Subprocess>(
      std::vector<std::string>{MCPHOST_BINARY, "serve", "--config", configPath_}, dir_ + "/host.log", false);
  for (int i = 0; i < 200; ++i) {
    const int fd = connectLoopback(port_);
    if (fd >= 0 && tls) {
      ::close(fd);
      return;
    }
    if (fd >= 0) {
      sendAll(fd, rawRequest("GET", "/healthz", {{"Host", hostHeader()}}, ""));
      const auto r = readResponse(fd, std::chrono::seconds(2));
      ::close(fd);
      if (r.status == 200) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  throw std::runtime_error("mcphost did not start; log:\n" + log());
}

HostProcess::~HostProcess() {
  process_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);  // the log, the config and the state directory
}

std::string HostProcess::log() const {
  std::ifstream in(dir_ + "/host.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int HostProcess::stop(int signal) {
  return process_->signalAndWait(signal);
}

bool HostProcess::running() {
  return process_->wait(std::chrono::milliseconds(0)) == -1;
}

HttpResponse HostProcess::request(const std::string& method, const std::string& path, const Headers& headers,
                                  const std::string& body) {
  const int fd = connectLoopback(port_);
  if (fd < 0) return {};
  Headers all = headers;
  bool hasHost = false;
  for (const auto& [k, v] : headers) hasHost = hasHost || lower(k) == "host";
  if (!hasHost) all.insert(all.begin(), {"Host", hostHeader()});
  sendAll(fd, rawRequest(method, path, all, body));
  auto r = readResponse(fd);
  ::close(fd);
  return r;
}

HttpResponse HostProcess::post(const Json& body, const Headers& extra) {
  Headers headers = {{"Content-Type", "application/json"}, {"Accept", "application/json, text/event-stream"}};
  headers.insert(headers.end(), extra.begin(), extra.end());
  return request("POST", "/mcp", headers, body.dump());
}

std::string HostProcess::initialize(const std::string& version) {
  auto r = post({{"jsonrpc", "2.0"},
                 {"id", 0},
                 {"method", "initialize"},
                 {"params",
                  {{"protocolVersion", version},
                   {"capabilities", Json::object()},
                   {"clientInfo", {{"name", "it"}, {"version", "1"}}}}}});
  std::string session = r.header("mcp-session-id");
  if (session.empty())
    throw std::runtime_error("initialize failed: " + std::to_string(r.status) + " " + r.body);
  post({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, sessionHeaders(session));
  return session;
}

int HostProcess::startPost(const Json& body, const std::string& session) {
  const int fd = connectLoopback(port_);
  Headers h = {{"Host", hostHeader()},
               {"Content-Type", "application/json"},
               {"Accept", "application/json, text/event-stream"}};
  if (!session.empty()) h.emplace_back("Mcp-Session-Id", session);
  sendAll(fd, rawRequest("POST", "/mcp", h, body.dump()));
  return fd;
}

int HostProcess::openStream(const std::string& session) {
  const int fd = connectLoopback(port_);
  sendAll(
      fd,
      rawRequest("GET", "/mcp",
                 {{"Host", hostHeader()}, {"Accept", "text/event-stream"}, {"Mcp-Session-Id", session}}, ""));
  return fd;
}

Headers HostProcess::sessionHeaders(const std::string& session) const {
  return {{"Mcp-Session-Id", session}, {"MCP-Protocol-Version", "2025-11-25"}};
}

}  // namespace mcphost::test
