// Self-sandboxing for mcphost-worker: applied inside the worker process, single-threaded, BEFORE the
// vendor connector library is loaded (its static constructors run at load time). Every measure the
// kernel or environment cannot provide is reported as not enforced with the reason, never skipped
// silently; only a uid drop that was requested as root and failed is fatal. DESIGN.md "Process model".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#ifndef _WIN32
#include <sys/types.h>
#endif

namespace mcphost::sandbox {

#ifdef _WIN32
using pid_t = int;  // only used for Policy::expectedParent, which Windows ignores
#endif

// Exit status of a worker whose parent was already gone when the parent-death signal was armed
// (the supervisor sees it only if it is still alive, i.e. never; it documents the code path).
inline constexpr int kParentGoneExitCode = 70;

struct Policy {
  std::string connectorId;                  // for messages and the cgroup name (sanitised)
  std::vector<std::string> readOnlyPaths;   // Landlock read + execute; see defaultReadOnlyPaths()
  std::vector<std::string> readWritePaths;  // Landlock: every right (declared by the manifest)
  bool networkNone = false;                 // private network namespace; Landlock TCP deny on ABI >= 4
  bool allowProcesses = false;              // false: fork/vfork/clone(no CLONE_THREAD)/execve/setsid denied
  std::uint64_t addressSpaceBytes = 0;      // RLIMIT_AS; 0 = leave
  std::uint64_t maxOpenFiles = 256;         // RLIMIT_NOFILE; 0 = leave
  std::uint64_t cpuSeconds = 0;             // RLIMIT_CPU (soft; hard = soft + 1 s); 0 = leave
  std::uint64_t maxProcesses = 0;           // RLIMIT_NPROC when > 0 (counts per real uid!)
  std::uint64_t memoryBytes = 0;            // cgroup v2 memory.max; 0 = leave
  std::uint64_t pidsMax = 0;                // cgroup v2 pids.max; 0 = leave
  // Directory under which <cgroupParent>/mcphost-<connectorId>-<pid> is created; "" = the
  // process's own cgroup v2 directory (from /proc/self/cgroup). The supervisor removes the empty
  // directory after the worker exited (see cgroupDirFor()).
  std::string cgroupParent;
  std::optional<std::uint32_t> runAsUid;  // only when running as root; e.g. 65534
  std::optional<std::uint32_t> runAsGid;  // default: runAsUid
  bool dropCapabilities = true;           // clear every capability set (root without runAsUid too)
  pid_t expectedParent = 0;               // getppid() must equal this after PR_SET_PDEATHSIG
  std::vector<int> keepFds = {0, 1, 2, 3};
  std::vector<std::string> keepEnv;  // names of environment variables kept; all others removed
};

struct Measure {
  std::string name;
  bool enforced = false;
  std::string detail;
};

struct Report {
  std::vector<Measure> measures;
  bool ok = true;          // false only when a REQUIRED step failed: the caller must exit
  std::string fatalError;  // set when !ok
};

// Applies the policy to the calling process, irreversibly. Order: parent-death signal, fds, env,
// cgroup, rlimits, network namespace, uid/gid drop, capabilities, dumpable, no_new_privs,
// Landlock, seccomp (last, so the earlier steps may use what it denies). Never throws.
Report apply(const Policy& policy);

// For `mcphost sandbox-check`: forks a child that applies the policy and then tries forbidden
// things (read /etc/shadow, write outside the allowed paths, connect to 127.0.0.1, fork, exec,
// mount, unshare, ptrace, ...); each attempt becomes a Measure "probe: ..." whose `enforced` says
// whether the expected outcome happened. The calling process is not changed. Never throws.
Report probe(const Policy& policy);

// Minimal read-only system paths a dynamically linked worker needs after the sandbox is up: the
// dynamic loader and libc (/lib*, /usr/lib*, ld.so.cache), locale and time zone data, /dev/null,
// /dev/zero, /dev/urandom and /proc/self. Not included: /etc/ssl, /etc/resolv.conf, the connector's
// library directory: the caller adds what the manifest needs.
std::vector<std::string> defaultReadOnlyPaths();
// Paths almost every program opens for writing: /dev/null.
std::vector<std::string> defaultReadWritePaths();

// The cgroup directory apply() creates for a worker with this pid ("" when none would be made),
// so that the supervisor can rmdir it after waitpid().
std::string cgroupDirFor(const Policy& policy, pid_t workerPid);

// One line per measure: "enforced     seccomp: ..." / "NOT enforced landlock: ...".
inline std::string describe(const Report& report) {
  try {
    std::string out;
    for (const Measure& m : report.measures) {
      out += m.enforced ? "enforced     " : "NOT enforced ";
      out += m.name + ": " + m.detail + "\n";
    }
    if (!report.ok) out += "FATAL        " + report.fatalError + "\n";
    return out;
  } catch (...) {
    return {};
  }
}

inline nlohmann::json toJson(const Report& report) {
  try {
    nlohmann::json measures = nlohmann::json::array();
    for (const Measure& m : report.measures) {
      measures.push_back({{"name", m.name}, {"enforced", m.enforced}, {"detail", m.detail}});
    }
    nlohmann::json out = {{"ok", report.ok}, {"measures", std::move(measures)}};
    if (!report.ok) out["fatalError"] = report.fatalError;
    return out;
  } catch (...) {
    return nlohmann::json();
  }
}

}  // namespace mcphost::sandbox
