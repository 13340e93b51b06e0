#include "audit/audit_chain.hpp"

#include <fcntl.h>

#include <catch2/catch.hpp>

#include "audit/audit_export.hpp"
#include "audit/audit_io.hpp"
#include "audit_test_util.hpp"
#include "common/crypto.hpp"

using namespace mcphost::audit;
using audit_test::kKey;

namespace {
std::chrono::system_clock::time_point at(std::int64_t micros) {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(micros));
}
}  // namespace

TEST_CASE("audit: a sealed line has the fixed member order and a recomputable MAC") {
  AuditChain chain(kKey, ChainState{});
  nlohmann::ordered_json fields;
  fields["zeta"] = "first";
  fields["alpha"] = 2;
  const SealedRecord first = chain.sealFields("request", fields, at(1796169599123456));
  CHECK(first.seq == 1);
  const std::string expectedBody =
      R"({"seq":1,"time":"2026-12-01T23:59:59.123456Z","type":"request","zeta":"first","alpha":2,"prev":")" +
      std::string(kGenesisMac) + "\"";
  REQUIRE(first.line.rfind(expectedBody, 0) == 0);
  const std::string mac = computeMac(kKey, kGenesisMac, expectedBody);
  CHECK(first.line == expectedBody + ",\"mac\":\"" + mac + "\"}");
  CHECK(mac == toHex(mcphost::hmacSha256(kKey, std::string(kGenesisMac) + "\n" + expectedBody)));

  const SealedRecord second = chain.seal("request", "", at(0));
  auto parsed = parseRecord(second.line);
  REQUIRE(parsed);
  CHECK(parsed->seq == 2);
  CHECK(parsed->prev == mac);
  CHECK(macValid(kKey, second.line, *parsed));
  CHECK_FALSE(macValid(audit_test::kOtherKey, second.line, *parsed));
  CHECK(chain.state().nextSeq == 3);
  CHECK(chain.state().lastMac == parsed->mac);
}

TEST_CASE("audit: changing any byte of a line breaks its MAC or its shape") {
  AuditChain chain(kKey, ChainState{});
  const std::string line = chain.sealFields("request", {{"principal", "alice"}}, at(0)).line;
  for (std::size_t i = 0; i < line.size(); ++i) {
    std::string changed = line;
    changed[i] = changed[i] == 'a' ? 'b' : 'a';
    auto parsed = parseRecord(changed);
    INFO("byte " << i);
    CHECK((!parsed || !macValid(kKey, changed, *parsed)));
  }
}

TEST_CASE("audit: parseRecord rejects lines out of the sealed order") {
  CHECK_FALSE(parseRecord("not json"));
  CHECK_FALSE(parseRecord(R"({"time":"x","seq":1,"type":"r","prev":"0","mac":"0"})"));
  AuditChain chain(kKey, ChainState{});
  std::string line = chain.seal("request", "", at(0)).line;
  CHECK(parseRecord(line));
  line.insert(line.size() - 1, " ");
  CHECK_FALSE(parseRecord(line));
}

TEST_CASE("audit: restore rolls the chain back for a failed batch") {
  AuditChain chain(kKey, ChainState{});
  chain.seal("request", "", at(0));
  const ChainState saved = chain.state();
  const SealedRecord lost = chain.seal("request", "", at(0));
  chain.restore(saved);
  const SealedRecord again = chain.seal("request", "", at(0));
  CHECK(again.seq == lost.seq);
  CHECK(again.line == lost.line);
}

TEST_CASE("audit: time formatting and ISO 8601 parsing") {
  CHECK(formatTime(at(0)) == "1970-01-01T00:00:00.000000Z");
  CHECK(formatTime(at(1796169599123456)) == "2026-12-01T23:59:59.123456Z");
  auto day = parseIsoTime("2026-12-01");
  REQUIRE(day);
  CHECK(formatTime(*day) == "2026-12-01T00:00:00.000000Z");
  auto full = parseIsoTime("2026-12-01T23:59:59.123456Z");
  REQUIRE(full);
  CHECK(*full == at(1796169599123456));
  auto offset = parseIsoTime("2026-12-02T01:30:00+02:00");
  REQUIRE(offset);
  CHECK(formatTime(*offset) == "2026-12-01T23:30:00.000000Z");
  auto minutes = parseIsoTime("2026-12-01T10:00Z");
  REQUIRE(minutes);
  CHECK(formatTime(*minutes) == "2026-12-01T10:00:00.000000Z");
  CHECK_FALSE(parseIsoTime("2026-13-01"));
  CHECK_FALSE(parseIsoTime("2026-02-30"));
  CHECK_FALSE(parseIsoTime("yesterday"));
  CHECK_FALSE(parseIsoTime("2026-12-01T10"));
  CHECK_FALSE(parseIsoTime("2026-12-01T10:00:00Zjunk"));
}

TEST_CASE("audit: file names sort by time and carry the first seq") {
  const std::string name = auditFileName(at(1796169599123456), 1017);
  CHECK(name == "audit-20261201T235959Z-000000001017.jsonl");
  auto parsed = parseAuditFileName(name);
  REQUIRE(parsed);
  CHECK(parsed->firstSeq == 1017);
  CHECK(parsed->start == std::chrono::system_clock::time_point(std::chrono::seconds(1796169599)));
  CHECK_FALSE(parseAuditFileName("audit.head"));
  CHECK_FALSE(parseAuditFileName("audit-20261201T235959Z-.jsonl"));
  CHECK_FALSE(parseAuditFileName("audit-2026120XT235959Z-000000000001.jsonl"));
}

TEST_CASE("audit: the line reader returns partial last lines and caps long lines") {
  audit_test::TempDir dir;
  const std::string path = dir.sub("lines");
  audit_test::writeAll(path, "one\n\nthree\npartial");
  LineReader reader(UniqueFd(::open(path.c_str(), O_RDONLY)));
  REQUIRE(reader.next() == LineReader::Result::kLine);
  CHECK(reader.line() == "one");
  REQUIRE(reader.next() == LineReader::Result::kLine);
  CHECK(reader.line().empty());
  REQUIRE(reader.next() == LineReader::Result::kLine);
  CHECK(reader.line() == "three");
  CHECK(reader.lineOffset() == 5);
  REQUIRE(reader.next() == LineReader::Result::kLine);
  CHECK(reader.line() == "partial");
  CHECK_FALSE(reader.complete());
  CHECK(reader.lineNumber() == 4);
  CHECK(reader.next() == LineReader::Result::kEnd);

  audit_test::writeAll(path, "short\n" + std::string(kMaxLineBytes + 10, 'x') + "\n");
  LineReader longReader(UniqueFd(::open(path.c_str(), O_RDONLY)));
  CHECK(longReader.next() == LineReader::Result::kLine);
  CHECK(longReader.next() == LineReader::Result::kTooLong);
}

TEST_CASE("audit: readFileTail finds the last complete line") {
  audit_test::TempDir dir;
  const std::string path = dir.sub("tail");
  const std::string big(200000, 'y');
  audit_test::writeAll(path, "first\n" + big + "\npart");
  UniqueFd fd(::open(path.c_str(), O_RDONLY));
  auto tail = readFileTail(fd.get(), path);
  REQUIRE(tail);
  CHECK(tail->lastLine == big);
  CHECK(tail->completeEnd == 6 + big.size() + 1);
  CHECK(tail->size == tail->completeEnd + 4);
  audit_test::writeAll(path, "only-partial");
  UniqueFd fd2(::open(path.c_str(), O_RDONLY));
  auto none = readFileTail(fd2.get(), path);
  REQUIRE(none);
  CHECK(none->lastLine.empty());
  CHECK(none->completeEnd == 0);
}

TEST_CASE("audit: CSV cells are quoted per RFC 4180 and formulas are neutralised") {
  CHECK(csvCell("plain") == "plain");
  CHECK(csvCell("a,b") == "\"a,b\"");
  CHECK(csvCell("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csvCell("line\nbreak") == "\"line\nbreak\"");
  CHECK(csvCell("=HYPERLINK(\"x\")") == "\"'=HYPERLINK(\"\"x\"\")\"");
  CHECK(csvCell("+1") == "'+1");
  CHECK(csvCell("-2") == "'-2");
  CHECK(csvCell("@SUM(A1)") == "'@SUM(A1)");
  CHECK(csvCell("-2", false) == "-2");
}
