#include "support/slapd_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace mcphost::test {

namespace {

constexpr const char* kSlapd = "/usr/sbin/slapd";
constexpr const char* kSlapadd = "/usr/sbin/slapadd";
constexpr const char* kOpenssl = "/usr/bin/openssl";

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

// A socket closed without shutdown; RAII so every early return closes it.
class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  [[nodiscard]] int fd() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Binding port 0 lets the kernel pick a free port; it stays free for long enough in practice.
std::uint16_t pickFreePort() {
  const Socket socket;
  sockaddr_in address = loopback(0);
  socklen_t length = sizeof(address);
  if (socket.fd() < 0 || ::bind(socket.fd(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(socket.fd(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
    throw std::runtime_error(std::string("cannot pick a free port: ") + std::strerror(errno));
  return ntohs(address.sin_port);
}

bool connects(const Socket& socket, std::uint16_t port) {
  sockaddr_in address = loopback(port);
  return socket.fd() >= 0 &&
         ::connect(socket.fd(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
}

// Ready means slapd answers an LDAP request, not merely that its socket listens (the listener
// exists before the database is open). Sends an anonymous BindRequest and waits for a reply.
bool answersLdap(std::uint16_t port) {
  const Socket socket;
  if (!connects(socket, port)) return false;
  constexpr std::array<unsigned char, 14> kAnonymousBind = {0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07,
                                                            0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00};
  if (::send(socket.fd(), kAnonymousBind.data(), kAnonymousBind.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(kAnonymousBind.size()))
    return false;
  pollfd watch{socket.fd(), POLLIN, 0};
  if (::poll(&watch, 1, 500) != 1) return false;
  unsigned char first = 0;
  return ::recv(socket.fd(), &first, 1, 0) == 1 && first == 0x30;  // an LDAPMessage SEQUENCE
}

bool listens(std::uint16_t port) {
  const Socket socket;
  return connects(socket, port);
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

pid_t spawn(const std::vector<std::string>& argv, const std::string& logFile) {
  PreparedArgv prepared(argv);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Child. A crashed test run must not leave a slapd behind holding the port.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  const int log = ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const int devNull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log < 0 || devNull < 0 || ::dup2(devNull, 0) < 0 || ::dup2(log, 1) < 0 || ::dup2(log, 2) < 0)
    ::_exit(127);
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

int runProgram(const std::vector<std::string>& argv, const std::string& logFile) {
  const pid_t pid = spawn(argv, logFile);
  if (pid < 0) return -1;
  return waitFor(pid);
}

std::string makeTempDir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
  return pattern;
}

std::string makeUnrelatedCaFile(const std::string& dir) {
  std::string pem = dir + "/unrelated-ca.pem";
  const int status = runProgram(
      {kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", dir + "/unrelated-ca.key", "-out", pem, "-days", "2", "-subj", "/CN=unrelated test CA"},
      dir + "/openssl.log");
  if (status != 0) throw std::runtime_error("openssl failed: " + readFile(dir + "/openssl.log"));
  return pem;
}

std::string SlapdServer::rootDn() {
  return "cn=admin,dc=example,dc=com";
}
std::string SlapdServer::rootPassword() {
  return "root-secret";
}
std::string SlapdServer::suffix() {
  return "dc=example,dc=com";
}

std::string SlapdServer::url() const {
  return "ldap://127.0.0.1:" + std::to_string(port_);
}
std::string SlapdServer::ldapsUrl() const {
  return "ldaps://127.0.0.1:" + std::to_string(ldapsPort_);
}
std::string SlapdServer::caFile() const {
  return dir_ + "/ca.pem";
}

SlapdServer::SlapdServer(const std::string& tempDir, const std::string& ldif, bool tls)
    : dir_(tempDir), tls_(tls) {
  if (tls_) makeCertificates();
  writeConfig();
  ::mkdir((dir_ + "/db").c_str(), 0700);
  writeFile(dir_ + "/data.ldif", ldif);
  const std::string log = dir_ + "/slapadd.log";
  if (runProgram({kSlapadd, "-f", dir_ + "/slapd.conf", "-l", dir_ + "/data.ldif"}, log) != 0)
    throw std::runtime_error("slapadd failed: " + readFile(log));
  port_ = pickFreePort();
  if (tls_) {
    do {
      ldapsPort_ = pickFreePort();
    } while (ldapsPort_ == port_);
  }
  start();
}

SlapdServer::~SlapdServer() {
  stop();
}

void SlapdServer::makeCertificates() const {
  const std::string log = dir_ + "/openssl.log";
  const std::vector<std::string> ecKey = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                          "-nodes"};
  std::vector<std::string> makeCa = {kOpenssl, "req", "-x509"};
  makeCa.insert(makeCa.end(), ecKey.begin(), ecKey.end());
  makeCa.insert(makeCa.end(), {"-keyout", dir_ + "/ca.key", "-out", dir_ + "/ca.pem", "-days", "2", "-subj",
                               "/CN=mcphost test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                               "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  std::vector<std::string> makeRequest = {kOpenssl, "req"};
  makeRequest.insert(makeRequest.end(), ecKey.begin(), ecKey.end());
  makeRequest.insert(makeRequest.end(), {"-keyout", dir_ + "/server.key", "-out", dir_ + "/server.csr",
                                         "-subj", "/CN=127.0.0.1"});
  writeFile(dir_ + "/server-ext.cnf",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  std::vector<std::string> sign = {kOpenssl,
                                   "x509",
                                   "-req",
                                   "-in",
                                   dir_ + "/server.csr",
                                   "-CA",
                                   dir_ + "/ca.pem",
                                   "-CAkey",
                                   dir_ + "/ca.key",
                                   "-CAcreateserial",
                                   "-out",
                                   dir_ + "/server.pem",
                                   "-days",
                                   "2",
                                   "-extfile",
                                   dir_ + "/server-ext.cnf"};
  for (const std::vector<std::string>* step : {&makeCa, &makeRequest, &sign})
    if (runProgram(*step, log) != 0) throw std::runtime_error("openssl failed: " + readFile(log));
}

void SlapdServer::writeConfig() const {
  std::ostringstream config;
  for (const char* schema : {"core", "cosine", "inetorgperson", "nis"})
    config << "include /etc/ldap/schema/" << schema << ".schema\n";
  // memberof is loaded so test entries may carry memberOf values (slapadd takes them as given).
  config << "modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload memberof\n"
         << "pidfile " << dir_ << "/slapd.pid\nargsfile " << dir_ << "/slapd.args\n";
  if (tls_) {
    config << "TLSCACertificateFile " << dir_ << "/ca.pem\nTLSCertificateFile " << dir_
           << "/server.pem\nTLSCertificateKeyFile " << dir_ << "/server.key\n";
  }
  config << "database mdb\nsuffix \"" << suffix() << "\"\nrootdn \"" << rootDn() << "\"\nrootpw "
         << rootPassword() << "\ndirectory " << dir_
         << "/db\n"
         // Realistic ACLs: passwords are usable for binds only, everything else is readable.
         << "access to attrs=userPassword\n  by self write\n  by anonymous auth\n  by * none\n"
         << "access to *\n  by * read\n"
         << "overlay memberof\n";
  writeFile(dir_ + "/slapd.conf", config.str());
}

void SlapdServer::start() {
  if (pid_ > 0) return;
  std::string listeners = url() + "/";
  if (tls_) listeners += " " + ldapsUrl() + "/";
  const std::string log = dir_ + "/slapd.log";
  // -d 0 keeps slapd in the foreground (our child) without debug output; no -u/-g: it runs as
  // the current user, who owns everything under dir_.
  pid_ = spawn({kSlapd, "-f", dir_ + "/slapd.conf", "-h", listeners, "-d", "0"}, log);
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("slapd exited during start-up: " + readFile(log));
    }
    if (answersLdap(port_) && (!tls_ || listens(ldapsPort_))) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop();
  throw std::runtime_error("slapd did not answer within 20 s: " + readFile(log));
}

void SlapdServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  waitFor(pid_);
  pid_ = -1;
}

}  // namespace mcphost::test
