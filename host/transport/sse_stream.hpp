// Server-Sent Events on top of a ResponseChannel.
//
// StreamLog is one resumable stream of a 2025 session: every event gets the id
// `<streamId>::<seq>` and is kept, so a client that lost the connection can come back with
// Last-Event-ID and receive what it missed (including the final response).
// PostResponder answers one POST: it stays a plain JSON response unless the handler sends a
// message first (progress, logging, a server-to-client request), in which case it switches to an
// SSE stream so those messages reach the client before the response.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "protocol/message_sink.hpp"
#include "transport/http_server.hpp"

namespace mcphost::transport {

std::string sseFrame(std::string_view id, std::string_view data);

class StreamLog {
 public:
  StreamLog(std::string id, std::size_t maxEvents) : id_(std::move(id)), maxEvents_(maxEvents) {}
  ~StreamLog();
  StreamLog(const StreamLog&) = delete;
  StreamLog& operator=(const StreamLog&) = delete;

  // Replay memory limits: per stream, and for the whole process. Beyond them events are still
  // delivered live but not kept, so a client that reconnects late may miss them.
  static constexpr std::size_t kMaxBytesPerStream = std::size_t{1} << 20;
  static constexpr std::size_t kMaxBytesTotal = std::size_t{256} << 20;

  [[nodiscard]] const std::string& id() const { return id_; }
  // prime: send the priming event (id + retry) first; it is queued without a flush, so it leaves
  // together with the first real event.
  void attach(std::shared_ptr<ResponseChannel> channel, std::size_t afterSeq, bool prime, int retryMs,
              bool flushPrime = false);
  bool send(const protocol::Json& message);
  void finish(const protocol::Json& message);  // the final response; ends the stream
  void detach();                               // ends the HTTP response; events are still kept
  void close();                                // ends the live response, if any
  void finishSilently();                       // ends the stream with no final message
  [[nodiscard]] bool live() const;

 private:
  std::string id_;
  std::size_t maxEvents_;
  mutable std::mutex mutex_;
  std::vector<std::pair<std::size_t, std::string>> events_;
  std::size_t retainedBytes_ = 0;
  std::size_t nextSeq_ = 1;
  std::shared_ptr<ResponseChannel> channel_;
  bool finished_ = false;
};

struct StreamHeaders {
  HeaderList extra;  // e.g. Mcp-Session-Id
};

class PostResponder final : public protocol::MessageSink {
 public:
  // log: the session's resumable log for this stream, or null (stateless era: not resumable).
  PostResponder(std::shared_ptr<ResponseChannel> channel, std::shared_ptr<StreamLog> log, HeaderList headers,
                int retryMs);

  // Starts the SSE stream now instead of on the first message (resumable responses).
  void beginStream();
  bool send(const protocol::Json& message) override;
  void finish(const protocol::Json& response, int httpStatus);
  // The client cancelled the request: end without a response (MCP says receivers of a
  // cancellation should not answer the cancelled request).
  void abandon();
  void detach();

 private:
  void startStreamLocked();

  std::mutex mutex_;
  std::shared_ptr<ResponseChannel> channel_;
  std::shared_ptr<StreamLog> log_;
  HeaderList headers_;
  int retryMs_;
  bool streaming_ = false;
};

HeaderList sseHeaders(HeaderList extra);

}  // namespace mcphost::transport
