// The host's YAML configuration, validated as a whole at start-up. Every error names the file,
// the line and the key, so an operator can fix it without reading code.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace mcphost::config {

// Where a connector secret comes from; the value itself never appears in the config file.
struct SecretSource {
  std::string env;   // an environment variable of the host
  std::string file;  // a file readable by the host (e.g. /run/secrets/...)
};

struct ConnectorConfig {
  std::string id;
  // Data classification tags (e.g. pii, finance) that policy targets and conditions use.
  std::vector<std::string> tags;
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

struct Config {
  std::string path;
  std::string name = "mcphost";
  ServerConfig server;
  std::string logLevel = "info";
  bool accessLog = true;
  std::string separator = "__";
  std::size_t pageSize = 500;
  std::vector<ConnectorConfig> connectors;
  // Folders holding installed connectors (<dir>/<name>/connector.json); empty = the default
  // beside the binary (<prefix>/lib/mcphost/connectors).
  std::vector<std::string> connectorPaths;
  AuthConfig auth;
  std::string policyFile;   // absolute; empty = no policy (allowed only with auth off)
  bool policyWatch = true;  // reload when the file changes (SIGHUP always reloads)
  RateLimitConfig rateLimits;
  std::string stateDir;  // the host's state (API keys); default: beside the config, ./state
};

// Loads and validates; the error text is ready to print ("FILE:LINE: key: problem").
Expected<Config, std::string> loadConfig(const std::string& path);
Expected<Config, std::string> parseConfig(const std::string& text, const std::string& sourceName);

// "HOST:PORT" as used by --listen and server.listen.
Expected<std::pair<std::string, std::uint16_t>, std::string> parseListen(const std::string& value);
// "250ms", "10s", "5m", "2h".
Expected<std::chrono::milliseconds, std::string> parseDuration(const std::string& value);

}  // namespace mcphost::config
