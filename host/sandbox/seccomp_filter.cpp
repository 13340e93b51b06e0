// Default-allow seccomp filter with a deny-list. A deny-list (not an allow-list) because vendor code
// is arbitrary C/C++ whose syscall needs we cannot know; the list covers what no connector needs and
// what sandbox escapes and kernel exploits use. Denials are visible: SIGSYS trap + stderr line.
#ifdef __linux__

#include "sandbox/seccomp_filter.hpp"

#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <vector>

#include "sandbox/landlock.hpp"  // errnoText

namespace mcphost::sandbox::detail {
namespace {

// Always denied. Names unknown on the running arch (e.g. iopl on aarch64) are skipped.
constexpr const char* kDenied[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",  // other processes
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",  // mounts (old and new API)
    "setns",
    "unshare",  // namespaces
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "vhangup",  // system
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "sethostname",
    "setdomainname",  // global
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",  // exploit surface
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",  // its operations bypass seccomp
    "open_by_handle_at",
    "iopl",
    "ioperm",
    "uselib",
    "nfsservctl",
    "lookup_dcookie",
    "vm86",
    "vm86old",
    "_sysctl",
    "fanotify_init",
};
// Denied unless Policy::allowProcesses. clone is handled separately (threads must keep working).
constexpr const char* kProcessCreation[] = {"fork", "vfork", "execve", "execveat", "setsid", "setpgid"};
// Namespace flags clone() must never carry, even with allowProcesses (unshare by the back door).
constexpr std::uint64_t kCloneNamespaceFlags[] = {CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                                  CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET};

#if defined(__x86_64__) || defined(__aarch64__)
constexpr bool kCanTrap = true;  // we know where the return register lives in the ucontext
#else
constexpr bool kCanTrap = false;
#endif
#if defined(__s390__) || defined(__s390x__)
constexpr unsigned kCloneFlagsArg = 1;  // s390 swaps clone's first two arguments
#else
constexpr unsigned kCloneFlagsArg = 0;
#endif

// si_code of a seccomp SIGSYS; SYS_SECCOMP lives in <asm-generic/siginfo.h>, which clashes with
// glibc's <signal.h>.
constexpr int kSysSeccomp = 1;

// Syscall number -> name for the SIGSYS handler. Filled before the handler is installed and only
// read afterwards, so the handler needs no locking and no allocation.
struct NameEntry {
  int nr = -1;
  const char* name = nullptr;
};
std::array<NameEntry, 96> gNames;
std::size_t gNameCount = 0;

void rememberName(int nr, const char* name) {
  for (std::size_t i = 0; i < gNameCount; ++i) {
    if (gNames[i].nr == nr) return;
  }
  if (gNameCount < gNames.size()) gNames[gNameCount++] = {nr, name};
}

// Async-signal-safe line builder: no malloc, no stdio, only write(2) at the end.
struct Line {
  std::array<char, 160> buf{};
  std::size_t len = 0;
  void put(const char* s) {
    while (*s != '\0' && len < buf.size()) buf[len++] = *s++;
  }
  void putNumber(long value) {
    std::array<char, 24> digits{};
    std::size_t n = 0;
    unsigned long v = value < 0 ? 0UL - static_cast<unsigned long>(value) : static_cast<unsigned long>(value);
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0 && n < digits.size());
    if (value < 0) put("-");
    while (n > 0 && len < buf.size()) buf[len++] = digits[--n];
  }
};

void onSigsys(int /*sig*/, siginfo_t* info, void* context) {
  // A SIGSYS sent with kill() carries no syscall to fail: rewriting a register would corrupt the
  // interrupted code.
  if (info == nullptr || info->si_code != kSysSeccomp || context == nullptr) return;
  const int savedErrno = errno;
  const int nr = info->si_syscall;
  Line line;
  line.put("mcphost-sandbox: blocked syscall ");
  const char* name = nullptr;
  for (std::size_t i = 0; i < gNameCount; ++i) {
    if (gNames[i].nr == nr) name = gNames[i].name;
  }
  if (name != nullptr) {
    line.put(name);
  } else {
    line.putNumber(nr);
  }
  line.put(" (seccomp)\n");
  ssize_t ignored = ::write(STDERR_FILENO, line.buf.data(), line.len);
  (void)ignored;
  // The kernel rolled the registers back to the syscall entry; the value we leave in the return
  // register is what the caller sees, so the denied call simply fails with EPERM.
  auto* uc = static_cast<ucontext_t*>(context);
#if defined(__x86_64__)
  uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
  uc->uc_mcontext.regs[0] = static_cast<unsigned long long>(-EPERM);
#else
  (void)uc;
#endif
  errno = savedErrno;
}

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterDeleter>;

struct Builder {
  scmp_filter_ctx ctx;
  std::uint32_t action;
  int rules = 0;
  std::vector<std::string> names;    // distinct denied syscalls
  std::vector<std::string> missing;  // not on this arch
  std::vector<std::string> failed;

  void add(const char* name, std::vector<scmp_arg_cmp> args = {}, std::uint32_t act = 0) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr < 0) {  // unknown to libseccomp or a pseudo-syscall absent on this arch
      missing.emplace_back(name);
      return;
    }
    int rc = seccomp_rule_add_array(ctx, act != 0 ? act : action, nr, static_cast<unsigned>(args.size()),
                                    args.empty() ? nullptr : args.data());
    if (rc < 0) {
      failed.push_back(std::string(name) + ": " + errnoText(-rc));
      return;
    }
    ++rules;
    if (act == 0) rememberName(nr, name);
    bool known = false;
    for (const std::string& n : names) known = known || n == name;
    if (!known) names.emplace_back(name);
  }
};

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

Measure installSeccomp(const SeccompOptions& options) {
  Measure m{"seccomp", false, {}};
  std::uint32_t action = SCMP_ACT_ERRNO(EPERM);
  std::string how = "EPERM (no trap on this arch)";
  if (kCanTrap) {
    struct sigaction sa {};
    sa.sa_sigaction = onSigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGSYS, &sa, nullptr) == 0) {
      action = SCMP_ACT_TRAP;
      how = "SIGSYS trap: EPERM + stderr line";
    } else {
      how = "EPERM (SIGSYS handler not installed: " + errnoText(errno) + ")";
    }
  }

  Filter filter(seccomp_init(SCMP_ACT_ALLOW));
  if (!filter) {
    m.detail = "seccomp_init failed";
    return m;
  }
  // Foreign-arch syscalls (int 0x80 from x86_64, x32 numbers) would dodge a native-arch deny-list:
  // kill the process. Sync the filter to every thread in case the caller was not single-threaded.
  seccomp_attr_set(filter.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  seccomp_attr_set(filter.get(), SCMP_FLTATR_CTL_TSYNC, 1);

  Builder b{filter.get(), action, 0, {}, {}, {}};
  for (const char* name : kDenied) b.add(name);
  // Namespace-creating clone flags, one rule per flag (rules for one syscall are OR-ed).
  for (std::uint64_t flag : kCloneNamespaceFlags) {
    b.add("clone", {scmp_arg_cmp{kCloneFlagsArg, SCMP_CMP_MASKED_EQ, flag, flag}});
  }
  // clone3 passes its flags in memory seccomp cannot read. ENOSYS (not a trap) because glibc >= 2.34
  // then falls back to clone(), which the rules above and below can inspect.
  b.add("clone3", {}, SCMP_ACT_ERRNO(ENOSYS));
  if (!options.allowProcesses) {
    for (const char* name : kProcessCreation) b.add(name);
    // A thread shares everything with us (CLONE_THREAD implies CLONE_SIGHAND implies CLONE_VM), so
    // only clones without CLONE_THREAD are processes. glibc's posix_spawn()/system() block every
    // signal around their CLONE_VFORK clone, and a trap while SIGSYS is blocked kills the process,
    // so that flavour fails with a plain EPERM (no stderr line) instead of killing the worker.
    constexpr std::uint64_t kMask = CLONE_THREAD | CLONE_VFORK;
    b.add("clone", {scmp_arg_cmp{kCloneFlagsArg, SCMP_CMP_MASKED_EQ, kMask, 0}});
    b.add("clone", {scmp_arg_cmp{kCloneFlagsArg, SCMP_CMP_MASKED_EQ, kMask, CLONE_VFORK}},
          SCMP_ACT_ERRNO(EPERM));
  }
  if (options.denyNonUnixSockets) {
    b.add("socket", {scmp_arg_cmp{0, SCMP_CMP_NE, AF_UNIX, 0}});
  }
  // Keep the handler: replacing the SIGSYS disposition is denied (queries with act == NULL are
  // fine); the signal number is masked to 32 bits, as the kernel does, so high bits cannot dodge it.
  // Blocking SIGSYS with sigprocmask does not help a bypass: the kernel then kills the process.
  // Not with allowProcesses: posix_spawn's child resets every handler (with all signals blocked,
  // so the trap would kill it), and an exec'd program has no handler anyway; there a denied call
  // kills the process, which fails closed.
  const bool lockHandler = action == SCMP_ACT_TRAP && !options.allowProcesses;
  if (lockHandler) {
    b.add("rt_sigaction",
          {scmp_arg_cmp{0, SCMP_CMP_MASKED_EQ, 0xffffffffULL, SIGSYS}, scmp_arg_cmp{1, SCMP_CMP_NE, 0, 0}});
  }

  // A rejected rule (an old libseccomp) still loads the rest: a partial deny-list beats none, and
  // the measure then says "not enforced" with the names.
  int rc = seccomp_load(filter.get());
  if (rc < 0) {
    m.detail = "seccomp_load: " + errnoText(-rc);
    return m;
  }
  m.enforced = b.failed.empty();
  m.detail = "deny-list of " + std::to_string(b.names.size()) + " syscalls (" + std::to_string(b.rules) +
             " rules), " + how + "; clone3 -> ENOSYS; clone with namespace flags denied; " +
             (options.allowProcesses
                  ? "process creation allowed"
                  : "fork/vfork/exec/setsid/setpgid and non-thread clone denied (vfork-style clone: "
                    "EPERM, no trap)") +
             (options.denyNonUnixSockets ? "; socket() other than AF_UNIX denied" : "") +
             (lockHandler ? "; SIGSYS handler locked" : "") + "; foreign-arch syscalls kill";
  if (!b.missing.empty()) m.detail += "; not on this arch: " + join(b.missing);
  if (!b.failed.empty()) m.detail += "; RULES REJECTED: " + join(b.failed);
  return m;
}

}  // namespace mcphost::sandbox::detail

#endif  // __linux__
