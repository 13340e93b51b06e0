// Windows code path of the worker sandbox: a Job object the worker puts itself into before loading
// the vendor DLL. Documented and kept compiling in spirit, but never built in CI (the product ships
// Linux first); on every other platform this file compiles to nothing.
//
// What the Job gives: kill-on-close (every process in the job dies with the last job handle), a
// per-process commit limit (Policy::memoryBytes, else addressSpaceBytes), an active process limit
// of 1 so the connector cannot start programs (unless allowProcesses), a CPU time limit, UI
// restrictions, and die-on-unhandled-exception (no WER dialog that would hang the worker).
// What it does not give, and Linux does: a filesystem allow-list (that needs an AppContainer or a
// restricted token, created by the HOST when it spawns the worker), a private network, a uid drop.
// Those are reported as not enforced.
//
// Recommended host-side complement: the supervisor creates the job itself, starts the worker with
// CREATE_SUSPENDED, assigns it and then resumes it, and keeps the only handle, so that the worker
// dies with the host (the Windows counterpart of PR_SET_PDEATHSIG). Since Windows 8 jobs nest, so
// the self-applied job below still works inside the host's job.
#ifdef _WIN32

#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "sandbox/sandbox.hpp"

namespace mcphost::sandbox {
namespace {

std::string lastErrorText(const char* what) {
  return std::string(what) + " failed: error " + std::to_string(GetLastError());
}

// Removes every environment variable whose name is not listed (names compare case-insensitively).
Measure cleanEnv(const std::vector<std::string>& keepEnv) {
  std::vector<std::string> names;
  if (LPCH block = GetEnvironmentStringsA()) {
    for (LPCH entry = block; *entry != '\0'; entry += strlen(entry) + 1) {
      std::string var(entry);
      std::size_t eq = var.find('=', 1);  // "=C:=C:\dir" entries start with '='
      if (eq != std::string::npos) names.push_back(var.substr(0, eq));
    }
    FreeEnvironmentStringsA(block);
  }
  std::size_t kept = 0;
  for (const std::string& name : names) {
    bool keep = false;
    for (const std::string& k : keepEnv) keep = keep || _stricmp(k.c_str(), name.c_str()) == 0;
    if (keep) {
      ++kept;
    } else {
      SetEnvironmentVariableA(name.c_str(), nullptr);
    }
  }
  return {"env", true, "kept " + std::to_string(kept) + " of " + std::to_string(names.size()) + " variables"};
}

Measure applyJob(const Policy& p) {
  // The handle is deliberately never closed: with KILL_ON_JOB_CLOSE, closing it would kill us.
  static HANDLE job = nullptr;
  job = CreateJobObjectW(nullptr, nullptr);
  if (job == nullptr) return {"job", false, lastErrorText("CreateJobObject")};

  JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits{};
  DWORD flags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
  std::string detail = "kill on close";
  if (!p.allowProcesses) {
    flags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
    limits.BasicLimitInformation.ActiveProcessLimit = 1;  // this worker only: CreateProcess fails
    detail += ", active processes 1";
  }
  std::uint64_t memory = p.memoryBytes != 0 ? p.memoryBytes : p.addressSpaceBytes;
  if (memory != 0) {
    flags |= JOB_OBJECT_LIMIT_PROCESS_MEMORY;  // committed memory, the closest to both limits
    limits.ProcessMemoryLimit = static_cast<SIZE_T>(memory);
    detail += ", process memory " + std::to_string(memory);
  }
  if (p.cpuSeconds != 0) {
    flags |= JOB_OBJECT_LIMIT_PROCESS_TIME;  // 100 ns units
    limits.BasicLimitInformation.PerProcessUserTimeLimit.QuadPart =
        static_cast<LONGLONG>(p.cpuSeconds) * 10'000'000;
    detail += ", cpu " + std::to_string(p.cpuSeconds) + " s";
  }
  limits.BasicLimitInformation.LimitFlags = flags;
  if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits)) {
    return {"job", false, lastErrorText("SetInformationJobObject(limits)")};
  }
  JOBOBJECT_BASIC_UI_RESTRICTIONS ui{};
  ui.UIRestrictionsClass = JOB_OBJECT_UILIMIT_DESKTOP | JOB_OBJECT_UILIMIT_DISPLAYSETTINGS |
                           JOB_OBJECT_UILIMIT_EXITWINDOWS | JOB_OBJECT_UILIMIT_GLOBALATOMS |
                           JOB_OBJECT_UILIMIT_HANDLES | JOB_OBJECT_UILIMIT_READCLIPBOARD |
                           JOB_OBJECT_UILIMIT_SYSTEMPARAMETERS | JOB_OBJECT_UILIMIT_WRITECLIPBOARD;
  if (SetInformationJobObject(job, JobObjectBasicUIRestrictions, &ui, sizeof ui)) detail += ", UI restricted";
  if (!AssignProcessToJobObject(job, GetCurrentProcess())) {
    return {"job", false, lastErrorText("AssignProcessToJobObject")};
  }
  return {"job", true, detail};
}

// Mitigations that cost a connector nothing: no legacy extension points (AppInit DLLs, hooks) and
// no images loaded from remote shares or low-integrity files.
Measure applyMitigations() {
  PROCESS_MITIGATION_EXTENSION_POINT_DISABLE_POLICY ext{};
  ext.DisableExtensionPoints = 1;
  PROCESS_MITIGATION_IMAGE_LOAD_POLICY image{};
  image.NoRemoteImages = 1;
  image.NoLowMandatoryLabelImages = 1;
  bool ok = SetProcessMitigationPolicy(ProcessExtensionPointDisablePolicy, &ext, sizeof ext) &&
            SetProcessMitigationPolicy(ProcessImageLoadPolicy, &image, sizeof image);
  return {"mitigations", ok,
          ok ? "extension points disabled, no remote or low-label images"
             : lastErrorText("SetProcessMitigationPolicy")};
}

}  // namespace

std::vector<std::string> defaultReadOnlyPaths() {
  return {};
}
std::vector<std::string> defaultReadWritePaths() {
  return {};
}
std::string cgroupDirFor(const Policy& /*policy*/, pid_t /*workerPid*/) {
  return {};
}

Report apply(const Policy& policy) {
  Report r;
  try {
    // Handles are not inherited unless the host passes them (PROC_THREAD_ATTRIBUTE_HANDLE_LIST),
    // so there is no fd step; the host is responsible for that list.
    r.measures.push_back(cleanEnv(policy.keepEnv));
    r.measures.push_back(applyJob(policy));
    r.measures.push_back(applyMitigations());
    r.measures.push_back(
        {"filesystem", false, "no allow-list on Windows (needs an AppContainer from the host)"});
    if (policy.networkNone) r.measures.push_back({"network", false, "not isolated on Windows"});
    if (policy.runAsUid) r.measures.push_back({"uid", false, "uid drop does not apply on Windows"});
  } catch (const std::exception& e) {
    r.ok = false;
    r.fatalError = std::string("sandbox setup failed: ") + e.what();
  }
  return r;
}

Report probe(const Policy& /*policy*/) {
  Report r;
  r.measures.push_back({"probe", false, "not implemented on Windows (no fork); see `apply` measures"});
  return r;
}

}  // namespace mcphost::sandbox

#endif  // _WIN32
