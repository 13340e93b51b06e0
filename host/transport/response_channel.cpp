#include <Poco/Net/HTTPResponse.h>

#include "observe/metrics.hpp"
#include "transport/connection.hpp"
#include "transport/http_server.hpp"
#include "transport/http_wire.hpp"

namespace mcphost::transport {

ResponseChannel::ResponseChannel(std::shared_ptr<Connection> connection, HttpServer& server, bool headRequest)
    : connection_(std::move(connection)), server_(server), headRequest_(headRequest) {}

ResponseChannel::~ResponseChannel() {
  // A handler that forgot to answer must not leave the client hanging.
  if (!started_.load()) {
    respond(500, {{"Content-Type", "text/plain"}}, "the request handler produced no response\n");
  } else if (!finished_.load()) {
    end();
  }
}

void ResponseChannel::respond(int status, const HeaderList& headers, std::string_view body) {
  if (started_.exchange(true)) return;
  finished_ = true;
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(connection_->mutex);
    if (connection_->closed) return;
    connection_->out += serializeHead(status, headers, connection_->keepAlive, body.size());
    if (!headRequest_) connection_->out.append(body);
    connection_->responseComplete = true;
    connection_->closeAfterWrite = !connection_->keepAlive;
    callbacks = takeCallbacks(*connection_);
  }
  observe::Metrics::instance().countHttpResponse(status);
  server_.wake(connection_);
  for (auto& cb : callbacks) cb();
}

void ResponseChannel::startStream(int status, const HeaderList& headers, bool flush) {
  if (started_.exchange(true)) return;
  {
    std::lock_guard lock(connection_->mutex);
    if (connection_->closed) return;
    connection_->out += serializeHead(status, headers, connection_->keepAlive, std::nullopt);
  }
  observe::Metrics::instance().countHttpResponse(status);
  if (flush) server_.wake(connection_);
}

bool ResponseChannel::write(std::string_view data, bool flush) {
  if (!started_.load() || finished_.load() || data.empty()) return open();
  bool accepted = true;
  {
    std::lock_guard lock(connection_->mutex);
    if (connection_->closed || connection_->overflow) return false;
    if (connection_->out.size() + connection_->wire.size() > kMaxQueuedOutput) {
      connection_->overflow = true;  // the reactor drops the connection on its next flush
      accepted = false;
    } else {
      connection_->out += chunk(data);
    }
  }
  if (flush || !accepted) server_.wake(connection_);
  return accepted;
}

void ResponseChannel::end() {
  if (!started_.load() || finished_.exchange(true)) return;
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(connection_->mutex);
    if (!connection_->closed) {
      connection_->out += "0\r\n\r\n";
      connection_->responseComplete = true;
      connection_->closeAfterWrite = !connection_->keepAlive;
    }
    callbacks = takeCallbacks(*connection_);
  }
  server_.wake(connection_);
  for (auto& cb : callbacks) cb();
}

void ResponseChannel::abort() {
  started_ = true;
  if (finished_.exchange(true)) return;
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(connection_->mutex);
    connection_->responseComplete = true;
    connection_->closeAfterWrite = true;
    connection_->keepAlive = false;
    callbacks = takeCallbacks(*connection_);
  }
  server_.wake(connection_);
  for (auto& cb : callbacks) cb();
}

bool ResponseChannel::open() const {
  std::lock_guard lock(connection_->mutex);
  return !connection_->closed && !finished_.load();
}

void ResponseChannel::markLongLived() {
  std::lock_guard lock(connection_->mutex);
  connection_->longLived = true;
}

void ResponseChannel::onClose(std::function<void()> callback) {
  {
    std::lock_guard lock(connection_->mutex);
    if (!connection_->closed && !finished_.load()) {
      connection_->closeCallbacks.push_back(std::move(callback));
      return;
    }
  }
  callback();
}

}  // namespace mcphost::transport
