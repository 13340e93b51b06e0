// Small helpers shared by the remote connector's translation units (not a public interface).
#pragma once

#include <chrono>
#include <string>

#include "protocol/json_rpc.hpp"

namespace mcphost::connectors::remote {

// Bits of RemoteConnector::pendingRelist_: what the upstream announced (published even when the
// lists look the same to us), and kRecheck: re-list and publish only what differs.
inline constexpr int kTools = 1;
inline constexpr int kPrompts = 2;
inline constexpr int kResources = 4;
inline constexpr int kRecheck = 8;
inline constexpr int kAll = kTools | kPrompts | kResources;

// "0.5s", "2s", "60s": tenths are enough for an operator.
inline std::string seconds(std::chrono::milliseconds ms) {
  const auto tenths = (ms.count() + 50) / 100;
  std::string text = std::to_string(tenths / 10);
  if (tenths % 10 != 0) text += "." + std::to_string(tenths % 10);
  return text + "s";
}

// A string member of an upstream object, or "" (upstream JSON is untrusted: no throwing lookups).
inline std::string str(const protocol::Json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// capabilities.<capability>.<name> == true
inline bool flag(const protocol::Json& caps, const char* capability, const char* name) {
  if (!caps.is_object() || !caps.contains(capability) || !caps[capability].is_object()) return false;
  auto it = caps[capability].find(name);
  return it != caps[capability].end() && it->is_boolean() && it->get<bool>();
}

}  // namespace mcphost::connectors::remote
