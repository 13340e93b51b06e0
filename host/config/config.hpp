// The host's YAML configuration, validated as a whole at start-up. Every error names the file,
// the line and the key, so an operator can fix it without reading code.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace mcphost::config {

// Where a connector secret comes from; the value itself never appears in the config file.
struct SecretSource {
  std::string env;   // an environment variable of the host
  std::string file;  // a file readable by the host (e.g. /run/secrets/...)
};

// Data residency: the tag a connector instance of one region carries ("region:eu"), for policy
// targets.tags and `target.tags` expressions.
inline std::string regionTag(const std::string& region) {
  return "region:" + region;
}

// One region's instance of a connector with `regions:`: what it changes of the base entry.
// Everything else (type, connector, timeouts, sandbox, tags...) is shared by all regions.
struct RegionConfig {
  std::string name;                                    // [a-z0-9-]{1,32}
  nlohmann::json settings = nlohmann::json::object();  // native: merged shallowly over `config`
  std::map<std::string, SecretSource> secrets;         // merged over the base secrets by name
  std::string url;                                     // remote: replaces the base url when set
  std::map<std::string, std::string> headers;          // remote: merged over the base headers
  std::string command;                                 // stdio: replaces the base command when set
  std::optional<std::vector<std::string>> args;        // stdio: replaces the base args when set
  std::map<std::string, std::string> env;              // stdio: merged over the base env
  int line = 0;
};

struct ConnectorConfig {
  std::string id;
  // Data classification tags (e.g. pii, finance) that policy targets and conditions use. A
  // single-region instance (`region:`) also carries regionTag(region) here; the per-region
  // instances of `regions:` get theirs at routing time (the base tags are shared).
  std::vector<std::string> tags;
  // Data residency. `region`: the one region this instance's data lives in (only a tag; it
  // does not route). `regions`: per-region instances of the same connector, exposed under one
  // id; each call goes to the instance of the caller's region attribute (a caller whose region
  // has none is refused), callers without the attribute to default_region or else refused.
  // The two are mutually exclusive.
  std::string region;
  std::vector<RegionConfig> regions;  // in file order
  std::string defaultRegion;          // one of regions; empty = callers without a region are refused
  // RFC 8693: trade the caller's bearer token for one bound to this audience before each call,
  // and hand that token (not the client's) to the connector.
  std::string tokenExchangeAudience;
  // "native": a connector library in a sandboxed worker; "stdio": an external MCP server
  // speaking the stdio transport, run as a sandboxed worker; "remote": an upstream Streamable
  // HTTP MCP server federated into the catalog.
  std::string type = "native";
  std::string connector;  // native: installed connector name, found on connector_paths
  std::string manifest;   // native: or an explicit connector.json (absolute, or relative to the config)
  std::string command;    // stdio: the program (searched on PATH) ...
  std::vector<std::string> args;           // ... its arguments
  std::map<std::string, std::string> env;  // stdio: the environment it gets (nothing else is passed)
  std::vector<std::string> readPaths;      // stdio: extra read-only paths for its sandbox
  std::vector<std::string> writePaths;     // stdio: read-write paths for its sandbox
  std::string network = "none";            // stdio: "none" or "host"
  std::string url;                         // remote: the upstream MCP endpoint (http:// or https://)
  std::map<std::string, std::string>
      headers;  // remote: extra request headers; a value "secret:NAME" is read from secrets
  bool prefix = true;
  nlohmann::json settings =
      nlohmann::json::object();  // the instance's `config:`, checked against the manifest
  std::map<std::string, SecretSource> secrets;
  std::size_t workers = 1;
  std::chrono::milliseconds startTimeout{10000};
  std::chrono::milliseconds callTimeout{60000};
  std::chrono::milliseconds taskTimeout{600000};  // the task store keeps a task 10 minutes
  std::chrono::milliseconds cancelGrace{2000};
  std::chrono::milliseconds pingInterval{5000};
  std::chrono::milliseconds backoff{500};
  std::chrono::milliseconds backoffMax{60000};
  int crashLoopCount = 5;
  std::chrono::milliseconds crashLoopWindow{60000};
  std::uint64_t recycleAfterCalls = 0;
  std::chrono::milliseconds recycleAfterIdle{0};
  bool sandbox = true;  // false only for debugging a connector; logged loudly
  int line = 0;
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8765;
  std::string endpoint = "/mcp";
  std::vector<std::string> allowedHosts;
  std::vector<std::string> allowedOrigins;
  bool dnsRebindingProtection = true;
  std::size_t maxBodyBytes = std::size_t{4} << 20;
  int maxJsonDepth = 64;
  std::chrono::milliseconds sessionIdleTimeout{std::chrono::minutes(30)};
  std::size_t maxSessions = 100000;
  std::size_t workerThreads = 32;
  std::chrono::milliseconds requestReadTimeout{std::chrono::seconds(10)};
  std::chrono::milliseconds idleConnectionTimeout{std::chrono::seconds(120)};
  std::size_t maxConnections = 20000;
  std::chrono::milliseconds clientRequestTimeout{std::chrono::seconds(60)};
  bool resumableResponses = true;
  // TLS on the listener; enabled when both files are set.
  std::string tlsCertificateFile;
  std::string tlsPrivateKeyFile;
  std::string tlsMinVersion = "1.2";
  // mTLS: client certificates are requested and verified against this CA when set.
  std::string tlsClientCaFile;
  bool tlsClientCertRequired = false;  // refuse TLS handshakes without a client certificate
};

// One OAuth 2.1 / OIDC authorization server whose bearer JWTs this resource server accepts.
struct OAuthProviderConfig {
  std::string issuer;
  std::string audience;  // default: auth.resource
  std::string jwksUri;   // default: discovered from the issuer metadata
  std::vector<std::string> algorithms = {"RS256", "ES256"};
  SecretSource hmacSecret;  // HS256 only when set
  std::chrono::milliseconds clockSkew{60000};
  std::vector<std::string> requiredScopes;
  std::map<std::string, std::string> claims;  // subject, name, groups, roles, tenant -> claim name
  std::string caFile;
  std::chrono::milliseconds jwksTtl{600000};
  std::chrono::milliseconds timeout{5000};
  // RFC 8693 token exchange at this issuer (for connectors with token_exchange).
  std::string tokenEndpoint;
  std::string clientId;
  SecretSource clientSecret;
  int line = 0;
};

struct LdapConfig {
  bool enabled = false;
  std::string url;
  bool startTls = false;
  std::string caFile;
  bool verifyCertificate = true;
  std::string bindDn;
  SecretSource bindPassword;
  std::string userBase;
  std::string userFilter = "(uid={username})";
  std::string bindDnTemplate;
  std::string groupMode = "search";  // none, member_of, search
  std::string groupBase;
  std::string groupFilter = "(&(objectClass=groupOfNames)(member={dn}))";
  std::string groupNameAttribute = "cn";
  bool nestedGroups = false;
  std::map<std::string, std::vector<std::string>> groupRoles;
  std::string displayNameAttribute = "displayName";
  std::string tenantAttribute;
  std::vector<std::string> attributes = {"mail"};
  std::size_t poolSize = 4;
  std::chrono::milliseconds timeout{5000};
};

// How a verified client certificate becomes a principal: the first rule whose match holds.
struct MtlsRule {
  std::map<std::string, std::string> match;  // subject_cn, san_dns, san_uri, san_email, issuer_cn -> glob
  std::string subject = "{subject_cn}";      // template over the same fields
  std::vector<std::string> groups;
  std::vector<std::string> roles;
  std::string tenant;
  int line = 0;
};

struct AuthConfig {
  bool enabled = false;  // an `auth:` section with at least one provider
  // The canonical resource URI of this MCP server (RFC 8707 / RFC 9728); tokens must be for it.
  std::string resource;
  bool anonymousNonLoopback = false;  // auth.anonymous: accept unauthenticated callers off loopback
  std::vector<OAuthProviderConfig> oauth;
  bool apiKeys = false;
  std::string apiKeyDatabase;  // default: <state_dir>/api-keys.db
  LdapConfig ldap;
  bool basicOverPlainHttp = false;  // LDAP passwords over plain HTTP from non-loopback peers
  std::vector<MtlsRule> mtlsRules;
  std::string failuresPerIp = "30/min";
  std::string failuresPerUser = "10/min";
  std::vector<std::string> stdioGroups;  // groups of the local user on the stdio transport
};

struct RateLimitConfig {
  std::string perPrincipal;  // e.g. "50/s"; empty = unlimited
  double perPrincipalBurst = 0;
  std::map<std::string, std::string> perConnector;  // connector id or "*" -> rate
  std::map<std::string, std::string> perTool;       // exposed tool name or "*" -> rate
};

// Input checks before a connector sees a call.
struct GuardConfig {
  bool validateArguments = true;  // tools/call arguments against the tool's inputSchema
  bool scanSecrets = false;       // refuse arguments that carry keys, tokens or passwords
};

// Data-loss prevention on results (host/dlp): custom detectors and masking rules.
struct DlpDetectorConfig {
  std::string name;
  std::string pattern;    // RE2 syntax
  std::string validator;  // "", "luhn", "iban"
  int line = 0;
};
struct DlpRuleConfig {
  std::string name;
  std::vector<std::string> detectors;  // names, or "*"
  std::string action = "mask";         // mask, redact, pseudonymize, block
  std::vector<std::string> connectors;
  std::vector<std::string> items;     // tool/prompt names or resource URIs (globs)
  std::vector<std::string> pointers;  // JSON pointers into structuredContent
  std::vector<std::string> classifications;
  int line = 0;
};
struct DataProtectionConfig {
  std::vector<DlpDetectorConfig> detectors;
  std::vector<DlpRuleConfig> rules;
  SecretSource pseudonymKey;
};

// Tamper-evident audit log (host/audit).
struct AuditConfig {
  bool enabled = false;   // an `audit:` section is present
  std::string directory;  // default: <state_dir>/audit
  SecretSource key;       // default: <state_dir>/audit.key, created on first start
  bool failClosed = true;
  std::string fsync = "interval";  // every_batch, interval, never
  std::chrono::milliseconds fsyncInterval{100};
  std::uint64_t maxFileBytes = std::uint64_t{64} << 20;
  std::chrono::milliseconds rotateEvery{std::chrono::hours(24)};
  std::chrono::milliseconds retainFor{0};
  std::size_t retainFiles = 0;
  std::uint64_t checkpointEvery = 1000;
  // syslog (RFC 5424): "udp://127.0.0.1:514", "tcp://HOST:PORT" or "unix:/dev/log"; empty = off
  std::string syslogTarget;
  std::string syslogFacility = "authpriv";
  // PostgreSQL: a libpq connection string without the password, which comes from a secret.
  std::string postgresConninfo;
  SecretSource postgresPassword;
  std::string postgresTable = "mcphost_audit";
};

struct Config {
  std::string path;
  std::string name = "mcphost";
  ServerConfig server;
  std::string logLevel = "info";
  bool accessLog = true;
  std::string separator = "__";
  std::size_t pageSize = 500;
  std::vector<ConnectorConfig> connectors;
  // The principal attribute (principal.attributes[...]) that names the caller's region, for
  // connectors with per-region instances.
  std::string residencyAttribute = "region";
  // Folders holding installed connectors (<dir>/<name>/connector.json); empty = the default
  // beside the binary (<prefix>/lib/mcphost/connectors).
  std::vector<std::string> connectorPaths;
  AuthConfig auth;
  std::string policyFile;   // absolute; empty = no policy (allowed only with auth off)
  bool policyWatch = true;  // reload when the file changes (SIGHUP always reloads)
  RateLimitConfig rateLimits;
  std::string stateDir;  // the host's state (API keys); default: beside the config, ./state
  GuardConfig guard;
  DataProtectionConfig dataProtection;
  AuditConfig audit;
};

// Loads and validates; the error text is ready to print ("FILE:LINE: key: problem").
Expected<Config, std::string> loadConfig(const std::string& path);
Expected<Config, std::string> parseConfig(const std::string& text, const std::string& sourceName);

// "HOST:PORT" as used by --listen and server.listen.
Expected<std::pair<std::string, std::uint16_t>, std::string> parseListen(const std::string& value);
// "250ms", "10s", "5m", "2h".
Expected<std::chrono::milliseconds, std::string> parseDuration(const std::string& value);

}  // namespace mcphost::config
