#include "app/audit_commands.hpp"

#include <fstream>
#include <iostream>
#include <map>
#include <optional>

#include "app/data_protection_setup.hpp"
#include "audit/audit_export.hpp"
#include "audit/audit_verify.hpp"
#include "config/config.hpp"

namespace mcphost::app {

const char* const kAuditUsage =
    R"(  mcphost audit verify DIR (--config FILE | --key-file FILE)
      Check the audit log in DIR: every record's MAC, the hash chain across files, checkpoints,
      retention records and the head anchor. Names the first bad record (exit 1) or prints OK.
  mcphost audit export DIR (--config FILE | --key-file FILE) [--from TIME] [--to TIME]
                       [--user NAME] [--format csv|json] [--output FILE]
      Verify, then write the request records in [from, to) (ISO 8601, e.g. 2026-12-01 or
      2026-12-01T08:00:00Z) as CSV (default) or a JSON array.
)";

namespace {

struct AuditOptions {
  std::string directory;
  std::map<std::string, std::string> named;
  std::string error;
};

AuditOptions parse(const std::vector<std::string>& args) {
  static const std::map<std::string, bool> kKnown = {
      {"--config", true}, {"--key-file", true}, {"--from", true},  {"--to", true},
      {"--user", true},   {"--format", true},   {"--output", true}};
  AuditOptions o;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) == 0) {
      if (kKnown.count(args[i]) == 0) {
        o.error = "unknown option " + args[i];
        return o;
      }
      if (i + 1 >= args.size()) {
        o.error = "option " + args[i] + " needs a value";
        return o;
      }
      o.named[args[i]] = args[i + 1];
      ++i;
    } else if (o.directory.empty()) {
      o.directory = args[i];
    } else {
      o.error = "unexpected argument '" + args[i] + "'";
      return o;
    }
  }
  if (o.directory.empty() && o.error.empty()) o.error = "name the audit directory (DIR)";
  return o;
}

std::optional<std::string> keyFrom(const AuditOptions& o, std::string& error) {
  if (auto file = o.named.find("--key-file"); file != o.named.end()) {
    std::ifstream in(file->second, std::ios::binary);
    if (!in) {
      error = file->second + ": cannot read the audit key file";
      return std::nullopt;
    }
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  if (auto path = o.named.find("--config"); path != o.named.end()) {
    auto cfg = config::loadConfig(path->second);
    if (!cfg) {
      error = cfg.error();
      return std::nullopt;
    }
    auto key = loadAuditKey(*cfg, /*create=*/false);
    if (!key) {
      error = key.error();
      return std::nullopt;
    }
    return key.value();
  }
  error = "pass --config FILE (its audit.key or <state_dir>/audit.key) or --key-file FILE";
  return std::nullopt;
}

int verify(const AuditOptions& o, const std::string& key) {
  const auto report = audit::verifyAuditDirectory(o.directory, key);
  for (const auto& note : report.notes) std::cout << "note: " << note << "\n";
  if (!report.ok) {
    std::cout << "FAILED: " << report.problem << "\n";
    return 1;
  }
  std::cout << "OK: " << report.records << " records (seq " << report.firstSeq << ".." << report.lastSeq
            << ") in " << report.files << " file(s), " << report.checkpoints
            << " checkpoint(s); chain and MACs intact\n";
  return 0;
}

int exportRecords(const AuditOptions& o, const std::string& key) {
  audit::ExportFilter filter;
  for (const char* bound : {"--from", "--to"}) {
    auto it = o.named.find(bound);
    if (it == o.named.end()) continue;
    auto time = audit::parseIsoTime(it->second);
    if (!time) {
      std::cerr << "mcphost: " << bound << ": " << time.error() << "\n";
      return 2;
    }
    (std::string(bound) == "--from" ? filter.from : filter.to) = *time;
  }
  if (auto user = o.named.find("--user"); user != o.named.end()) filter.user = user->second;
  audit::ExportFormat format = audit::ExportFormat::kCsv;
  if (auto f = o.named.find("--format"); f != o.named.end()) {
    if (f->second == "json") {
      format = audit::ExportFormat::kJson;
    } else if (f->second != "csv") {
      std::cerr << "mcphost: --format must be csv or json\n";
      return 2;
    }
  }
  std::ofstream file;
  std::ostream* out = &std::cout;
  if (auto path = o.named.find("--output"); path != o.named.end()) {
    file.open(path->second, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "mcphost: " << path->second << ": cannot write the export\n";
      return 2;
    }
    out = &file;
  }
  auto written = audit::exportAudit(o.directory, key, filter, format, *out);
  if (!written) {
    std::cerr << "mcphost: audit export refused: " << written.error() << "\n";
    return 1;
  }
  out->flush();
  if (!*out) {
    std::cerr << "mcphost: the export could not be written completely\n";
    return 2;
  }
  std::cerr << "exported " << *written << " record(s)\n";
  return 0;
}

}  // namespace

int runAuditCommand(const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "verify" && args[0] != "export")) {
    std::cerr << "mcphost: audit needs verify or export\n\n" << kAuditUsage;
    return 2;
  }
  const auto options = parse(args);
  if (!options.error.empty()) {
    std::cerr << "mcphost: audit " << args[0] << ": " << options.error << "\n\n" << kAuditUsage;
    return 2;
  }
  if (args[0] == "verify") {
    for (const char* exportOnly : {"--from", "--to", "--user", "--format", "--output"}) {
      if (options.named.count(exportOnly) != 0) {
        std::cerr << "mcphost: audit verify: " << exportOnly << " is an export option\n";
        return 2;
      }
    }
  }
  std::string error;
  const auto key = keyFrom(options, error);
  if (!key) {
    std::cerr << "mcphost: " << error << "\n";
    return 2;
  }
  return args[0] == "verify" ? verify(options, *key) : exportRecords(options, *key);
}

}  // namespace mcphost::app
