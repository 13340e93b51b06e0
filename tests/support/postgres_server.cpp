#include "support/postgres_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace mcphost::test {

namespace {

std::string errnoText() {
  return std::strerror(errno);  // NOLINT(concurrency-mt-unsafe): test helper, fixed messages
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// libpq conninfo value: bare when it is simple, otherwise '...' with \\ and \' escaped.
std::string quoteValue(const std::string& value) {
  const bool simple = !value.empty() && value.find_first_of(" \t\n'\\=") == std::string::npos;
  if (simple) return value;
  std::string quoted = "'";
  for (const char c : value) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "'";
}

bool executable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

std::string findBindir() {
  if (const char* configured = std::getenv("MCPHOST_TEST_PG_BINDIR"))  // NOLINT(concurrency-mt-unsafe)
    return configured;
  for (int version = 17; version >= 12; --version) {
    std::string candidate = "/usr/lib/postgresql/" + std::to_string(version) + "/bin";
    if (executable(candidate + "/postgres") && executable(candidate + "/initdb")) return candidate;
  }
  return {};
}

// Binding port 0 lets the kernel pick a free port; it stays free for long enough in practice.
std::uint16_t pickFreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + errnoText());
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const std::string error = ok ? std::string() : errnoText();
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot pick a free port: " + error);
  return ntohs(address.sin_port);
}

// Everything the child needs is prepared before fork(): after it only async-signal-safe calls.
struct PreparedArgv {
  explicit PreparedArgv(const std::vector<std::string>& args) : storage(args) {
    for (auto& arg : storage) pointers.push_back(arg.data());
    pointers.push_back(nullptr);
  }
  std::vector<std::string> storage;
  std::vector<char*> pointers;
};

// Starts argv in its own process group (so stop() can kill the postmaster with its backends),
// with stdout/stderr appended to logFile, as uid/gid when those are set (we are root).
pid_t spawn(const std::vector<std::string>& argv, const std::string& logFile, const std::string& workDir,
            uid_t uid, gid_t gid) {
  PreparedArgv prepared(argv);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::setpgid(0, 0);
  const int log = ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int devNull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log < 0 || devNull < 0 || ::dup2(devNull, 0) < 0 || ::dup2(log, 1) < 0 || ::dup2(log, 2) < 0)
    ::_exit(127);
  if (::chdir(workDir.c_str()) != 0) ::_exit(127);
  if (uid != static_cast<uid_t>(-1) &&
      (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0))
    ::_exit(127);
  // After setuid, which clears it: a crashed test run must not leave a server behind.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  ::execv(prepared.pointers[0], prepared.pointers.data());
  ::_exit(127);
}

int waitFor(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

bool PostgresServer::available() {
  return !findBindir().empty();
}

std::string PostgresServer::superuser() {
  return "postgres";
}
std::string PostgresServer::superuserPassword() {
  return "pg-test-secret-42";
}

std::string PostgresServer::connectionString(const std::string& database, const std::string& user,
                                             const std::string& password) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + quoteValue(database) +
         " user=" + quoteValue(user) + " password=" + quoteValue(password) + " connect_timeout=5";
}

std::string PostgresServer::connectionUri(const std::string& database, const std::string& user,
                                          const std::string& password) const {
  return "postgresql://" + user + ":" + password + "@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

PostgresServer::PostgresServer() : bindir_(findBindir()) {
  if (bindir_.empty())
    throw std::runtime_error("PostgreSQL server binaries not found (set MCPHOST_TEST_PG_BINDIR)");
  std::string pattern = "/tmp/mcphost-pg-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("mkdtemp " + pattern + ": " + errnoText());
  dir_ = pattern;
  try {
    if (::geteuid() == 0) {
      const passwd* account = ::getpwnam("postgres");          // NOLINT(concurrency-mt-unsafe)
      if (account == nullptr) account = ::getpwnam("nobody");  // NOLINT(concurrency-mt-unsafe)
      if (account == nullptr)
        throw std::runtime_error("running as root and neither postgres nor nobody exists");
      uid_ = account->pw_uid;
      gid_ = account->pw_gid;
      if (::chown(dir_.c_str(), uid_, gid_) != 0)
        throw std::runtime_error("chown " + dir_ + ": " + errnoText());
    }
    initCluster();
    port_ = pickFreePort();
    start();
  } catch (...) {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    throw;
  }
}

PostgresServer::~PostgresServer() {
  stop();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string PostgresServer::log() const {
  return readFile(dir_ + "/server.log");
}

void PostgresServer::initCluster() {
  const std::string pwfile = dir_ + "/pwfile";
  {
    std::ofstream out(pwfile, std::ios::trunc);
    out << superuserPassword() << "\n";
    if (!out) throw std::runtime_error("cannot write " + pwfile);
  }
  if (uid_ != static_cast<uid_t>(-1) && ::chown(pwfile.c_str(), uid_, gid_) != 0)
    throw std::runtime_error("chown " + pwfile + ": " + errnoText());
  const std::string logFile = dir_ + "/initdb.log";
  // --no-sync and the C locale: a test cluster needs neither durability nor collation rules.
  const pid_t pid = spawn({bindir_ + "/initdb", "-D", dir_ + "/data", "-U", superuser(), "--pwfile=" + pwfile,
                           "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                           "--no-sync", "--no-instructions"},
                          logFile, dir_, uid_, gid_);
  if (pid < 0) throw std::runtime_error("fork: " + errnoText());
  const int status = waitFor(pid);
  ::unlink(pwfile.c_str());
  if (status != 0) throw std::runtime_error("initdb failed: " + readFile(logFile));
}

void PostgresServer::start() {
  if (pid_ > 0) return;
  const std::string logFile = dir_ + "/server.log";
  // Speed over durability (fsync off, no full-page writes) and a small footprint, since
  // several test binaries may run servers in parallel on a small machine.
  pid_ = spawn({bindir_ + "/postgres",
                "-D",
                dir_ + "/data",
                "-p",
                std::to_string(port_),
                "-k",
                dir_,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "max_connections=40",
                "-c",
                "huge_pages=off",
                "-c",
                "log_min_messages=warning"},
               logFile, dir_, uid_, gid_);
  if (pid_ < 0) throw std::runtime_error("fork: " + errnoText());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string lastError;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("postgres exited during start-up: " + log());
    }
    try {
      // Ready means a password login over TCP works, not merely that the port listens.
      const pqxx::connection probe(connectionString() + " connect_timeout=2");
      return;
    } catch (const std::exception& error) {
      lastError = error.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop();
  throw std::runtime_error("postgres did not accept connections within 30 s (" + lastError + "): " + log());
}

void PostgresServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGINT);  // fast shutdown: disconnects clients, no waiting for them
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Before reaping, the group id cannot have been reused: this reaches only our server.
  ::kill(-pid_, SIGKILL);
  waitFor(pid_);
  pid_ = -1;
}

void PostgresServer::exec(const std::string& sql, const std::string& database) const {
  try {
    pqxx::connection connection(connectionString(database));
    pqxx::nontransaction transaction(connection);  // CREATE DATABASE cannot run in a transaction
    transaction.exec(sql);
  } catch (const std::exception& error) {
    throw std::runtime_error("exec '" + sql + "' on " + database + ": " + error.what());
  }
}

std::vector<std::vector<std::optional<std::string>>> PostgresServer::query(
    const std::string& sql, const std::string& database) const {
  try {
    pqxx::connection connection(connectionString(database));
    pqxx::nontransaction transaction(connection);
    const pqxx::result result = transaction.exec(sql);
    std::vector<std::vector<std::optional<std::string>>> rows;
    for (const auto& row : result) {
      auto& values = rows.emplace_back();
      for (const auto& field : row)
        values.push_back(field.is_null() ? std::nullopt : std::optional<std::string>(field.c_str()));
    }
    return rows;
  } catch (const std::exception& error) {
    throw std::runtime_error("query '" + sql + "' on " + database + ": " + error.what());
  }
}

void PostgresServer::createDatabase(const std::string& name, const std::string& owner) const {
  exec("CREATE DATABASE \"" + name + "\" OWNER \"" + owner + "\"");
}

void PostgresServer::createRole(const std::string& name, const std::string& password) const {
  try {
    pqxx::connection connection(connectionString());
    pqxx::nontransaction transaction(connection);
    transaction.exec("CREATE ROLE \"" + name + "\" LOGIN PASSWORD " + transaction.quote(password));
  } catch (const std::exception& error) {
    throw std::runtime_error("create role " + name + ": " + error.what());
  }
}

}  // namespace mcphost::test
