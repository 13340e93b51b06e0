#include "protocol/json_rpc.hpp"

namespace mcphost::protocol {

Json RpcError::toJson() const {
  Json e = {{"code", code}, {"message", message}};
  if (!data.is_null()) e["data"] = data;
  return e;
}

namespace {

ParseFailure failure(int code, std::string message, Json id = nullptr) {
  return ParseFailure{RpcError{code, std::move(message), nullptr}, std::move(id)};
}

bool isValidId(const Json& id) {
  return id.is_string() || id.is_number_integer() || id.is_number_unsigned();
}

// Thrown only inside parseJson's callback to abort on excessive nesting; never escapes.
struct DepthExceeded {};

}  // namespace

Expected<Json, ParseFailure> parseJson(std::string_view text, const ParseLimits& limits) {
  if (text.size() > limits.maxBytes) {
    return unexpected(failure(errc::kInvalidRequest, "message of " + std::to_string(text.size()) +
                                                         " bytes exceeds the limit of " +
                                                         std::to_string(limits.maxBytes)));
  }
  const int maxDepth = limits.maxDepth;
  // nlohmann's parser is iterative, so depth checking in the callback is enough to keep deep
  // input from costing stack; the callback aborts as soon as the limit is crossed.
  auto callback = [maxDepth](int depth, Json::parse_event_t event, Json& /*parsed*/) {
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
        depth >= maxDepth) {
      throw DepthExceeded{};
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true,
                       /*ignore_comments=*/false);
  } catch (const DepthExceeded&) {
    return unexpected(
        failure(errc::kInvalidRequest, "JSON nesting exceeds the limit of " + std::to_string(maxDepth)));
  } catch (const Json::exception& e) {
    return unexpected(failure(errc::kParseError, std::string("Parse error: ") + e.what()));
  }
}

Expected<Message, ParseFailure> decodeMessage(const Json& value) {
  if (!value.is_object()) {
    return unexpected(
        failure(errc::kInvalidRequest, "Invalid Request: a JSON-RPC message must be an object"));
  }
  Json id = nullptr;
  if (auto it = value.find("id"); it != value.end() && isValidId(*it)) id = *it;
  auto jsonrpc = value.find("jsonrpc");
  if (jsonrpc == value.end() || *jsonrpc != "2.0") {
    return unexpected(failure(errc::kInvalidRequest, "Invalid Request: \"jsonrpc\" must be \"2.0\"", id));
  }
  Message msg;
  auto method = value.find("method");
  auto idIt = value.find("id");
  if (idIt != value.end() && !isValidId(*idIt)) {
    return unexpected(
        failure(errc::kInvalidRequest, "Invalid Request: \"id\" must be a string or an integer"));
  }
  if (method != value.end()) {
    if (!method->is_string() || method->get_ref<const std::string&>().empty()) {
      return unexpected(
          failure(errc::kInvalidRequest, "Invalid Request: \"method\" must be a non-empty string", id));
    }
    msg.method = method->get<std::string>();
    if (auto params = value.find("params"); params != value.end()) {
      if (!params->is_object() && !params->is_array()) {
        return unexpected(
            failure(errc::kInvalidRequest, "Invalid Request: \"params\" must be an object or array", id));
      }
      msg.params = *params;
    }
    if (value.contains("result") || value.contains("error")) {
      return unexpected(
          failure(errc::kInvalidRequest, "Invalid Request: a request cannot carry result or error", id));
    }
    msg.kind = idIt == value.end() ? MessageKind::kNotification : MessageKind::kRequest;
    msg.id = id;
    return msg;
  }
  // A response: must have an id and exactly one of result / error.
  const bool hasResult = value.contains("result");
  const bool hasError = value.contains("error");
  if (idIt == value.end() || hasResult == hasError) {
    return unexpected(failure(errc::kInvalidRequest,
                              "Invalid Request: expected \"method\", or \"id\" with one of result/error",
                              id));
  }
  msg.kind = MessageKind::kResponse;
  msg.id = id;
  if (hasResult) {
    msg.result = value.at("result");
  } else {
    const Json& e = value.at("error");
    if (!e.is_object() || !e.contains("code") || !e["code"].is_number_integer() || !e.contains("message") ||
        !e["message"].is_string()) {
      return unexpected(failure(errc::kInvalidRequest, "Invalid Request: malformed error object", id));
    }
    msg.error = RpcError{e["code"].get<int>(), e["message"].get<std::string>(), e.value("data", Json())};
  }
  return msg;
}

Json makeResponse(const Json& id, Json result) {
  return Json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

Json makeErrorResponse(const Json& id, const RpcError& error) {
  return Json{{"jsonrpc", "2.0"}, {"id", id}, {"error", error.toJson()}};
}

Json makeNotification(std::string_view method, Json params) {
  Json n = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) n["params"] = std::move(params);
  return n;
}

Json makeRequest(const Json& id, std::string_view method, Json params) {
  Json r = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) r["params"] = std::move(params);
  return r;
}

}  // namespace mcphost::protocol
