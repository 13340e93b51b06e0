// Signing keys of an identity provider: metadata discovery (RFC 8414 / OpenID Connect), JWK Set
// parsing (RFC 7517/7518), JWS signature checks and a thread-safe JWKS cache.
//
// Only keys that can verify RS256 (RSA >= 2048 bits) or ES256 (EC P-256) survive parsing, so a
// symmetric or encryption key published in a JWKS can never be mistaken for a signing key.
#pragma once

#include <openssl/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/http_fetch.hpp"
#include "common/expected.hpp"

namespace mcphost::auth {

inline constexpr std::size_t kMaxJwksDocumentBytes = std::size_t{1} << 20;
inline constexpr std::size_t kMaxJwksKeys = 100;
inline constexpr int kMinRsaBits = 2048;
inline constexpr int kMaxRsaBits = 16384;  // bigger keys only make verification a DoS vector

struct Jwk {
  std::string kid;    // empty when the set does not name it
  std::string kty;    // "RSA" or "EC"
  std::string alg;    // as published; empty when the set does not pin one
  std::string curve;  // "P-256" for EC keys
  int bits = 0;
  std::shared_ptr<EVP_PKEY> key;  // public key; read-only after parsing, so shareable across threads

  // Whether this key may verify a JWS with header alg `jwsAlg` (kty, curve and alg must fit).
  [[nodiscard]] bool usableFor(std::string_view jwsAlg) const;
};

struct JwkSet {
  std::vector<Jwk> keys;
  std::vector<std::string> skipped;  // why published keys were ignored, for diagnostics

  [[nodiscard]] const Jwk* findKid(std::string_view kid) const;
  [[nodiscard]] std::vector<const Jwk*> usableFor(std::string_view jwsAlg) const;
};

// Parses one JWK; the error says why it cannot be used for signature verification.
Expected<Jwk, std::string> parseJwk(const nlohmann::json& jwk);
// Parses a JWK Set document. Unusable keys are skipped (and listed in `skipped`); the whole set
// is an error when it is not JSON, too big, or holds no usable key at all.
Expected<JwkSet, std::string> parseJwks(std::string_view document);

// RS256: RSASSA-PKCS1-v1_5 with SHA-256. ES256: ECDSA P-256 with SHA-256, the signature being
// the JWS form (raw r||s, 64 bytes). False for any mismatch between key and algorithm.
bool verifyJwsSignature(const Jwk& key, std::string_view jwsAlg, std::string_view signingInput,
                        std::string_view signature);

// Parses JSON whose nesting depth is bounded, without throwing. Nullopt for bad or too deep JSON.
std::optional<nlohmann::json> parseJsonLimited(std::string_view text, std::size_t maxDepth = 32);

// The metadata URLs tried for an issuer, in order: RFC 8414 (well-known inserted before the
// issuer's path), the same appended to the issuer, then OpenID Connect discovery.
std::vector<std::string> metadataUrlsFor(const std::string& issuer);
// Fetches the first metadata document that answers and whose "issuer" equals `issuer`.
Expected<nlohmann::json, std::string> discoverIssuerMetadata(const std::string& issuer,
                                                             const HttpFetchOptions& http);

struct JwksSource {
  std::string issuer;   // used for discovery when jwksUri is empty
  std::string jwksUri;  // explicit JWKS location; empty = discover from the issuer's metadata
  HttpFetchOptions http;
  std::chrono::seconds ttl{600};
  std::chrono::seconds minRefreshInterval{10};
};

// Keeps the provider's current key set. A set older than the TTL is refreshed on use; when the
// refresh fails the old set stays in use (an outage should not log everyone out) and the refresh
// is retried no more often than minRefreshInterval. Only one fetch runs at a time; while a stale
// set is being refreshed, other callers keep using it instead of waiting.
class JwksCache {
 public:
  explicit JwksCache(JwksSource source);

  struct Snapshot {
    std::shared_ptr<const JwkSet> keys;  // null when no usable set was ever fetched
    std::string error;                   // the last failure (discovery, fetch or parse); no secrets
    std::string uri;                     // the JWKS URI in use, empty before discovery succeeded
  };

  Snapshot current();
  // For a token whose kid is not in the set: refetch now, but at most once per
  // minRefreshInterval so random kids cannot turn us into a traffic generator against the IdP.
  Snapshot refreshForUnknownKey();
  [[nodiscard]] int fetchCount() const;  // JWKS documents requested so far (not discovery)

 private:
  using Clock = std::chrono::steady_clock;
  Snapshot snapshotLocked() const;
  Snapshot refresh(std::uint64_t seenGeneration, bool waitForRunningFetch);
  Expected<std::shared_ptr<const JwkSet>, std::string> load();

  const JwksSource source_;
  std::mutex fetchMutex_;  // serialises network fetches; never taken while holding stateMutex_
  mutable std::mutex stateMutex_;
  std::shared_ptr<const JwkSet> keys_;
  std::string resolvedUri_;
  std::string lastError_;
  bool lastAttemptFailed_ = false;
  Clock::time_point fetchedAt_{};
  std::optional<Clock::time_point> lastAttemptAt_;
  std::optional<Clock::time_point> lastForcedAt_;
  std::uint64_t generation_ = 0;  // bumped after every completed attempt
  int fetchCount_ = 0;
};

}  // namespace mcphost::auth
