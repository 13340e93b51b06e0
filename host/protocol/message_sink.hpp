// Where the protocol layer writes messages that precede or accompany a response: an SSE stream,
// a stdio pipe, or nothing. Implementations are thread-safe.
#pragma once

#include "protocol/json_rpc.hpp"

namespace mcphost::protocol {

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // Returns false when the peer is gone (the message is dropped or kept for replay).
  virtual bool send(const Json& message) = 0;
};

}  // namespace mcphost::protocol
