// The file sink: the chain of record. JSON Lines files in one directory (0700; files 0600):
//
//   audit-YYYYMMDDTHHMMSSZ-<first seq, 12 digits>.jsonl   one or more, in chain order
//   audit.head                                             the head anchor (see below)
//
// Writes go to the newest file with pwrite(2) at a tracked offset. A write that fails part-way
// is truncated back to the last good offset, so a file never keeps a partial line that a later
// batch would be appended after; if even the truncation fails, the next write retries it first.
//
// The head anchor, {"seq":N,"mac":"...","file":"...","hmac":"..."}, names the newest record
// known to be on disk; verify reports a log that ends before it as truncated. It is replaced by
// writing audit.head.tmp and renaming it over audit.head, not rewritten in place: rename is
// atomic, so a verify that runs while the host is writing (or after a crash) never reads a torn
// anchor, which an in-place pwrite could show it. The anchor is not fsynced itself: it is written
// only after the data it names was synced, so a stale anchor after power loss is merely older.
//
// One process at a time: open() takes an exclusive flock(2) on the directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit_chain.hpp"
#include "audit/audit_io.hpp"
#include "audit/audit_sink.hpp"

namespace mcphost::audit {

// The system calls that write audit data, behind a seam so that tests can make each one fail
// with ENOSPC or EROFS (or write short) the way a full or read-only disk does.
class FileOps {
 public:
  virtual ~FileOps() = default;
  FileOps() = default;
  FileOps(const FileOps&) = delete;
  FileOps& operator=(const FileOps&) = delete;

  virtual ssize_t pwrite(int fd, const void* data, std::size_t size, off_t offset);
  virtual int fdatasync(int fd);
  virtual int fsync(int fd);
  virtual int ftruncate(int fd, off_t length);
  virtual int openat(int dirfd, const char* name, int flags, mode_t mode);
  virtual int renameat(int dirfd, const char* from, const char* to);
  virtual int unlinkat(int dirfd, const char* name);
};

// Writes all of data at offset (retrying short writes and EINTR); the error names the path and
// errno ("write /x/audit-...jsonl: No space left on device").
Status writeAllAt(FileOps& ops, int fd, std::string_view data, std::uint64_t offset, const std::string& path);

struct HeadAnchor {
  std::uint64_t seq = 0;
  std::string mac;
  std::string file;
};
std::string formatHeadAnchor(const HeadAnchor& head, std::string_view key);
// nullopt when there is no anchor file; an error when it exists but is unreadable or its hmac
// does not verify with the key.
Expected<std::optional<HeadAnchor>, std::string> readHeadAnchor(const std::string& directory,
                                                                std::string_view key);

struct FileSinkOptions {
  std::string directory;
  std::string key;               // signs the head anchor
  std::shared_ptr<FileOps> ops;  // null: the real system calls
};

// What open() found: where the chain continues and what it had to repair.
struct Recovery {
  bool fresh = true;  // no records in the directory yet
  ChainState chain;
  std::uint64_t truncatedBytes = 0;  // a partial last line (crash mid-write) that was cut off
  std::string truncatedFile;
  std::vector<std::string> removedEmptyFiles;
  std::optional<HeadAnchor> head;
  std::string headProblem;  // the anchor existed but could not be used
};

class FileSink final : public AuditSink {
 public:
  // Creates the directory if needed, locks it, and repairs the newest file's tail. Refuses a
  // directory whose last record does not verify with the key.
  static Expected<std::unique_ptr<FileSink>, std::string> open(FileSinkOptions options);
  ~FileSink() override;

  [[nodiscard]] const Recovery& recovery() const { return recovery_; }

  [[nodiscard]] std::string_view name() const override { return "file"; }
  Status write(const std::vector<SealedRecord>& batch) override;
  Status sync() override;
  void close() override;

  // Cuts the current file back to `offset`: for a batch that was written but not synced.
  Status truncateTo(std::uint64_t offset);
  // Makes a new, empty file current. If the first write into it fails, the file is removed and
  // the previous file is current again, so a failed rotation leaves no headless file.
  Status startFile(std::chrono::system_clock::time_point start, std::uint64_t firstSeq);
  Status writeHead(const HeadAnchor& head);

  [[nodiscard]] bool hasFile() const { return file_.valid(); }
  [[nodiscard]] const std::string& currentFile() const { return current_.name; }
  [[nodiscard]] std::chrono::system_clock::time_point currentStart() const { return current_.start; }
  [[nodiscard]] std::uint64_t currentFirstSeq() const { return current_.firstSeq; }
  [[nodiscard]] std::uint64_t currentBytes() const { return offset_; }
  [[nodiscard]] const std::string& directory() const { return options_.directory; }

  // For retention: what a closed file holds, from its name and its last line.
  struct FileSummary {
    std::string file;
    std::chrono::system_clock::time_point start;
    std::uint64_t firstSeq = 0;
    std::uint64_t lastSeq = 0;
    std::string lastMac;
  };
  [[nodiscard]] Expected<std::vector<AuditFileName>, std::string> listFiles() const;
  [[nodiscard]] Expected<FileSummary, std::string> summarize(const AuditFileName& file) const;
  // Unlinks the files and syncs the directory.
  Status removeFiles(const std::vector<std::string>& names);

 private:
  explicit FileSink(FileSinkOptions options);
  Status recover();
  Status repairIfNeeded();
  std::string pathOf(std::string_view name) const { return joinPath(options_.directory, name); }

  FileSinkOptions options_;
  UniqueFd dir_;
  UniqueFd file_;
  AuditFileName current_;
  std::uint64_t offset_ = 0;        // end of the last complete write
  bool needsTruncate_ = false;      // a failed write left bytes past offset_ that truncation could not remove
  bool firstWritePending_ = false;  // current_ was created by startFile() and holds nothing yet
  UniqueFd previousFile_;           // the file to fall back to if the first write into current_ fails
  AuditFileName previous_;
  std::uint64_t previousOffset_ = 0;
  Recovery recovery_;
};

}  // namespace mcphost::audit
