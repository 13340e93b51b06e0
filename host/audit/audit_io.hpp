// File plumbing shared by the file sink, verify and export: an owning file descriptor, audit
// file names, the directory listing in chain order, and a bounded line reader.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "common/unique_fd.hpp"

namespace mcphost::audit {

using mcphost::UniqueFd;

inline constexpr std::string_view kHeadFileName = "audit.head";
// Longer lines are rejected by verify and export, so a corrupt file cannot exhaust memory.
inline constexpr std::size_t kMaxLineBytes = 1u << 20;

// audit-YYYYMMDDTHHMMSSZ-<first seq, 12 digits>.jsonl
std::string auditFileName(std::chrono::system_clock::time_point start, std::uint64_t firstSeq);

struct AuditFileName {
  std::string name;
  std::chrono::system_clock::time_point start;  // from the name (second precision)
  std::uint64_t firstSeq = 0;                   // from the name
};
std::optional<AuditFileName> parseAuditFileName(std::string_view name);

// The audit files of a directory in chain order: by first seq, then by name. The time in a
// name is for people; ordering by seq keeps a backwards clock step from reordering files.
Expected<std::vector<AuditFileName>, std::string> listAuditFiles(const std::string& directory);

std::string errnoText(int error);
std::string joinPath(const std::string& directory, std::string_view name);

// Reads a file line by line with one fixed buffer. A line longer than kMaxLineBytes is
// reported, not buffered; a final line without '\n' is returned with complete = false.
class LineReader {
 public:
  enum class Result { kLine, kEnd, kTooLong, kError };
  explicit LineReader(UniqueFd fd) : fd_(std::move(fd)) {}

  Result next();
  [[nodiscard]] std::string_view line() const { return line_; }
  [[nodiscard]] bool complete() const { return complete_; }
  [[nodiscard]] std::uint64_t lineNumber() const { return lineNumber_; }
  [[nodiscard]] std::uint64_t lineOffset() const { return lineOffset_; }  // byte offset of line()
  [[nodiscard]] int error() const { return error_; }

 private:
  bool fill();

  UniqueFd fd_;
  std::string buffer_;
  std::size_t begin_ = 0;       // unread data is buffer_[begin_, buffer_.size())
  std::uint64_t consumed_ = 0;  // file offset of buffer_[0]
  bool eof_ = false;
  std::string_view line_;
  bool complete_ = true;
  std::uint64_t lineNumber_ = 0;
  std::uint64_t lineOffset_ = 0;
  int error_ = 0;
};

// Reads the last complete line of a file that ends at `size` and whether bytes after it form
// an incomplete line. Used to resume a chain without reading the whole file.
struct FileTail {
  std::string lastLine;           // empty when the file has no complete line
  std::uint64_t completeEnd = 0;  // offset just past the last '\n'
  std::uint64_t size = 0;
};
Expected<FileTail, std::string> readFileTail(int fd, const std::string& path);

}  // namespace mcphost::audit
