#include "audit/audit_verify.hpp"

#include <fcntl.h>

#include <cerrno>
#include <map>
#include <optional>
#include <set>

#include "audit/audit_chain.hpp"
#include "audit/audit_io.hpp"
#include "audit/file_sink.hpp"

namespace mcphost::audit {

namespace {

std::optional<std::string> stringMember(const nlohmann::ordered_json& json, const char* name) {
  const auto it = json.find(name);
  if (it == json.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<std::uint64_t> unsignedMember(const nlohmann::ordered_json& json, const char* name) {
  const auto it = json.find(name);
  if (it == json.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<std::uint64_t>();
}

class Verifier {
 public:
  Verifier(std::string directory, std::string_view key) : directory_(std::move(directory)), key_(key) {}

  VerifyReport run();

 private:
  struct Deleted {
    std::uint64_t firstSeq = 0;
    std::uint64_t lastSeq = 0;
    std::string lastMac;
  };
  // The first file names a predecessor that is gone: a retention record must explain it.
  struct UnexplainedStart {
    std::string where;
    std::uint64_t seq = 0;
    std::string previousFile;
    std::string previousLastMac;
  };

  bool verifyFile(std::size_t index);
  bool checkRecord(std::size_t index, std::uint64_t lineNumber, std::string_view line, LineReader& reader);
  bool checkFileStart(std::size_t index, const ParsedRecord& record, const std::string& where);
  bool checkStartExplained();
  bool checkHead();
  bool fail(const std::string& where, const std::string& message) {
    report_.problem = where + ": " + message;
    return false;
  }

  std::string directory_;
  std::string_view key_;
  VerifyReport report_;
  std::vector<AuditFileName> files_;
  std::set<std::string> names_;
  std::optional<HeadAnchor> head_;
  std::string headProblem_;
  bool headSeen_ = false;
  std::optional<std::uint64_t> expectSeq_;
  std::string prevMac_;
  std::uint64_t fileFirstSeq_ = 0;
  std::optional<UnexplainedStart> unexplained_;
  std::map<std::string, Deleted> deleted_;
  std::string lastWhere_;  // file:line of the last good record, for problems after it
  std::uint64_t lastLine_ = 0;
};

VerifyReport Verifier::run() {
  // The anchor first: records it names were on disk before this scan began.
  auto head = readHeadAnchor(directory_, key_);
  if (head) {
    head_ = *head;
  } else {
    headProblem_ = head.error();
  }
  auto files = listAuditFiles(directory_);
  if (!files) {
    report_.problem = files.error();
    return report_;
  }
  files_ = std::move(*files);
  for (const auto& file : files_) names_.insert(file.name);
  report_.files = files_.size();
  if (files_.empty()) {
    if (head_) {
      fail(std::string(kHeadFileName), "there are no audit files, but the head anchor records seq " +
                                           std::to_string(head_->seq) + ": every record was removed");
      return report_;
    }
    report_.notes.emplace_back("no audit files in " + directory_);
  }
  for (std::size_t i = 0; i < files_.size(); ++i) {
    if (!verifyFile(i)) {
      if (unexplained_)
        report_.notes.push_back("also unverified: " + unexplained_->where + " continues from " +
                                unexplained_->previousFile + ", which is not in the directory");
      return report_;
    }
  }
  if (!checkStartExplained() || !checkHead()) return report_;
  report_.ok = true;
  return report_;
}

bool Verifier::verifyFile(std::size_t index) {
  const AuditFileName& file = files_[index];
  const std::string path = joinPath(directory_, file.name);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail(file.name, "cannot open: " + errnoText(errno));
  LineReader reader(std::move(fd));
  const bool newest = index + 1 == files_.size();
  for (;;) {
    const auto result = reader.next();
    const std::string where = file.name + ":" + std::to_string(reader.lineNumber());
    if (result == LineReader::Result::kEnd) break;
    if (result == LineReader::Result::kError)
      return fail(file.name, "cannot read: " + errnoText(reader.error()));
    if (result == LineReader::Result::kTooLong)
      return fail(where, "the line is longer than " + std::to_string(kMaxLineBytes) +
                             " bytes: corrupt or not an audit file");
    if (!reader.complete()) {
      if (!newest)
        return fail(
            where,
            "incomplete last line in a file that is not the newest: the file was truncated mid-record");
      // A crash mid-write leaves this; checkHead() makes sure no acknowledged record was cut.
      report_.notes.push_back(
          where + ": incomplete last line (" + std::to_string(reader.line().size()) +
          " bytes) ignored: a write in progress or a crash mid-write; opening the log removes it");
      break;
    }
    if (!checkRecord(index, reader.lineNumber(), reader.line(), reader)) return false;
    lastWhere_ = file.name;
    lastLine_ = reader.lineNumber();
  }
  if (reader.lineNumber() == 0) {
    if (!newest) return fail(file.name + ":1", "the file is empty: its records were removed");
    report_.notes.push_back(file.name + ": empty (created just before a crash); opening the log removes it");
  }
  return true;
}

bool Verifier::checkRecord(std::size_t index, std::uint64_t lineNumber, std::string_view line,
                           LineReader& reader) {
  const AuditFileName& file = files_[index];
  const std::string at = file.name + ":" + std::to_string(lineNumber);
  auto parsed = parseRecord(line);
  if (!parsed)
    return fail(at, "not a valid audit record (" + parsed.error() + "): the line was modified or is corrupt");
  const ParsedRecord& record = *parsed;
  const std::string where = at + " (seq " + std::to_string(record.seq) + ")";
  if (!macValid(key_, line, record)) {
    const auto writtenWith = stringMember(record.json, "key_id");
    if (writtenWith && *writtenWith != keyId(key_))
      return fail(where, "MAC mismatch: the log was written with key id " + *writtenWith +
                             " but the key given has id " + keyId(key_) + ": wrong key");
    return fail(where, "MAC mismatch: the record was modified or the key is wrong");
  }
  if (lineNumber == 1) {
    if (record.type != kTypeFileStart)
      return fail(where,
                  "the file does not begin with its file_start record: records were deleted from the "
                  "start of the file, or lines were moved into it");
    if (!checkFileStart(index, record, where)) return false;
    fileFirstSeq_ = record.seq;
  } else if (record.type == kTypeFileStart) {
    return fail(where, "a file_start record in the middle of a file: lines from another file were inserted");
  }
  if (expectSeq_) {
    const std::uint64_t expect = *expectSeq_;
    if (record.seq < expect)
      return fail(where, "seq " + std::to_string(record.seq) + " repeats or goes backwards (expected " +
                             std::to_string(expect) + "): a record was inserted or records were reordered");
    if (record.seq > expect) {
      // Deleted, or moved further down? Look ahead in this file for a missing seq.
      while (reader.next() == LineReader::Result::kLine && reader.complete()) {
        auto later = parseRecord(reader.line());
        if (later && later->seq >= expect && later->seq < record.seq)
          return fail(where, "records out of order: seq " + std::to_string(record.seq) + " is where seq " +
                                 std::to_string(expect) + " belongs, and seq " + std::to_string(later->seq) +
                                 " follows later: records were reordered or moved");
      }
      const std::string range = record.seq - expect == 1 ? "record " + std::to_string(expect) + " was"
                                                         : "records " + std::to_string(expect) + ".." +
                                                               std::to_string(record.seq - 1) + " were";
      return fail(where, "seq gap: expected seq " + std::to_string(expect) + ", found " +
                             std::to_string(record.seq) + ": " + range + " deleted");
    }
    if (record.prev != prevMac_)
      return fail(where, "prev does not match the mac of seq " + std::to_string(expect - 1) +
                             ": the chain is broken (a record was replaced or inserted)");
  }
  if (record.type == kTypeCheckpoint) {
    const auto named = stringMember(record.json, "file");
    const auto firstSeq = unsignedMember(record.json, "first_seq");
    const auto count = unsignedMember(record.json, "records_in_file");
    if (!named || *named != file.name || !firstSeq || *firstSeq != fileFirstSeq_ || !count ||
        *count != lineNumber - 1)
      return fail(where, "the checkpoint does not match its file (it names " + named.value_or("?") +
                             " with " + std::to_string(count.value_or(0)) + " records from seq " +
                             std::to_string(firstSeq.value_or(0)) + "): lines were moved or deleted");
    ++report_.checkpoints;
  } else if (record.type == kTypeRetention) {
    const auto it = record.json.find("deleted");
    if (it != record.json.end() && it->is_array()) {
      for (const auto& entry : *it) {
        if (!entry.is_object()) continue;
        const auto name = stringMember(entry, "file");
        if (!name) continue;
        deleted_[*name] = Deleted{unsignedMember(entry, "first_seq").value_or(0),
                                  unsignedMember(entry, "last_seq").value_or(0),
                                  stringMember(entry, "last_mac").value_or("")};
        if (names_.count(*name) > 0)
          report_.notes.push_back(
              where + ": retention lists " + *name +
              " as deleted but it is still there (a crash between the record and the deletion)");
      }
    }
  } else if (record.type == kTypeRecovered) {
    if (const auto bytes = unsignedMember(record.json, "truncated_bytes"))
      report_.notes.push_back(where + ": the host removed a partial last line (" + std::to_string(*bytes) +
                              " bytes) left by a crash mid-write; that record never had a response");
    const auto lostAfter = unsignedMember(record.json, "lost_after_seq");
    const auto lostThrough = unsignedMember(record.json, "lost_through_seq");
    if (lostAfter && lostThrough)
      report_.notes.push_back(
          "WARNING: " + where + ": when the host reopened the log, records " +
          std::to_string(*lostAfter + 1) + ".." + std::to_string(*lostThrough) +
          " named by the head anchor were missing (lost in a power failure without fsync, or removed)");
    if (record.json.contains("head_mismatch_seq"))
      report_.notes.push_back("WARNING: " + where +
                              ": when the host reopened the log, its last record differed from "
                              "the head anchor");
  }
  if (head_ && record.seq == head_->seq) {
    headSeen_ = true;
    if (record.mac != head_->mac)
      return fail(where, "this record differs from the one the head anchor records for seq " +
                             std::to_string(head_->seq) + ": the end of the log was rewritten");
  }
  if (report_.records == 0) report_.firstSeq = record.seq;
  ++report_.records;
  report_.lastSeq = record.seq;
  expectSeq_ = record.seq + 1;
  prevMac_ = record.mac;
  return true;
}

bool Verifier::checkFileStart(std::size_t index, const ParsedRecord& record, const std::string& where) {
  const AuditFileName& file = files_[index];
  const auto named = stringMember(record.json, "file");
  if (!named || *named != file.name)
    return fail(where, "file_start names the file " + named.value_or("?") + ": the file was renamed");
  if (record.seq != file.firstSeq)
    return fail(where, "the file name says its first seq is " + std::to_string(file.firstSeq) +
                           " but it starts at " + std::to_string(record.seq));
  const auto previousIt = record.json.find("previous_file");
  const bool hasPrevious = previousIt != record.json.end() && previousIt->is_string();
  const std::string previous = hasPrevious ? previousIt->get<std::string>() : std::string();
  const std::string previousMac = stringMember(record.json, "previous_last_mac").value_or("");
  if (index == 0) {
    if (!hasPrevious) {
      if (record.seq != 1 || record.prev != kGenesisMac)
        return fail(
            where, "the first file claims to start the log but its record is not seq 1 from the genesis mac");
    } else {
      unexplained_ = UnexplainedStart{where, record.seq, previous, previousMac};
    }
    return true;
  }
  const std::string& before = files_[index - 1].name;
  if (previous == before) {
    if (previousMac != prevMac_ || record.prev != prevMac_)
      return fail(where, "file_start does not carry the last mac of " + before +
                             ": the end of that file or this file start was altered");
    return true;
  }
  if (names_.count(previous) == 0) {
    const std::uint64_t lastKnown = expectSeq_ ? *expectSeq_ - 1 : 0;
    return fail(where, "the chain is broken between files: the previous file " + previous +
                           " is missing (deleted); records " + std::to_string(lastKnown + 1) + ".." +
                           std::to_string(record.seq - 1) + " are gone");
  }
  return fail(where, "file_start names the previous file " + previous + " but the file before it is " +
                         before + ": files were renamed or reordered");
}

bool Verifier::checkStartExplained() {
  if (!unexplained_) return true;
  const auto it = deleted_.find(unexplained_->previousFile);
  if (it == deleted_.end())
    return fail(unexplained_->where,
                "the chain starts at seq " + std::to_string(unexplained_->seq) + " after " +
                    unexplained_->previousFile +
                    ", which is missing, and no retention record lists it: earlier files were deleted");
  if (it->second.lastMac != unexplained_->previousLastMac || it->second.lastSeq + 1 != unexplained_->seq)
    return fail(unexplained_->where, "the retention record for " + unexplained_->previousFile +
                                         " does not match where the chain resumes (last seq " +
                                         std::to_string(it->second.lastSeq) + ")");
  report_.notes.push_back("the log starts at seq " + std::to_string(unexplained_->seq) +
                          ": earlier files were deleted by retention");
  return true;
}

bool Verifier::checkHead() {
  if (!headProblem_.empty()) return fail(std::string(kHeadFileName), headProblem_);
  if (!head_) {
    if (report_.records > 0)
      report_.notes.emplace_back("no head anchor (audit.head): truncation of the tail cannot be ruled out");
    return true;
  }
  if (head_->seq > report_.lastSeq) {
    const std::string where = (lastWhere_.empty() ? std::string("(no records)")
                                                  : lastWhere_ + ":" + std::to_string(lastLine_ + 1)) +
                              " (seq " + std::to_string(report_.lastSeq + 1) + ")";
    return fail(where, "missing: the log ends at seq " + std::to_string(report_.lastSeq) +
                           " but the head anchor records seq " + std::to_string(head_->seq) +
                           ": records after seq " + std::to_string(report_.lastSeq) +
                           " were removed (the tail was truncated)");
  }
  if (!headSeen_)
    report_.notes.push_back("the head anchor's record (seq " + std::to_string(head_->seq) +
                            ") is no longer in the directory");
  return true;
}

}  // namespace

VerifyReport verifyAuditDirectory(const std::string& directory, std::string_view key) {
  try {
    return Verifier(directory, key).run();
  } catch (const std::exception& e) {  // allocation failure or a JSON type error: report, never throw
    VerifyReport report;
    report.problem = std::string("verify failed: ") + e.what();
    return report;
  }
}

}  // namespace mcphost::audit
