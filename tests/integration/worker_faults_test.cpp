// Connectors that crash, hang, hog memory, escape their sandbox or break the host channel
// (tests/connectors/). In every case the host stays up, the conformance connector next to the
// faulty one keeps answering, the caller's error names the connector, and the host log says
// what happened.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "host_process.hpp"

using namespace mcphost::test;

namespace {

std::string connectorYaml(const std::string& id, const std::string& name, const std::string& more = "") {
  return "  - id: " + id + "\n    manifest: " + std::string(MCPHOST_TEST_CONNECTORS_DIR) + "/" + name +
         "/connector.json\n" + more;
}

// A faulty instance with short timeouts so the tests run quickly.
const std::string kFaulty = connectorYaml("bad", "faulty",
                                          "    timeouts: {call: 2s, cancel_grace: 300ms, ping: 1s}\n    "
                                          "restart: {backoff: 50ms, crash_loop_count: 50}\n");

struct Session {
  HostProcess& host;
  std::string id;
  int next = 1;
  explicit Session(HostProcess& h) : host(h), id(h.initialize()) {}
  Json call(const std::string& tool, const Json& args = Json::object()) {
    auto r = host.post({{"jsonrpc", "2.0"},
                        {"id", next++},
                        {"method", "tools/call"},
                        {"params", {{"name", tool}, {"arguments", args}}}},
                       host.sessionHeaders(id));
    return r.lastMessage();
  }
  Json list() {
    return host.post({{"jsonrpc", "2.0"}, {"id", next++}, {"method", "tools/list"}}, host.sessionHeaders(id))
        .lastMessage();
  }
};

std::string errorMessage(const Json& reply) {
  return reply.contains("error") ? reply["error"].value("message", "") : "";
}

bool conformanceStillAnswers(Session& s) {
  const Json r = s.call("test_simple_text");
  return r.contains("result") &&
         r["result"]["content"][0]["text"] == "This is a simple text response for testing.";
}

}  // namespace

TEST_CASE("a connector that segfaults fails only its call, and its worker restarts") {
  HostProcess host("", "", false, kFaulty);
  Session s(host);
  const Json crashed = s.call("bad__segfault");
  INFO(crashed.dump());
  CHECK(errorMessage(crashed).find("connector 'bad'") != std::string::npos);
  // Killed by SIGSEGV; under AddressSanitizer the runtime reports the fault and exits instead.
  CHECK((errorMessage(crashed).find("signal 11") != std::string::npos ||
         errorMessage(crashed).find("exited with status") != std::string::npos));
  CHECK(conformanceStillAnswers(s));
  // The restarted worker serves the next call.
  Json again;
  for (int i = 0; i < 100; ++i) {
    again = s.call("bad__ok");
    if (again.contains("result")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(again["result"]["content"][0]["text"] == "ok");
  CHECK(host.log().find("worker stopped unexpectedly") != std::string::npos);
  CHECK(host.running());
}

TEST_CASE("a connector that loops forever is cancelled, then killed at its deadline") {
  HostProcess host("", "", false, kFaulty);
  Session s(host);
  const auto started = std::chrono::steady_clock::now();
  const Json hung = s.call("bad__spin");
  const auto took = std::chrono::steady_clock::now() - started;
  INFO(hung.dump());
  CHECK(errorMessage(hung).find("did not finish tools/call 'spin' within 2.0s") != std::string::npos);
  CHECK(took < std::chrono::seconds(10));
  CHECK(conformanceStillAnswers(s));
  CHECK(host.log().find("call exceeded its deadline") != std::string::npos);
}

#ifndef MCPHOST_SANITIZE  // sanitizer runtimes need an unlimited address space (see connector_factory)
TEST_CASE("a connector that allocates 10 GB hits its memory limit") {
  HostProcess host("", "", false, kFaulty);
  Session s(host);
  const Json hog = s.call("bad__hog");
  INFO(hog.dump());
  REQUIRE(hog.contains("error"));
  CHECK(errorMessage(hog).find("connector 'bad'") != std::string::npos);
  CHECK(conformanceStillAnswers(s));
}
#endif

TEST_CASE("garbage on a connector's stdout becomes log lines, not protocol") {
  HostProcess host("", "", false, kFaulty);
  Session s(host);
  const Json noisy = s.call("bad__noisy");
  CHECK(noisy["result"]["content"][0]["text"] == "printed garbage");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string log = host.log();
  CHECK(log.find("garbage on stdout") != std::string::npos);
  CHECK(log.find("\"connector\":\"bad\"") != std::string::npos);
  CHECK(conformanceStillAnswers(s));
}

TEST_CASE("the sandbox stops reading secrets, writing outside allowed paths, sockets and forks") {
  ::mkdir("/tmp/mcphost-faulty-allowed", 0777);
  ::chmod("/tmp/mcphost-faulty-allowed", 0777);  // the worker runs as nobody when the host is root
  HostProcess host("", "", false, kFaulty);
  Session s(host);

  const Json shadow = s.call("bad__read_file", {{"path", "/etc/shadow"}});
  INFO(shadow.dump());
  CHECK(errorMessage(shadow).find("open /etc/shadow failed") != std::string::npos);

  const std::string outside = "/tmp/mcphost-escape-" + std::to_string(::getpid());
  const Json escape = s.call("bad__write_file", {{"path", outside}});
  CHECK(errorMessage(escape).find("failed") != std::string::npos);
  CHECK(::access(outside.c_str(), F_OK) != 0);

  const Json allowed = s.call("bad__write_file", {{"path", "/tmp/mcphost-faulty-allowed/ok"}});
  CHECK(allowed.contains("result"));

  const Json socket = s.call("bad__connect", {{"port", host.port()}});
  INFO(socket.dump());
  CHECK(errorMessage(socket).find("failed") != std::string::npos);

  const Json fork = s.call("bad__fork_child");
  INFO(fork.dump());
  CHECK(errorMessage(fork).find("fork failed") != std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(host.log().find("blocked syscall") != std::string::npos);
  CHECK(conformanceStillAnswers(s));
}

TEST_CASE("malformed and oversized frames stop the worker, the host stays up") {
  HostProcess host("", "", false, kFaulty);
  Session s(host);
  const Json bad = s.call("bad__bad_frame");
  INFO(bad.dump());
  CHECK(errorMessage(bad).find("connector 'bad'") != std::string::npos);
  CHECK(errorMessage(bad).find("malformed") != std::string::npos);
  CHECK(conformanceStillAnswers(s));
  Json huge;
  for (int i = 0; i < 100; ++i) {
    huge = s.call("bad__huge_frame");
    if (errorMessage(huge).find("unavailable") == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO(huge.dump());
  CHECK(errorMessage(huge).find("exceeds the limit") != std::string::npos);
  CHECK(host.log().find("broke the host channel") != std::string::npos);
  CHECK(conformanceStillAnswers(s));
}

TEST_CASE("a call completed twice answers once and the host logs the connector bug") {
  HostProcess host("", "", false, kFaulty);
  Session s(host);
  const Json twice = s.call("bad__double_complete");
  CHECK(twice["result"]["content"][0]["text"] == "first");
  const Json thrown = s.call("bad__throws");
  CHECK(errorMessage(thrown).find("vendor bug") != std::string::npos);
  CHECK(s.call("bad__ok")["result"]["content"][0]["text"] == "ok");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(host.log().find("already complete") != std::string::npos);
}

TEST_CASE("connectors that cannot start are reported and the others keep serving") {
  // create() fails, the ABI major is wrong, the entry symbol is missing, the sha256 is wrong.
  const std::string dir = makeTempDir();
  std::ifstream in(std::string(MCPHOST_TEST_CONNECTORS_DIR) + "/faulty/connector.json");
  std::string manifest((std::istreambuf_iterator<char>(in)), {});
  auto sha = manifest.find("\"sha256\"");
  REQUIRE(sha != std::string::npos);
  const auto quote = manifest.find('"', manifest.find(':', sha) + 1);
  manifest.replace(quote + 1, 64, std::string(64, '0'));
  const auto lib = std::string(MCPHOST_TEST_CONNECTORS_DIR) + "/faulty/";
  const auto libName = manifest.substr(manifest.find("\"library\""));
  std::ofstream(dir + "/connector.json") << manifest;
  // The tampered manifest sits beside a copy of the library, as an installed connector would.
  const std::string libFile = libName.substr(libName.find(':') + 1);
  const std::string file =
      libFile.substr(libFile.find('"') + 1, libFile.find('"', libFile.find('"') + 1) - libFile.find('"') - 1);
  std::ifstream src(lib + file, std::ios::binary);
  std::ofstream(dir + "/" + file, std::ios::binary) << src.rdbuf();

  HostProcess host("", "", false,
                   connectorYaml("nocreate", "create_fails") + connectorYaml("oldabi", "wrong_abi") +
                       connectorYaml("noentry", "no_entry") + "  - id: tampered\n    manifest: " + dir +
                       "/connector.json\n");
  Session s(host);
  CHECK(conformanceStillAnswers(s));
  const auto ready = host.request("GET", "/readyz", {});
  INFO(ready.body);
  CHECK(ready.status == 503);
  CHECK(ready.body.find("cannot reach the backend at db.invalid") != std::string::npos);
  CHECK(ready.body.find("mcph_connector_entry_v2 (ABI major 2)") != std::string::npos);
  CHECK(ready.body.find("does not export mcph_connector_entry_v1") != std::string::npos);
  CHECK(ready.body.find("does not match its manifest") != std::string::npos);
  // A call to a tool of a connector that could not start says why.
  const Json refused = s.call("nocreate__anything");
  CHECK(errorMessage(refused).find("cannot reach the backend at db.invalid") != std::string::npos);
  const Json tools = s.list();
  for (const auto& t : tools["result"]["tools"])
    CHECK(t["name"].get<std::string>().find("__") == std::string::npos);
}

TEST_CASE("a worker that is not ready within its start timeout is stopped and reported") {
  HostProcess host("", "", false,
                   connectorYaml("slow", "faulty",
                                 "    config: {startDelayMs: 5000}\n    timeouts: {start: 500ms}\n"
                                 "    restart: {backoff: 10s}\n"));
  Session s(host);
  CHECK(conformanceStillAnswers(s));
  const auto ready = host.request("GET", "/readyz", {});
  INFO(ready.body);
  CHECK(ready.status == 503);
  CHECK(ready.body.find("was not ready within 0.5s") != std::string::npos);
}

TEST_CASE("an instance config that violates the connector's schema is refused before any vendor code runs") {
  HostProcess host("", "", false, connectorYaml("badcfg", "faulty", "    config: {level: 0, colour: red}\n"));
  Session s(host);
  CHECK(conformanceStillAnswers(s));
  const auto ready = host.request("GET", "/readyz", {});
  INFO(ready.body);
  CHECK(ready.body.find("/level") != std::string::npos);
  CHECK(host.log().find("worker ready") == host.log().rfind("worker ready"));  // only the conformance worker
  Subprocess check({MCPHOST_BINARY, "check-config", host.configPath()}, makeTempDir() + "/err.txt", false);
  CHECK(check.wait() == 2);
}

TEST_CASE("sandbox-check reports what this machine enforces") {
  const std::string dir = makeTempDir();
  Subprocess check({MCPHOST_BINARY, "sandbox-check"}, dir + "/err.txt", true);
  std::string out;
  while (auto line = check.readLine(std::chrono::seconds(20))) out += *line + "\n";
  INFO(out);
  CHECK(check.wait() == 0);
  CHECK(out.find("seccomp") != std::string::npos);
  CHECK(out.find("landlock") != std::string::npos);
  CHECK(out.find("probe: ") != std::string::npos);
}
