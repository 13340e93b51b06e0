// Token-bucket rate limits keyed by string (a principal, a source address, a user name ...).
// Used for request rates and for failed-authentication limits; bounded memory so that an
// attacker who sprays new keys cannot exhaust the host.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace mcphost::guard {

struct RateSpec {
  double perSecond = 0;  // refill rate, tokens per second
  double burst = 0;      // bucket capacity; parseRate defaults it to the count (5 for "5/min")
};

// "100/s", "600/min", "1000/h", "5/m", "2/sec", "10/hour" ...; an optional burst (>= 1) from the
// second argument. Errors name the accepted forms.
Expected<RateSpec, std::string> parseRate(std::string_view text, double burst = 0);

// Thread-safe: the buckets are spread over independently locked shards, so threads working on
// different keys rarely wait for each other. At most maxKeys buckets exist; see the .cpp for
// the eviction rules.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // A spec with a burst of 0 gets max(1, perSecond); a rate that is not positive never refills.
  explicit RateLimiter(RateSpec spec, std::size_t maxKeys = 100000);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Takes one token: nullopt = allowed; otherwise how long until a token is available (>= 1 ms).
  std::optional<std::chrono::milliseconds> acquire(std::string_view key,
                                                   Clock::time_point now = Clock::now());
  // Without taking a token: would acquire() fail now? For failed-authentication limits: check
  // first, and consume() only when the attempt failed.
  [[nodiscard]] std::optional<std::chrono::milliseconds> blocked(std::string_view key,
                                                                 Clock::time_point now = Clock::now()) const;
  // Takes a token even from an empty bucket (down to -burst at most), so repeated failures push
  // the next allowed attempt further out.
  void consume(std::string_view key, Clock::time_point now = Clock::now());
  void reset(std::string_view key);

  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] const RateSpec& spec() const;

 private:
  struct Shard;
  Shard& shardFor(std::string_view key) const;

  RateSpec spec_;
  std::size_t shardCount_;
  std::unique_ptr<Shard[]> shards_;  // NOLINT(modernize-avoid-c-arrays): fixed count, mutexes do not move
};

}  // namespace mcphost::guard
