#include "app/data_protection_setup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "audit/audit_log.hpp"
#include "audit/postgres_sink.hpp"
#include "audit/syslog_sink.hpp"
#include "common/crypto.hpp"
#include "config/secret_reader.hpp"
#include "dlp/dlp_engine.hpp"
#include "guard/argument_validator.hpp"
#include "observe/log.hpp"

namespace mcphost::app {

namespace {

constexpr std::size_t kMinKeyBytes = 32;

Expected<dlp::Settings, std::string> dlpSettings(const config::Config& config) {
  const auto& dp = config.dataProtection;
  dlp::Settings settings;
  for (const auto& d : dp.detectors) settings.detectors.push_back({d.name, d.pattern, d.validator});
  bool pseudonymizes = false;
  for (const auto& r : dp.rules) {
    dlp::RuleConfig rule;
    rule.name = r.name;
    rule.detectors = r.detectors;
    rule.action = dlp::parseAction(r.action).value_or(dlp::Action::kMask);
    rule.connectors = r.connectors;
    rule.items = r.items;
    rule.pointers = r.pointers;
    rule.classifications = r.classifications;
    pseudonymizes = pseudonymizes || rule.action == dlp::Action::kPseudonymize;
    settings.rules.push_back(std::move(rule));
  }
  if (pseudonymizes) {
    if (!config::isSet(dp.pseudonymKey)) {
      return unexpected(std::string(
          "data_protection.pseudonym_key is required when a rule pseudonymizes: {env: VAR} or {file: PATH} "
          "holding at least 32 random bytes (e.g. `openssl rand -hex 32`)"));
    }
    auto key = config::readSecret("data_protection.pseudonym_key", dp.pseudonymKey);
    if (!key) return unexpected(key.error());
    if (key->size() < kMinKeyBytes)
      return unexpected(std::string("data_protection.pseudonym_key must hold at least 32 bytes"));
    settings.pseudonymKey = std::move(key.value());
  }
  settings.scanInboundSecrets = config.guard.scanSecrets;
  return settings;
}

audit::AuditSettings auditSettings(const config::Config& config, std::string key) {
  const auto& a = config.audit;
  audit::AuditSettings s;
  s.directory = a.directory;
  s.key = std::move(key);
  s.maxFileBytes = a.maxFileBytes;
  s.rotateEvery = std::chrono::duration_cast<std::chrono::seconds>(a.rotateEvery);
  s.retainFor = std::chrono::duration_cast<std::chrono::seconds>(a.retainFor);
  s.retainFiles = a.retainFiles;
  s.fsync = a.fsync == "every_batch" ? audit::AuditSettings::Fsync::kEveryBatch
            : a.fsync == "never"     ? audit::AuditSettings::Fsync::kNever
                                     : audit::AuditSettings::Fsync::kInterval;
  s.fsyncInterval = a.fsyncInterval;
  s.checkpointEvery = a.checkpointEvery;
  s.hostVersion = MCPHOST_VERSION;
  return s;
}

}  // namespace

Expected<std::string, std::string> loadAuditKey(const config::Config& config, bool create) {
  if (config::isSet(config.audit.key)) {
    auto key = config::readSecret("audit.key", config.audit.key);
    if (!key) return key;
    if (key->size() < kMinKeyBytes) return unexpected(std::string("audit.key must hold at least 32 bytes"));
    return key;
  }
  const std::string path = config.stateDir + "/audit.key";
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (key.size() < kMinKeyBytes)
      return unexpected(path + ": the audit key is shorter than 32 bytes; restore it from backup");
    return key;
  }
  if (!create) {
    return unexpected(path + ": no audit key (pass --key-file, or set audit.key in the configuration)");
  }
  std::error_code ec;
  std::filesystem::create_directories(config.stateDir, ec);
  const std::string key = toHex(randomBytes(kMinKeyBytes));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return unexpected(path + ": cannot create the audit key: " + std::strerror(errno));
  const bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return unexpected(path + ": cannot write the audit key: " + std::strerror(errno));
  log::warn("audit", "created a new audit key; back it up; without it the log cannot be verified",
            {{"file", path}});
  return key;
}

Expected<protocol::DataGuards, std::string> buildDataGuards(const config::Config& config) {
  protocol::DataGuards guards;
  if (config.guard.validateArguments) guards.validator = std::make_shared<guard::ArgumentValidator>();
  auto settings = dlpSettings(config);
  if (!settings) return unexpected(config.path + ": " + settings.error());
  auto engine = dlp::Engine::create(*settings);
  if (!engine) return unexpected(config.path + ": data_protection: " + engine.error());
  guards.dlp = std::move(engine.value());
  if (!config.audit.enabled) return guards;
  auto key = loadAuditKey(config, /*create=*/true);
  if (!key) return unexpected(key.error());
  std::vector<std::unique_ptr<audit::AuditSink>> sinks;
  if (!config.audit.syslogTarget.empty()) {
    audit::SyslogSettings syslog;
    if (auto target = audit::parseSyslogTarget(config.audit.syslogTarget, syslog); !target)
      return unexpected(config.path + ": audit.syslog.target: " + target.error());
    auto facility = audit::parseSyslogFacility(config.audit.syslogFacility);
    if (!facility) return unexpected(config.path + ": audit.syslog.facility: " + facility.error());
    syslog.facility = *facility;
    auto sink = audit::SyslogSink::create(std::move(syslog));
    if (!sink) return unexpected(config.path + ": audit.syslog: " + sink.error());
    sinks.push_back(std::move(sink.value()));
  }
  if (!config.audit.postgresConninfo.empty()) {
    std::string conninfo = config.audit.postgresConninfo;
    if (config::isSet(config.audit.postgresPassword)) {
      auto password = config::readSecret("audit.postgresql.password", config.audit.postgresPassword);
      if (!password) return unexpected(password.error());
      // libpq conninfo quoting: single quotes, with ' and \ escaped by a backslash.
      std::string quoted;
      for (char c : *password) {
        if (c == '\'' || c == '\\') quoted += '\\';
        quoted += c;
      }
      conninfo += " password='" + quoted + "'";
    }
    audit::PostgresSettings postgres;
    postgres.conninfo = std::move(conninfo);
    postgres.table = config.audit.postgresTable;
    auto sink = audit::PostgresSink::create(std::move(postgres));
    if (!sink) return unexpected(config.path + ": audit.postgresql: " + sink.error());
    sinks.push_back(std::move(sink.value()));
  }
  auto opened = audit::AuditLog::open(auditSettings(config, std::move(key.value())), std::move(sinks));
  if (!opened && config.audit.failClosed) {
    return unexpected("audit: " + opened.error() +
                      " (audit.fail_closed is on, so the host does not start without its audit log)");
  }
  if (!opened) {
    log::error("audit",
               "the audit log cannot be opened; serving WITHOUT an audit trail (audit.fail_closed is off)",
               {{"error", opened.error()}, {"directory", config.audit.directory}});
    return guards;
  }
  guards.audit = std::shared_ptr<audit::AuditLog>(std::move(opened.value()));
  guards.auditFailClosed = config.audit.failClosed;
  return guards;
}

}  // namespace mcphost::app
