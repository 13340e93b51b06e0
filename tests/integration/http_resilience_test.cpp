// Hostile or careless clients: disconnects mid-stream, slowloris, thousands of idle
// connections, pipelining and chunked bodies. The host stays up and answers everyone else.
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "host_process.hpp"

using namespace mcphost::test;

namespace {
bool healthy(HostProcess& host) {
  return host.request("GET", "/healthz", {}).status == 200;
}
}  // namespace

TEST_CASE("a client that disconnects mid-stream does not hurt the host") {
  HostProcess host;
  auto session = host.initialize();
  for (int i = 0; i < 20; ++i) {
    Json call = {{"jsonrpc", "2.0"},
                 {"id", 100 + i},
                 {"method", "tools/call"},
                 {"params", {{"name", "test_tool_with_progress"}, {"_meta", {{"progressToken", i}}}}}};
    const int fd = host.startPost(call, session);
    char buf[64];
    [[maybe_unused]] auto n = ::recv(fd, buf, sizeof buf, 0);  // stream started
    ::close(fd);                                               // ...and the client is gone
  }
  // The standalone stream too.
  ::close(host.openStream(session));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(healthy(host));
  auto r = host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, host.sessionHeaders(session));
  CHECK(r.lastMessage()["result"] == Json::object());
}

TEST_CASE("slowloris: a client that never finishes its headers is cut off") {
  HostProcess host("  request_read_timeout: 1s\n");
  const int slow = connectLoopback(host.port());
  sendAll(slow, "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  const auto started = std::chrono::steady_clock::now();
  bool closed = false;
  while (std::chrono::steady_clock::now() - started < std::chrono::seconds(5)) {
    sendAll(slow, "X-Drip: 1\r\n");  // a header line now and then, never the blank line
    CHECK(healthy(host));            // everyone else is served meanwhile
    char buf[16];
    const ssize_t n = ::recv(slow, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      closed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ::close(slow);
  CHECK(closed);
}

TEST_CASE("oversized headers are refused with 431") {
  HostProcess host;
  auto r = host.request("GET", "/healthz", {{"X-Big", std::string(std::size_t{32} << 10, 'a')}});
  CHECK(r.status == 431);
  CHECK(healthy(host));
}

TEST_CASE("10,000 concurrent idle connections: the host still answers others") {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  const int wanted = 10000;
  REQUIRE(limit.rlim_cur > static_cast<rlim_t>(wanted + 100));
  HostProcess host;
  std::vector<int> fds;
  fds.reserve(wanted);
  for (int i = 0; i < wanted; ++i) {
    const int fd = connectLoopback(host.port());
    if (fd < 0) break;
    fds.push_back(fd);
  }
  CHECK(fds.size() == static_cast<std::size_t>(wanted));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto session = host.initialize();
  auto r = host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}}, host.sessionHeaders(session));
  CHECK(r.status == 200);
  CHECK(r.lastMessage()["result"]["tools"].size() > 10);
  for (int fd : fds) ::close(fd);
  CHECK(healthy(host));
}

TEST_CASE("keep-alive, pipelined requests and chunked bodies") {
  HostProcess host;
  const int fd = connectLoopback(host.port());
  const std::string one = rawRequest("GET", "/healthz", {{"Host", host.hostHeader()}}, "");
  sendAll(fd, one + one);  // pipelined: both answers may arrive in one read
  std::string both;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto count = [&] {
    std::size_t n = 0;
    for (auto pos = both.find("HTTP/1.1 200"); pos != std::string::npos;
         pos = both.find("HTTP/1.1 200", pos + 1))
      ++n;
    return n;
  };
  while (count() < 2 && std::chrono::steady_clock::now() < deadline) {
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) both.append(buf, static_cast<std::size_t>(n));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(count() == 2);
  // Drain the rest of the second body so the next response starts clean.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  char rest[4096];
  while (::recv(fd, rest, sizeof rest, MSG_DONTWAIT) > 0) {
  }
  const std::string body =
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}})";
  std::string chunked =
      "POST /mcp HTTP/1.1\r\nHost: " + host.hostHeader() +
      "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  chunked += "10\r\n" + body.substr(0, 16) + "\r\n";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size() - 16);
  chunked += std::string(size) + "\r\n" + body.substr(16) + "\r\n0\r\n\r\n";
  sendAll(fd, chunked);
  auto r = readResponse(fd);
  CHECK(r.status == 200);
  CHECK_FALSE(r.header("mcp-session-id").empty());
  ::close(fd);
}

TEST_CASE("SSE resumption replays what a dropped client missed") {
  HostProcess host;
  auto session = host.initialize();
  auto r = host.post(
      {{"jsonrpc", "2.0"}, {"id", 7}, {"method", "tools/call"}, {"params", {{"name", "test_reconnection"}}}},
      host.sessionHeaders(session));
  REQUIRE(r.status == 200);
  const auto idLine = r.body.find("id: ");
  REQUIRE(idLine != std::string::npos);
  const std::string primingId = r.body.substr(idLine + 4, r.body.find('\n', idLine) - idLine - 4);
  CHECK(r.messages().empty());  // stream closed before the result
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Headers h = host.sessionHeaders(session);
  h.emplace_back("Accept", "text/event-stream");
  h.emplace_back("Last-Event-ID", primingId);
  auto resumed = host.request("GET", "/mcp", h);
  CHECK(resumed.status == 200);
  CHECK(resumed.lastMessage()["id"] == 7);
  CHECK(resumed.lastMessage()["result"]["content"][0]["text"] == "Reconnection test completed successfully.");
}

TEST_CASE("notifications/cancelled stops a running call and suppresses its response") {
  HostProcess host;
  auto session = host.initialize();
  Json call = {{"jsonrpc", "2.0"},
               {"id", 42},
               {"method", "tools/call"},
               {"params", {{"name", "slow_compute"}, {"arguments", {{"seconds", 5}}}}}};
  const auto started = std::chrono::steady_clock::now();
  const int fd = host.startPost(call, session);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto ack = host.post({{"jsonrpc", "2.0"},
                        {"method", "notifications/cancelled"},
                        {"params", {{"requestId", 42}, {"reason", "user pressed stop"}}}},
                       host.sessionHeaders(session));
  CHECK(ack.status == 202);
  auto r = readResponse(fd);
  ::close(fd);
  CHECK(r.status == 200);
  for (const auto& m : r.messages()) CHECK_FALSE(m.contains("result"));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
}

TEST_CASE("list_changed reaches the session's standalone GET stream") {
  HostProcess host;
  auto session = host.initialize();
  const int stream = host.openStream(session);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  host.post({{"jsonrpc", "2.0"},
             {"id", 3},
             {"method", "tools/call"},
             {"params", {{"name", "test_trigger_tool_change"}}}},
            host.sessionHeaders(session));
  const std::string seen = readUntil(stream, "notifications/tools/list_changed", std::chrono::seconds(5));
  ::close(stream);
  CHECK(seen.find("notifications/tools/list_changed") != std::string::npos);
}

TEST_CASE("client answers are served even when every worker waits on the client") {
  HostProcess host("  worker_threads: 2\n  client_request_timeout: 20s\n");
  auto r = host.post(
      {{"jsonrpc", "2.0"},
       {"id", 0},
       {"method", "initialize"},
       {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", {{"elicitation", Json::object()}}}}}});
  const std::string session = r.header("mcp-session-id");
  REQUIRE_FALSE(session.empty());
  // Two calls occupy both workers, each waiting for an elicitation answer.
  std::vector<int> calls;
  for (int i = 0; i < 2; ++i) {
    Json call = {{"jsonrpc", "2.0"},
                 {"id", 10 + i},
                 {"method", "tools/call"},
                 {"params", {{"name", "test_elicitation"}, {"arguments", {{"message", "who?"}}}}}};
    calls.push_back(host.startPost(call, session));
  }
  // Read each stream until its elicitation request shows up, then answer it.
  const auto started = std::chrono::steady_clock::now();
  CHECK(host.request("GET", "/healthz", {}).status == 200);  // health is not stuck behind them
  for (int fd : calls) {
    std::string seen;
    Json request;
    while (request.is_null() && std::chrono::steady_clock::now() - started < std::chrono::seconds(10)) {
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) seen.append(buf, static_cast<std::size_t>(n));
      for (auto pos = seen.find("data: {"); pos != std::string::npos; pos = seen.find("data: {", pos + 1)) {
        auto j = Json::parse(seen.substr(pos + 6, seen.find('\n', pos) - pos - 6), nullptr, false);
        if (!j.is_discarded() && j.value("method", "") == "elicitation/create") request = j;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE_FALSE(request.is_null());
    auto ack =
        host.post({{"jsonrpc", "2.0"},
                   {"id", request["id"]},
                   {"result", {{"action", "accept"}, {"content", {{"username", "u"}, {"email", "e"}}}}}},
                  host.sessionHeaders(session));
    CHECK(ack.status == 202);
  }
  for (int fd : calls) {
    const std::string rest = readUntil(fd, "User response: action=accept", std::chrono::seconds(5));
    CHECK(rest.find("User response: action=accept") != std::string::npos);
    ::close(fd);
  }
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
}

TEST_CASE("the newest streams of a long session stay resumable") {
  HostProcess host;
  auto session = host.initialize();
  std::string lastId;
  for (int i = 0; i < 60; ++i) {
    auto r =
        host.post({{"jsonrpc", "2.0"}, {"id", 100 + i}, {"method", "ping"}}, host.sessionHeaders(session));
    const auto pos = r.body.find("id: ");
    REQUIRE(pos != std::string::npos);
    lastId = r.body.substr(pos + 4, r.body.find('\n', pos) - pos - 4);
  }
  Headers h = host.sessionHeaders(session);
  h.emplace_back("Accept", "text/event-stream");
  h.emplace_back("Last-Event-ID", lastId);
  auto resumed = host.request("GET", "/mcp", h);
  CHECK(resumed.status == 200);
  CHECK(resumed.lastMessage()["id"] == 159);
}

TEST_CASE("an open GET stream keeps its session alive") {
  HostProcess host("  session_idle_timeout: 1s\n");
  auto session = host.initialize();
  const int stream = host.openStream(session);
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  auto r = host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, host.sessionHeaders(session));
  CHECK(r.status == 200);
  ::close(stream);
}
