// Landlock filesystem (and, on ABI >= 4, TCP) allow-list for the worker, plus two small helpers
// shared by the Linux sandbox sources. Internal to host/sandbox.
#pragma once

#include <unistd.h>

#include <string>
#include <vector>

#include "common/unique_fd.hpp"
#include "sandbox/sandbox.hpp"

namespace mcphost::sandbox::detail {

using mcphost::UniqueFd;

// "EPERM (Operation not permitted)": the name is what people grep for, the text what they read.
std::string errnoText(int err);

// The running kernel's Landlock ABI version, or -errno (ENOSYS: not built in; EOPNOTSUPP: built in
// but not enabled with lsm=).
int landlockAbi();

// Restricts the calling thread (and its future children) to the given paths: readOnly get
// read_file | read_dir | execute, readWrite get every right the running ABI knows. Missing paths
// are skipped and named in the detail. denyTcp additionally handles TCP bind/connect with no rule
// (deny all) when the ABI has it; abstract unix sockets and signals are always scoped to the
// sandbox on ABI >= 6. Requires no_new_privs (or CAP_SYS_ADMIN).
Measure applyLandlock(const std::vector<std::string>& readOnly, const std::vector<std::string>& readWrite,
                      bool denyTcp);

}  // namespace mcphost::sandbox::detail
