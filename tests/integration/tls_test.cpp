// TLS on the listener, checked with curl against a certificate made by OpenSSL at test time.
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <fstream>
#include <thread>

#include "host_process.hpp"

using namespace mcphost::test;

namespace {

struct Certificates {
  std::string dir = makeTempDir();
  std::string cert = dir + "/cert.pem";
  std::string key = dir + "/key.pem";
  std::string otherKey = dir + "/other.pem";
  Certificates() {
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + key +
        " -out " + cert +
        " -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null && "
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out " +
        otherKey + " 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  ~Certificates() { std::system(("rm -rf " + dir).c_str()); }
  [[nodiscard]] std::string yaml(const std::string& keyFile, const std::string& minVersion = "1.2") const {
    return "  tls:\n    certificate_file: " + cert + "\n    private_key_file: " + keyFile +
           "\n    min_version: \"" + minVersion + "\"\n";
  }
};

// Runs curl and returns its stdout (first line) or "" when it failed.
std::string curl(const std::vector<std::string>& args, const std::string& dir) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-s", "--max-time", "10"};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p(argv, dir + "/curl.err", true);
  auto line = p.readLine();
  const int code = p.wait();
  return code == 0 && line ? *line : std::string();
}

}  // namespace

TEST_CASE("TLS listener serves MCP and refuses plain text and old protocol versions") {
  Certificates certs;
  HostProcess host(certs.yaml(certs.key, "1.3"), "", /*tls=*/true);
  const std::string base = "https://127.0.0.1:" + std::to_string(host.port());
  CHECK(curl({"--cacert", certs.cert, base + "/healthz"}, certs.dir) == "ok");
  const std::string init =
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}})";
  auto body = curl({"--cacert", certs.cert, "-H", "Content-Type: application/json", "-H",
                    "Accept: application/json, text/event-stream", "-d", init, base + "/mcp"},
                   certs.dir);
  CHECK(Json::parse(body, nullptr, false)["result"]["protocolVersion"] == "2025-11-25");
  CHECK(curl({"--cacert", certs.cert, "--tls-max", "1.2", base + "/healthz"}, certs.dir).empty());
  CHECK(curl({"http://127.0.0.1:" + std::to_string(host.port()) + "/healthz"}, certs.dir).empty());
  CHECK(curl({"--cacert", certs.cert, base + "/healthz"}, certs.dir) == "ok");  // still serving
}

TEST_CASE("a key that does not match the certificate is a clear start-up error") {
  Certificates certs;
  auto dir = makeTempDir();
  const std::string config = dir + "/bad.yaml";
  std::ofstream(config) << "server:\n  listen: 127.0.0.1:" << freePort() << "\n"
                        << certs.yaml(certs.otherKey)
                        << "connectors:\n  - {id: c, connector: conformance, prefix: false}\n";
  Subprocess p({MCPHOST_BINARY, "serve", "--config", config}, dir + "/err.txt", false);
  CHECK(p.wait() == 2);
  std::ifstream err(dir + "/err.txt");
  std::string text((std::istreambuf_iterator<char>(err)), {});
  CHECK(text.find("does not match the certificate") != std::string::npos);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a TLS handshake trickled byte by byte is cut off by the read timeout") {
  Certificates certs;
  HostProcess host("  request_read_timeout: 1s\n" + certs.yaml(certs.key), "", /*tls=*/true);
  const int fd = connectLoopback(host.port());
  // A ClientHello record header, then one byte every 200 ms: never a complete handshake.
  const std::string hello =
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + std::string(64, 'a');
  bool closed = false;
  const auto started = std::chrono::steady_clock::now();
  for (std::size_t i = 0;
       i < hello.size() && std::chrono::steady_clock::now() - started < std::chrono::seconds(6); ++i) {
    if (::send(fd, hello.data() + i, 1, MSG_NOSIGNAL) <= 0) {
      closed = true;
      break;
    }
    char buf[16];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      closed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ::close(fd);
  CHECK(closed);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(4));
}
