#include "transport/sse_stream.hpp"

#include <atomic>

#include "observe/metrics.hpp"

namespace mcphost::transport {

namespace {
std::atomic<std::size_t> gRetainedBytes{0};

std::string dump(const protocol::Json& message) {
  return message.dump(-1, ' ', false, protocol::Json::error_handler_t::replace);
}
}  // namespace

std::string sseFrame(std::string_view id, std::string_view data) {
  std::string frame = "event: message\n";
  if (!id.empty()) frame.append("id: ").append(id).append("\n");
  frame.append("data: ").append(data).append("\n\n");
  return frame;
}

HeaderList sseHeaders(HeaderList extra) {
  extra.emplace_back("Content-Type", "text/event-stream");
  extra.emplace_back("Cache-Control", "no-cache, no-transform");
  extra.emplace_back("X-Accel-Buffering", "no");
  return extra;
}

void StreamLog::attach(std::shared_ptr<ResponseChannel> channel, std::size_t afterSeq, bool prime,
                       int retryMs, bool flushPrime) {
  std::lock_guard lock(mutex_);
  if (prime) {
    channel->write("id: " + id_ + "::0\nretry: " + std::to_string(retryMs) + "\ndata: \n\n", flushPrime);
  }
  for (const auto& [seq, frame] : events_) {
    if (seq > afterSeq) channel->write(frame);
  }
  if (finished_) {
    channel->end();
    return;
  }
  if (channel_) channel_->end();
  channel_ = std::move(channel);
}

StreamLog::~StreamLog() {
  gRetainedBytes -= retainedBytes_;
}

bool StreamLog::send(const protocol::Json& message) {
  std::lock_guard lock(mutex_);
  const std::size_t seq = nextSeq_++;
  std::string frame = sseFrame(id_ + "::" + std::to_string(seq), dump(message));
  bool delivered = false;
  if (channel_) delivered = channel_->write(frame);
  const std::size_t size = frame.size();
  if (size <= kMaxBytesPerStream && gRetainedBytes.load() + size <= kMaxBytesTotal) {
    events_.emplace_back(seq, std::move(frame));
    retainedBytes_ += size;
    gRetainedBytes += size;
  }
  while (!events_.empty() && (events_.size() > maxEvents_ || retainedBytes_ > kMaxBytesPerStream)) {
    retainedBytes_ -= events_.front().second.size();
    gRetainedBytes -= events_.front().second.size();
    events_.erase(events_.begin());
  }
  return delivered || !channel_;
}

void StreamLog::finish(const protocol::Json& message) {
  send(message);
  std::lock_guard lock(mutex_);
  finished_ = true;
  if (channel_) {
    channel_->end();
    channel_.reset();
  }
}

void StreamLog::finishSilently() {
  std::lock_guard lock(mutex_);
  finished_ = true;
  if (channel_) {
    channel_->end();
    channel_.reset();
  }
}

void StreamLog::detach() {
  std::lock_guard lock(mutex_);
  if (channel_) {
    // End the response cleanly (final chunk): the client treats it as a poll point and
    // reconnects with Last-Event-ID, while an aborted connection reads as a network error.
    channel_->end();
    channel_.reset();
  }
}

void StreamLog::close() {
  std::lock_guard lock(mutex_);
  if (channel_) {
    channel_->end();
    channel_.reset();
  }
}

bool StreamLog::live() const {
  std::lock_guard lock(mutex_);
  return channel_ && channel_->open();
}

PostResponder::PostResponder(std::shared_ptr<ResponseChannel> channel, std::shared_ptr<StreamLog> log,
                             HeaderList headers, int retryMs)
    : channel_(std::move(channel)), log_(std::move(log)), headers_(std::move(headers)), retryMs_(retryMs) {}

void PostResponder::startStreamLocked() {
  if (streaming_) return;
  streaming_ = true;
  channel_->startStream(200, sseHeaders(headers_), /*flush=*/false);
  if (log_) log_->attach(channel_, 0, /*prime=*/true, retryMs_);
}

void PostResponder::beginStream() {
  std::lock_guard lock(mutex_);
  startStreamLocked();
}

bool PostResponder::send(const protocol::Json& message) {
  std::lock_guard lock(mutex_);
  startStreamLocked();
  if (log_) return log_->send(message);
  return channel_->write(sseFrame({}, dump(message)));
}

void PostResponder::finish(const protocol::Json& response, int httpStatus) {
  std::lock_guard lock(mutex_);
  if (!streaming_) {
    HeaderList headers = headers_;
    headers.emplace_back("Content-Type", "application/json");
    channel_->respond(httpStatus, headers, dump(response));
    return;
  }
  if (log_) {
    log_->finish(response);
  } else {
    channel_->write(sseFrame({}, dump(response)));
    channel_->end();
  }
}

void PostResponder::abandon() {
  std::lock_guard lock(mutex_);
  if (!streaming_) {
    channel_->respond(204, headers_, "");
    return;
  }
  if (log_) {
    log_->finishSilently();
  } else {
    channel_->end();
  }
}

void PostResponder::detach() {
  std::lock_guard lock(mutex_);
  startStreamLocked();
  if (log_) log_->detach();
}

}  // namespace mcphost::transport
