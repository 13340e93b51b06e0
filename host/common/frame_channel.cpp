#include "common/frame_channel.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace mcphost {

void appendFrame(std::string& out, std::string_view payload) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  const char header[4] = {static_cast<char>((n >> 24) & 0xff), static_cast<char>((n >> 16) & 0xff),
                          static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)};
  out.append(header, sizeof header);
  out.append(payload);
}

Expected<std::string, std::string> FrameDecoder::next() {
  if (buffer_.size() - offset_ < 4) return std::string();
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + offset_);
  const std::size_t length =
      (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | std::size_t{p[3]};
  if (length == 0) return unexpected(std::string("empty frame"));
  if (length > max_) {
    return unexpected("frame of " + std::to_string(length) + " bytes exceeds the limit of " +
                      std::to_string(max_) + " bytes");
  }
  if (buffer_.size() - offset_ - 4 < length) return std::string();
  std::string frame = buffer_.substr(offset_ + 4, length);
  offset_ += 4 + length;
  // Compact once the consumed prefix dominates, so the buffer never grows without bound.
  if (offset_ > 65536 && offset_ * 2 > buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return frame;
}

bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOTSOCK) {
        const ssize_t w = ::write(fd, data.data(), data.size());
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(w));
        continue;
      }
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool FrameSocket::send(std::string_view payload) {
  std::string frame;
  frame.reserve(payload.size() + 4);
  appendFrame(frame, payload);
  std::lock_guard lock(writeMutex_);
  return writeAll(fd_, frame);
}

Expected<std::string, std::string> FrameSocket::receive() {
  char chunk[65536];
  for (;;) {
    auto frame = decoder_.next();
    if (!frame || !frame->empty()) return frame;
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return unexpected(std::string("closed"));
    decoder_.feed(chunk, static_cast<std::size_t>(n));
  }
}

}  // namespace mcphost
