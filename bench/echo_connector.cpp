// The benchmark's echo connector: one tool, `echo` {text}, that returns its text as one text
// block. It does nothing else (no client log, no config), so that what bench-worker-hop and the
// mcphost-echo runs of run.sh measure is the host, the worker channel and the SDK layer, not the
// tool. Built with mcphost_add_connector exactly like a vendor's connector, into
// ${CMAKE_BINARY_DIR}/bench/connectors/echo/ (never installed).
#include <string>

#include "mcphost/connector.hpp"

namespace {

using mcphost::sdk::Call;
using mcphost::sdk::Host;
using mcphost::sdk::Json;
using mcphost::sdk::Outcome;

class BenchEcho : public mcphost::sdk::Connector {
 public:
  BenchEcho(Host& host, const Json& /*config*/) : Connector(host) {
    tools().add({{"name", "echo"},
                 {"description", "Returns its text unchanged."},
                 {"inputSchema",
                  {{"type", "object"},
                   {"properties", {{"text", {{"type", "string"}}}}},
                   {"required", {"text"}},
                   {"additionalProperties", false}}}},
                [](const Json& args, Call& /*call*/) -> Outcome {
                  const auto text = args.find("text");
                  if (text == args.end() || !text->is_string()) {
                    Json error = mcphost::sdk::textResult("text must be a string");
                    error["isError"] = true;
                    return error;
                  }
                  return mcphost::sdk::textResult(text->get<std::string>());
                });
  }
};

}  // namespace

// Immutable after construction, so calls may run in parallel on the worker's dispatch threads.
MCPHOST_CONNECTOR(BenchEcho, "echo", "1.0.0", MCPH_CONNECTOR_CONCURRENT)
