// Landlock through raw syscalls (glibc has no wrappers). Best effort in the way the kernel
// documentation's sample does it: ask for the ABI version and handle only the rights that version
// knows, so one binary sandboxes as tightly as each kernel allows.
#ifdef __linux__

#include "sandbox/landlock.hpp"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace mcphost::sandbox::detail {

std::string errnoText(int err) {
  std::string text = std::strerror(err);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* name = strerrorname_np(err)) return std::string(name) + " (" + text + ")";
#endif
  return text;
}

namespace {

// Spelled out because the system header may be older than the running kernel (Debian 12 ships the
// ABI 2 header, this machine's kernel speaks ABI 7). These are kernel UAPI values and never change.
constexpr std::uint64_t kFsExecute = 1ULL << 0;
constexpr std::uint64_t kFsWriteFile = 1ULL << 1;
constexpr std::uint64_t kFsReadFile = 1ULL << 2;
constexpr std::uint64_t kFsReadDir = 1ULL << 3;
constexpr std::uint64_t kFsAbi1 = (1ULL << 13) - 1;      // EXECUTE .. MAKE_SYM
constexpr std::uint64_t kFsRefer = 1ULL << 13;           // ABI 2
constexpr std::uint64_t kFsTruncate = 1ULL << 14;        // ABI 3
constexpr std::uint64_t kFsIoctlDev = 1ULL << 15;        // ABI 5
constexpr std::uint64_t kNetBindTcp = 1ULL << 0;         // ABI 4
constexpr std::uint64_t kNetConnectTcp = 1ULL << 1;      // ABI 4
constexpr std::uint64_t kScopeAbstractUnix = 1ULL << 0;  // ABI 6
constexpr std::uint64_t kScopeSignal = 1ULL << 1;        // ABI 6
constexpr std::uint32_t kCreateRulesetVersion = 1U << 0;

// Rights a rule on a non-directory may carry; directory rights on a file make add_rule EINVAL.
constexpr std::uint64_t kFileRights = kFsExecute | kFsWriteFile | kFsReadFile | kFsTruncate | kFsIoctlDev;
constexpr std::uint64_t kReadOnlyRights = kFsReadFile | kFsReadDir | kFsExecute;

static_assert(kFsExecute == LANDLOCK_ACCESS_FS_EXECUTE && kFsReadDir == LANDLOCK_ACCESS_FS_READ_DIR);
static_assert(kFsAbi1 == ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1));

// struct landlock_ruleset_attr as of ABI 6. The kernel takes the size we pass and insists that
// bytes it does not know are zero, so older kernels get the prefix they understand.
struct RulesetAttr {
  std::uint64_t handledAccessFs = 0;
  std::uint64_t handledAccessNet = 0;  // ABI 4
  std::uint64_t scoped = 0;            // ABI 6
};

std::uint64_t fsRightsFor(int abi) {
  std::uint64_t rights = kFsAbi1;
  if (abi >= 2) rights |= kFsRefer;
  if (abi >= 3) rights |= kFsTruncate;
  if (abi >= 5) rights |= kFsIoctlDev;
  return rights;
}

// Adds one path-beneath rule; returns "" or a note for the detail.
std::string addPathRule(int ruleset, const std::string& path, std::uint64_t access) {
  UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  if (!fd) return path + " (" + (errno == ENOENT ? std::string("missing") : errnoText(errno)) + ")";
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return path + " (" + errnoText(errno) + ")";
  if (!S_ISDIR(st.st_mode)) access &= kFileRights;
  landlock_path_beneath_attr rule{};
  rule.allowed_access = access;
  rule.parent_fd = fd.get();
  if (::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) {
    return path + " (add_rule: " + errnoText(errno) + ")";
  }
  return {};
}

}  // namespace

int landlockAbi() {
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
  return abi < 0 ? -errno : static_cast<int>(abi);
}

Measure applyLandlock(const std::vector<std::string>& readOnly, const std::vector<std::string>& readWrite,
                      bool denyTcp) {
  Measure m{"landlock", false, {}};
  int abi = landlockAbi();
  if (abi < 0) {
    if (-abi == ENOSYS) {
      m.detail = "kernel built without Landlock (ENOSYS)";
    } else if (-abi == EOPNOTSUPP) {
      m.detail = "Landlock built in but not enabled (add landlock to the lsm= boot parameter)";
    } else {
      m.detail = "landlock_create_ruleset(VERSION): " + errnoText(-abi);
    }
    return m;
  }

  RulesetAttr attr;
  attr.handledAccessFs = fsRightsFor(abi);
  std::size_t attrSize = sizeof(attr.handledAccessFs);
  std::string extras;
  if (abi >= 4) {
    attrSize += sizeof(attr.handledAccessNet);
    if (denyTcp) {
      // Handled with no rule = denied: defence in depth under the private network namespace.
      attr.handledAccessNet = kNetBindTcp | kNetConnectTcp;
      extras += "; TCP bind/connect denied";
    }
  } else if (denyTcp) {
    extras += "; TCP not handled (needs ABI 4)";
  }
  if (abi >= 6) {
    // Abstract unix sockets ignore the filesystem (containerd-shim style escapes) and signals could
    // reach other workers that share the uid: both are confined to this sandbox.
    attrSize += sizeof(attr.scoped);
    attr.scoped = kScopeAbstractUnix | kScopeSignal;
    extras += "; abstract unix sockets and signals scoped to the sandbox";
  } else {
    extras += "; abstract unix sockets and signals not scoped (needs ABI 6)";
  }

  UniqueFd ruleset(static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, attrSize, 0)));
  if (!ruleset) {
    m.detail = "ABI " + std::to_string(abi) + ": landlock_create_ruleset: " + errnoText(errno);
    return m;
  }

  std::string skipped;
  int rules = 0;
  auto addAll = [&](const std::vector<std::string>& paths, std::uint64_t access) {
    for (const std::string& path : paths) {
      std::string note = addPathRule(ruleset.get(), path, access & attr.handledAccessFs);
      if (note.empty()) {
        ++rules;
      } else {
        skipped += (skipped.empty() ? "" : ", ") + note;
      }
    }
  };
  addAll(readOnly, kReadOnlyRights);
  addAll(readWrite, attr.handledAccessFs);

  // restrict_self needs no_new_privs (set by the caller) unless we hold CAP_SYS_ADMIN.
  if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) != 0) {
    m.detail = "ABI " + std::to_string(abi) + ": landlock_restrict_self: " + errnoText(errno);
    return m;
  }
  m.enforced = true;
  m.detail = "ABI " + std::to_string(abi) + ", " + std::to_string(rules) + " path rules (" +
             std::to_string(readOnly.size()) + " read-only, " + std::to_string(readWrite.size()) +
             " read-write requested), everything else denied" + extras;
  if (!skipped.empty()) m.detail += "; skipped: " + skipped;
  return m;
}

}  // namespace mcphost::sandbox::detail

#endif  // __linux__
