// Integrity protection for the 2026-07-28 `requestState`: the client echoes it back, so it is
// attacker-controlled. Tokens are `v1.<base64url payload>.<base64url HMAC-SHA256>`; the payload
// carries an expiry and is bound to the request (method and target) it was minted for.
#pragma once

#include <chrono>
#include <string>

#include "protocol/json_rpc.hpp"

namespace mcphost::protocol {

class RequestStateCodec {
 public:
  explicit RequestStateCodec(std::string key, std::chrono::seconds ttl = std::chrono::minutes(10));
  static RequestStateCodec withRandomKey();

  [[nodiscard]] std::string seal(const Json& state, std::string_view binding) const;
  // The payload the handler sealed, or an explanation of why the token is not acceptable.
  [[nodiscard]] Expected<Json, std::string> open(std::string_view token, std::string_view binding) const;

 private:
  std::string key_;
  std::chrono::seconds ttl_;
};

}  // namespace mcphost::protocol
