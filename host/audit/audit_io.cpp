#include "audit/audit_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

namespace mcphost::audit {

namespace {
constexpr std::size_t kReadChunk = std::size_t{64} * 1024;
constexpr std::string_view kNamePrefix = "audit-";
constexpr std::string_view kNameSuffix = ".jsonl";
}  // namespace

std::string errnoText(int error) {
  return std::strerror(error);
}

std::string joinPath(const std::string& directory, std::string_view name) {
  if (directory.empty() || directory.back() == '/') return directory + std::string(name);
  return directory + "/" + std::string(name);
}

std::string auditFileName(std::chrono::system_clock::time_point start, std::uint64_t firstSeq) {
  const auto t = std::chrono::system_clock::to_time_t(start);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 128> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "audit-%04d%02d%02dT%02d%02d%02dZ-%012llu.jsonl",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned long long>(firstSeq));
  return buffer.data();
}

std::optional<AuditFileName> parseAuditFileName(std::string_view name) {
  // audit-YYYYMMDDTHHMMSSZ-NNNNNNNNNNNN.jsonl
  constexpr std::size_t kTimeLength = 16;
  if (name.size() < kNamePrefix.size() + kTimeLength + 2 + kNameSuffix.size()) return std::nullopt;
  if (name.substr(0, kNamePrefix.size()) != kNamePrefix) return std::nullopt;
  if (name.substr(name.size() - kNameSuffix.size()) != kNameSuffix) return std::nullopt;
  const std::string_view stamp = name.substr(kNamePrefix.size(), kTimeLength);
  if (stamp[8] != 'T' || stamp[15] != 'Z' || name[kNamePrefix.size() + kTimeLength] != '-')
    return std::nullopt;
  const std::string_view seqText =
      name.substr(kNamePrefix.size() + kTimeLength + 1,
                  name.size() - kNameSuffix.size() - kNamePrefix.size() - kTimeLength - 1);
  if (seqText.empty() ||
      !std::all_of(seqText.begin(), seqText.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  std::tm tm{};
  int fields[6] = {};
  const std::size_t offsets[6] = {0, 4, 6, 9, 11, 13};
  const std::size_t widths[6] = {4, 2, 2, 2, 2, 2};
  for (int i = 0; i < 6; ++i) {
    int value = 0;
    for (std::size_t j = offsets[i]; j < offsets[i] + widths[i]; ++j) {
      if (stamp[j] < '0' || stamp[j] > '9') return std::nullopt;
      value = value * 10 + (stamp[j] - '0');
    }
    fields[i] = value;
  }
  tm.tm_year = fields[0] - 1900;
  tm.tm_mon = fields[1] - 1;
  tm.tm_mday = fields[2];
  tm.tm_hour = fields[3];
  tm.tm_min = fields[4];
  tm.tm_sec = fields[5];
  AuditFileName parsed;
  parsed.name = std::string(name);
  parsed.start = std::chrono::system_clock::from_time_t(timegm(&tm));
  parsed.firstSeq = 0;
  for (char c : seqText) parsed.firstSeq = parsed.firstSeq * 10 + static_cast<std::uint64_t>(c - '0');
  return parsed;
}

Expected<std::vector<AuditFileName>, std::string> listAuditFiles(const std::string& directory) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(directory.c_str()), &::closedir);
  if (!dir) return unexpected("cannot read directory " + directory + ": " + errnoText(errno));
  std::vector<AuditFileName> files;
  while (const dirent* entry = ::readdir(dir.get())) {
    if (auto parsed = parseAuditFileName(entry->d_name)) files.push_back(std::move(*parsed));
  }
  std::sort(files.begin(), files.end(), [](const AuditFileName& a, const AuditFileName& b) {
    return a.firstSeq != b.firstSeq ? a.firstSeq < b.firstSeq : a.name < b.name;
  });
  return files;
}

bool LineReader::fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    buffer_.erase(0, begin_);
    consumed_ += begin_;
    begin_ = 0;
  }
  const std::size_t old = buffer_.size();
  buffer_.resize(old + kReadChunk);
  ssize_t n = 0;
  do {
    n = ::read(fd_.get(), buffer_.data() + old, kReadChunk);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    error_ = errno;
    buffer_.resize(old);
    return false;
  }
  buffer_.resize(old + static_cast<std::size_t>(n));
  if (n == 0) eof_ = true;
  return n > 0;
}

LineReader::Result LineReader::next() {
  std::size_t searchFrom = begin_;
  for (;;) {
    const std::size_t newline = buffer_.find('\n', searchFrom);
    if (newline != std::string::npos) {
      line_ = std::string_view(buffer_).substr(begin_, newline - begin_);
      complete_ = true;
      lineOffset_ = consumed_ + begin_;
      ++lineNumber_;
      begin_ = newline + 1;
      return line_.size() > kMaxLineBytes ? Result::kTooLong : Result::kLine;
    }
    if (buffer_.size() - begin_ > kMaxLineBytes) {
      lineOffset_ = consumed_ + begin_;
      ++lineNumber_;
      return Result::kTooLong;
    }
    const std::size_t scanned = buffer_.size() - begin_;
    if (!fill()) {
      if (error_ != 0) return Result::kError;
      if (begin_ >= buffer_.size()) return Result::kEnd;
      line_ = std::string_view(buffer_).substr(begin_);
      complete_ = false;
      lineOffset_ = consumed_ + begin_;
      ++lineNumber_;
      begin_ = buffer_.size();
      return Result::kLine;
    }
    searchFrom = begin_ + scanned;  // fill() moved the unread data to the front
  }
}

Expected<FileTail, std::string> readFileTail(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return unexpected("cannot stat " + path + ": " + errnoText(errno));
  FileTail tail;
  tail.size = static_cast<std::uint64_t>(st.st_size);
  // Read backwards in chunks until two newlines are seen (the end of the last complete line and
  // the one before it), bounded by the line cap.
  std::string window;
  std::uint64_t windowStart = tail.size;
  std::optional<std::uint64_t> lastNewline;
  for (;;) {
    if (lastNewline) {
      const std::size_t relEnd = static_cast<std::size_t>(*lastNewline - windowStart);
      const std::size_t previous = relEnd == 0 ? std::string::npos : window.rfind('\n', relEnd - 1);
      if (previous != std::string::npos || windowStart == 0) {
        const std::size_t from = previous == std::string::npos ? 0 : previous + 1;
        tail.lastLine = window.substr(from, relEnd - from);
        tail.completeEnd = *lastNewline + 1;
        return tail;
      }
      if (*lastNewline - windowStart > kMaxLineBytes)
        return unexpected("the last line of " + path + " is longer than " + std::to_string(kMaxLineBytes) +
                          " bytes");
    } else {
      const std::size_t at = window.rfind('\n');
      if (at != std::string::npos) {
        lastNewline = windowStart + at;
        continue;
      }
      if (windowStart == 0) return tail;  // no complete line at all
      if (tail.size - windowStart > kMaxLineBytes) {
        tail.completeEnd = 0;  // a huge partial tail: nothing complete found within the cap
        return unexpected("the end of " + path + " has no line break in the last " +
                          std::to_string(kMaxLineBytes) + " bytes");
      }
    }
    const std::uint64_t chunk = std::min<std::uint64_t>(kReadChunk, windowStart);
    std::string piece(static_cast<std::size_t>(chunk), '\0');
    std::size_t got = 0;
    while (got < piece.size()) {
      const ssize_t n =
          ::pread(fd, piece.data() + got, piece.size() - got, static_cast<off_t>(windowStart - chunk + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        return unexpected("cannot read " + path + ": " + (n < 0 ? errnoText(errno) : "unexpected end"));
      got += static_cast<std::size_t>(n);
    }
    windowStart -= chunk;
    window.insert(0, piece);
  }
}

}  // namespace mcphost::audit
