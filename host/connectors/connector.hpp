// The one seam between the MCP router and a connector. The in-process conformance connector
// implements it today; the sandboxed worker proxy implements it for SDK connectors.
//
// Handlers are written in the multi-round-trip style: a handler that needs something from the
// client (elicitation, sampling, roots) returns InputRequired; the host maps that to an
// `input_required` result on a 2026-07-28 request, or to real server-to-client requests on a
// 2025 session (and then calls the handler again with the answers). Connectors therefore never
// block on the client and never see which protocol era the caller speaks.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/principal.hpp"
#include "protocol/json_rpc.hpp"

namespace mcphost::connectors {

using protocol::Json;
using protocol::RpcError;

// RFC 5424 severities, in MCP's order (debug is the least severe).
enum class LogLevel { kDebug, kInfo, kNotice, kWarning, kError, kCritical, kAlert, kEmergency };
std::optional<LogLevel> parseLogLevel(std::string_view name);
std::string_view logLevelName(LogLevel level);

// A handler's request for client input: key -> {"method": ..., "params": ...}, plus optional
// state to receive back on the next round (the host integrity-protects it).
struct InputRequired {
  Json requests = Json::object();
  Json state;  // null when the handler keeps no state between rounds

  InputRequired& ask(std::string key, std::string method, Json params);
};

class CallContext;
struct Outcome;

// Work a tool hands back to run later: as a task (io.modelcontextprotocol/tasks) when the
// calling client opted into tasks, otherwise inline before the call answers. The job is run in
// the same multi-round-trip style and may itself return InputRequired.
struct Deferred {
  std::function<Outcome(CallContext&)> job;
  // The tool only works as a task: callers without the tasks extension get -32021 (2026-07-28).
  bool taskRequired = false;
};

// The result of any connector operation: an MCP result object, a JSON-RPC error, a request for
// client input (only tools/call, prompts/get and resources/read may return that), or deferred
// work (tools/call only).
struct Outcome : std::variant<Json, RpcError, InputRequired, Deferred> {
  using variant::variant;
  template <typename T>
  [[nodiscard]] T* get_if() {
    return std::get_if<T>(static_cast<variant*>(this));
  }
};

// Who is calling: the authenticated principal (anonymous when authentication is off).
using Caller = auth::Principal;

// Back-channel of one call. Implemented by the host; valid only during the call.
class CallContext {
 public:
  virtual ~CallContext() = default;
  virtual void progress(double progress, std::optional<double> total, std::string_view message) = 0;
  virtual void log(LogLevel level, std::string_view logger, const Json& data) = 0;
  // The client's answer to an earlier InputRequired key, or nullptr.
  [[nodiscard]] virtual const Json* inputResponse(std::string_view key) const = 0;
  [[nodiscard]] virtual bool hasInputResponses() const = 0;
  // Every answer of the current round as one object (null when none): what a proxy forwards.
  [[nodiscard]] virtual const Json& inputResponses() const = 0;
  // The verified state a handler returned with its last InputRequired, or null.
  [[nodiscard]] virtual const Json& state() const = 0;
  // True when the client declared this capability ("sampling", "elicitation", "roots").
  [[nodiscard]] virtual bool clientSupports(std::string_view capability) const = 0;
  [[nodiscard]] virtual bool cancelled() const = 0;
  [[nodiscard]] virtual const Caller& caller() const = 0;
  // True when this code runs as a background task rather than inside the client's request.
  [[nodiscard]] virtual bool inTask() const { return false; }
  // The request's correlation id (the X-Request-Id the client sees); empty when there is none.
  [[nodiscard]] virtual std::string_view correlationId() const { return {}; }
  // Transport hook used by the resumability fixture: ends the current response stream while
  // the call continues; later messages are kept for replay (Last-Event-ID).
  virtual void closeResponseStream() = 0;
};

// Items a connector offers, as MCP JSON arrays (tools, resources, resourceTemplates, prompts).
struct Descriptor {
  Json tools = Json::array();
  Json resources = Json::array();
  Json resourceTemplates = Json::array();
  Json prompts = Json::array();
};

// Change notifications a connector raises; the host turns them into list_changed/updated.
class ConnectorEvents {
 public:
  virtual ~ConnectorEvents() = default;
  virtual void toolsChanged() = 0;
  virtual void promptsChanged() = 0;
  virtual void resourcesChanged() = 0;
  virtual void resourceUpdated(std::string_view uri) = 0;
};

class Connector {
 public:
  virtual ~Connector() = default;
  virtual void attach(ConnectorEvents* events) = 0;
  virtual Expected<Descriptor, RpcError> describe() = 0;
  virtual Outcome callTool(std::string_view name, const Json& arguments, CallContext& ctx) = 0;
  virtual Outcome readResource(std::string_view uri, CallContext& ctx) = 0;
  virtual Outcome getPrompt(std::string_view name, const Json& arguments, CallContext& ctx) = 0;
  // ref is {"type":"ref/prompt","name"} or {"type":"ref/resource","uri"}; argument {name,value}.
  virtual Outcome complete(const Json& ref, const Json& argument, const Json& context, CallContext& ctx) = 0;
  virtual Outcome subscribe(std::string_view uri) = 0;
  virtual Outcome unsubscribe(std::string_view uri) = 0;
};

}  // namespace mcphost::connectors
