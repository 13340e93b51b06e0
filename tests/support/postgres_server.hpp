// A throw-away PostgreSQL server for integration tests: a fresh cluster (initdb) in its own
// temporary directory, started in the foreground as a child process on 127.0.0.1 with a free
// port, stopped by the destructor, which also removes the directory.
//
// Authentication is realistic: TCP connections need the password (scram-sha-256), so code
// under test exercises the same path as against a production server; the Unix socket (inside
// the temp dir) trusts local users. initdb and postgres refuse to run as root, so when the
// tests run as root the server runs as the `postgres` user (or `nobody`), owning the temp dir.
// Uses POSIX and libpqxx (exec/query), so a test target links PkgConfig::PQXX.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mcphost::test {

class PostgresServer {
 public:
  // Runs initdb and starts the server; throws std::runtime_error with the server's output
  // when anything fails. $MCPHOST_TEST_PG_BINDIR overrides where initdb and postgres live.
  PostgresServer();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Whether the PostgreSQL server binaries were found (tests may skip without them).
  static bool available();

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] static std::string host() { return "127.0.0.1"; }
  [[nodiscard]] const std::string& directory() const { return dir_; }
  [[nodiscard]] std::string socketDirectory() const { return dir_; }  // -k: .s.PGSQL.<port>
  [[nodiscard]] bool running() const { return pid_ > 0; }

  static std::string superuser();          // postgres
  static std::string superuserPassword();  // set by initdb --pwfile

  // libpq key=value string for TCP on 127.0.0.1:<port>, with the password.
  [[nodiscard]] std::string connectionString(const std::string& database = "postgres",
                                             const std::string& user = superuser(),
                                             const std::string& password = superuserPassword()) const;
  // The same as a postgresql:// URI (password percent-encoding is the caller's business).
  [[nodiscard]] std::string connectionUri(const std::string& database = "postgres",
                                          const std::string& user = superuser(),
                                          const std::string& password = superuserPassword()) const;

  // Administrative helpers, run as the superuser; throw std::runtime_error on failure.
  void createDatabase(const std::string& name, const std::string& owner = superuser()) const;
  void createRole(const std::string& name, const std::string& password) const;  // LOGIN role
  void exec(const std::string& sql, const std::string& database = "postgres") const;
  // Rows of text values; NULL is std::nullopt.
  [[nodiscard]] std::vector<std::vector<std::optional<std::string>>> query(
      const std::string& sql, const std::string& database = "postgres") const;

  [[nodiscard]] std::string log() const;  // the server's stderr so far, for failure messages

  void stop();   // fast shutdown (SIGINT), SIGKILL to the process group after 10 s; idempotent
  void start();  // (re)start on the same port and data; waits until it accepts connections

 private:
  void initCluster();

  std::string dir_;
  std::string bindir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  // The unprivileged account the server runs as when we are root (-1: run as ourselves).
  uid_t uid_ = static_cast<uid_t>(-1);
  gid_t gid_ = static_cast<gid_t>(-1);
};

}  // namespace mcphost::test
