// The host's YAML configuration, validated as a whole at start-up. Every error names the file,
// the line and the key, so an operator can fix it without reading code.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace mcphost::config {

struct ConnectorConfig {
  std::string id;
  std::string type;  // "builtin:conformance" today
  bool prefix = true;
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
};

// Loads and validates; the error text is ready to print ("FILE:LINE: key: problem").
Expected<Config, std::string> loadConfig(const std::string& path);
Expected<Config, std::string> parseConfig(const std::string& text, const std::string& sourceName);

// "HOST:PORT" as used by --listen and server.listen.
Expected<std::pair<std::string, std::uint16_t>, std::string> parseListen(const std::string& value);
// "250ms", "10s", "5m", "2h".
Expected<std::chrono::milliseconds, std::string> parseDuration(const std::string& value);

}  // namespace mcphost::config
