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
};

// Loads and validates; the error text is ready to print ("FILE:LINE: key: problem").
Expected<Config, std::string> loadConfig(const std::string& path);
Expected<Config, std::string> parseConfig(const std::string& text, const std::string& sourceName);

// "HOST:PORT" as used by --listen and server.listen.
Expected<std::pair<std::string, std::uint16_t>, std::string> parseListen(const std::string& value);
// "250ms", "10s", "5m", "2h".
Expected<std::chrono::milliseconds, std::string> parseDuration(const std::string& value);

}  // namespace mcphost::config
