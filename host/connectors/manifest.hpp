// The manifest (connector.json) that ships beside each connector library. The host checks it, the
// library's SHA-256 and file permissions, the plugin ABI range and each connector instance's
// config BEFORE any vendor code runs, so a wrong or tampered connector fails with a message that
// says what to fix instead of crashing a worker.
//
// connector.json (keys are camelCase, like MCP's; unknown keys are errors so typos do not pass):
//   {
//     "manifestVersion": 1,                      required, this host reads version 1
//     "name": "postgres",                        required, [a-z0-9][a-z0-9_-]{0,63}
//     "version": "1.2.0",                        required, semantic version (1.2.0, 2.0.0-rc.1+b5)
//     "description": "PostgreSQL databases",     optional
//     "library": "libmcphost_postgres.so",       required, relative to this file's directory and
//                                                inside it (no "..", not absolute)
//     "sha256": "<64 hex digits>",               required, digest of the library file
//     "abi": {"major": 1, "minMinor": 0},        required: the plugin ABI the library was built for
//     "secrets": [{"name": "password", "description": "...", "required": true}],
//                                                optional; name [A-Za-z_][A-Za-z0-9_.-]{0,63},
//                                                required defaults to true
//     "configSchema": {"type": "object", ...},   optional JSON Schema (draft-07) for an instance's
//                                                config; default {"type": "object"}
//     "sandbox": {                               optional
//       "network": "none" | "egress",            default: "none" without egress, else "egress"
//       "egress": ["db.internal:5432", "*.example.com:443", "10.0.0.5", "[::1]:8080"],
//                                                host[:port]; no port means any port
//       "readPaths": ["/etc/ssl/certs"],         absolute paths the connector reads
//       "writePaths": ["/var/lib/mcphost/pg"]},  absolute paths it writes ("/" is refused)
//     "resources": {                             optional; 0 or absent: the host's default applies
//       "memory": "256MiB", "addressSpace": "4GiB",   bytes, or a string with KiB/MiB/GiB/TiB
//       "cpuSeconds": 0, "openFiles": 256, "processes": 0},
//     "concurrent": false                        optional: the library handles parallel calls
//   }
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace mcphost::connectors {

inline constexpr int kManifestVersion = 1;

struct SecretDecl {
  std::string name;
  std::string description;
  bool required = true;
};

struct ResourceLimits {  // 0: not requested, the host's default applies
  std::uint64_t memoryBytes = 0;
  std::uint64_t addressSpaceBytes = 0;
  std::uint64_t cpuSeconds = 0;
  std::uint64_t maxOpenFiles = 0;
  std::uint64_t maxProcesses = 0;
};

struct ConnectorManifest {
  std::string path;  // the manifest file, absolute
  std::string name;
  std::string version;
  std::string description;
  std::string library;  // absolute: the manifest's directory joined with the declared file
  std::string sha256;   // lowercase hex
  std::uint32_t abiMajor = 0;
  std::uint32_t abiMinMinor = 0;
  std::vector<SecretDecl> secrets;
  nlohmann::json configSchema = {{"type", "object"}};
  std::vector<std::string> egress;  // host[:port] patterns, lowercase
  std::string network = "none";     // "none" | "egress"
  ResourceLimits limits;
  std::vector<std::string> readPaths;  // absolute, normalized
  std::vector<std::string> writePaths;
  bool concurrent = false;
};

// Errors read "PATH: key: problem", e.g. "/opt/c/connector.json: sandbox.egress[1]: ...".
Expected<ConnectorManifest, std::string> loadManifest(const std::string& path);
Expected<ConnectorManifest, std::string> parseManifest(const std::string& text, const std::string& path);

// The library is a regular file that only trusted users can replace (not world-writable, nor its
// directory or the manifest; owned by root when the host runs as root) and its SHA-256 is the
// manifest's. Errors say how to fix it (chmod/chown, reinstall).
Expected<bool, std::string> verifyLibrary(const ConnectorManifest& manifest);

// The host speaks ABI hostMajor.hostMinor; the library needs abiMajor.abiMinMinor or newer.
Expected<bool, std::string> checkAbi(const ConnectorManifest& manifest, std::uint32_t hostMajor,
                                     std::uint32_t hostMinor);

// Validates one instance's config against configSchema. Each violation is a line such as
// "connector 'hr': config /pool/size: must be >= 1 (schema of postgres 1.2.0)"; instanceId
// defaults to the manifest's name.
Expected<bool, std::string> validateConnectorConfig(const ConnectorManifest& manifest,
                                                    const nlohmann::json& config,
                                                    std::string_view instanceId = {});

// Names of required secrets that hasSecret() does not know, in declaration order.
std::vector<std::string> missingRequiredSecrets(const ConnectorManifest& manifest,
                                                const std::function<bool(std::string_view)>& hasSecret);

// "256MiB", "1GiB", "512KiB", "4096" (bytes) -> bytes; used for "resources" sizes.
Expected<std::uint64_t, std::string> parseSize(const std::string& text);

}  // namespace mcphost::connectors
