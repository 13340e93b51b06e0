#include "audit/audit_verify.hpp"

#include <catch2/catch.hpp>
#include <sstream>

#include "audit/audit_export.hpp"
#include "audit/audit_log.hpp"
#include "audit_test_util.hpp"

using namespace mcphost::audit;
using namespace audit_test;

namespace {

// A closed log of several files: about 60 requests from two users, a checkpoint every 10.
void writeLog(const std::string& directory,
              std::function<std::chrono::system_clock::time_point()> clock = {}) {
  auto settings = settingsFor(directory);
  settings.maxFileBytes = 4096;
  settings.checkpointEvery = 10;
  settings.clock = std::move(clock);
  auto log = AuditLog::open(settings);
  REQUIRE(log);
  for (int i = 0; i < 60; ++i) REQUIRE((*log)->append(requestFields(i, i % 2 == 0 ? "alice" : "bob")));
  (*log)->close();
}

VerifyReport verifyBad(const std::string& directory, std::string_view key = kKey) {
  VerifyReport report = verifyAuditDirectory(directory, key);
  INFO(report.problem);
  CHECK_FALSE(report.ok);
  return report;
}

std::string fileName(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

// Index of the first line of the given type in a file's lines.
std::size_t lineOfType(const std::vector<std::string>& lines, const std::string& type) {
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (nlohmann::ordered_json::parse(lines[i])["type"] == type) return i;
  }
  FAIL("no " << type << " line");
  return 0;
}

}  // namespace

TEST_CASE("audit: verify accepts an untouched log and counts it") {
  TempDir dir;
  writeLog(dir.path());
  const VerifyReport report = verifyAuditDirectory(dir.path(), kKey);
  INFO(report.problem);
  REQUIRE(report.ok);
  CHECK(report.files == auditFiles(dir.path()).size());
  CHECK(report.files >= 3);
  CHECK(report.firstSeq == 1);
  CHECK(report.records == report.lastSeq);
  CHECK(report.checkpoints >= 6);
  CHECK(report.problem.empty());
}

TEST_CASE("audit: verify names a modified field") {
  TempDir dir;
  writeLog(dir.path());
  const std::string file = auditFiles(dir.path())[1];
  auto lines = readLines(file);
  auto parsed = nlohmann::ordered_json::parse(lines[3]);
  parsed["type"] = "request";
  parsed["principal"] = "mallory";
  lines[3] = parsed.dump();  // same member order, so only the value differs
  writeLines(file, lines);
  const auto report = verifyBad(dir.path());
  CHECK_THAT(report.problem, Catch::StartsWith(fileName(file) + ":4 (seq "));
  CHECK_THAT(report.problem, Catch::Contains("MAC mismatch: the record was modified"));
}

TEST_CASE("audit: verify names a deleted line") {
  TempDir dir;
  writeLog(dir.path());
  const std::string file = auditFiles(dir.path())[1];
  auto lines = readLines(file);
  const auto deletedSeq = nlohmann::ordered_json::parse(lines[4])["seq"].get<std::uint64_t>();
  lines.erase(lines.begin() + 4);
  writeLines(file, lines);
  const auto report = verifyBad(dir.path());
  CHECK_THAT(report.problem,
             Catch::StartsWith(fileName(file) + ":5 (seq " + std::to_string(deletedSeq + 1) + ")"));
  CHECK_THAT(report.problem, Catch::Contains("seq gap") &&
                                 Catch::Contains("record " + std::to_string(deletedSeq) + " was deleted"));
}

TEST_CASE("audit: verify names an inserted line") {
  TempDir dir;
  writeLog(dir.path());
  const std::string file = auditFiles(dir.path())[1];
  SECTION("a copy of a genuine record") {
    auto lines = readLines(file);
    lines.insert(lines.begin() + 5, lines[4]);
    writeLines(file, lines);
    const auto report = verifyBad(dir.path());
    CHECK_THAT(report.problem, Catch::StartsWith(fileName(file) + ":6 (seq "));
    CHECK_THAT(report.problem, Catch::Contains("repeats or goes backwards") && Catch::Contains("inserted"));
  }
  SECTION("a forged record") {
    auto lines = readLines(file);
    auto forged = nlohmann::ordered_json::parse(lines[4]);
    forged["seq"] = forged["seq"].get<std::uint64_t>() + 1;
    forged["prev"] = forged["mac"];
    forged["mac"] = std::string(64, 'a');
    lines.insert(lines.begin() + 5, forged.dump());
    writeLines(file, lines);
    const auto report = verifyBad(dir.path());
    CHECK_THAT(report.problem,
               Catch::StartsWith(fileName(file) + ":6 (seq ") && Catch::Contains("MAC mismatch"));
  }
}

TEST_CASE("audit: verify names swapped lines") {
  TempDir dir;
  writeLog(dir.path());
  const std::string file = auditFiles(dir.path())[1];
  auto lines = readLines(file);
  std::swap(lines[3], lines[4]);
  writeLines(file, lines);
  const auto report = verifyBad(dir.path());
  CHECK_THAT(report.problem, Catch::StartsWith(fileName(file) + ":4 (seq "));
  CHECK_THAT(report.problem, Catch::Contains("out of order") && Catch::Contains("reordered"));
}

TEST_CASE("audit: verify detects truncation mid-line") {
  TempDir dir;
  writeLog(dir.path());
  const auto files = auditFiles(dir.path());
  SECTION("in the newest file: the head anchor shows records were cut") {
    const std::string text = readAll(files.back());
    writeAll(files.back(), text.substr(0, text.size() / 2));
    const auto report = verifyBad(dir.path());
    CHECK_THAT(report.problem, Catch::Contains("records after seq") && Catch::Contains("were removed"));
  }
  SECTION("in an older file") {
    const std::string text = readAll(files[1]);
    writeAll(files[1], text.substr(0, text.size() / 2));
    const auto report = verifyBad(dir.path());
    CHECK_THAT(report.problem,
               Catch::StartsWith(fileName(files[1]) + ":") && Catch::Contains("truncated mid-record"));
  }
}

TEST_CASE("audit: verify detects whole records cut off the tail") {
  TempDir dir;
  writeLog(dir.path());
  const std::string newest = auditFiles(dir.path()).back();
  auto lines = readLines(newest);
  REQUIRE(lines.size() > 2);
  const auto lastKept = nlohmann::ordered_json::parse(lines[lines.size() - 3])["seq"].get<std::uint64_t>();
  lines.resize(lines.size() - 2);
  writeLines(newest, lines);
  const auto report = verifyBad(dir.path());
  CHECK_THAT(report.problem, Catch::StartsWith(fileName(newest) + ":" + std::to_string(lines.size() + 1) +
                                               " (seq " + std::to_string(lastKept + 1) + ")"));
  CHECK_THAT(report.problem,
             Catch::Contains("records after seq " + std::to_string(lastKept) + " were removed"));
}

TEST_CASE("audit: verify detects a deleted file") {
  TempDir dir;
  writeLog(dir.path());
  const auto files = auditFiles(dir.path());
  REQUIRE(files.size() >= 3);
  SECTION("in the middle") {
    std::filesystem::remove(files[1]);
    const auto report = verifyBad(dir.path());
    CHECK_THAT(report.problem, Catch::StartsWith(fileName(files[2]) + ":1 (seq "));
    CHECK_THAT(report.problem, Catch::Contains("broken between files") &&
                                   Catch::Contains(fileName(files[1]) + " is missing"));
  }
  SECTION("the first, without a retention record") {
    std::filesystem::remove(files[0]);
    const auto report = verifyBad(dir.path());
    CHECK_THAT(report.problem, Catch::StartsWith(fileName(files[1]) + ":1 (seq "));
    CHECK_THAT(report.problem, Catch::Contains("no retention record lists it"));
  }
  SECTION("the newest") {
    std::filesystem::remove(files.back());
    const auto report = verifyBad(dir.path());
    CHECK_THAT(report.problem, Catch::Contains("the head anchor records seq"));
  }
  SECTION("emptied") {
    writeAll(files[1], "");
    const auto report = verifyBad(dir.path());
    CHECK_THAT(report.problem, Catch::StartsWith(fileName(files[1]) + ":1") && Catch::Contains("empty"));
  }
}

TEST_CASE("audit: verify detects an edited checkpoint") {
  TempDir dir;
  writeLog(dir.path());
  const std::string file = auditFiles(dir.path())[0];
  auto lines = readLines(file);
  const std::size_t index = lineOfType(lines, "checkpoint");
  auto checkpoint = nlohmann::ordered_json::parse(lines[index]);
  checkpoint["records_in_file"] = 3;
  lines[index] = checkpoint.dump();
  writeLines(file, lines);
  const auto report = verifyBad(dir.path());
  CHECK_THAT(report.problem, Catch::StartsWith(fileName(file) + ":" + std::to_string(index + 1) + " (seq "));
  CHECK_THAT(report.problem, Catch::Contains("MAC mismatch"));
}

TEST_CASE("audit: verify detects a replaced key") {
  TempDir dir;
  writeLog(dir.path());
  SECTION("verifying with another key") {
    const auto report = verifyBad(dir.path(), kOtherKey);
    CHECK_THAT(report.problem, Catch::StartsWith(fileName(auditFiles(dir.path())[0]) + ":1 (seq 1)"));
    CHECK_THAT(report.problem, Catch::Contains("wrong key") && Catch::Contains(keyId(kKey)));
  }
  SECTION("the log re-signed with an attacker's key") {
    TempDir forged;
    {
      auto settings = settingsFor(forged.path());
      settings.key = kOtherKey;
      auto log = AuditLog::open(settings);
      REQUIRE(log);
      REQUIRE((*log)->append(requestFields(1)));
    }
    const auto report = verifyBad(forged.path());
    CHECK_THAT(report.problem,
               Catch::Contains(":1 (seq 1): MAC mismatch") && Catch::Contains(keyId(kOtherKey)));
  }
}

TEST_CASE("audit: verify detects an edited or rolled back head anchor") {
  TempDir dir;
  writeLog(dir.path());
  const std::string head = dir.sub("audit.head");
  auto anchor = nlohmann::ordered_json::parse(readAll(head));
  anchor["seq"] = anchor["seq"].get<std::uint64_t>() - 5;
  writeAll(head, anchor.dump());
  const auto report = verifyBad(dir.path());
  CHECK_THAT(report.problem, Catch::StartsWith("audit.head") && Catch::Contains("hmac does not verify"));
  std::filesystem::remove(head);
  const auto missing = verifyAuditDirectory(dir.path(), kKey);
  CHECK(missing.ok);
  CHECK_FALSE(missing.notes.empty());
}

TEST_CASE("audit: verify detects renamed and reordered files") {
  TempDir dir;
  writeLog(dir.path());
  const auto files = auditFiles(dir.path());
  // Give file 1 a name that sorts after file 2.
  const std::string renamed = dir.sub("audit-20991231T000000Z-999999999999.jsonl");
  std::filesystem::rename(files[1], renamed);
  const auto report = verifyBad(dir.path());
  CHECK_THAT(report.problem, Catch::StartsWith(fileName(files[2]) + ":1"));
}

TEST_CASE("audit: export writes filtered CSV with formula cells neutralised") {
  TempDir dir;
  {
    auto settings = settingsFor(dir.path());
    auto log = AuditLog::open(settings);
    REQUIRE(log);
    auto fields = requestFields(1, "alice");
    fields["target"] = "=cmd|' /C calc'!A0";
    fields["dlp"] = {{{"detector", "email"}, {"count", 2}}, {{"detector", "iban"}, {"count", 1}}};
    fields["args_sha256"] = std::string(64, 'f');
    REQUIRE((*log)->append(fields));
    REQUIRE((*log)->append(requestFields(2, "bob")));
    auto comma = requestFields(3, "alice");
    comma["rule"] = "allow, \"quoted\"";
    REQUIRE((*log)->append(comma));
  }
  std::ostringstream csv;
  ExportFilter filter;
  filter.user = "alice";
  auto count = exportAudit(dir.path(), kKey, filter, ExportFormat::kCsv, csv);
  INFO((count ? std::string() : count.error()));
  REQUIRE(count);
  CHECK(*count == 2);
  std::istringstream rows(csv.str());
  std::string header;
  std::getline(rows, header);
  CHECK(header ==
        "time,seq,correlation_id,principal,auth_method,source_ip,session,method,connector,target,decision,"
        "rule,status,"
        "error_code,latency_us,request_bytes,response_bytes,dlp,args_sha256\r");
  std::string first;
  std::getline(rows, first);
  CHECK_THAT(first, Catch::Contains(
                        ",3,c-1,alice,,,,tools/call,files,'=cmd|' /C calc'!A0,,,ok,,101,,,email:2;iban:1," +
                        std::string(64, 'f')));
  std::string second;
  std::getline(rows, second);
  CHECK_THAT(second, Catch::Contains("\"allow, \"\"quoted\"\"\""));
}

TEST_CASE("audit: export JSON with a time window and internal records") {
  TempDir dir;
  std::atomic<std::int64_t> seconds{1796169599};
  writeLog(dir.path(), [&] {
    seconds += 60;  // every sealing moves a minute on
    return std::chrono::system_clock::time_point(std::chrono::seconds(seconds.load()));
  });
  std::ostringstream all;
  auto total = exportAudit(dir.path(), kKey, ExportFilter{}, ExportFormat::kJson, all);
  REQUIRE(total);
  CHECK(*total == 60);
  const auto array = nlohmann::json::parse(all.str());
  REQUIRE(array.is_array());
  CHECK(array.size() == 60);
  CHECK(array[0]["type"] == "request");

  ExportFilter window;
  window.from = std::chrono::system_clock::time_point(std::chrono::seconds(1796169599 + 60 * 10));
  window.to = std::chrono::system_clock::time_point(std::chrono::seconds(1796169599 + 60 * 20));
  std::ostringstream part;
  auto some = exportAudit(dir.path(), kKey, window, ExportFormat::kJson, part);
  REQUIRE(some);
  CHECK(*some > 0);
  CHECK(*some <= 10);  // at most one record per sealing minute in a ten-minute window
  for (const auto& record : nlohmann::json::parse(part.str())) {
    auto time = parseIsoTime(record["time"].get<std::string>());
    REQUIRE(time);
    CHECK(*time >= *window.from);
    CHECK(*time < *window.to);
  }

  ExportFilter internal;
  internal.includeInternal = true;
  std::ostringstream everything;
  auto withInternal = exportAudit(dir.path(), kKey, internal, ExportFormat::kJson, everything);
  REQUIRE(withInternal);
  CHECK(*withInternal > 60);
}

TEST_CASE("audit: export refuses a tampered log unless told not to verify") {
  TempDir dir;
  writeLog(dir.path());
  const std::string file = auditFiles(dir.path())[1];
  auto lines = readLines(file);
  lines.erase(lines.begin() + 3);
  writeLines(file, lines);
  std::ostringstream out;
  auto refused = exportAudit(dir.path(), kKey, ExportFilter{}, ExportFormat::kCsv, out);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error(), Catch::Contains("does not verify") && Catch::Contains(fileName(file) + ":4"));
  std::ostringstream anyway;
  auto exported = exportAudit(dir.path(), kKey, ExportFilter{}, ExportFormat::kCsv, anyway, false);
  REQUIRE(exported);
  CHECK(*exported >= 59);
  CHECK(*exported <= 60);
}
