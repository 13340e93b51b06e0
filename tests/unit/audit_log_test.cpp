#include "audit/audit_log.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <set>
#include <thread>

#include "audit/audit_verify.hpp"
#include "audit_test_util.hpp"

using namespace mcphost::audit;
using namespace audit_test;

namespace {

std::unique_ptr<AuditLog> openLog(AuditSettings settings,
                                  std::vector<std::unique_ptr<AuditSink>> extras = {}) {
  auto log = AuditLog::open(std::move(settings), std::move(extras));
  INFO((log ? std::string() : log.error()));
  REQUIRE(log);
  return std::move(*log);
}

void requireVerifies(const std::string& directory) {
  const VerifyReport report = verifyAuditDirectory(directory, kKey);
  INFO(report.problem);
  REQUIRE(report.ok);
}

std::vector<nlohmann::ordered_json> allRecords(const std::string& directory) {
  std::vector<nlohmann::ordered_json> records;
  for (const auto& file : auditFiles(directory)) {
    for (const auto& line : readLines(file)) records.push_back(nlohmann::ordered_json::parse(line));
  }
  return records;
}

std::uint64_t countType(const std::string& directory, const std::string& type) {
  std::uint64_t n = 0;
  for (const auto& record : allRecords(directory)) n += record["type"] == type ? 1 : 0;
  return n;
}

struct ManualClock {
  std::atomic<std::int64_t> seconds{1796169599};
  std::function<std::chrono::system_clock::time_point()> fn() {
    return [this] { return std::chrono::system_clock::time_point(std::chrono::seconds(seconds.load())); };
  }
};

// An extra sink that can be made to fail, and remembers what it accepted.
class RecordingSink final : public AuditSink {
 public:
  std::atomic<bool> failing{false};
  std::vector<std::uint64_t> seqs;
  std::mutex mutex;
  [[nodiscard]] std::string_view name() const override { return "recording"; }
  Status write(const std::vector<SealedRecord>& batch) override {
    if (failing) return mcphost::unexpected(std::string("recording: offline"));
    std::lock_guard lock(mutex);
    for (const auto& record : batch) {
      if (seqs.empty() || record.seq > seqs.back()) seqs.push_back(record.seq);
    }
    return Done{};
  }
};

}  // namespace

TEST_CASE("audit: append writes verifiable records with the caller's fields") {
  TempDir dir;
  const std::string directory = dir.sub("audit/nested");
  {
    auto log = openLog(settingsFor(directory));
    for (int i = 0; i < 5; ++i) {
      auto seq = log->append(requestFields(i));
      REQUIRE(seq);
      CHECK(*seq == static_cast<std::uint64_t>(i + 3));  // 1 file_start, 2 start
    }
    CHECK(log->healthy());
    CHECK(log->lastSeq() == 7);
    log->close();
    log->close();
    CHECK_FALSE(log->append(requestFields(9)));
  }
  struct stat st {};
  REQUIRE(::stat(directory.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  const auto files = auditFiles(directory);
  REQUIRE(files.size() == 1);
  REQUIRE(::stat(files[0].c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const auto records = allRecords(directory);
  REQUIRE(records.size() == 8);
  CHECK(records[0]["type"] == "file_start");
  CHECK(records[1]["type"] == "start");
  CHECK(records[1]["key_id"] == keyId(kKey));
  CHECK(records[2]["principal"] == "alice");
  CHECK(records[2]["type"] == "request");
  CHECK(records[7]["type"] == "checkpoint");
  CHECK(records[7]["records_in_file"] == 7);
  requireVerifies(directory);
  auto head = readHeadAnchor(directory, kKey);
  REQUIRE(head);
  REQUIRE(head->has_value());
  CHECK((*head)->seq == 8);
}

TEST_CASE("audit: append rejects reserved members and internal types") {
  TempDir dir;
  auto log = openLog(settingsFor(dir.path()));
  CHECK_FALSE(log->append({{"seq", 5}}));
  CHECK_FALSE(log->append({{"mac", "x"}}));
  CHECK_FALSE(log->append({{"type", "checkpoint"}}));
  CHECK_FALSE(log->append(nlohmann::ordered_json::array()));
  CHECK_FALSE(log->append({{"blob", std::string(kMaxLineBytes, 'x')}}));
  auto custom = log->append({{"type", "admin"}, {"action", "reload"}});
  REQUIRE(custom);
  log->close();
  CHECK(countType(dir.path(), "admin") == 1);
  requireVerifies(dir.path());
}

TEST_CASE("audit: concurrent appends share writes and get contiguous seqs") {
  TempDir dir;
  auto settings = settingsFor(dir.path());
  settings.checkpointEvery = 50;
  auto ops = std::make_shared<FaultOps>();
  settings.fileOps = ops;
  auto log = openLog(settings);
  const int writesBefore = ops->writeCalls.load();
  constexpr int kThreads = 8;
  constexpr int kEach = 200;
  std::vector<std::vector<std::uint64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto seq = log->append(requestFields(i, "user" + std::to_string(t)));
        if (seq) seqs[t].push_back(*seq);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::uint64_t> all;
  for (const auto& list : seqs) {
    CHECK(list.size() == static_cast<std::size_t>(kEach));
    all.insert(list.begin(), list.end());
  }
  CHECK(all.size() == static_cast<std::size_t>(kThreads * kEach));
  const int writes = ops->writeCalls.load() - writesBefore;
  WARN("writes for " << kThreads * kEach << " appends: " << writes);
  CHECK(writes <= kThreads * kEach);
  log->close();
  CHECK(countType(dir.path(), "checkpoint") >= static_cast<std::uint64_t>(kThreads * kEach / 50));
  requireVerifies(dir.path());
}

TEST_CASE("audit: reopening continues the chain and a wrong key is refused") {
  TempDir dir;
  {
    auto log = openLog(settingsFor(dir.path()));
    REQUIRE(log->append(requestFields(1)));
    // A second writer on the same directory would fork the chain.
    auto second = AuditLog::open(settingsFor(dir.path()));
    REQUIRE_FALSE(second);
    CHECK_THAT(second.error(), Catch::Contains("in use"));
  }
  {
    auto log = openLog(settingsFor(dir.path()));
    auto seq = log->append(requestFields(2));
    REQUIRE(seq);
    CHECK(*seq == 6);  // file_start, start, request, checkpoint, start
  }
  requireVerifies(dir.path());
  auto settings = settingsFor(dir.path());
  settings.key = kOtherKey;
  auto wrong = AuditLog::open(settings);
  REQUIRE_FALSE(wrong);
  CHECK_THAT(wrong.error(), Catch::Contains("does not verify with the configured key"));
  settings.key = "short";
  CHECK_FALSE(AuditLog::open(settings));
}

TEST_CASE("audit: rotation by size continues the chain across files") {
  TempDir dir;
  auto settings = settingsFor(dir.path());
  settings.maxFileBytes = 4096;
  settings.checkpointEvery = 10;
  {
    auto log = openLog(settings);
    for (int i = 0; i < 100; ++i) REQUIRE(log->append(requestFields(i)));
  }
  const auto files = auditFiles(dir.path());
  CHECK(files.size() > 3);
  std::string previousMac;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto lines = readLines(files[i]);
    REQUIRE_FALSE(lines.empty());
    const auto first = nlohmann::ordered_json::parse(lines.front());
    CHECK(first["type"] == "file_start");
    if (i > 0) {
      CHECK(first["previous_file"] == std::filesystem::path(files[i - 1]).filename().string());
      CHECK(first["previous_last_mac"] == previousMac);
      CHECK(first["prev"] == previousMac);
    }
    const auto last = nlohmann::ordered_json::parse(lines.back());
    CHECK(last["type"] == "checkpoint");  // at rotation and at close
    previousMac = last["mac"].get<std::string>();
  }
  const VerifyReport report = verifyAuditDirectory(dir.path(), kKey);
  INFO(report.problem);
  REQUIRE(report.ok);
  CHECK(report.files == files.size());
  CHECK(report.firstSeq == 1);
  CHECK(report.records == report.lastSeq);
}

TEST_CASE("audit: rotation by time and retention by age write a signed retention record") {
  TempDir dir;
  ManualClock clock;
  auto settings = settingsFor(dir.path());
  settings.clock = clock.fn();
  settings.rotateEvery = std::chrono::hours(1);
  settings.retainFor = std::chrono::hours(3);
  auto log = openLog(settings);
  for (int hour = 0; hour < 6; ++hour) {
    REQUIRE(log->append(requestFields(hour)));
    clock.seconds += 3600;
  }
  REQUIRE(log->append(requestFields(99)));
  log->close();
  const auto files = auditFiles(dir.path());
  CHECK(files.size() <= 4);
  const VerifyReport report = verifyAuditDirectory(dir.path(), kKey);
  INFO(report.problem);
  REQUIRE(report.ok);
  CHECK(report.firstSeq > 1);
  std::uint64_t deleted = 0;
  for (const auto& record : allRecords(dir.path())) {
    if (record["type"] != "retention") continue;
    for (const auto& entry : record["deleted"]) {
      CHECK(entry["reason"] == "age");
      CHECK(entry["last_mac"].get<std::string>().size() == 64);
      CHECK_FALSE(std::filesystem::exists(dir.sub(entry["file"].get<std::string>())));
      ++deleted;
    }
  }
  CHECK(deleted >= 2);
}

TEST_CASE("audit: retention by count keeps the newest files and the chain verifies") {
  TempDir dir;
  auto settings = settingsFor(dir.path());
  settings.maxFileBytes = 4096;
  settings.retainFiles = 3;
  {
    auto log = openLog(settings);
    for (int i = 0; i < 150; ++i) REQUIRE(log->append(requestFields(i)));
  }
  CHECK(auditFiles(dir.path()).size() == 3);
  const VerifyReport report = verifyAuditDirectory(dir.path(), kKey);
  INFO(report.problem);
  REQUIRE(report.ok);
  CHECK(report.firstSeq > 1);
  CHECK(countType(dir.path(), "retention") >= 1);
  // Reopening with the chain starting after retention works as well.
  {
    auto log = openLog(settings);
    REQUIRE(log->append(requestFields(1)));
  }
  requireVerifies(dir.path());
}

TEST_CASE("audit: a partial last line from a crash is cut off at open and recorded") {
  TempDir dir;
  {
    auto log = openLog(settingsFor(dir.path()));
    REQUIRE(log->append(requestFields(1)));
  }
  const std::string file = auditFiles(dir.path()).back();
  const auto size = std::filesystem::file_size(file);
  {
    std::ofstream out(file, std::ios::app | std::ios::binary);
    out << R"({"seq":5,"time":"2026-12-01T00:00:00.000000Z","type":"requ)";
  }
  VerifyReport before = verifyAuditDirectory(dir.path(), kKey);
  INFO(before.problem);
  CHECK(before.ok);  // the head anchor does not claim the partial record
  REQUIRE_FALSE(before.notes.empty());
  {
    auto log = openLog(settingsFor(dir.path()));
    REQUIRE(log->append(requestFields(2)));
  }
  const auto lines = readLines(file);
  CHECK(std::filesystem::file_size(file) > size);
  const auto recovered = nlohmann::ordered_json::parse(lines[4]);
  CHECK(recovered["type"] == "recovered");
  CHECK(recovered["seq"] == 5);
  CHECK(recovered["truncated_bytes"] > 0);
  requireVerifies(dir.path());
}

TEST_CASE("audit: ENOSPC mid-write truncates the partial batch and the next append succeeds") {
  TempDir dir;
  auto settings = settingsFor(dir.path());
  auto ops = std::make_shared<FaultOps>();
  settings.fileOps = ops;
  auto log = openLog(settings);
  REQUIRE(log->append(requestFields(1)));
  const std::string file = auditFiles(dir.path()).back();
  const auto size = std::filesystem::file_size(file);
  ops->writeAllowance = 20;
  ops->writeErrno = ENOSPC;
  auto failed = log->append(requestFields(2));
  REQUIRE_FALSE(failed);
  CHECK_THAT(failed.error(), Catch::Contains("No space left on device") && Catch::StartsWith("file: write"));
  CHECK_FALSE(log->healthy());
  CHECK_THAT(log->lastError(), Catch::Contains("No space left on device"));
  CHECK(std::filesystem::file_size(file) == size);  // the 20 bytes are gone
  CHECK_FALSE(log->append(requestFields(3)));
  ops->clear();
  auto ok = log->append(requestFields(4));
  REQUIRE(ok);
  CHECK(*ok == 4);  // the failed records never entered the chain
  CHECK(log->healthy());
  log->close();
  requireVerifies(dir.path());
}

TEST_CASE("audit: a failed truncation is repaired before the next write") {
  TempDir dir;
  auto settings = settingsFor(dir.path());
  auto ops = std::make_shared<FaultOps>();
  settings.fileOps = ops;
  auto log = openLog(settings);
  const std::string file = auditFiles(dir.path()).back();
  const auto size = std::filesystem::file_size(file);
  ops->writeAllowance = 30;
  ops->writeErrno = EROFS;
  ops->truncateErrno = EROFS;
  auto failed = log->append(requestFields(1));
  REQUIRE_FALSE(failed);
  CHECK_THAT(failed.error(), Catch::Contains("Read-only file system"));
  CHECK(std::filesystem::file_size(file) == size + 30);  // could not be cut yet
  ops->writeErrno = 0;
  CHECK_FALSE(log->append(requestFields(2)));  // truncation still fails: refuse, don't append after garbage
  ops->clear();
  REQUIRE(log->append(requestFields(3)));
  log->close();
  requireVerifies(dir.path());
}

TEST_CASE("audit: fdatasync failing with kEveryBatch fails the batch and removes it") {
  TempDir dir;
  auto settings = settingsFor(dir.path());
  auto ops = std::make_shared<FaultOps>();
  settings.fileOps = ops;
  auto log = openLog(settings);
  const std::string file = auditFiles(dir.path()).back();
  const auto size = std::filesystem::file_size(file);
  ops->syncErrno = EIO;
  auto failed = log->append(requestFields(1));
  REQUIRE_FALSE(failed);
  CHECK_THAT(failed.error(), Catch::Contains("fdatasync") && Catch::Contains("Input/output error"));
  CHECK(std::filesystem::file_size(file) == size);
  ops->clear();
  auto ok = log->append(requestFields(2));
  REQUIRE(ok);
  CHECK(*ok == 3);
  log->close();
  requireVerifies(dir.path());
}

TEST_CASE("audit: with kInterval a failed sync marks the log unhealthy until a sync succeeds") {
  TempDir dir;
  auto settings = settingsFor(dir.path());
  settings.fsync = AuditSettings::Fsync::kInterval;
  settings.fsyncInterval = std::chrono::milliseconds(20);
  auto ops = std::make_shared<FaultOps>();
  settings.fileOps = ops;
  auto log = openLog(settings);
  ops->syncErrno = ENOSPC;
  REQUIRE(log->append(requestFields(1)));  // acknowledged after write(2)
  for (int i = 0; i < 100 && log->healthy(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK_FALSE(log->healthy());
  CHECK_THAT(log->lastError(), Catch::Contains("fdatasync"));
  ops->clear();
  for (int i = 0; i < 100 && !log->healthy(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(log->healthy());
  auto head = readHeadAnchor(dir.path(), kKey);
  REQUIRE(head);
  REQUIRE(head->has_value());
  CHECK((*head)->seq == 3);  // updated by the interval sync
  log->close();
  requireVerifies(dir.path());
}

TEST_CASE("audit: a failed rotation (EROFS on create) keeps writing to the current file") {
  TempDir dir;
  auto settings = settingsFor(dir.path());
  settings.maxFileBytes = 4096;
  auto ops = std::make_shared<FaultOps>();
  settings.fileOps = ops;
  auto log = openLog(settings);
  ops->openErrno = EROFS;
  for (int i = 0; i < 60; ++i) REQUIRE(log->append(requestFields(i)));
  CHECK(auditFiles(dir.path()).size() == 1);
  CHECK_THAT(log->lastError(), Catch::Contains("cannot create") && Catch::Contains("Read-only file system"));
  ops->clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the rotation back-off
  REQUIRE(log->append(requestFields(100)));
  CHECK(log->healthy());
  CHECK(auditFiles(dir.path()).size() == 2);
  log->close();
  requireVerifies(dir.path());
}

TEST_CASE("audit: a real short write (RLIMIT_FSIZE) is truncated away") {
  TempDir dir;
  auto log = openLog(settingsFor(dir.path()));
  const std::string file = auditFiles(dir.path()).back();
  const auto size = std::filesystem::file_size(file);
  struct rlimit old {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto previous = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = old;
  limit.rlim_cur = size + 40;  // the kernel writes 40 bytes, then EFBIG
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
  auto failed = log->append(requestFields(1));
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &old) == 0);
  std::signal(SIGXFSZ, previous);
  REQUIRE_FALSE(failed);
  CHECK_THAT(failed.error(), Catch::Contains("File too large"));
  CHECK(std::filesystem::file_size(file) == size);
  auto ok = log->append(requestFields(2));
  REQUIRE(ok);
  CHECK(*ok == 3);
  log->close();
  requireVerifies(dir.path());
}

TEST_CASE("audit: writeAllAt reports ENOSPC from a real device") {
  UniqueFd full(::open("/dev/full", O_WRONLY | O_CLOEXEC));
  REQUIRE(full.valid());
  FileOps ops;
  auto written = writeAllAt(ops, full.get(), "a record\n", 0, "/dev/full");
  REQUIRE_FALSE(written);
  CHECK(written.error() == "write /dev/full: No space left on device");
}

TEST_CASE("audit: a failing extra sink fails the append but the file chain stays intact") {
  TempDir dir;
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* recording = sink.get();
  std::vector<std::unique_ptr<AuditSink>> extras;
  extras.push_back(std::move(sink));
  auto log = openLog(settingsFor(dir.path()), std::move(extras));
  REQUIRE(log->append(requestFields(1)));
  recording->failing = true;
  auto failed = log->append(requestFields(2));
  REQUIRE_FALSE(failed);
  CHECK_THAT(failed.error(),
             Catch::Contains("seq 4 is in the audit file") && Catch::Contains("recording: offline"));
  CHECK_FALSE(log->healthy());
  recording->failing = false;
  auto ok = log->append(requestFields(3));
  REQUIRE(ok);
  CHECK(*ok == 5);
  CHECK(log->healthy());
  log->close();
  // The sink was offered the missed record again: it has every seq, in order, without gaps.
  REQUIRE(recording->seqs.size() >= 5);
  for (std::size_t i = 0; i < recording->seqs.size(); ++i) CHECK(recording->seqs[i] == i + 1);
  requireVerifies(dir.path());
}

TEST_CASE("audit: a checkpoint is written after checkpointInterval") {
  TempDir dir;
  ManualClock clock;
  auto settings = settingsFor(dir.path());
  settings.clock = clock.fn();
  settings.checkpointInterval = std::chrono::seconds(60);
  auto log = openLog(settings);
  REQUIRE(log->append(requestFields(1)));
  clock.seconds += 61;
  for (int i = 0; i < 30 && countType(dir.path(), "checkpoint") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(countType(dir.path(), "checkpoint") == 1);
  log->close();
  requireVerifies(dir.path());
}
