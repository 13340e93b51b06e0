#include "connectors/connector.hpp"

#include <array>

namespace mcphost::connectors {

namespace {
constexpr std::array<std::string_view, 8> kLevelNames = {"debug", "info",     "notice", "warning",
                                                         "error", "critical", "alert",  "emergency"};
}

std::optional<LogLevel> parseLogLevel(std::string_view name) {
  for (std::size_t i = 0; i < kLevelNames.size(); ++i) {
    if (kLevelNames[i] == name) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

std::string_view logLevelName(LogLevel level) {
  return kLevelNames.at(static_cast<std::size_t>(level));
}

InputRequired& InputRequired::ask(std::string key, std::string method, Json params) {
  Json request = {{"method", std::move(method)}};
  if (!params.is_null()) request["params"] = std::move(params);
  requests[std::move(key)] = std::move(request);
  return *this;
}

}  // namespace mcphost::connectors
