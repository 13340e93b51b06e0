// Protocol revisions the host serves, by era.
#pragma once

#include <array>
#include <string_view>

namespace mcphost::protocol {

enum class Era { kSession, kStateless };

// initialize/session era, newest first. The first entry is what we answer when the client asks
// for a revision we do not serve.
inline constexpr std::array<std::string_view, 3> kSessionVersions = {"2025-11-25", "2025-06-18",
                                                                     "2025-03-26"};
// stateless era (per-request _meta envelope).
inline constexpr std::array<std::string_view, 1> kStatelessVersions = {"2026-07-28"};

inline constexpr std::string_view kMetaProtocolVersion = "io.modelcontextprotocol/protocolVersion";
inline constexpr std::string_view kMetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities";
inline constexpr std::string_view kMetaClientInfo = "io.modelcontextprotocol/clientInfo";
inline constexpr std::string_view kMetaLogLevel = "io.modelcontextprotocol/logLevel";
inline constexpr std::string_view kMetaServerInfo = "io.modelcontextprotocol/serverInfo";
inline constexpr std::string_view kMetaSubscriptionId = "io.modelcontextprotocol/subscriptionId";

constexpr bool isSessionVersion(std::string_view v) {
  for (auto s : kSessionVersions) {
    if (s == v) return true;
  }
  return false;
}

constexpr bool isStatelessVersion(std::string_view v) {
  for (auto s : kStatelessVersions) {
    if (s == v) return true;
  }
  return false;
}

// Revisions are ISO dates, so lexical order is chronological order.
constexpr bool namesStatelessEra(std::string_view v) {
  return v.size() == 10 && v >= kStatelessVersions.front();
}

}  // namespace mcphost::protocol
