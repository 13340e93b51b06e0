// The worker's seccomp filter (libseccomp): default allow plus a deny-list of syscalls a connector
// never needs and that are the usual kernel attack surface or escape routes. Internal to
// host/sandbox.
#pragma once

#include "sandbox/sandbox.hpp"

namespace mcphost::sandbox::detail {

struct SeccompOptions {
  bool allowProcesses = false;      // false: deny fork/vfork/clone without CLONE_THREAD/exec/setsid
  bool denyNonUnixSockets = false;  // socket() for any family but AF_UNIX (networkNone fallback)
};

// Installs a SIGSYS handler and the filter (last sandbox step; needs no_new_privs). On x86_64 and
// aarch64 a denied call traps: the handler writes "mcphost-sandbox: blocked syscall <name>
// (seccomp)" to stderr (the host turns worker stderr into log lines) and the call returns -EPERM.
// Elsewhere denied calls fail with EPERM silently.
Measure installSeccomp(const SeccompOptions& options);

}  // namespace mcphost::sandbox::detail
