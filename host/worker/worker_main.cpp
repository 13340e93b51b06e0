// mcphost-worker: runs ONE connector instance for the host, sandboxed.
//
// Start-up order matters: the vendor library's static constructors run when it is loaded, so
// everything that confines the process happens first (DESIGN.md, "Worker start-up order"):
//   1. hello -> welcome over fd 3 (the host says which library, config and sandbox policy);
//   2. the sandbox is applied (sandbox/sandbox.hpp);
//   3. the library's SHA-256 is checked again, now from inside the sandbox;
//   4. only then Boost.DLL loads it, the ABI is negotiated and the instance is created;
//   5. ready -> serve requests until the host says shutdown or closes the channel.
// stdout and stderr are pipes into the host's log, never the protocol channel.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/crypto.hpp"
#include "common/frame_channel.hpp"
#include "sandbox/sandbox.hpp"
#include "worker/plugin_loader.hpp"
#include "worker/worker_runtime.hpp"

#ifndef MCPHOST_VERSION
#define MCPHOST_VERSION "0.0.0"
#endif

namespace {

using mcphost::worker::Json;

constexpr int kChannelFd = 3;
constexpr int kProtocol = 1;

void send(mcphost::FrameSocket& socket, const std::string& method, Json params) {
  socket.send(Json{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}}.dump(
      -1, ' ', false, Json::error_handler_t::replace));
}

int startFailed(mcphost::FrameSocket& socket, const std::string& stage, const std::string& message,
                const Json& sandbox = nullptr) {
  Json params = {{"stage", stage}, {"message", message}};
  if (!sandbox.is_null()) params["sandbox"] = sandbox;
  send(socket, "mcphost/startFailed", std::move(params));
  std::fprintf(stderr, "mcphost-worker: %s failed: %s\n", stage.c_str(), message.c_str());
  return 3;
}

std::vector<std::string> strings(const Json& v) {
  std::vector<std::string> out;
  if (!v.is_array()) return out;
  for (const auto& s : v) {
    if (s.is_string()) out.push_back(s.get<std::string>());
  }
  return out;
}

mcphost::sandbox::Policy policyFrom(const Json& welcome) {
  const Json s = welcome.value("sandbox", Json::object());
  mcphost::sandbox::Policy p;
  p.connectorId = welcome.value("connectorId", "");
  p.readOnlyPaths = strings(s.value("readOnlyPaths", Json::array()));
  p.readWritePaths = strings(s.value("readWritePaths", Json::array()));
  p.networkNone = s.value("network", "none") == "none";
  p.allowProcesses = s.value("allowProcesses", false);
  p.addressSpaceBytes = s.value("addressSpaceBytes", std::uint64_t{0});
  p.maxOpenFiles = s.value("maxOpenFiles", std::uint64_t{256});
  p.cpuSeconds = s.value("cpuSeconds", std::uint64_t{0});
  p.maxProcesses = s.value("maxProcesses", std::uint64_t{0});
  p.memoryBytes = s.value("memoryBytes", std::uint64_t{0});
  p.pidsMax = s.value("pidsMax", std::uint64_t{0});
  if (s.contains("runAsUid") && s["runAsUid"].is_number_unsigned())
    p.runAsUid = s["runAsUid"].get<std::uint32_t>();
  if (s.contains("runAsGid") && s["runAsGid"].is_number_unsigned())
    p.runAsGid = s["runAsGid"].get<std::uint32_t>();
  p.expectedParent = static_cast<pid_t>(welcome.value("hostPid", 0));
  p.keepFds = {0, 1, 2, kChannelFd};
  return p;
}

// External MCP servers (stdio transport): `mcphost-worker --exec POLICY -- program args...`
// applies the sandbox described by the POLICY JSON, then replaces itself with the server, which
// inherits every confinement (Landlock and seccomp survive exec under no_new_privs).
int execSandboxed(int argc, char** argv) {
  if (argc < 5 || std::string(argv[3]) != "--") {
    std::fputs("mcphost-worker: usage: mcphost-worker --exec POLICY_JSON -- PROGRAM [ARGS...]\n", stderr);
    return 2;
  }
  Json welcome = Json::parse(argv[2], nullptr, false);
  if (!welcome.is_object()) {
    std::fputs("mcphost-worker: --exec: the policy is not a JSON object\n", stderr);
    return 2;
  }
  if (!welcome.value("sandbox", Json::object()).value("disabled", false)) {
    auto policy = policyFrom(welcome);
    policy.keepFds = {0, 1, 2};  // the MCP stdio transport is stdin/stdout
    policy.keepEnv = strings(welcome.value("keepEnv", Json::array()));
    auto report = mcphost::sandbox::apply(policy);
    for (const auto& m : report.measures) {
      if (!m.enforced)
        std::fprintf(stderr, "mcphost-sandbox: not enforced: %s: %s\n", m.name.c_str(), m.detail.c_str());
    }
    if (!report.ok) {
      std::fprintf(stderr, "mcphost-worker: sandbox failed: %s\n", report.fatalError.c_str());
      return 3;
    }
  }
  ::execvp(argv[4], argv + 4);
  std::fprintf(stderr, "mcphost-worker: cannot run %s: %s\n", argv[4], std::strerror(errno));
  return 127;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--exec") return execSandboxed(argc, argv);
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(kChannelFd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    std::fputs("mcphost-worker: no host channel on fd 3; this program is started by mcphost, not by hand\n",
               stderr);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  mcphost::FrameSocket socket(kChannelFd);
  send(socket, "mcphost/hello",
       {{"protocol", kProtocol},
        {"worker", MCPHOST_VERSION},
        {"pid", ::getpid()},
        {"abi", {{"major", MCPH_ABI_MAJOR}, {"minor", MCPH_ABI_MINOR}}}});
  auto frame = socket.receive();
  if (!frame) return 2;
  Json welcome = Json::parse(*frame, nullptr, false);
  if (!welcome.is_object() || welcome.value("method", "") != "mcphost/welcome") {
    return startFailed(socket, "handshake", "expected mcphost/welcome as the host's first message");
  }
  welcome = welcome.value("params", Json::object());
  if (welcome.value("protocol", 0) != kProtocol) {
    return startFailed(socket, "handshake",
                       "host channel protocol " + welcome.value("protocol", Json(0)).dump() +
                           " is not supported by this worker (speaks " + std::to_string(kProtocol) + ")");
  }

  const Json sandboxSettings = welcome.value("sandbox", Json::object());
  Json sandboxReport = nullptr;
  if (!sandboxSettings.value("disabled", false)) {
    auto report = mcphost::sandbox::apply(policyFrom(welcome));
    sandboxReport = mcphost::sandbox::toJson(report);
    if (!report.ok) return startFailed(socket, "sandbox", report.fatalError, sandboxReport);
  }

  const std::string library = welcome.value("library", "");
  const std::string expectedSha = welcome.value("sha256", "");
  auto digest = mcphost::sha256FileHex(library);
  if (!digest) return startFailed(socket, "verify", digest.error(), sandboxReport);
  if (*digest != expectedSha) {
    return startFailed(
        socket, "verify",
        library + " has SHA-256 " + *digest + " but its manifest says " + expectedSha +
            "; the library does not match its manifest: reinstall the connector or update sha256",
        sandboxReport);
  }
  auto plugin = mcphost::worker::loadPlugin(library, welcome.value("name", ""));
  if (!plugin) return startFailed(socket, plugin.error().stage, plugin.error().message, sandboxReport);

  mcphost::worker::InstanceSettings settings;
  settings.connectorId = welcome.value("connectorId", "");
  settings.config = welcome.value("config", Json::object());
  settings.declaredSecrets = strings(welcome.value("declaredSecrets", Json::array()));
  if (auto secrets = welcome.find("secrets"); secrets != welcome.end() && secrets->is_object()) {
    for (const auto& [k, v] : secrets->items()) {
      if (v.is_string()) settings.secrets[k] = v.get<std::string>();
    }
  }
  settings.threads = welcome.value("threads", std::size_t{8});
  welcome = nullptr;  // drop the secret copies in the parsed message

  const mcph_connector_api_v1* api = plugin->api;
  const std::string configText = settings.config.dump();
  mcph_connector instance = nullptr;
  int exitCode = 0;
  {
    mcphost::worker::WorkerRuntime runtime(socket, std::move(settings));
    const mcph_status created = api->create(mcphost::worker::WorkerRuntime::hostApi(), runtime.hostHandle(),
                                            mcph_bytes{configText.data(), configText.size()}, &instance);
    if (created != MCPH_OK) {
      const std::string detail = mcphost::worker::WorkerRuntime::takeError();
      return startFailed(socket, "create",
                         "the connector's create() failed with status " + std::to_string(created) +
                             (detail.empty() ? std::string() : ": " + detail),
                         sandboxReport);
    }
    send(socket, "mcphost/ready",
         {{"connector",
           {{"name", api->name},
            {"version", api->version != nullptr ? api->version : ""},
            {"abiMajor", api->abi_major},
            {"abiMinor", api->abi_minor},
            {"concurrent", (api->flags & MCPH_CONNECTOR_CONCURRENT) != 0}}},
          {"sandbox", sandboxReport}});
    exitCode = runtime.serve(api, instance);
  }
  // The runtime's dispatch threads are joined: nothing can call into the instance any more.
  if (api->destroy != nullptr) api->destroy(instance);
  return exitCode;
}
