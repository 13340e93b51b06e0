// `mcphost audit verify DIR`: checks every record of an audit directory against the key and
// names the first bad one with file:line, seq and what kind of damage it shows.
//
// Streams the files line by line (bounded memory whatever their size; lines over 1 MiB are
// an error) in chain order and checks, per record: the sealed shape, the MAC, seq = previous + 1
// (a gap means deleted records; a repeat or step back means inserted or reordered ones), prev =
// the previous mac; per file: it starts with its file_start record, which names the file itself
// and the file before it with that file's last mac (so a missing or renamed file is named);
// checkpoints agree with their position. A chain that starts after seq 1 must be explained by a
// retention record listing the deleted file before it with its last mac. Finally the head
// anchor (audit.head) must not be ahead of the last record: if it is, records were cut off the
// tail. A partial last line in the newest file is accepted (with a note) only when the head
// anchor does not claim it: it is what a crash mid-write leaves, and it never had a response.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mcphost::audit {

struct VerifyReport {
  bool ok = false;
  std::uint64_t records = 0;  // records that verified
  std::size_t files = 0;
  std::uint64_t firstSeq = 0;
  std::uint64_t lastSeq = 0;
  std::uint64_t checkpoints = 0;
  // The first bad record: "audit-20261201T000000Z-000000000001.jsonl:17 (seq 17): MAC mismatch: ..."
  std::string problem;
  std::vector<std::string>
      notes;  // things that are not damage but worth saying (WARNING: ... for lost records)
};

VerifyReport verifyAuditDirectory(const std::string& directory, std::string_view key);

}  // namespace mcphost::audit
