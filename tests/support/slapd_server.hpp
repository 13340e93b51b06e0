// A throw-away OpenLDAP slapd for integration tests: its own config, database, certificates
// and ports under a temporary directory, started in the foreground as a child process and
// stopped by the destructor. Only the standard library and POSIX, so any test can link it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mcphost::test {

class SlapdServer {
 public:
  // Loads `ldif` (which must contain the suffix entry dc=example,dc=com) with slapadd and
  // starts slapd on ldap://127.0.0.1:<port>/; with `tls`, also on ldaps://127.0.0.1:<port>/
  // with a server certificate (SAN IP:127.0.0.1, DNS:localhost) issued by a fresh test CA.
  // Throws std::runtime_error (with slapd's output) when anything fails.
  SlapdServer(const std::string& tempDir, const std::string& ldif, bool tls = false);
  ~SlapdServer();
  SlapdServer(const SlapdServer&) = delete;
  SlapdServer& operator=(const SlapdServer&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::uint16_t ldapsPort() const { return ldapsPort_; }
  [[nodiscard]] std::string url() const;       // ldap://127.0.0.1:<port>
  [[nodiscard]] std::string ldapsUrl() const;  // ldaps://127.0.0.1:<ldapsPort> (tls only)
  [[nodiscard]] std::string caFile() const;    // PEM of the CA that issued the server cert
  [[nodiscard]] bool running() const { return pid_ > 0; }

  void stop();   // SIGTERM, then SIGKILL after a grace period; idempotent
  void start();  // (re)start on the same ports; waits until slapd accepts connections

  static std::string rootDn();        // cn=admin,dc=example,dc=com
  static std::string rootPassword();  // the rootpw in slapd.conf
  static std::string suffix();        // dc=example,dc=com

 private:
  void writeConfig() const;
  void makeCertificates() const;

  std::string dir_;
  bool tls_;
  std::uint16_t port_ = 0;
  std::uint16_t ldapsPort_ = 0;
  pid_t pid_ = -1;
};

// mkdtemp("/tmp/<prefix>XXXXXX"); the directory is left for the caller to remove (or not).
std::string makeTempDir(const std::string& prefix);

// A self-signed CA unrelated to any SlapdServer, for "wrong trust anchor" tests. Returns the
// path of its PEM certificate inside `dir`.
std::string makeUnrelatedCaFile(const std::string& dir);

// Runs a program (argv[0] is the path) with stdout/stderr appended to `logFile`; returns its
// exit status (or -1 when it could not run or was killed).
int runProgram(const std::vector<std::string>& argv, const std::string& logFile);

}  // namespace mcphost::test
