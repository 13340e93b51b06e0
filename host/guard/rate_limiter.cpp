#include "guard/rate_limiter.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <functional>
#include <iterator>
#include <list>
#include <mutex>
#include <unordered_map>

namespace mcphost::guard {

namespace {

using namespace std::chrono_literals;

// Token counts are doubles; refills computed from nanosecond durations can land a hair below a
// whole token (0.1 s * 10/s = 0.99999...), which must still count as one token.
constexpr double kTokenEpsilon = 1e-9;
constexpr std::size_t kMaxShards = 16;
// How many of the least recently used buckets to inspect for a full (idle) one before evicting
// the least recently used outright. Bounded, so a flood of new keys costs O(1) per insert.
constexpr std::size_t kEvictionScan = 32;
// A bucket that never refills (rate 0) still answers with a finite, sane Retry-After.
constexpr std::chrono::milliseconds kMaxRetryAfter = 24h;

struct Unit {
  std::string_view name;
  double seconds;
};
constexpr std::array kUnits{
    Unit{"s", 1},       Unit{"sec", 1},      Unit{"second", 1},   Unit{"seconds", 1}, Unit{"m", 60},
    Unit{"min", 60},    Unit{"minute", 60},  Unit{"minutes", 60}, Unit{"h", 3600},    Unit{"hr", 3600},
    Unit{"hour", 3600}, Unit{"hours", 3600}, Unit{"d", 86400},    Unit{"day", 86400}, Unit{"days", 86400},
};

constexpr std::string_view kAcceptedForms =
    "expected <count>/<unit> such as 100/s, 600/min, 5/m or 1000/h (units: s, m or min, h, d)";

std::string_view trim(std::string_view text) {
  const auto isSpace = [](char c) { return c == ' ' || c == '\t'; };
  while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
  return text;
}

std::string quoted(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  return "'" + std::string(text.substr(0, kMaxShown)) + (text.size() > kMaxShown ? "...'" : "'");
}

struct Bucket {
  double tokens = 0;
  RateLimiter::Clock::time_point updated;
};

struct Node {
  std::string key;
  Bucket bucket;
};

}  // namespace

Expected<RateSpec, std::string> parseRate(std::string_view text, double burst) {
  const std::string_view trimmed = trim(text);
  const auto slash = trimmed.find('/');
  if (slash == std::string_view::npos)
    return unexpected("invalid rate " + quoted(text) + ": " + std::string(kAcceptedForms));
  const std::string_view countText = trim(trimmed.substr(0, slash));
  const std::string_view unitText = trim(trimmed.substr(slash + 1));

  double count = 0;
  const auto [end, error] = std::from_chars(countText.data(), countText.data() + countText.size(), count);
  if (countText.empty() || error != std::errc() || end != countText.data() + countText.size() ||
      !std::isfinite(count) || count <= 0)
    return unexpected("invalid rate " + quoted(text) + ": the count must be a positive number; " +
                      std::string(kAcceptedForms));

  const auto unit =
      std::find_if(kUnits.begin(), kUnits.end(), [&](const Unit& u) { return u.name == unitText; });
  if (unit == kUnits.end())
    return unexpected("invalid rate " + quoted(text) + ": unknown unit " + quoted(unitText) + "; " +
                      std::string(kAcceptedForms));

  if (!std::isfinite(burst) || burst < 0 || (burst > 0 && burst < 1))
    return unexpected("invalid burst for rate " + quoted(text) +
                      ": the burst must be at least 1 (or 0 for the default: the count, as in 5 for 5/min)");

  RateSpec spec;
  spec.perSecond = count / unit->seconds;
  // "N per period" admits N at once by default: "5/min" allows five calls, then one every 12 s.
  spec.burst = burst > 0 ? burst : std::max(1.0, count);
  return spec;
}

namespace {

double refilled(const RateSpec& spec, const Bucket& bucket, RateLimiter::Clock::time_point now) {
  // A clock that steps backwards (or an injected earlier time) simply refills nothing.
  if (now <= bucket.updated) return bucket.tokens;
  const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
  return std::min(spec.burst, bucket.tokens + elapsed * spec.perSecond);
}

void store(Bucket& bucket, double tokens, RateLimiter::Clock::time_point now) {
  bucket.tokens = tokens;
  bucket.updated = std::max(bucket.updated, now);
}

bool hasToken(double tokens) {
  return tokens >= 1 - kTokenEpsilon;
}

std::chrono::milliseconds retryAfter(const RateSpec& spec, double tokens) {
  if (spec.perSecond <= 0) return kMaxRetryAfter;
  const double millis = std::ceil((1 - tokens) / spec.perSecond * 1000 - 1e-6);
  if (millis >= static_cast<double>(kMaxRetryAfter.count())) return kMaxRetryAfter;
  return std::max(std::chrono::milliseconds(1), std::chrono::milliseconds(static_cast<std::int64_t>(millis)));
}

}  // namespace

// Each shard is its own small LRU table under its own mutex; alignas keeps two shards' mutexes
// off one cache line so that threads on different shards do not slow each other down.
struct alignas(64) RateLimiter::Shard {
  mutable std::mutex mutex;
  std::list<Node> recency;  // front = most recently used; nodes never move, so views stay valid
  std::unordered_map<std::string_view, std::list<Node>::iterator> index;  // views into Node::key
  std::size_t capacity = 1;

  Bucket& findOrInsert(const RateSpec& spec, std::string_view key, Clock::time_point now) {
    if (auto found = index.find(key); found != index.end()) {
      recency.splice(recency.begin(), recency, found->second);
      return found->second->bucket;
    }
    if (index.size() >= capacity) evictOne(spec, now);
    recency.push_front(Node{std::string(key), Bucket{spec.burst, now}});
    index.emplace(std::string_view(recency.front().key), recency.begin());
    return recency.front().bucket;
  }

  void erase(std::list<Node>::iterator node) {
    index.erase(std::string_view(node->key));  // before the node: the index key views its string
    recency.erase(node);
  }

  // Makes room for one more bucket in a full shard.
  //
  // Why not refuse new keys when the table is full: an attacker spraying keys (source
  // addresses, user names) would then lock out every legitimate newcomer. Why not let new keys
  // through unlimited: the same spray would switch rate limiting off. So a bucket is evicted
  // instead: first an idle one that has refilled to full (forgetting it loses nothing, a new
  // bucket starts full anyway), else the least recently used one. Evicting a drained bucket
  // hands its owner a fresh burst, but only after `capacity` other keys were touched, each of
  // which got at most one burst itself: the total allowance stays bounded by the number of keys
  // an attacker controls, which is what a per-key limit promises anyway.
  void evictOne(const RateSpec& spec, Clock::time_point now) {
    if (recency.empty()) return;
    auto victim = std::prev(recency.end());
    auto candidate = victim;
    for (std::size_t scanned = 0; scanned < kEvictionScan; ++scanned) {
      if (refilled(spec, candidate->bucket, now) >= spec.burst - kTokenEpsilon) {
        victim = candidate;
        break;
      }
      if (candidate == recency.begin()) break;
      --candidate;
    }
    erase(victim);
  }
};

namespace {

RateSpec normalised(RateSpec spec) {
  if (!std::isfinite(spec.perSecond) || spec.perSecond < 0) spec.perSecond = 0;
  if (!std::isfinite(spec.burst) || spec.burst <= 0) spec.burst = std::max(1.0, spec.perSecond);
  // A bucket that cannot hold one whole token would refuse everything forever.
  spec.burst = std::max(1.0, spec.burst);
  return spec;
}

}  // namespace

RateLimiter::RateLimiter(RateSpec spec, std::size_t maxKeys)
    : spec_(normalised(spec)),
      shardCount_(std::min(kMaxShards, std::max<std::size_t>(1, maxKeys))),
      shards_(std::make_unique<Shard[]>(shardCount_)) {  // NOLINT(modernize-avoid-c-arrays)
  // Split maxKeys exactly over the shards, so the total never exceeds it.
  const std::size_t keys = std::max<std::size_t>(1, maxKeys);
  for (std::size_t i = 0; i < shardCount_; ++i)
    shards_[i].capacity = keys / shardCount_ + (i < keys % shardCount_ ? 1 : 0);
}

RateLimiter::~RateLimiter() = default;

RateLimiter::Shard& RateLimiter::shardFor(std::string_view key) const {
  return shards_[std::hash<std::string_view>{}(key) % shardCount_];
}

std::optional<std::chrono::milliseconds> RateLimiter::acquire(std::string_view key, Clock::time_point now) {
  Shard& shard = shardFor(key);
  std::lock_guard lock(shard.mutex);
  Bucket& bucket = shard.findOrInsert(spec_, key, now);
  const double tokens = refilled(spec_, bucket, now);
  if (hasToken(tokens)) {
    store(bucket, tokens - 1, now);
    return std::nullopt;
  }
  store(bucket, tokens, now);
  return retryAfter(spec_, tokens);
}

std::optional<std::chrono::milliseconds> RateLimiter::blocked(std::string_view key,
                                                              Clock::time_point now) const {
  Shard& shard = shardFor(key);
  std::lock_guard lock(shard.mutex);
  const auto found = shard.index.find(key);
  if (found == shard.index.end()) return std::nullopt;  // a new bucket starts full
  const double tokens = refilled(spec_, found->second->bucket, now);
  if (hasToken(tokens)) return std::nullopt;
  return retryAfter(spec_, tokens);
}

void RateLimiter::consume(std::string_view key, Clock::time_point now) {
  Shard& shard = shardFor(key);
  std::lock_guard lock(shard.mutex);
  Bucket& bucket = shard.findOrInsert(spec_, key, now);
  store(bucket, std::max(-spec_.burst, refilled(spec_, bucket, now) - 1), now);
}

void RateLimiter::reset(std::string_view key) {
  Shard& shard = shardFor(key);
  std::lock_guard lock(shard.mutex);
  const auto found = shard.index.find(key);
  if (found == shard.index.end()) return;
  shard.erase(found->second);
}

std::size_t RateLimiter::size() const {
  std::size_t total = 0;
  for (std::size_t i = 0; i < shardCount_; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    total += shards_[i].index.size();
  }
  return total;
}

const RateSpec& RateLimiter::spec() const {
  return spec_;
}

}  // namespace mcphost::guard
