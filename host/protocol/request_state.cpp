#include "protocol/request_state.hpp"

#include "common/base64.hpp"
#include "common/crypto.hpp"

namespace mcphost::protocol {

namespace {
constexpr std::string_view kPrefix = "v1.";

std::int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string macInput(std::string_view payload, std::string_view binding) {
  std::string in(kPrefix);
  in.append(payload).append("|").append(binding);
  return in;
}
}  // namespace

RequestStateCodec::RequestStateCodec(std::string key, std::chrono::seconds ttl)
    : key_(std::move(key)), ttl_(ttl) {}

RequestStateCodec RequestStateCodec::withRandomKey() {
  return RequestStateCodec(randomBytes(32));
}

std::string RequestStateCodec::seal(const Json& state, std::string_view binding) const {
  Json envelope = {{"s", state}, {"exp", nowSeconds() + ttl_.count()}, {"n", randomToken(8)}};
  std::string payload = base64UrlEncode(envelope.dump());
  std::string mac = base64UrlEncode(hmacSha256(key_, macInput(payload, binding)));
  return std::string(kPrefix) + payload + "." + mac;
}

Expected<Json, std::string> RequestStateCodec::open(std::string_view token, std::string_view binding) const {
  if (!token.starts_with(kPrefix)) return unexpected(std::string("unknown requestState format"));
  token.remove_prefix(kPrefix.size());
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return unexpected(std::string("malformed requestState"));
  const std::string_view payload = token.substr(0, dot);
  const auto mac = base64UrlDecode(token.substr(dot + 1));
  if (!mac || !constantTimeEquals(*mac, hmacSha256(key_, macInput(payload, binding)))) {
    return unexpected(std::string("requestState failed integrity verification"));
  }
  const auto decoded = base64UrlDecode(payload);
  if (!decoded) return unexpected(std::string("malformed requestState"));
  Json envelope = Json::parse(*decoded, nullptr, /*allow_exceptions=*/false);
  if (!envelope.is_object() || !envelope.contains("exp") || !envelope["exp"].is_number_integer()) {
    return unexpected(std::string("malformed requestState"));
  }
  if (envelope["exp"].get<std::int64_t>() < nowSeconds())
    return unexpected(std::string("requestState expired"));
  return envelope.value("s", Json());
}

}  // namespace mcphost::protocol
