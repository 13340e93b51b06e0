// `mcphost sandbox-check`: applies a policy to a throw-away child process, tries what the
// sandbox must prevent, and reports each attempt. sandbox_linux.cpp applies the sandbox.
#ifdef __linux__

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>

#include "sandbox/landlock.hpp"
#include "sandbox/sandbox.hpp"

namespace mcphost::sandbox {

using detail::errnoText;
using detail::UniqueFd;

// ---- probe --------------------------------------------------------------------------------------
namespace {

Measure attempt(const std::string& what, bool blocked, int err,
                const std::string& notBlocked = "NOT blocked") {
  return {"probe: " + what, blocked, blocked ? "blocked: " + errnoText(err) : notBlocked};
}

Measure allowedByPolicy(const std::string& what, const std::string& why) {
  return {"probe: " + what, false, "not restricted: " + why};
}

bool isUnder(const std::string& path, const std::string& root) {
  return root == "/" || path == root || path.rfind(root + "/", 0) == 0;
}

bool isDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Creates and removes a file in dir; returns 0 or errno.
int tryCreate(const std::string& dir) {
  std::string file = dir + "/.mcphost-sandbox-probe-" + std::to_string(::getpid());
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return errno;
  ::unlink(file.c_str());
  return 0;
}

// Each attempt is chosen so that, if it is NOT blocked, nothing outside this child changes: a bind
// mount of a missing source, exec of a missing file, PTRACE_TRACEME rather than attaching.
void runProbes(const Policy& p, Report& r) {
  auto& out = r.measures;
  // errno is saved right after each call: argument evaluation order is unspecified.
  int fd = ::open("/etc/shadow", O_RDONLY | O_CLOEXEC);
  int err = errno;
  out.push_back(attempt("read /etc/shadow", fd < 0, err));
  if (fd >= 0) ::close(fd);

  for (const char* dir : {"/tmp", "/var/tmp", "/dev/shm", "/"}) {
    bool declared = std::any_of(p.readWritePaths.begin(), p.readWritePaths.end(),
                                [&](const std::string& rw) { return isUnder(dir, rw); });
    if (declared || !isDir(dir)) continue;
    err = tryCreate(dir);
    out.push_back(attempt(std::string("create a file in ") + dir, err != 0, err));
    break;
  }
  for (const std::string& rw : p.readWritePaths) {
    if (!isDir(rw)) continue;
    err = tryCreate(rw);
    out.push_back(
        {"probe: create a file in " + rw, err == 0,
         err == 0 ? "allowed as declared" : "FAILED although declared writable: " + errnoText(err)});
    break;
  }

  if (p.networkNone) {
    UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    err = errno;
    if (sock) {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(22);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bool failed = ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0;
      err = errno;
      // ECONNREFUSED means a live loopback answered: the network is there.
      bool blocked = failed && err != ECONNREFUSED;
      out.push_back(
          attempt("connect 127.0.0.1:22", blocked, err,
                  failed ? "NOT blocked (loopback answered: " + errnoText(err) + ")" : "NOT blocked"));
    } else {
      out.push_back(attempt("connect 127.0.0.1:22", true, err));
    }
  } else {
    out.push_back(allowedByPolicy("connect 127.0.0.1:22", "policy allows network"));
  }

  bool killed = ::kill(::getppid(), 0) != 0;
  err = errno;
  out.push_back(attempt("signal the parent (kill 0)", killed, err));

  if (!p.allowProcesses) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    err = errno;
    if (pid > 0) ::waitpid(pid, nullptr, 0);
    out.push_back(attempt("fork", pid < 0, err));
    char* argv[] = {nullptr};
    ::execve("/nonexistent-mcphost-probe", argv, argv);
    err = errno;  // ENOENT: the kernel looked for the file, i.e. execve was not filtered
    out.push_back(attempt("execve", err == EPERM, err, "NOT blocked (" + errnoText(err) + ")"));
  } else {
    out.push_back(allowedByPolicy("fork/execve", "policy allows processes"));
  }

  bool mounted = ::mount("/nonexistent-mcphost-probe", "/", nullptr, MS_BIND, nullptr) == 0;
  err = errno;  // EPERM: filtered or no CAP_SYS_ADMIN; ENOENT: the kernel got as far as the source
  out.push_back(attempt("mount", !mounted && err == EPERM, err, "NOT blocked (" + errnoText(err) + ")"));

  bool unshared = ::unshare(CLONE_NEWUSER) == 0;
  err = errno;
  out.push_back(attempt("unshare(CLONE_NEWUSER)", !unshared, err));

  if (p.addressSpaceBytes != 0) {
    void* big = std::malloc(static_cast<std::size_t>(p.addressSpaceBytes));
    out.push_back(
        attempt("malloc(" + std::to_string(p.addressSpaceBytes) + ") at RLIMIT_AS", big == nullptr, ENOMEM));
    std::free(big);
  }

  // Last: if it succeeds our parent is our tracer until we exit a moment later.
  bool traced = ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0;
  err = errno;
  out.push_back(attempt("ptrace(PTRACE_TRACEME)", !traced, err));
}

[[noreturn]] void probeChild(Policy p, int out, pid_t parent) {
  try {
    p.keepFds.push_back(out);
    p.expectedParent = parent;
    Report r = apply(p);
    if (r.ok) runProbes(p, r);
    std::string data = toJson(r).dump();
    for (std::size_t done = 0; done < data.size();) {
      ssize_t n = ::write(out, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ::_exit(2);
      done += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  } catch (...) {
    ::_exit(3);
  }
}

}  // namespace

Report probe(const Policy& policy) {
  Report report;
  auto fail = [&](const std::string& why) {
    report.ok = false;
    report.fatalError = "probe: " + why;
    return report;
  };
  try {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return fail("pipe2: " + errnoText(errno));
    UniqueFd readEnd(fds[0]), writeEnd(fds[1]);
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child < 0) return fail("fork: " + errnoText(errno));
    if (child == 0) {
      readEnd.reset();
      probeChild(policy, writeEnd.release(), parent);
    }
    writeEnd.reset();
    std::string data;
    char buf[4096];
    int waitedMs = 0;
    for (; waitedMs < 30000;) {  // the child only runs quick, non-blocking attempts
      pollfd pfd{readEnd.get(), POLLIN, 0};
      int ready = ::poll(&pfd, 1, 1000);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) break;
      if (ready == 0) {
        waitedMs += 1000;
        continue;
      }
      ssize_t n = ::read(readEnd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      data.append(buf, static_cast<std::size_t>(n));
    }
    if (waitedMs >= 30000) ::kill(child, SIGKILL);  // hung: the report is incomplete anyway
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (std::string dir = cgroupDirFor(policy, child); !dir.empty()) ::rmdir(dir.c_str());
    nlohmann::json j = nlohmann::json::parse(data, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return fail("child sent no report (wait status " + std::to_string(status) + ")");
    }
    for (const auto& m : j.value("measures", nlohmann::json::array())) {
      report.measures.push_back({m.value("name", ""), m.value("enforced", false), m.value("detail", "")});
    }
    report.ok = j.value("ok", false);
    report.fatalError = j.value("fatalError", "");
    return report;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace mcphost::sandbox

#endif  // __linux__
