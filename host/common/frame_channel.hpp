// Length-prefixed JSON frames on a stream socket: the host <-> worker channel (fd 3 in the
// worker). A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON
// (one JSON-RPC message). The reader refuses a frame above the cap before allocating for it,
// so a hostile worker cannot make the host buffer unbounded data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace mcphost {

inline constexpr std::size_t kDefaultMaxFrameBytes = std::size_t{8} << 20;

// Encodes one frame (header + payload) into out.
void appendFrame(std::string& out, std::string_view payload);

// Incremental decoder for a non-blocking reader: feed bytes, take complete frames.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t maxFrameBytes = kDefaultMaxFrameBytes) : max_(maxFrameBytes) {}
  void feed(const char* data, std::size_t size) { buffer_.append(data, size); }
  // A complete frame, "" when more bytes are needed (empty frames are refused), or an error
  // naming the violation (oversized or empty frame). After an error the stream is unusable.
  Expected<std::string, std::string> next();
  [[nodiscard]] std::size_t buffered() const { return buffer_.size(); }

 private:
  std::size_t max_;
  std::string buffer_;
  std::size_t offset_ = 0;
};

// A blocking, thread-safe writer and a blocking reader on one socket descriptor (not owned).
class FrameSocket {
 public:
  explicit FrameSocket(int fd, std::size_t maxFrameBytes = kDefaultMaxFrameBytes)
      : fd_(fd), decoder_(maxFrameBytes) {}
  // Writes one whole frame; false when the peer is gone.
  bool send(std::string_view payload);
  // Blocks for the next frame; an error on EOF ("closed") or a framing violation.
  Expected<std::string, std::string> receive();
  [[nodiscard]] int fd() const { return fd_; }

 private:
  int fd_;
  std::mutex writeMutex_;
  FrameDecoder decoder_;
};

// Writes all of data to fd (blocking, retries EINTR); false on error.
bool writeAll(int fd, std::string_view data);

}  // namespace mcphost
