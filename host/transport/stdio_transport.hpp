// The MCP stdio transport: newline-delimited JSON-RPC on stdin/stdout, one implicit session.
// Only protocol goes to stdout; logs go to stderr. Requests run on worker threads so a tool that
// waits for the client (sampling, elicitation) does not block reading the client's answer.
#pragma once

#include <cstdio>
#include <istream>
#include <memory>
#include <mutex>
#include <ostream>

#include "guard/call_limits.hpp"
#include "protocol/mcp_router.hpp"

namespace mcphost::transport {

class StdioTransport {
 public:
  StdioTransport(protocol::McpRouter& router, std::shared_ptr<protocol::ChangeBus> bus,
                 protocol::ParseLimits limits, std::size_t workerThreads);
  // Who the local user is, and the rate limits that apply (null: none). Before run().
  void setIdentity(auth::Principal principal, std::shared_ptr<guard::CallLimits> limits,
                   const connectors::Catalog* catalog);
  // Serves until end of input; returns the process exit code.
  int run(std::istream& in, std::ostream& out);

 private:
  class Writer;
  void handleLine(const std::string& line, Writer& writer);

  protocol::McpRouter& router_;
  std::shared_ptr<protocol::ChangeBus> bus_;
  protocol::ParseLimits limits_;
  std::size_t workerThreads_;
  std::mutex sessionMutex_;
  std::shared_ptr<protocol::Session> session_;
  auth::Principal principal_;
  std::shared_ptr<guard::CallLimits> rateLimits_;
  const connectors::Catalog* catalog_ = nullptr;
  [[nodiscard]] std::optional<protocol::RpcError> rateLimited(const protocol::Message& message);
};

}  // namespace mcphost::transport
