// The audit log through the real host: a record for every request, `mcphost audit verify` and
// `export`, a full or read-only disk with fail_closed on and off (tmpfs in a private mount
// namespace), and kill -9 under load.
#include <sched.h>
#include <sys/mount.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "auth_test_support.hpp"

using namespace mcphost::test;
namespace fs = std::filesystem;

namespace {

const std::string kFaulty = faultyConnectorYaml("bad");

std::string auditYaml(const std::string& directory, const std::string& more = "") {
  return "audit:\n  directory: " + directory + "\n" + more;
}

// Every line of every audit file, in file order.
std::vector<Json> auditRecords(const std::string& directory) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("audit-", 0) == 0 && entry.path().extension() == ".jsonl")
      files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  std::vector<Json> records;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      Json j = Json::parse(line, nullptr, false);
      if (!j.is_discarded()) records.push_back(std::move(j));
    }
  }
  return records;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The rest of this test process (and the host it starts) gets its own mount table, so a tmpfs
// mounted here is seen by nobody else and disappears with the process.
void enterPrivateMountNamespace() {
  REQUIRE(::unshare(CLONE_NEWNS) == 0);
  REQUIRE(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
}

void mountTmpfs(const std::string& dir, const std::string& options) {
  fs::create_directories(dir);
  INFO("mount tmpfs on " << dir << " (" << options << "): " << std::strerror(errno));
  REQUIRE(::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0);
}

// Fills the file system holding dir until it is full; returns the filler's path.
std::string fillDisk(const std::string& dir) {
  std::string path = dir + "/filler";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  const std::string block(4096, 'x');
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size() && std::fflush(f) == 0) {
  }
  std::fclose(f);
  std::FILE* g = std::fopen(path.c_str(), "ab");  // the last bytes, one at a time
  while (g != nullptr && std::fputc('x', g) != EOF && std::fflush(g) == 0) {
  }
  if (g != nullptr) std::fclose(g);
  return path;
}

int errorCode(const Json& reply) {
  return reply.contains("error") ? reply["error"].value("code", 0) : 0;
}

}  // namespace

TEST_CASE("audit: every request gets a record, verify passes and export filters", "[audit]") {
  const std::string dir = makeTempDir();
  HostProcess host("", auditYaml(dir + "/audit"), false, kFaulty);
  AuthSession s(host, "");
  auto listed = s.send("tools/list");
  auto called =
      s.send("tools/call", {{"name", "bad__echo"}, {"arguments", {{"text", "hi frank@example.com"}}}});
  auto invalid = s.send("tools/call", {{"name", "bad__strict"}, {"arguments", {{"count", 0}}}});
  auto unknown = s.send("tools/call", {{"name", "no_such_tool"}});
  REQUIRE(called.status == 200);
  const std::string callId = called.header("x-request-id");
  REQUIRE_FALSE(callId.empty());
  REQUIRE(host.stop() == 0);

  const auto records = auditRecords(dir + "/audit");
  const Json* call = nullptr;
  const Json* refused = nullptr;
  for (const auto& r : records) {
    if (r.value("correlation_id", "") == callId) call = &r;
    if (r.value("correlation_id", "") == invalid.header("x-request-id")) refused = &r;
  }
  REQUIRE(call != nullptr);
  CHECK((*call)["method"] == "tools/call");
  CHECK((*call)["connector"] == "bad");
  CHECK((*call)["target"] == "bad__echo");
  CHECK((*call)["principal"] == "anonymous");
  CHECK((*call)["status"] == "ok");
  CHECK((*call)["args_sha256"].get<std::string>().size() == 64);
  CHECK((*call)["args_redacted"]["text"] == "[REDACTED:email]");  // the audit copy is redacted
  CHECK((*call)["latency_us"].get<long>() > 0);
  CHECK((*call)["request_bytes"].get<long>() > 0);
  CHECK((*call)["response_bytes"].get<long>() > 0);
  REQUIRE(refused != nullptr);
  CHECK((*refused)["status"] == "refused");
  CHECK((*refused)["refusal"] == "invalid_arguments");
  CHECK(slurp(fs::directory_iterator(dir + "/audit")->path().string()).find("frank@example.com") ==
        std::string::npos);

  auto verified = runHost({"audit", "verify", dir + "/audit", "--config", host.configPath()}, dir);
  INFO(verified.out);
  CHECK(verified.code == 0);
  CHECK(verified.out.find("OK: ") != std::string::npos);

  auto csv = runHost({"audit", "export", dir + "/audit", "--config", host.configPath(), "--from",
                      "2000-01-01", "--to", "2100-01-01", "--user", "anonymous", "--format", "csv"},
                     dir);
  INFO(csv.out);
  CHECK(csv.code == 0);
  CHECK(csv.out.find(callId) != std::string::npos);
  auto none = runHost({"audit", "export", dir + "/audit", "--config", host.configPath(), "--user", "mallory",
                       "--format", "json", "--output", dir + "/out.json"},
                      dir);
  CHECK(none.code == 0);
  CHECK(Json::parse(slurp(dir + "/out.json")) == Json::array());
  (void)listed;
  (void)unknown;
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("audit: verify names the first modified record and export refuses a tampered log", "[audit]") {
  const std::string dir = makeTempDir();
  {
    HostProcess host("", auditYaml(dir + "/audit") + "state_dir: " + dir + "/state\n", false, kFaulty);
    AuthSession s(host, "");
    for (int i = 0; i < 5; ++i) s.send("tools/call", {{"name", "bad__ok"}});
    REQUIRE(host.stop() == 0);
  }
  std::string file;
  for (const auto& e : fs::directory_iterator(dir + "/audit"))
    if (e.path().extension() == ".jsonl") file = e.path().string();
  REQUIRE_FALSE(file.empty());
  std::string text = slurp(file);
  const auto at = text.find("\"method\":\"tools/call\"");
  REQUIRE(at != std::string::npos);
  text.replace(at, 21, "\"method\":\"tools/list\"");
  std::ofstream(file, std::ios::trunc) << text;
  auto verified = runHost({"audit", "verify", dir + "/audit", "--key-file", dir + "/state/audit.key"}, dir);
  INFO(verified.out);
  CHECK(verified.code == 1);
  CHECK(verified.out.find("FAILED") != std::string::npos);
  CHECK(verified.out.find(fs::path(file).filename().string()) != std::string::npos);
  CHECK(verified.out.find("seq") != std::string::npos);
  auto exported = runHost({"audit", "export", dir + "/audit", "--key-file", dir + "/state/audit.key"}, dir);
  CHECK(exported.code == 1);
  auto wrongKey = runHost({"audit", "verify", dir + "/audit", "--key-file", "/etc/hostname"}, dir);
  CHECK(wrongKey.code != 0);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("audit: a full disk with fail_closed refuses calls, then recovers with the chain intact",
          "[audit]") {
  enterPrivateMountNamespace();
  const std::string dir = makeTempDir();
  mountTmpfs(dir + "/disk", "size=256k,mode=0700");
  HostProcess host("",
                   auditYaml(dir + "/disk/audit", "  fail_closed: true\n  fsync: every_batch\n") +
                       "state_dir: " + dir + "/state\n",
                   false, kFaulty);
  AuthSession s(host, "");
  REQUIRE(s.result("tools/call", {{"name", "bad__ok"}}).contains("result"));
  const std::string filler = fillDisk(dir + "/disk");
  // The file's last page may still have room for a few records; the disk is full after that.
  Json failed;
  for (int i = 0; i < 50 && errorCode(failed) == 0; ++i) {
    failed = s.result("tools/call", {{"name", "bad__ok"}});
    REQUIRE((errorCode(failed) == 0 || errorCode(failed) == -32031));
  }
  CHECK(errorCode(failed) == -32031);
  INFO(failed.dump());
  CHECK(failed.dump().find("audit") != std::string::npos);
  CHECK(failed.dump().find("No space left on device") != std::string::npos);
  const Json refused = s.result("tools/call", {{"name", "bad__ok"}});
  CHECK(errorCode(refused) == -32031);
  INFO(host.log());
  CHECK(host.log().find("No space left on device") != std::string::npos);
  fs::remove(filler);
  bool recovered = false;
  for (int i = 0; i < 5 && !recovered; ++i)
    recovered = s.result("tools/call", {{"name", "bad__ok"}}).contains("result");
  CHECK(recovered);
  REQUIRE(host.stop() == 0);
  auto verified =
      runHost({"audit", "verify", dir + "/disk/audit", "--key-file", dir + "/state/audit.key"}, dir);
  INFO(verified.out);
  CHECK(verified.code == 0);
  ::umount2((dir + "/disk").c_str(), MNT_DETACH);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("audit: a full disk with fail_closed off keeps serving and the chain stays valid", "[audit]") {
  enterPrivateMountNamespace();
  const std::string dir = makeTempDir();
  mountTmpfs(dir + "/disk", "size=256k,mode=0700");
  HostProcess host(
      "", auditYaml(dir + "/disk/audit", "  fail_closed: false\n") + "state_dir: " + dir + "/state\n", false,
      kFaulty);
  AuthSession s(host, "");
  const std::string filler = fillDisk(dir + "/disk");
  for (int i = 0; i < 50; ++i) CHECK(s.result("tools/call", {{"name", "bad__ok"}}).contains("result"));
  const auto metrics = host.request("GET", "/metrics", {{"Host", host.hostHeader()}});
  CHECK(metrics.body.find("mcphost_audit_records_total{outcome=\"failed\"}") != std::string::npos);
  fs::remove(filler);
  CHECK(s.result("tools/call", {{"name", "bad__ok"}}).contains("result"));
  REQUIRE(host.stop() == 0);
  auto verified =
      runHost({"audit", "verify", dir + "/disk/audit", "--key-file", dir + "/state/audit.key"}, dir);
  INFO(verified.out);
  CHECK(verified.code == 0);
  ::umount2((dir + "/disk").c_str(), MNT_DETACH);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("audit: a read-only audit directory stops a fail_closed host and is reported otherwise",
          "[audit]") {
  enterPrivateMountNamespace();
  const std::string dir = makeTempDir();
  mountTmpfs(dir + "/ro", "size=64k,ro");
  const std::string config = dir + "/mcphost.yaml";
  const std::string base =
      "server:\n  listen: 127.0.0.1:" + std::to_string(freePort()) +
      "\nconnectors:\n  - id: conformance\n    connector: conformance\nstate_dir: " + dir + "/state\n";
  writeFile(config, base + auditYaml(dir + "/ro/audit", "  fail_closed: true\n"));
  auto closed = runHost({"serve", "--config", config}, dir);
  CHECK(closed.code == 2);
  CHECK(closed.out.find("Read-only file system") != std::string::npos);
  CHECK(closed.out.find(dir + "/ro/audit") != std::string::npos);

  HostProcess open("",
                   auditYaml(dir + "/ro/audit", "  fail_closed: false\n") + "state_dir: " + dir + "/state\n",
                   false, kFaulty);
  AuthSession s(open, "");
  CHECK(s.result("tools/call", {{"name", "bad__ok"}}).contains("result"));
  CHECK(open.log().find("Read-only file system") != std::string::npos);
  open.stop();
  ::umount2((dir + "/ro").c_str(), MNT_DETACH);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("audit: kill -9 under load leaves a verifiable log with a record for every answer", "[audit]") {
  const std::string dir = makeTempDir();
  HostProcess host("", auditYaml(dir + "/audit") + "state_dir: " + dir + "/state\n", false, kFaulty);
  std::mutex mutex;
  std::set<std::string> answered;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  clients.reserve(6);
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&] {
      AuthSession s(host, "");
      while (!stop.load()) {
        auto r = s.send("tools/call", {{"name", "bad__ok"}});
        if (r.status != 200 || !r.lastMessage().contains("result")) continue;
        std::lock_guard lock(mutex);
        answered.insert(r.header("x-request-id"));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  host.stop(SIGKILL);
  stop = true;
  for (auto& c : clients) c.join();
  REQUIRE(answered.size() > 20);
  auto verified = runHost({"audit", "verify", dir + "/audit", "--key-file", dir + "/state/audit.key"}, dir);
  INFO(verified.out);
  CHECK(verified.code == 0);
  std::set<std::string> recorded;
  for (const auto& r : auditRecords(dir + "/audit")) recorded.insert(r.value("correlation_id", ""));
  std::size_t missing = 0;
  for (const auto& id : answered) missing += recorded.count(id) == 0 ? 1 : 0;
  CHECK(missing == 0);
  // The next start continues the same chain.
  {
    HostProcess again("", auditYaml(dir + "/audit") + "state_dir: " + dir + "/state\n", false, kFaulty);
    AuthSession s(again, "");
    CHECK(s.result("tools/call", {{"name", "bad__ok"}}).contains("result"));
    again.stop();
  }
  auto reverified = runHost({"audit", "verify", dir + "/audit", "--key-file", dir + "/state/audit.key"}, dir);
  INFO(reverified.out);
  CHECK(reverified.code == 0);
  std::system(("rm -rf " + dir).c_str());
}
