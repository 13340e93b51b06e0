#include "audit/file_sink.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/crypto.hpp"

namespace mcphost::audit {

namespace {

constexpr std::string_view kHeadTempName = "audit.head.tmp";
constexpr std::string_view kHeadContext = "mcphost-audit-head\n";

Status fail(std::string message) {
  return unexpected("file: " + std::move(message));
}

// mkdir -p, each missing component 0700: the audit trail is readable by the service user only.
Status makeDirectories(const std::string& path) {
  std::string prefix;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    prefix = path.substr(0, pos);
    if (prefix.empty()) continue;
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST)
      return fail("cannot create directory " + prefix + ": " + errnoText(errno));
  }
  return Done{};
}

std::string headMac(const HeadAnchor& head, std::string_view key) {
  return toHex(hmacSha256(
      key, std::string(kHeadContext) + std::to_string(head.seq) + "\n" + head.mac + "\n" + head.file));
}

}  // namespace

ssize_t FileOps::pwrite(int fd, const void* data, std::size_t size, off_t offset) {
  return ::pwrite(fd, data, size, offset);
}
int FileOps::fdatasync(int fd) {
  return ::fdatasync(fd);
}
int FileOps::fsync(int fd) {
  return ::fsync(fd);
}
int FileOps::ftruncate(int fd, off_t length) {
  return ::ftruncate(fd, length);
}
int FileOps::openat(int dirfd, const char* name, int flags, mode_t mode) {
  return ::openat(dirfd, name, flags, mode);
}
int FileOps::renameat(int dirfd, const char* from, const char* to) {
  return ::renameat(dirfd, from, dirfd, to);
}
int FileOps::unlinkat(int dirfd, const char* name) {
  return ::unlinkat(dirfd, name, 0);
}

Status writeAllAt(FileOps& ops, int fd, std::string_view data, std::uint64_t offset,
                  const std::string& path) {
  std::size_t written = 0;
  while (written < data.size()) {
    const ssize_t n =
        ops.pwrite(fd, data.data() + written, data.size() - written, static_cast<off_t>(offset + written));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return unexpected("write " + path + ": " + errnoText(errno));
    if (n == 0) return unexpected("write " + path + ": no progress");
    written += static_cast<std::size_t>(n);
  }
  return Done{};
}

std::string formatHeadAnchor(const HeadAnchor& head, std::string_view key) {
  nlohmann::ordered_json json;
  json["seq"] = head.seq;
  json["mac"] = head.mac;
  json["file"] = head.file;
  json["hmac"] = headMac(head, key);
  return dumpJson(json) + "\n";
}

Expected<std::optional<HeadAnchor>, std::string> readHeadAnchor(const std::string& directory,
                                                                std::string_view key) {
  const std::string path = joinPath(directory, kHeadFileName);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<HeadAnchor>();
    return unexpected("cannot read " + path + ": " + errnoText(errno));
  }
  std::string text(4096, '\0');
  std::size_t got = 0;
  for (;;) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return unexpected("cannot read " + path + ": " + errnoText(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (got == text.size()) return unexpected(path + " is too large to be a head anchor");
  }
  text.resize(got);
  const auto json = nlohmann::ordered_json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("seq") ||
      !json["seq"].is_number_unsigned() || !json.contains("mac") || !json["mac"].is_string() ||
      !json.contains("file") || !json["file"].is_string() || !json.contains("hmac") ||
      !json["hmac"].is_string())
    return unexpected(path + " is not a head anchor (corrupt or edited)");
  HeadAnchor head{json["seq"].get<std::uint64_t>(), json["mac"].get<std::string>(),
                  json["file"].get<std::string>()};
  if (!constantTimeEquals(headMac(head, key), json["hmac"].get<std::string>()))
    return unexpected(path + ": the hmac does not verify: the anchor was edited or the key is wrong");
  return std::optional<HeadAnchor>(std::move(head));
}

FileSink::FileSink(FileSinkOptions options) : options_(std::move(options)) {
  if (!options_.ops) options_.ops = std::make_shared<FileOps>();
}

FileSink::~FileSink() {
  close();
}

Expected<std::unique_ptr<FileSink>, std::string> FileSink::open(FileSinkOptions options) {
  if (options.directory.empty()) return unexpected(std::string("file: no audit directory configured"));
  if (auto made = makeDirectories(options.directory); !made) return unexpected(made.error());
  std::unique_ptr<FileSink> sink(new FileSink(std::move(options)));  // NOLINT: private constructor
  if (auto recovered = sink->recover(); !recovered) return unexpected(recovered.error());
  return sink;
}

Status FileSink::recover() {
  const std::string& directory = options_.directory;
  dir_.reset(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_.valid()) return fail("cannot open directory " + directory + ": " + errnoText(errno));
  // Two writers would fork the chain: the second one must not start.
  if (::flock(dir_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return fail(directory + " is in use by another audit writer (flock)");
    return fail("cannot lock " + directory + ": " + errnoText(errno));
  }
  auto files = listAuditFiles(directory);
  if (!files) return fail(files.error());
  FileOps& ops = *options_.ops;
  while (!files->empty()) {
    const AuditFileName newest = files->back();
    const std::string path = pathOf(newest.name);
    UniqueFd fd(ops.openat(dir_.get(), newest.name.c_str(), O_RDWR | O_CLOEXEC, 0600));
    if (!fd.valid()) return fail("cannot open " + path + ": " + errnoText(errno));
    auto tail = readFileTail(fd.get(), path);
    if (!tail) return fail(tail.error());
    if (tail->completeEnd < tail->size) {
      // A crash mid-write left part of a line. Its append never returned, so no response
      // depended on it: cut it off (the audit log then records that it did).
      if (ops.ftruncate(fd.get(), static_cast<off_t>(tail->completeEnd)) != 0 || ops.fdatasync(fd.get()) != 0)
        return fail("cannot truncate the partial last line of " + path + ": " + errnoText(errno));
      recovery_.truncatedBytes += tail->size - tail->completeEnd;
      recovery_.truncatedFile = newest.name;
    }
    if (tail->completeEnd == 0) {
      // Created but never completed a line (crash during rotation): it holds no records.
      if (ops.unlinkat(dir_.get(), newest.name.c_str()) != 0)
        return fail("cannot remove the empty file " + path + ": " + errnoText(errno));
      recovery_.removedEmptyFiles.push_back(newest.name);
      files->pop_back();
      continue;
    }
    auto record = parseRecord(tail->lastLine);
    if (!record)
      return fail("the last record of " + path + " is corrupt (" + record.error() +
                  "); run `mcphost audit verify` to find the first bad record");
    if (!macValid(options_.key, tail->lastLine, *record))
      return fail("the last record of " + path + " (seq " + std::to_string(record->seq) +
                  ") does not verify with the configured key (key id " + keyId(options_.key) +
                  "): the audit key is wrong or the record was modified; run `mcphost audit verify`");
    recovery_.fresh = false;
    recovery_.chain = ChainState{record->seq + 1, record->mac};
    current_ = newest;
    offset_ = tail->completeEnd;
    file_ = std::move(fd);
    break;
  }
  if (!recovery_.removedEmptyFiles.empty() && ops.fsync(dir_.get()) != 0)
    return fail("cannot sync directory " + directory + ": " + errnoText(errno));
  auto head = readHeadAnchor(directory, options_.key);
  if (head) {
    recovery_.head = *head;
  } else {
    recovery_.headProblem = head.error();
  }
  return Done{};
}

Status FileSink::repairIfNeeded() {
  if (!needsTruncate_) return Done{};
  if (options_.ops->ftruncate(file_.get(), static_cast<off_t>(offset_)) != 0)
    return fail("cannot remove a partial write from " + pathOf(current_.name) + ": " + errnoText(errno));
  needsTruncate_ = false;
  return Done{};
}

Status FileSink::write(const std::vector<SealedRecord>& batch) {
  if (!file_.valid()) return fail("no open audit file");
  if (auto repaired = repairIfNeeded(); !repaired) return repaired;
  std::size_t total = 0;
  for (const auto& record : batch) total += record.line.size() + 1;
  std::string buffer;
  buffer.reserve(total);
  for (const auto& record : batch) {
    buffer += record.line;
    buffer += '\n';
  }
  auto written = writeAllAt(*options_.ops, file_.get(), buffer, offset_, pathOf(current_.name));
  if (!written) {
    std::string error = written.error();
    // Part of the batch may be in the file: remove it so the file ends on a complete line.
    if (options_.ops->ftruncate(file_.get(), static_cast<off_t>(offset_)) != 0) {
      needsTruncate_ = true;
      error += "; truncating the partial write failed too: " + errnoText(errno);
    }
    if (firstWritePending_ && !needsTruncate_) {
      // A new file that never held a record is dropped; the previous file stays current.
      (void)options_.ops->unlinkat(dir_.get(), current_.name.c_str());
      file_ = std::move(previousFile_);
      current_ = previous_;
      offset_ = previousOffset_;
      firstWritePending_ = false;
    }
    return fail(error);
  }
  offset_ += buffer.size();
  if (firstWritePending_) {
    firstWritePending_ = false;
    previousFile_.reset();
  }
  return Done{};
}

Status FileSink::sync() {
  if (!file_.valid()) return Done{};
  if (options_.ops->fdatasync(file_.get()) != 0)
    return fail("fdatasync " + pathOf(current_.name) + ": " + errnoText(errno));
  return Done{};
}

Status FileSink::truncateTo(std::uint64_t offset) {
  if (!file_.valid() || offset > offset_) return Done{};
  offset_ = offset;
  if (options_.ops->ftruncate(file_.get(), static_cast<off_t>(offset_)) != 0) {
    needsTruncate_ = true;
    return fail("cannot truncate " + pathOf(current_.name) + ": " + errnoText(errno));
  }
  return Done{};
}

void FileSink::close() {
  file_.reset();
  previousFile_.reset();
  dir_.reset();  // releases the flock
}

Status FileSink::startFile(std::chrono::system_clock::time_point start, std::uint64_t firstSeq) {
  if (!dir_.valid()) return fail("the audit directory is closed");
  if (firstWritePending_) {
    // An earlier startFile() whose file never got its first record: reuse nothing, drop it.
    (void)options_.ops->unlinkat(dir_.get(), current_.name.c_str());
    file_ = std::move(previousFile_);
    current_ = previous_;
    offset_ = previousOffset_;
    firstWritePending_ = false;
  }
  // Names must sort in chain order even if the clock stepped back.
  if (file_.valid() && start < current_.start) start = current_.start;
  AuditFileName next{auditFileName(start, firstSeq), start, firstSeq};
  next.start = parseAuditFileName(next.name)->start;
  UniqueFd fd(options_.ops->openat(dir_.get(), next.name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return fail("cannot create " + pathOf(next.name) + ": " + errnoText(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail("cannot stat " + pathOf(next.name) + ": " + errnoText(errno));
  if (st.st_size != 0) return fail(pathOf(next.name) + " already exists and is not empty");
  // The new name must survive a power loss, or the chain would lose a whole file.
  if (options_.ops->fsync(dir_.get()) != 0)
    return fail("cannot sync directory " + options_.directory + ": " + errnoText(errno));
  previousFile_ = std::move(file_);
  previous_ = current_;
  previousOffset_ = offset_;
  file_ = std::move(fd);
  current_ = std::move(next);
  offset_ = 0;
  needsTruncate_ = false;
  firstWritePending_ = true;
  return Done{};
}

Status FileSink::writeHead(const HeadAnchor& head) {
  if (!dir_.valid()) return fail("the audit directory is closed");
  FileOps& ops = *options_.ops;
  const std::string temp = pathOf(kHeadTempName);
  UniqueFd fd(ops.openat(dir_.get(), std::string(kHeadTempName).c_str(),
                         O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return fail("cannot create " + temp + ": " + errnoText(errno));
  if (auto written = writeAllAt(ops, fd.get(), formatHeadAnchor(head, options_.key), 0, temp); !written)
    return fail(written.error());
  fd.reset();
  if (ops.renameat(dir_.get(), std::string(kHeadTempName).c_str(), std::string(kHeadFileName).c_str()) != 0)
    return fail("cannot replace " + pathOf(kHeadFileName) + ": " + errnoText(errno));
  return Done{};
}

Expected<std::vector<AuditFileName>, std::string> FileSink::listFiles() const {
  auto files = listAuditFiles(options_.directory);
  if (!files) return unexpected("file: " + files.error());
  return files;
}

Expected<FileSink::FileSummary, std::string> FileSink::summarize(const AuditFileName& file) const {
  const std::string path = pathOf(file.name);
  UniqueFd fd(::openat(dir_.get(), file.name.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return unexpected("file: cannot open " + path + ": " + errnoText(errno));
  auto tail = readFileTail(fd.get(), path);
  if (!tail) return unexpected("file: " + tail.error());
  FileSummary summary{file.name, file.start, file.firstSeq, 0, std::string()};
  if (tail->lastLine.empty()) return summary;  // an empty file: nothing to account for
  auto record = parseRecord(tail->lastLine);
  if (!record) return unexpected("file: the last record of " + path + " is corrupt: " + record.error());
  summary.lastSeq = record->seq;
  summary.lastMac = record->mac;
  return summary;
}

Status FileSink::removeFiles(const std::vector<std::string>& names) {
  FileOps& ops = *options_.ops;
  for (const auto& name : names) {
    if (ops.unlinkat(dir_.get(), name.c_str()) != 0 && errno != ENOENT)
      return fail("cannot delete " + pathOf(name) + ": " + errnoText(errno));
  }
  if (ops.fsync(dir_.get()) != 0)
    return fail("cannot sync directory " + options_.directory + ": " + errnoText(errno));
  return Done{};
}

}  // namespace mcphost::audit
