// An unmodified third-party MCP server (@modelcontextprotocol/server-filesystem from npm, on the
// stdio transport) run as a connector under mcphost's supervisor and sandbox.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "host_process.hpp"

using namespace mcphost::test;

namespace {

const std::string kServer =
    std::string(MCPHOST_SOURCE_DIR) +
    "/tests/external/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js";

std::string filesystemConnector(const std::string& shared, const std::string& more = "") {
  return "  - id: fs\n    type: stdio\n    command: node\n    args: [\"" + kServer + "\", \"" + shared +
         "\"]\n    read_paths: [\"" + std::string(MCPHOST_SOURCE_DIR) +
         "/tests/external\"]\n    write_paths: [\"" + shared + "\"]\n" + more;
}

Json call(HostProcess& host, const std::string& session, int id, const std::string& tool, const Json& args) {
  return host
      .post({{"jsonrpc", "2.0"},
             {"id", id},
             {"method", "tools/call"},
             {"params", {{"name", tool}, {"arguments", args}}}},
            host.sessionHeaders(session))
      .lastMessage();
}

}  // namespace

TEST_CASE("a stdio MCP server from npm runs as a sandboxed connector") {
  const std::string shared = makeTempDir();
  ::chmod(shared.c_str(), 0777);  // the server runs as nobody when the host is root
  std::ofstream(shared + "/hello.txt") << "hello from the shared folder\n";
  ::chmod((shared + "/hello.txt").c_str(), 0644);
  HostProcess host("", "", false, filesystemConnector(shared, "    timeouts: {start: 30s}\n"));
  auto session = host.initialize();
  auto tools =
      host.post({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}}, host.sessionHeaders(session));
  INFO(tools.body.substr(0, 2000));
  CHECK(tools.body.find("fs__read_text_file") != std::string::npos);

  const Json read = call(host, session, 2, "fs__read_text_file", {{"path", shared + "/hello.txt"}});
  INFO(read.dump());
  CHECK(read["result"]["content"][0]["text"].get<std::string>().find("hello from the shared folder") !=
        std::string::npos);

  // The server's own access check and the sandbox both keep it inside the shared folder.
  const Json outside = call(host, session, 3, "fs__read_text_file", {{"path", "/etc/shadow"}});
  INFO(outside.dump());
  CHECK((outside.contains("error") || outside["result"].value("isError", false)));
  CHECK(outside.dump().find("root:") == std::string::npos);

  const Json wrote =
      call(host, session, 4, "fs__write_file", {{"path", shared + "/out.txt"}, {"content", "x"}});
  INFO(wrote.dump());
  CHECK_FALSE(wrote["result"].value("isError", false));
  CHECK(::access((shared + "/out.txt").c_str(), F_OK) == 0);
  CHECK(host.log().find("MCP server ready") != std::string::npos);
}

TEST_CASE("an external server that exits is restarted and its calls fail with the connector named") {
  const std::string shared = makeTempDir();
  ::chmod(shared.c_str(), 0777);
  HostProcess host("", "", false,
                   "  - id: gone\n    type: stdio\n    command: /bin/false\n    restart: {backoff: 50ms}\n"
                   "    timeouts: {start: 2s}\n");
  auto session = host.initialize();
  const Json r = call(host, session, 1, "gone__anything", Json::object());
  CHECK(r.contains("error"));
  const auto ready = host.request("GET", "/readyz", {});
  INFO(ready.body);
  CHECK(ready.status == 503);
  CHECK(ready.body.find("connector 'gone'") != std::string::npos);
  CHECK(host.running());
}
