#include "common/frame_channel.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

using mcphost::FrameDecoder;

TEST_CASE("frames round-trip, split at any byte") {
  std::string wire;
  mcphost::appendFrame(wire, "{\"a\":1}");
  mcphost::appendFrame(wire, "{\"b\":2}");
  FrameDecoder decoder;
  std::vector<std::string> got;
  for (char c : wire) {
    decoder.feed(&c, 1);
    for (;;) {
      auto f = decoder.next();
      REQUIRE(f);
      if (f->empty()) break;
      got.push_back(*f);
    }
  }
  CHECK(got == std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"});
}

TEST_CASE("an oversized or empty frame is refused before it is buffered") {
  FrameDecoder decoder(1024);
  const unsigned char huge[] = {0x7f, 0xff, 0xff, 0xff};
  decoder.feed(reinterpret_cast<const char*>(huge), sizeof huge);
  auto f = decoder.next();
  REQUIRE_FALSE(f);
  CHECK(f.error().find("exceeds the limit of 1024 bytes") != std::string::npos);

  FrameDecoder empty;
  const char zero[] = {0, 0, 0, 0};
  empty.feed(zero, sizeof zero);
  CHECK_FALSE(empty.next());
}

TEST_CASE("FrameSocket sends and receives whole frames and reports EOF") {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  mcphost::FrameSocket a(sv[0]);
  mcphost::FrameSocket b(sv[1]);
  REQUIRE(a.send(std::string(100000, 'x')));
  auto got = b.receive();
  REQUIRE(got);
  CHECK(got->size() == 100000);
  ::close(sv[0]);
  auto eof = b.receive();
  REQUIRE_FALSE(eof);
  CHECK(eof.error() == "closed");
  ::close(sv[1]);
}
