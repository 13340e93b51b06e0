#include "guard/rate_limiter.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using mcphost::guard::parseRate;
using mcphost::guard::RateLimiter;
using mcphost::guard::RateSpec;
using namespace std::chrono_literals;

namespace {

// A fixed starting point; tests move time by adding to it, never by sleeping.
const RateLimiter::Clock::time_point kT0 = RateLimiter::Clock::time_point{} + 1000h;

int allowedOf(RateLimiter& limiter, std::string_view key, int attempts, RateLimiter::Clock::time_point at) {
  int allowed = 0;
  for (int i = 0; i < attempts; ++i)
    if (!limiter.acquire(key, at)) ++allowed;
  return allowed;
}

}  // namespace

TEST_CASE("rate limit: parseRate accepts counts per second, minute, hour and day", "[ratelimit]") {
  struct Case {
    const char* text;
    double perSecond;
    double burst;
  };
  // The default burst is the count: "5/m" admits five at once, then one every 12 s.
  for (const auto& c :
       {Case{"100/s", 100, 100}, Case{"600/min", 10, 600}, Case{"1000/h", 1000.0 / 3600, 1000},
        Case{"5/m", 5.0 / 60, 5}, Case{"2/sec", 2, 2}, Case{"10/hour", 10.0 / 3600, 10},
        Case{" 3 / second ", 3, 3}, Case{"86400/d", 1, 86400}, Case{"0.5/s", 0.5, 1},
        Case{"7200/hours", 2, 7200}, Case{"120/minutes", 2, 120}}) {
    INFO(c.text);
    const auto spec = parseRate(c.text);
    REQUIRE(spec);
    CHECK(spec->perSecond == Approx(c.perSecond));
    CHECK(spec->burst == Approx(c.burst));
  }
  const auto withBurst = parseRate("10/s", 50);
  REQUIRE(withBurst);
  CHECK(withBurst->perSecond == 10);
  CHECK(withBurst->burst == 50);
}

TEST_CASE("rate limit: parseRate errors name the accepted forms", "[ratelimit]") {
  for (const char* text : {"", "100", "/s", "100/", "100/fortnight", "abc/s", "-5/s", "0/s", "1e999/s",
                           "inf/s", "nan/s", "10/s/s", "10 per second", "10s", "1,000/s", "+5/s"}) {
    INFO(text);
    const auto spec = parseRate(text);
    REQUIRE_FALSE(spec);
    CHECK(spec.error().find("100/s") != std::string::npos);
    CHECK(spec.error().find("600/min") != std::string::npos);
  }
  CHECK_FALSE(parseRate("10/s", -1));
  CHECK_FALSE(parseRate("10/s", 0.5));
  const auto badBurst = parseRate("10/s", 0.5);
  REQUIRE_FALSE(badBurst);
  CHECK(badBurst.error().find("burst") != std::string::npos);
  // A huge input is quoted shortened, not echoed whole.
  const auto huge = parseRate(std::string(100000, '9'));
  REQUIRE_FALSE(huge);
  CHECK(huge.error().size() < 400);
}

TEST_CASE("rate limit: the limiter normalises its spec", "[ratelimit]") {
  CHECK(RateLimiter(RateSpec{10, 0}).spec().burst == 10);
  CHECK(RateLimiter(RateSpec{0.1, 0}).spec().burst == 1);
  CHECK(RateLimiter(RateSpec{10, 0.2}).spec().burst == 1);
  CHECK(RateLimiter(RateSpec{10, 25}).spec().burst == 25);
  CHECK(RateLimiter(RateSpec{-3, 0}).spec().perSecond == 0);
}

TEST_CASE("rate limit: a bucket refills at the configured rate", "[ratelimit]") {
  RateLimiter limiter(RateSpec{10, 10});
  CHECK(allowedOf(limiter, "k", 10, kT0) == 10);
  CHECK(limiter.acquire("k", kT0));
  // 100 ms at 10/s is exactly one token.
  CHECK_FALSE(limiter.acquire("k", kT0 + 100ms));
  CHECK(limiter.acquire("k", kT0 + 100ms));
  // 350 ms later: three whole tokens.
  CHECK(allowedOf(limiter, "k", 10, kT0 + 450ms) == 3);
  // Never more than the burst, however long the bucket was idle.
  CHECK(allowedOf(limiter, "k", 100, kT0 + 1h) == 10);
  // A clock that goes backwards refills nothing (and does not crash).
  CHECK(limiter.acquire("k", kT0));
}

TEST_CASE("rate limit: burst lets a quiet client send a batch", "[ratelimit]") {
  RateLimiter limiter(RateSpec{1, 5});
  CHECK(allowedOf(limiter, "batch", 20, kT0) == 5);
  CHECK(allowedOf(limiter, "batch", 20, kT0 + 2s) == 2);
  CHECK(allowedOf(limiter, "batch", 20, kT0 + 60s) == 5);
}

TEST_CASE("rate limit: the retry-after value says when the next token arrives", "[ratelimit]") {
  RateLimiter limiter(RateSpec{2, 1});  // one token every 500 ms
  REQUIRE_FALSE(limiter.acquire("k", kT0));
  auto wait = limiter.acquire("k", kT0);
  REQUIRE(wait);
  CHECK(*wait == 500ms);
  wait = limiter.acquire("k", kT0 + 200ms);
  REQUIRE(wait);
  CHECK(*wait == 300ms);
  wait = limiter.acquire("k", kT0 + 499ms + 999us);
  REQUIRE(wait);
  CHECK(*wait == 1ms);  // never 0: a zero Retry-After invites a busy loop
  CHECK_FALSE(limiter.acquire("k", kT0 + wait.value() + 499ms + 999us));

  RateLimiter hourly(*parseRate("1/h"));
  REQUIRE_FALSE(hourly.acquire("k", kT0));
  const auto hourWait = hourly.acquire("k", kT0);
  REQUIRE(hourWait);
  CHECK(*hourWait == 1h);

  RateLimiter never(RateSpec{0, 1});
  REQUIRE_FALSE(never.acquire("k", kT0));
  const auto neverWait = never.acquire("k", kT0 + 1000h);
  REQUIRE(neverWait);
  CHECK(*neverWait == 24h);
}

TEST_CASE("rate limit: separate keys have separate buckets", "[ratelimit]") {
  RateLimiter limiter(RateSpec{1, 2});
  CHECK(allowedOf(limiter, "alice", 5, kT0) == 2);
  CHECK(allowedOf(limiter, "bob", 5, kT0) == 2);
  CHECK(allowedOf(limiter, "alice", 5, kT0) == 0);
  CHECK(allowedOf(limiter, std::string("alice\0x", 7), 5, kT0) == 2);
  CHECK(limiter.size() == 3);
  limiter.reset("alice");
  CHECK(limiter.size() == 2);
  CHECK(allowedOf(limiter, "alice", 5, kT0) == 2);
  limiter.reset("never-seen");  // harmless
  CHECK(limiter.size() == 3);
}

TEST_CASE("rate limit: blocked checks without taking, consume takes even when empty", "[ratelimit]") {
  RateLimiter failures(RateSpec{0.1, 3});  // three failed logins, then one per 10 s
  CHECK_FALSE(failures.blocked("user:eve", kT0));
  CHECK(failures.size() == 0);  // checking creates no bucket
  for (int i = 0; i < 3; ++i) {
    CHECK_FALSE(failures.blocked("user:eve", kT0));
    failures.consume("user:eve", kT0);
  }
  auto wait = failures.blocked("user:eve", kT0);
  REQUIRE(wait);
  CHECK(*wait == 10s);
  CHECK(failures.blocked("user:eve", kT0) == wait);  // blocked() took nothing

  // Failures while blocked push the next attempt out, but at most to -burst.
  for (int i = 0; i < 100; ++i) failures.consume("user:eve", kT0);
  wait = failures.blocked("user:eve", kT0);
  REQUIRE(wait);
  CHECK(*wait == 40s);  // from -3 tokens back to 1 at 0.1/s
  CHECK(failures.blocked("user:eve", kT0 + 39s));
  CHECK_FALSE(failures.blocked("user:eve", kT0 + 40s));
  CHECK_FALSE(failures.blocked("user:mallory", kT0));
}

TEST_CASE("rate limit: the key table stays bounded and evicts idle buckets first", "[ratelimit]") {
  SECTION("size never exceeds maxKeys") {
    for (std::size_t maxKeys : {1U, 3U, 16U, 17U, 100U, 1000U}) {
      RateLimiter limiter(RateSpec{1, 1}, maxKeys);
      for (int i = 0; i < 5000; ++i) {
        limiter.acquire("key" + std::to_string(i), kT0);
        REQUIRE(limiter.size() <= maxKeys);
      }
      CHECK(limiter.size() >= maxKeys / 2);
    }
  }
  SECTION("a full table still admits new keys and keeps limiting busy ones") {
    RateLimiter limiter(RateSpec{1, 2}, 64);
    for (int i = 0; i < 64; ++i) limiter.acquire("idle" + std::to_string(i), kT0);
    CHECK(allowedOf(limiter, "busy", 5, kT0 + 10s) == 2);
    // A spray of newcomers: each gets its burst, none is locked out.
    for (int i = 0; i < 1000; ++i) CHECK(allowedOf(limiter, "new" + std::to_string(i), 3, kT0 + 10s) == 2);
    CHECK(limiter.size() <= 64);
  }
  SECTION("when no bucket is idle, the least recently used one goes") {
    RateLimiter limiter(RateSpec{1, 1}, 1);  // a single shard with a single slot
    REQUIRE_FALSE(limiter.acquire("a", kT0));
    REQUIRE(limiter.acquire("a", kT0));
    // "a" is drained and the only bucket: it must make room, "b" must not be locked out.
    REQUIRE_FALSE(limiter.acquire("b", kT0));
    CHECK(limiter.size() == 1);
    CHECK_FALSE(limiter.blocked("a", kT0));  // forgotten
    CHECK(limiter.blocked("b", kT0));
  }
  SECTION("an idle full bucket is evicted before the least recently used drained one") {
    // 32 keys over 16 shards: two slots per shard. Mirrors the limiter's sharding to find three
    // keys that land in one shard.
    RateLimiter limiter(RateSpec{1, 2}, 32);
    const auto shardOf = [](const std::string& key) { return std::hash<std::string_view>{}(key) % 16; };
    std::vector<std::string> sameShard{"drained"};
    for (int i = 0; sameShard.size() < 3; ++i)
      if (const auto key = "k" + std::to_string(i); shardOf(key) == shardOf(sameShard.front()))
        sameShard.push_back(key);
    const auto& drained = sameShard[0];
    const auto& idle = sameShard[1];
    const auto& newcomer = sameShard[2];

    for (int i = 0; i < 10; ++i) limiter.consume(drained, kT0);  // down to -2, least recently used
    REQUIRE_FALSE(limiter.acquire(idle, kT0 + 1s));              // 1 left, full again by +3 s
    REQUIRE_FALSE(limiter.acquire(newcomer, kT0 + 3s));          // the shard is full: one must go
    CHECK(limiter.size() == 2);
    // "drained" kept its debt: -2 + 3 s * 1/s = 1 token, where a fresh bucket would have 2.
    CHECK(allowedOf(limiter, drained, 5, kT0 + 3s) == 1);
  }
}

TEST_CASE("rate limit: concurrent acquire at a frozen time allows exactly the burst", "[ratelimit]") {
  RateLimiter limiter(RateSpec{5, 1000});
  std::atomic<int> allowed{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (limiter.acquire("shared", kT0))
          ++refused;
        else
          ++allowed;
        limiter.acquire("own" + std::to_string(i % 7), kT0);  // other shards at the same time
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(allowed == 1000);
  CHECK(refused == 1000);
}
