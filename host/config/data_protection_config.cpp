#include "config/data_protection_config.hpp"

#include <regex>

#include "audit/postgres_sink.hpp"
#include "audit/syslog_sink.hpp"
#include "config/security_config.hpp"

namespace mcphost::config::detail {

namespace {

const std::regex kRuleName("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$");

void readGuard(Reader& r, const YAML::Node& node, Config& cfg) {
  r.allowKeys(node, "guard", {"validate_arguments", "scan_secrets"});
  r.read(node, "guard", "validate_arguments", cfg.guard.validateArguments);
  r.read(node, "guard", "scan_secrets", cfg.guard.scanSecrets);
}

void readDetectors(Reader& r, const YAML::Node& list, DataProtectionConfig& out) {
  if (!list.IsSequence()) {
    r.fail(list, "data_protection.detectors", "expected a list of {name, pattern, validator}");
    return;
  }
  for (std::size_t i = 0; i < list.size() && !r.failed(); ++i) {
    const YAML::Node d = list[i];
    const std::string path = "data_protection.detectors[" + std::to_string(i) + "]";
    r.allowKeys(d, path, {"name", "pattern", "validator"});
    DlpDetectorConfig detector;
    detector.line = d.Mark().line + 1;
    r.read(d, path, "name", detector.name);
    r.read(d, path, "pattern", detector.pattern);
    r.read(d, path, "validator", detector.validator);
    if (r.failed()) return;
    if (!std::regex_match(detector.name, kRuleName)) {
      r.fail(d, path + ".name", "required: letters, digits, '_', '.', '-' (at most 64)");
    } else if (detector.pattern.empty()) {
      r.fail(d, path + ".pattern", "required: an RE2 regular expression");
    } else if (!detector.validator.empty() && detector.validator != "luhn" && detector.validator != "iban") {
      r.fail(d["validator"], path + ".validator", "must be luhn or iban (or left out)");
    }
    out.detectors.push_back(std::move(detector));
  }
}

void readRules(Reader& r, const YAML::Node& list, DataProtectionConfig& out) {
  if (!list.IsSequence()) {
    r.fail(list, "data_protection.rules", "expected a list of rules");
    return;
  }
  for (std::size_t i = 0; i < list.size() && !r.failed(); ++i) {
    const YAML::Node n = list[i];
    const std::string path = "data_protection.rules[" + std::to_string(i) + "]";
    r.allowKeys(n, path,
                {"name", "detectors", "action", "connectors", "items", "pointers", "classifications"});
    DlpRuleConfig rule;
    rule.line = n.Mark().line + 1;
    r.read(n, path, "name", rule.name);
    r.readStrings(n, path, "detectors", rule.detectors);
    r.read(n, path, "action", rule.action);
    r.readStrings(n, path, "connectors", rule.connectors);
    r.readStrings(n, path, "items", rule.items);
    r.readStrings(n, path, "pointers", rule.pointers);
    r.readStrings(n, path, "classifications", rule.classifications);
    if (r.failed()) return;
    if (!std::regex_match(rule.name, kRuleName)) {
      r.fail(n, path + ".name", "required: letters, digits, '_', '.', '-' (at most 64); policy refers to it");
    } else if (rule.detectors.empty()) {
      r.fail(n, path + ".detectors", "required: detector names, or [\"*\"] for all");
    } else if (rule.action != "mask" && rule.action != "redact" && rule.action != "pseudonymize" &&
               rule.action != "block") {
      r.fail(n["action"], path + ".action", "must be mask, redact, pseudonymize or block");
    }
    for (const auto& other : out.rules) {
      if (!r.failed() && other.name == rule.name)
        r.fail(n, path + ".name",
               "'" + rule.name + "' is already used by the rule on line " + std::to_string(other.line));
    }
    out.rules.push_back(std::move(rule));
  }
}

void readAudit(Reader& r, const YAML::Node& node, Config& cfg) {
  AuditConfig& a = cfg.audit;
  r.allowKeys(node, "audit",
              {"enabled", "directory", "key", "fail_closed", "fsync", "fsync_interval", "max_file_size",
               "rotate_every", "retain_for", "retain_files", "checkpoint_every", "syslog", "postgresql"});
  a.enabled = true;
  r.read(node, "audit", "enabled", a.enabled);
  r.read(node, "audit", "directory", a.directory);
  if (const YAML::Node key = node["key"]; key && !r.failed()) readSecretSource(r, key, "audit.key", a.key);
  r.read(node, "audit", "fail_closed", a.failClosed);
  r.read(node, "audit", "fsync", a.fsync);
  if (!r.failed() && a.fsync != "every_batch" && a.fsync != "interval" && a.fsync != "never") {
    r.fail(node["fsync"], "audit.fsync",
           "must be every_batch (fdatasync before each response), interval (write before each response, "
           "fdatasync every fsync_interval) or never");
  }
  r.readDuration(node, "audit", "fsync_interval", a.fsyncInterval);
  if (const YAML::Node size = node["max_file_size"]; size && !r.failed()) {
    auto bytes = parseByteSize(size.IsScalar() ? size.Scalar() : "");
    if (!bytes || *bytes < 4096) {
      r.fail(size, "audit.max_file_size", bytes ? "must be at least 4096 bytes" : bytes.error());
    } else {
      a.maxFileBytes = *bytes;
    }
  }
  r.readDuration(node, "audit", "rotate_every", a.rotateEvery);
  r.readDuration(node, "audit", "retain_for", a.retainFor);
  r.read(node, "audit", "retain_files", a.retainFiles);
  r.read(node, "audit", "checkpoint_every", a.checkpointEvery);
  if (!r.failed() && a.checkpointEvery == 0)
    r.fail(node["checkpoint_every"], "audit.checkpoint_every", "must be at least 1");
  if (const YAML::Node syslog = node["syslog"]; syslog && !r.failed()) {
    r.allowKeys(syslog, "audit.syslog", {"target", "facility"});
    r.read(syslog, "audit.syslog", "target", a.syslogTarget);
    r.read(syslog, "audit.syslog", "facility", a.syslogFacility);
    audit::SyslogSettings probe;
    if (auto target = audit::parseSyslogTarget(a.syslogTarget, probe); !r.failed() && !target) {
      r.fail(syslog, "audit.syslog.target",
             target.error() + " (use udp://HOST:PORT, tcp://HOST:PORT or unix:/dev/log)");
    }
    if (auto facility = audit::parseSyslogFacility(a.syslogFacility); !r.failed() && !facility)
      r.fail(syslog["facility"], "audit.syslog.facility", facility.error());
  }
  if (const YAML::Node pg = node["postgresql"]; pg && !r.failed()) {
    r.allowKeys(pg, "audit.postgresql", {"conninfo", "password", "table"});
    r.read(pg, "audit.postgresql", "conninfo", a.postgresConninfo);
    if (const YAML::Node password = pg["password"]; password && !r.failed())
      readSecretSource(r, password, "audit.postgresql.password", a.postgresPassword);
    r.read(pg, "audit.postgresql", "table", a.postgresTable);
    if (!r.failed() && !audit::isValidAuditTableName(a.postgresTable)) {
      r.fail(pg["table"], "audit.postgresql.table",
             "must be a lowercase identifier such as mcphost_audit or audit.records");
    } else if (!r.failed() && a.postgresConninfo.empty()) {
      r.fail(pg, "audit.postgresql.conninfo",
             "required: e.g. \"host=127.0.0.1 port=5432 dbname=audit user=mcphost\"");
    } else if (!r.failed() && a.postgresConninfo.find("password") != std::string::npos) {
      r.fail(pg["conninfo"], "audit.postgresql.conninfo",
             "must not contain the password; use audit.postgresql.password: {env: VAR} or {file: PATH}");
    }
  }
  if (a.directory.empty()) a.directory = cfg.stateDir + "/audit";
  a.directory = besideConfig(cfg.path, a.directory);
  if (!a.key.file.empty()) a.key.file = besideConfig(cfg.path, a.key.file);
}

}  // namespace

Expected<std::uint64_t, std::string> parseByteSize(const std::string& value) {
  static const std::regex kSize("^([0-9]{1,12})\\s*(B|KB|KiB|MB|MiB|GB|GiB)?$");
  std::smatch m;
  if (!std::regex_match(value, m, kSize))
    return unexpected("'" + value + "' is not a size (use e.g. 4096, 512KiB, 64MiB, 1GiB)");
  const std::uint64_t n = std::stoull(m[1].str());
  const std::string unit = m[2].str();
  if (unit.empty() || unit == "B") return n;
  if (unit == "KB") return n * 1000;
  if (unit == "KiB") return n << 10;
  if (unit == "MB") return n * 1000 * 1000;
  if (unit == "MiB") return n << 20;
  if (unit == "GB") return n * 1000 * 1000 * 1000;
  return n << 30;
}

void readDataProtection(Reader& r, const YAML::Node& root, Config& cfg) {
  if (r.failed()) return;
  if (const YAML::Node guard = root["guard"]; guard) readGuard(r, guard, cfg);
  if (const YAML::Node dp = root["data_protection"]; dp && !r.failed()) {
    r.allowKeys(dp, "data_protection", {"detectors", "rules", "pseudonym_key"});
    if (dp["detectors"] && !r.failed()) readDetectors(r, dp["detectors"], cfg.dataProtection);
    if (dp["rules"] && !r.failed()) readRules(r, dp["rules"], cfg.dataProtection);
    if (const YAML::Node key = dp["pseudonym_key"]; key && !r.failed())
      readSecretSource(r, key, "data_protection.pseudonym_key", cfg.dataProtection.pseudonymKey);
    if (!cfg.dataProtection.pseudonymKey.file.empty())
      cfg.dataProtection.pseudonymKey.file = besideConfig(cfg.path, cfg.dataProtection.pseudonymKey.file);
  }
  if (const YAML::Node audit = root["audit"]; audit && !r.failed()) readAudit(r, audit, cfg);
  if (const YAML::Node residency = root["residency"]; residency && !r.failed()) {
    r.allowKeys(residency, "residency", {"attribute"});
    r.read(residency, "residency", "attribute", cfg.residencyAttribute);
    static const std::regex kAttribute("^[A-Za-z0-9_.:-]{1,64}$");
    if (!r.failed() && !std::regex_match(cfg.residencyAttribute, kAttribute))
      r.fail(residency["attribute"], "residency.attribute", "must name a principal attribute, e.g. region");
  }
}

}  // namespace mcphost::config::detail
