// Internal to the transport: the state of one client connection, shared between the reactor
// thread (socket I/O, parsing) and worker threads (answers queued through ResponseChannel).
#pragma once

#include <Poco/Net/HTTPRequest.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "transport/http_server.hpp"
#include "transport/http_wire.hpp"
#include "transport/tls.hpp"

namespace mcphost::transport {

using Clock = std::chrono::steady_clock;

// Output queued for a client that does not read: beyond this the connection is dropped, so a
// stalled SSE consumer cannot grow the host's memory without bound.
inline constexpr std::size_t kMaxQueuedOutput = std::size_t{16} << 20;

class Connection {
 public:
  Connection(int socket, std::uint64_t connectionId, std::string peerAddress)
      : fd(socket), id(connectionId), peer(std::move(peerAddress)) {}

  const int fd;
  const std::uint64_t id;
  const std::string peer;

  // Reactor-thread state.
  enum class Phase { kIdle, kReadingHead, kReadingBody, kBusy };
  Phase phase = Phase::kIdle;
  std::string in;
  Clock::time_point requestStarted = Clock::now();
  Clock::time_point lastActivity = Clock::now();
  const Clock::time_point acceptedAt = Clock::now();
  std::optional<Poco::Net::HTTPRequest> head;
  HeaderList rawHeaders;
  bool chunked = false;
  ChunkedDecoder chunkedDecoder;
  std::uint64_t requestsServed = 0;
  std::size_t contentLength = 0;
  bool writeArmed = false;
  std::unique_ptr<TlsStream> tls;  // null on plain-text listeners
  std::string wire;                // ciphertext waiting for the socket (TLS only)

  // Shared with worker threads.
  std::mutex mutex;
  std::string out;
  bool keepAlive = true;
  bool responseComplete = false;
  bool closeAfterWrite = false;
  bool closed = false;
  bool overflow = false;   // the peer stopped reading; the reactor drops the connection
  bool longLived = false;  // a subscription stream: shutdown does not wait for it to finish
  std::vector<std::function<void()>> closeCallbacks;
};

// Moves out the callbacks to run once the current response ends (call with mutex held).
inline std::vector<std::function<void()>> takeCallbacks(Connection& c) {
  std::vector<std::function<void()>> callbacks;
  callbacks.swap(c.closeCallbacks);
  return callbacks;
}

}  // namespace mcphost::transport
