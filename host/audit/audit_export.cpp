#include "audit/audit_export.hpp"

#include <fcntl.h>

#include <array>
#include <cerrno>
#include <limits>

#include "audit/audit_io.hpp"
#include "audit/audit_verify.hpp"

namespace mcphost::audit {

namespace {

constexpr std::array<const char*, 19> kColumns = {
    "time",       "seq",           "correlation_id", "principal", "auth_method", "source_ip", "session",
    "method",     "connector",     "target",         "decision",  "rule",        "status",    "error_code",
    "latency_us", "request_bytes", "response_bytes", "dlp",       "args_sha256"};

// "detector:count;..." from [{"detector":..,"count":..}] or {"detector": count}.
std::string compactDlp(const nlohmann::ordered_json& dlp) {
  std::string out;
  auto add = [&](const std::string& name, const nlohmann::ordered_json& count) {
    if (!out.empty()) out += ';';
    out += name;
    out += ':';
    out += count.is_string() ? count.get<std::string>() : dumpJson(count);
  };
  if (dlp.is_array()) {
    for (const auto& item : dlp) {
      if (item.is_object() && item.contains("detector") && item["detector"].is_string()) {
        add(item["detector"].get<std::string>(),
            item.contains("count") ? item["count"] : nlohmann::ordered_json(1));
      } else if (item.is_string()) {
        add(item.get<std::string>(), nlohmann::ordered_json(1));
      }
    }
  } else if (dlp.is_object()) {
    for (const auto& [name, count] : dlp.items()) add(name, count);
  } else if (!dlp.is_null()) {
    out = dumpJson(dlp);
  }
  return out;
}

std::string cellFor(const ParsedRecord& record, std::string_view column) {
  if (column == "time") return csvCell(record.time);
  if (column == "seq") return std::to_string(record.seq);
  if (column == "dlp") {
    const auto it = record.json.find("dlp");
    return it == record.json.end() ? std::string() : csvCell(compactDlp(*it));
  }
  const auto it = record.json.find(std::string(column));
  if (it == record.json.end() || it->is_null()) return {};
  if (it->is_string()) return csvCell(it->get<std::string>());
  if (it->is_number_unsigned() || it->is_number_integer()) return csvCell(dumpJson(*it), false);
  return csvCell(dumpJson(*it));
}

void writeCsvRow(std::ostream& out, const ParsedRecord& record) {
  for (std::size_t i = 0; i < kColumns.size(); ++i) {
    if (i > 0) out << ',';
    out << cellFor(record, kColumns[i]);
  }
  out << "\r\n";
}

}  // namespace

std::string csvCell(std::string_view text, bool neutralise) {
  std::string cell;
  if (neutralise && !text.empty() &&
      (text[0] == '=' || text[0] == '+' || text[0] == '-' || text[0] == '@' || text[0] == '\t' ||
       text[0] == '\r'))
    cell += '\'';
  cell.append(text);
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string quoted = "\"";
  for (char c : cell) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

Expected<std::size_t, std::string> exportAudit(const std::string& directory, std::string_view key,
                                               const ExportFilter& filter, ExportFormat format,
                                               std::ostream& out, bool verifyFirst) {
  try {
    std::uint64_t lastSeq = std::numeric_limits<std::uint64_t>::max();
    if (verifyFirst) {
      const VerifyReport report = verifyAuditDirectory(directory, key);
      if (!report.ok)
        return unexpected("refusing to export: the audit log does not verify: " + report.problem);
      lastSeq = report.lastSeq;  // later records were not verified
    }
    auto files = listAuditFiles(directory);
    if (!files) return unexpected(files.error());
    if (format == ExportFormat::kCsv) {
      for (std::size_t i = 0; i < kColumns.size(); ++i) out << (i > 0 ? "," : "") << kColumns[i];
      out << "\r\n";
    } else {
      out << "[";
    }
    std::size_t written = 0;
    bool done = false;
    for (const auto& file : *files) {
      if (done) break;
      const std::string path = joinPath(directory, file.name);
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return unexpected("cannot open " + path + ": " + errnoText(errno));
      LineReader reader(std::move(fd));
      for (;;) {
        const auto result = reader.next();
        if (result == LineReader::Result::kEnd) break;
        if (result == LineReader::Result::kError)
          return unexpected("cannot read " + path + ": " + errnoText(reader.error()));
        if (result == LineReader::Result::kTooLong || !reader.complete()) continue;
        auto record = parseRecord(reader.line());
        if (!record) continue;
        if (record->seq > lastSeq) {
          done = true;
          break;
        }
        if (!filter.includeInternal && isInternalType(record->type)) continue;
        if (filter.from || filter.to) {
          auto time = parseIsoTime(record->time);
          if (!time) continue;
          if (filter.from && *time < *filter.from) continue;
          if (filter.to && *time >= *filter.to) continue;
        }
        if (!filter.user.empty()) {
          const auto principal = record->json.find("principal");
          if (principal == record->json.end() || !principal->is_string() ||
              principal->get<std::string>() != filter.user)
            continue;
        }
        if (format == ExportFormat::kCsv) {
          writeCsvRow(out, *record);
        } else {
          out << (written > 0 ? ",\n" : "\n") << reader.line();
        }
        ++written;
      }
    }
    if (format == ExportFormat::kJson) out << (written > 0 ? "\n]\n" : "]\n");
    out.flush();
    if (!out) return unexpected(std::string("cannot write the export: the output stream failed"));
    return written;
  } catch (const std::exception& e) {
    return unexpected(std::string("export failed: ") + e.what());
  }
}

}  // namespace mcphost::audit
