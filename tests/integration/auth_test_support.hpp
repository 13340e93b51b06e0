// Helpers shared by the authentication and authorization integration tests.
#pragma once

#include <fstream>
#include <string>

#include "host_process.hpp"

namespace mcphost::test {

inline std::string faultyConnectorYaml(const std::string& id, const std::string& more = "") {
  return "  - id: " + id + "\n    manifest: " + std::string(MCPHOST_TEST_CONNECTORS_DIR) +
         "/faulty/connector.json\n" + more;
}

inline Json rpc(int id, const std::string& method, const Json& params = Json::object()) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
}

inline Json initializeParams() {
  return {{"protocolVersion", "2025-11-25"},
          {"capabilities", Json::object()},
          {"clientInfo", {{"name", "auth-it"}, {"version", "1"}}}};
}

// A session opened with the given Authorization header (empty: none).
struct AuthSession {
  HostProcess& host;
  std::string authorization;
  std::string id;
  int next = 1;
  HttpResponse opened;

  AuthSession(HostProcess& h, std::string auth) : host(h), authorization(std::move(auth)) {
    opened = host.post(rpc(0, "initialize", initializeParams()), headers(""));
    id = opened.header("mcp-session-id");
    if (!id.empty()) host.post({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, headers(id));
  }
  [[nodiscard]] Headers headers(const std::string& session) const {
    Headers h;
    if (!authorization.empty()) h.emplace_back("Authorization", authorization);
    if (!session.empty()) {
      h.emplace_back("Mcp-Session-Id", session);
      h.emplace_back("MCP-Protocol-Version", "2025-11-25");
    }
    return h;
  }
  HttpResponse send(const std::string& method, const Json& params = Json::object()) {
    return host.post(rpc(next++, method, params), headers(id));
  }
  Json result(const std::string& method, const Json& params = Json::object()) {
    return send(method, params).lastMessage();
  }
  std::vector<std::string> toolNames() {
    std::vector<std::string> names;
    const Json listed = result("tools/list");  // kept: a range-for over a temporary's member dangles
    for (const auto& t : listed["result"]["tools"]) names.push_back(t["name"].get<std::string>());
    return names;
  }
};

inline void writeFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// One run of the mcphost command line (keys, policy, audit ...): exit code and stdout+stderr.
struct Command {
  int code = -1;
  std::string out;
};

inline Command runHost(const std::vector<std::string>& args, const std::string& dir) {
  std::vector<std::string> argv = {MCPHOST_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p(argv, dir + "/cmd.err", true);
  p.closeStdin();
  Command c;
  while (auto line = p.readLine(std::chrono::seconds(20))) c.out += *line + "\n";
  c.code = p.wait(std::chrono::seconds(20));
  std::ifstream err(dir + "/cmd.err");
  c.out += std::string(std::istreambuf_iterator<char>(err), {});
  return c;
}

}  // namespace mcphost::test
