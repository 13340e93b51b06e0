// Shared helpers for the audit unit tests: temp directories, reading and rewriting audit files,
// and a FileOps that fails the way a full or read-only disk does.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "audit/audit_io.hpp"
#include "audit/audit_log.hpp"
#include "audit/file_sink.hpp"

namespace audit_test {

namespace fs = std::filesystem;

inline const std::string kKey(32, 'k');
inline const std::string kOtherKey(32, 'x');

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "mcphost-audit-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline mcphost::audit::AuditSettings settingsFor(const std::string& directory) {
  mcphost::audit::AuditSettings settings;
  settings.directory = directory;
  settings.key = kKey;
  settings.hostVersion = "test";
  settings.fsync = mcphost::audit::AuditSettings::Fsync::kEveryBatch;
  return settings;
}

inline std::vector<std::string> auditFiles(const std::string& directory) {
  std::vector<std::string> names;
  auto files = mcphost::audit::listAuditFiles(directory);
  if (!files) return names;
  for (const auto& file : *files) names.push_back(directory + "/" + file.name);
  return names;
}

inline std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline void writeAll(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::vector<std::string> readLines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(readAll(path));
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

inline void writeLines(const std::string& path, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  writeAll(path, text);
}

inline nlohmann::ordered_json requestFields(int i, const std::string& principal = "alice") {
  nlohmann::ordered_json fields;
  fields["correlation_id"] = "c-" + std::to_string(i);
  fields["principal"] = principal;
  fields["method"] = "tools/call";
  fields["connector"] = "files";
  fields["target"] = "read_file";
  fields["status"] = "ok";
  fields["latency_us"] = 100 + i;
  return fields;
}

// Fails chosen system calls with a chosen errno; pwrite can first let some bytes through, so
// that a batch is half-written before the error, as on a disk that fills up mid-write.
class FaultOps final : public mcphost::audit::FileOps {
 public:
  std::atomic<int> writeErrno{0};
  std::atomic<long> writeAllowance{0};  // bytes written for real before writeErrno applies
  std::atomic<int> syncErrno{0};
  std::atomic<int> truncateErrno{0};
  std::atomic<int> openErrno{0};
  std::atomic<int> writeCalls{0};

  ssize_t pwrite(int fd, const void* data, std::size_t size, off_t offset) override {
    ++writeCalls;
    if (writeErrno.load() != 0) {
      const long allowance = writeAllowance.load();
      if (allowance > 0) {
        const std::size_t n = std::min<std::size_t>(size, static_cast<std::size_t>(allowance));
        writeAllowance -= static_cast<long>(n);
        return FileOps::pwrite(fd, data, n, offset);
      }
      errno = writeErrno.load();
      return -1;
    }
    return FileOps::pwrite(fd, data, size, offset);
  }
  int fdatasync(int fd) override {
    if (syncErrno.load() != 0) {
      errno = syncErrno.load();
      return -1;
    }
    return FileOps::fdatasync(fd);
  }
  int ftruncate(int fd, off_t length) override {
    if (truncateErrno.load() != 0) {
      errno = truncateErrno.load();
      return -1;
    }
    return FileOps::ftruncate(fd, length);
  }
  int openat(int dirfd, const char* name, int flags, mode_t mode) override {
    if (openErrno.load() != 0 && (flags & O_CREAT) != 0) {
      errno = openErrno.load();
      return -1;
    }
    return FileOps::openat(dirfd, name, flags, mode);
  }
  void clear() {
    writeErrno = 0;
    writeAllowance = 0;
    syncErrno = 0;
    truncateErrno = 0;
    openErrno = 0;
  }
};

}  // namespace audit_test
