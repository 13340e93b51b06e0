// Linux sandbox orchestration for mcphost-worker (see sandbox.hpp for the order and the contract).
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
#include "sandbox/seccomp_filter.hpp"

extern char** environ;

namespace mcphost::sandbox {

// The dynamic loader, libc, libstdc++ and dlopen()'s search list; message catalogues and time
// zones; the character devices libraries open by name (getrandom() needs none); /proc/self, which
// Landlock resolves at apply() time to the worker's own /proc/<pid> (maps, fd, status).
std::vector<std::string> defaultReadOnlyPaths() {
  return {"/lib",
          "/lib64",
          "/lib32",
          "/usr/lib",
          "/usr/lib64",
          "/usr/lib32",
          "/etc/ld.so.cache",
          "/etc/ld.so.conf",
          "/etc/ld.so.conf.d",
          "/usr/share/locale",
          "/usr/share/zoneinfo",
          "/etc/localtime",
          "/dev/null",
          "/dev/zero",
          "/dev/urandom",
          "/proc/self"};
}

std::vector<std::string> defaultReadWritePaths() {
  return {"/dev/null"};
}

namespace {

using detail::errnoText;
using detail::UniqueFd;

void add(Report& r, std::string name, bool enforced, std::string detail) {
  r.measures.push_back({std::move(name), enforced, std::move(detail)});
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Returns 0 or errno. cgroup and /proc control files report errors from write(), not open().
int writeFile(const std::string& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return errno;
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) return errno;
  return 0;
}

// ---- parent death -------------------------------------------------------------------------------
// PR_SET_PDEATHSIG fires when the parent THREAD exits, and commit_creds() clears it on any uid/gid
// change, so it is armed again after the uid drop. Checking getppid() afterwards closes the race
// where the parent died before the prctl (we were reparented and would never get the signal).
bool armParentDeath(const Policy& p, std::string& detail) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    detail = "prctl(PR_SET_PDEATHSIG): " + errnoText(errno);
    return false;
  }
  if (p.expectedParent != 0 && ::getppid() != p.expectedParent) ::_exit(kParentGoneExitCode);
  detail = "SIGKILL when the parent exits" +
           (p.expectedParent != 0 ? " (parent pid " + std::to_string(p.expectedParent) + " checked)"
                                  : std::string(" (no expectedParent: race unchecked)"));
  return true;
}

// ---- file descriptors ---------------------------------------------------------------------------
bool closeRange(unsigned lo, unsigned hi) {
  if (::syscall(SYS_close_range, lo, hi, 0) == 0) return true;
  long max = ::sysconf(_SC_OPEN_MAX);  // pre-5.9 kernel: loop up to the fd limit
  for (long fd = lo; fd <= static_cast<long>(hi) && fd < max; ++fd) ::close(static_cast<int>(fd));
  return false;
}

Measure closeFds(const std::vector<int>& keepFds) {
  std::vector<int> keep;
  for (int fd : keepFds) {
    if (fd >= 0) keep.push_back(fd);
  }
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  unsigned lo = 0;
  bool usedCloseRange = true;
  std::string kept;
  for (int fd : keep) {
    if (static_cast<unsigned>(fd) > lo) usedCloseRange &= closeRange(lo, static_cast<unsigned>(fd) - 1);
    lo = static_cast<unsigned>(fd) + 1;
    kept += (kept.empty() ? "" : ",") + std::to_string(fd);
  }
  usedCloseRange &= closeRange(lo, ~0U);
  // 0..2 must stay occupied, or the vendor's next open() would silently become its stdout/stderr.
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      int nul = ::open("/dev/null", O_RDWR);
      if (nul >= 0 && nul != fd) {
        ::dup2(nul, fd);
        ::close(nul);
      }
    }
  }
  return {"fds", true,
          "kept {" + kept + "}, closed all others (" + (usedCloseRange ? "close_range" : "close loop") + ")"};
}

// ---- environment --------------------------------------------------------------------------------
Measure cleanEnv(const std::vector<std::string>& keepEnv) {
  std::vector<std::pair<std::string, std::string>> kept;
  for (const std::string& name : keepEnv) {
    if (const char* value = ::getenv(name.c_str())) kept.emplace_back(name, value);
  }
  std::size_t before = 0;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) ++before;
  ::clearenv();
  std::string names;  // names only: values may be secrets
  for (const auto& [name, value] : kept) {
    ::setenv(name.c_str(), value.c_str(), 1);
    names += (names.empty() ? ": " : ", ") + name;
  }
  return {"env", true,
          "kept " + std::to_string(kept.size()) + " of " + std::to_string(before) + " variables" + names};
}

// ---- cgroup v2 ----------------------------------------------------------------------------------
// The process's own cgroup v2 directory: "0::<path>" from /proc/self/cgroup under the cgroup2
// mount point from /proc/self/mountinfo (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts).
std::string ownCgroupDir() {
  std::istringstream cg(readFile("/proc/self/cgroup"));
  std::string line, path;
  while (std::getline(cg, line)) {
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  }
  if (path.empty()) return {};
  std::istringstream mi(readFile("/proc/self/mountinfo"));
  while (std::getline(mi, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mountPoint, field;
    fields >> id >> parent >> dev >> root >> mountPoint;
    while (fields >> field && field != "-") {
    }
    std::string fsType;
    fields >> fsType;
    if (fsType != "cgroup2") continue;
    if (root == "/") return mountPoint + (path == "/" ? "" : path);
    if (path.rfind(root, 0) == 0) return mountPoint + path.substr(root.size());
  }
  return {};
}

std::string sanitize(const std::string& id) {
  std::string out;
  for (char c : id.substr(0, 64)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.';
    out += ok ? c : '_';  // the id comes from configuration: no '/' or ".." into the path
  }
  return out;
}

std::string cgroupDirIn(const std::string& parent, const Policy& p, pid_t pid) {
  return parent + "/mcphost-" + sanitize(p.connectorId) + "-" + std::to_string(pid);
}

bool hasWord(const std::string& list, const std::string& word) {
  std::istringstream in(list);
  std::string w;
  while (in >> w) {
    if (w == word) return true;
  }
  return false;
}

Measure applyCgroup(const Policy& p) {
  Measure m{"cgroup", false, {}};
  std::string parent = p.cgroupParent.empty() ? ownCgroupDir() : p.cgroupParent;
  if (parent.empty()) {
    m.detail = "no cgroup v2 hierarchy (no 0:: line in /proc/self/cgroup or cgroup2 not mounted)";
    return m;
  }
  std::string dir = cgroupDirIn(parent, p, ::getpid());
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    m.detail = "cannot create " + dir + ": " + errnoText(errno);
    return m;
  }
  std::string notes;
  bool all = true;
  auto limit = [&](const std::string& controller, const std::string& file, std::uint64_t value) {
    if (value == 0) return;
    if (!hasWord(readFile(dir + "/cgroup.controllers"), controller)) {
      // Enabling fails with EBUSY if the parent has member processes (no internal processes rule):
      // the host should run in a leaf of its own and pass the subtree root as cgroupParent.
      int err = writeFile(parent + "/cgroup.subtree_control", "+" + controller);
      if (err != 0) {
        all = false;
        notes += "; " + controller + " controller not available (" +
                 (hasWord(readFile(parent + "/cgroup.controllers"), controller)
                      ? "enabling in " + parent + "/cgroup.subtree_control: " + errnoText(err)
                      : "not delegated to " + parent) +
                 ")";
        return;
      }
    }
    int err = writeFile(dir + "/" + file, std::to_string(value));
    all = all && err == 0;
    notes += "; " + file + (err == 0 ? "=" + std::to_string(value) : " not set: " + errnoText(err));
  };
  limit("memory", "memory.max", p.memoryBytes);
  limit("pids", "pids.max", p.pidsMax);
  // Limits first, then move in, so the worker never runs in the cgroup unlimited.
  if (int err = writeFile(dir + "/cgroup.procs", std::to_string(::getpid())); err != 0) {
    ::rmdir(dir.c_str());
    m.detail = "cannot join " + dir + ": " + errnoText(err) + notes;
    return m;
  }
  m.enforced = all;
  m.detail = "joined " + dir + notes;
  return m;
}

// ---- rlimits ------------------------------------------------------------------------------------
Measure applyRlimits(const Policy& p) {
  std::string detail;
  bool all = true;
  auto set = [&](int resource, const char* name, std::uint64_t value) {
    if (value == 0) return;
    // Hard = soft, so vendor code cannot raise it again. CPU: SIGXCPU at soft, SIGKILL 1 s later.
    rlimit rl{static_cast<rlim_t>(value), static_cast<rlim_t>(resource == RLIMIT_CPU ? value + 1 : value)};
    std::string note;
    if (::setrlimit(resource, &rl) != 0) {
      int err = errno;
      rlimit cur{};
      ::getrlimit(resource, &cur);
      if (err == EPERM && cur.rlim_max != RLIM_INFINITY && rl.rlim_max > cur.rlim_max) {
        rl.rlim_cur = std::min(rl.rlim_cur, cur.rlim_max);  // unprivileged: cannot raise the hard limit
        rl.rlim_max = cur.rlim_max;
        note = ::setrlimit(resource, &rl) == 0 ? " (clamped to hard limit)"
                                               : " (failed: " + errnoText(errno) + ")";
      } else {
        note = " (failed: " + errnoText(err) + ")";
      }
      all = false;
    }
    detail += (detail.empty() ? "" : " ") + std::string(name) + "=" + std::to_string(rl.rlim_cur) + note;
  };
  set(RLIMIT_AS, "AS", p.addressSpaceBytes);
  set(RLIMIT_NOFILE, "NOFILE", p.maxOpenFiles);
  set(RLIMIT_CPU, "CPU", p.cpuSeconds);
  set(RLIMIT_NPROC, "NPROC", p.maxProcesses);
  return {"rlimits", all, detail.empty() ? "none requested" : detail};
}

// ---- network namespace --------------------------------------------------------------------------
// As root: a plain network namespace. Unprivileged: a user namespace is what makes CLONE_NEWNET
// possible; uid/gid map to themselves so files keep their owners. Root never takes the user
// namespace path: a later setuid() inside it would need the target uid mapped, and root that cannot
// unshare (a container without CAP_SYS_ADMIN) falls back to the seccomp socket deny instead.
Measure applyNetns(bool root) {
  if (::unshare(CLONE_NEWNET) == 0) return {"netns", true, "private network namespace, no interface up"};
  int err = errno;
  std::string why = "unshare(CLONE_NEWNET): " + errnoText(err);
  if (err == EPERM && !root) {
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) {
      // setgroups must be denied before an unprivileged gid_map write is accepted.
      int e1 = writeFile("/proc/self/setgroups", "deny");
      int e2 = writeFile("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1");
      int e3 = writeFile("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1");
      std::string maps = (e1 | e2 | e3) == 0 ? "uid/gid mapped to themselves" : "id maps not written";
      return {"netns", true, "private user + network namespace, no interface up (" + maps + ")"};
    }
    why += "; unshare(CLONE_NEWUSER|CLONE_NEWNET): " + errnoText(errno);
  }
  return {"netns", false, why + " (falling back to seccomp socket deny)"};
}

// ---- uid/gid ------------------------------------------------------------------------------------
// Returns false on a fatal failure (root asked to drop and could not).
bool dropUid(const Policy& p, Report& r) {
  if (::geteuid() != 0) {
    if (p.runAsUid && *p.runAsUid != ::getuid()) {
      add(r, "uid", false,
          "not root: cannot switch to uid " + std::to_string(*p.runAsUid) + ", staying uid " +
              std::to_string(::getuid()));
    } else {
      add(r, "uid", true, "unprivileged uid " + std::to_string(::getuid()));
    }
    return true;
  }
  if (!p.runAsUid || *p.runAsUid == 0) {
    add(r, "uid", false, "running as root: no unprivileged runAsUid given");
    return true;
  }
  const uid_t uid = *p.runAsUid;
  const gid_t gid = p.runAsGid.value_or(*p.runAsUid);
  auto fatal = [&](const std::string& what) {
    r.ok = false;
    r.fatalError = "uid drop to " + std::to_string(uid) + ":" + std::to_string(gid) + " failed: " + what;
    add(r, "uid", false, r.fatalError);
    return false;
  };
  // Groups first, then gid, then uid: after setuid we could no longer change the other two.
  if (::setgroups(0, nullptr) != 0) return fatal("setgroups: " + errnoText(errno));
  if (::setresgid(gid, gid, gid) != 0) return fatal("setresgid: " + errnoText(errno));
  if (::setresuid(uid, uid, uid) != 0) return fatal("setresuid: " + errnoText(errno));
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  if (::getresuid(&ru, &eu, &su) != 0 || ru != uid || eu != uid || su != uid) return fatal("uid not set");
  if (::getresgid(&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid) return fatal("gid not set");
  if (::getgroups(0, nullptr) != 0) return fatal("supplementary groups remain");
  if (::setuid(0) == 0 || ::setgid(0) == 0) return fatal("root could be regained");
  add(r, "uid", true,
      "uid " + std::to_string(uid) + " gid " + std::to_string(gid) +
          " (real, effective, saved), no supplementary groups; setuid(0) fails");
  return true;
}

Measure dropCaps() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  bool had = false;
  if (::syscall(SYS_capget, &header, data) == 0) {
    for (const auto& d : data) had = had || d.effective != 0 || d.permitted != 0 || d.inheritable != 0;
  }
  __user_cap_data_struct none[2] = {};
  if (::syscall(SYS_capset, &header, none) != 0)
    return {"capabilities", false, "capset: " + errnoText(errno)};
  return {"capabilities", true,
          had ? "effective, permitted, inheritable and ambient sets cleared" : "none held (ambient cleared)"};
}

int threadCount() {
  std::istringstream in(readFile("/proc/self/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return static_cast<int>(std::strtol(line.c_str() + 8, nullptr, 10));
  }
  return 1;
}

void applySteps(const Policy& p, Report& r) {
  std::string pdeath;
  bool pdeathOk = armParentDeath(p, pdeath);
  std::size_t pdeathIndex = r.measures.size();
  add(r, "pdeathsig", pdeathOk, pdeath);
  r.measures.push_back(closeFds(p.keepFds));
  r.measures.push_back(cleanEnv(p.keepEnv));
  if (p.memoryBytes != 0 || p.pidsMax != 0) r.measures.push_back(applyCgroup(p));
  r.measures.push_back(applyRlimits(p));
  const bool root = ::geteuid() == 0;
  bool netnsOk = false;
  if (p.networkNone) {
    r.measures.push_back(applyNetns(root));
    netnsOk = r.measures.back().enforced;
  }
  if (!dropUid(p, r)) return;
  if (pdeathOk && !armParentDeath(p, pdeath)) r.measures[pdeathIndex] = {"pdeathsig", false, pdeath};
  if (p.dropCapabilities) r.measures.push_back(dropCaps());
  // Not dumpable: no core files with secrets, and other processes of the same uid (other workers
  // running as nobody) cannot ptrace us or read /proc/<pid>/mem.
  bool undumpable = ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
  add(r, "dumpable", undumpable, undumpable ? "not dumpable" : "prctl(PR_SET_DUMPABLE): " + errnoText(errno));
  bool nnp = ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
  add(r, "no_new_privs", nnp, nnp ? "set" : "prctl(PR_SET_NO_NEW_PRIVS): " + errnoText(errno));
  if (int threads = threadCount(); threads > 1) {
    add(r, "single-threaded", false,
        std::to_string(threads) + " threads: Landlock restricts only the calling thread (seccomp is synced)");
  }
  r.measures.push_back(detail::applyLandlock(p.readOnlyPaths, p.readWritePaths, p.networkNone));
  r.measures.push_back(detail::installSeccomp({p.allowProcesses, p.networkNone && !netnsOk}));
}

}  // namespace

Report apply(const Policy& policy) {
  Report report;
  try {
    applySteps(policy, report);
  } catch (const std::exception& e) {
    report.ok = false;  // a half-applied sandbox must not load vendor code
    report.fatalError = std::string("sandbox setup failed: ") + e.what();
  }
  return report;
}

std::string cgroupDirFor(const Policy& policy, pid_t workerPid) {
  try {
    if (policy.memoryBytes == 0 && policy.pidsMax == 0) return {};
    std::string parent = policy.cgroupParent.empty() ? ownCgroupDir() : policy.cgroupParent;
    return parent.empty() ? std::string() : cgroupDirIn(parent, policy, workerPid);
  } catch (...) {
    return {};
  }
}

}  // namespace mcphost::sandbox

#endif  // __linux__
