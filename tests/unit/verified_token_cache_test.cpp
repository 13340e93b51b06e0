#include "auth/verified_token_cache.hpp"

#include <catch2/catch.hpp>

using mcphost::auth::Principal;
using mcphost::auth::VerifiedTokenCache;

TEST_CASE("verified tokens are remembered at most a minute and never past their expiry", "[jwt]") {
  VerifiedTokenCache cache;
  const auto now = VerifiedTokenCache::Clock::now();
  Principal alice;
  alice.subject = "alice";
  cache.store("digest-a", alice, now + std::chrono::hours(1), now);
  REQUIRE(cache.find("digest-a", now + std::chrono::seconds(59)));
  CHECK(cache.find("digest-a", now + std::chrono::seconds(59))->subject == "alice");
  CHECK_FALSE(cache.find("digest-a", now + std::chrono::seconds(61)));  // re-validated after a minute

  cache.store("digest-b", alice, now + std::chrono::seconds(5), now);
  CHECK(cache.find("digest-b", now + std::chrono::seconds(4)));
  CHECK_FALSE(cache.find("digest-b", now + std::chrono::seconds(5)));  // the token's own exp wins
  CHECK_FALSE(cache.find("unknown", now));
}

TEST_CASE("the verified-token cache stays bounded", "[jwt]") {
  VerifiedTokenCache cache;
  const auto now = VerifiedTokenCache::Clock::now();
  Principal p;
  for (std::size_t i = 0; i <= VerifiedTokenCache::kMaxEntries; ++i)
    cache.store("d" + std::to_string(i), p, now + std::chrono::hours(1), now);
  // The table started over when it was full: the newest entry is there, the oldest is not.
  CHECK(cache.find("d" + std::to_string(VerifiedTokenCache::kMaxEntries), now));
  CHECK_FALSE(cache.find("d0", now));
}
