// One HTTP exchange on the MCP endpoint, shared by the endpoint's implementation files.
#pragma once

#include <memory>
#include <string>

#include "auth/principal.hpp"
#include "protocol/json_rpc.hpp"
#include "transport/http_server.hpp"
#include "transport/streamable_http.hpp"

namespace mcphost::transport {

using protocol::Json;

struct StreamableHttpEndpoint::Exchange {
  HttpRequest request;
  std::shared_ptr<ResponseChannel> channel;
  std::string correlationId;
  std::string method;  // MCP method, for the access log
  int status = 0;
  auth::Principal principal;

  void respondJson(int httpStatus, const Json& body, HeaderList headers = {}) {
    status = httpStatus;
    headers.emplace_back("Content-Type", "application/json");
    headers.emplace_back("X-Request-Id", correlationId);
    channel->respond(httpStatus, headers, body.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  void respondError(int httpStatus, int code, const std::string& message, const Json& id = nullptr,
                    const Json& data = nullptr, HeaderList headers = {}) {
    respondJson(httpStatus, protocol::makeErrorResponse(id, protocol::RpcError{code, message, data}),
                std::move(headers));
  }
};

}  // namespace mcphost::transport
