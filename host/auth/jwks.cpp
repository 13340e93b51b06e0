#include "auth/jwks.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <utility>

#include "common/base64.hpp"

namespace mcphost::auth {

namespace {

template <auto Free>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* object) const {
    Free(object);
  }
};
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<&BN_free>>;
using ParamBuilderPtr = std::unique_ptr<OSSL_PARAM_BLD, OpenSslDeleter<&OSSL_PARAM_BLD_free>>;
using ParamsPtr = std::unique_ptr<OSSL_PARAM, OpenSslDeleter<&OSSL_PARAM_free>>;
using PkeyContextPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<&EVP_PKEY_CTX_free>>;
using DigestContextPtr = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<&EVP_MD_CTX_free>>;
using EcdsaSignaturePtr = std::unique_ptr<ECDSA_SIG, OpenSslDeleter<&ECDSA_SIG_free>>;

// A failed OpenSSL call leaves entries on the thread's error queue; left there they would be
// misreported by the next TLS operation on this thread (Poco reads the queue).
struct ClearOpenSslErrorsOnExit {
  ClearOpenSslErrorsOnExit() = default;
  ClearOpenSslErrorsOnExit(const ClearOpenSslErrorsOnExit&) = delete;
  ClearOpenSslErrorsOnExit& operator=(const ClearOpenSslErrorsOnExit&) = delete;
  ~ClearOpenSslErrorsOnExit() { ERR_clear_error(); }
};

const unsigned char* bytes(std::string_view data) {
  return reinterpret_cast<const unsigned char*>(data.data());
}

BignumPtr toBignum(std::string_view bigEndian) {
  return BignumPtr(BN_bin2bn(bytes(bigEndian), static_cast<int>(bigEndian.size()), nullptr));
}

std::shared_ptr<EVP_PKEY> publicKeyFromParams(const char* keyType, OSSL_PARAM_BLD* builder, bool checkKey) {
  const ParamsPtr params(OSSL_PARAM_BLD_to_param(builder));
  const PkeyContextPtr context(EVP_PKEY_CTX_new_from_name(nullptr, keyType, nullptr));
  if (!params || !context || EVP_PKEY_fromdata_init(context.get()) <= 0) return nullptr;
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(context.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0 || raw == nullptr) {
    return nullptr;
  }
  std::shared_ptr<EVP_PKEY> key(raw, &EVP_PKEY_free);
  if (checkKey) {
    // For EC: the point must lie on the curve, or invalid-curve attacks become possible.
    const PkeyContextPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  }
  return key;
}

std::optional<std::string> decodedMember(const nlohmann::json& jwk, const char* name) {
  const auto found = jwk.find(name);
  if (found == jwk.end() || !found->is_string()) return std::nullopt;
  auto decoded = base64UrlDecode(found->get_ref<const std::string&>());
  if (!decoded || decoded->empty()) return std::nullopt;
  return decoded;
}

std::string stringMember(const nlohmann::json& object, const char* name) {
  const auto found = object.find(name);
  return found != object.end() && found->is_string() ? found->get<std::string>() : std::string();
}

Expected<Jwk, std::string> parseRsaJwk(Jwk jwk, const nlohmann::json& object) {
  auto modulus = decodedMember(object, "n");
  const auto exponent = decodedMember(object, "e");
  if (!modulus || !exponent) return unexpected(std::string("RSA key lacks valid base64url n/e"));
  const auto firstNonZero = modulus->find_first_not_of('\0');
  if (firstNonZero == std::string::npos) return unexpected(std::string("RSA modulus is zero"));
  modulus->erase(0, firstNonZero);
  if (static_cast<int>(modulus->size()) * 8 > kMaxRsaBits) {
    return unexpected("RSA key is longer than " + std::to_string(kMaxRsaBits) + " bits");
  }
  if (exponent->size() > 8) return unexpected(std::string("RSA exponent is implausibly large"));
  const BignumPtr n = toBignum(*modulus);
  const BignumPtr e = toBignum(*exponent);
  const ParamBuilderPtr builder(OSSL_PARAM_BLD_new());
  if (!n || !e || !builder || OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return unexpected(std::string("RSA key cannot be built"));
  }
  if (BN_is_odd(e.get()) == 0 || BN_is_one(e.get()) != 0)
    return unexpected(std::string("RSA exponent is invalid"));
  jwk.key = publicKeyFromParams("RSA", builder.get(), false);
  if (!jwk.key) return unexpected(std::string("RSA key is not valid"));
  jwk.bits = EVP_PKEY_get_bits(jwk.key.get());
  if (jwk.bits < kMinRsaBits) {
    return unexpected("RSA key of " + std::to_string(jwk.bits) + " bits is too short (minimum " +
                      std::to_string(kMinRsaBits) + ")");
  }
  return jwk;
}

Expected<Jwk, std::string> parseEcJwk(Jwk jwk, const nlohmann::json& object) {
  jwk.curve = stringMember(object, "crv");
  if (jwk.curve != "P-256") return unexpected("EC curve '" + jwk.curve + "' is not supported (only P-256)");
  const auto x = decodedMember(object, "x");
  const auto y = decodedMember(object, "y");
  if (!x || !y || x->size() != 32 || y->size() != 32) {
    return unexpected(std::string("EC key lacks valid 32-byte base64url x/y"));
  }
  const std::string point = std::string(1, '\x04') + *x + *y;  // SEC 1 uncompressed form
  const ParamBuilderPtr builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) !=
          1) {
    return unexpected(std::string("EC key cannot be built"));
  }
  jwk.key = publicKeyFromParams("EC", builder.get(), true);
  if (!jwk.key) return unexpected(std::string("EC point is not on the P-256 curve"));
  jwk.bits = EVP_PKEY_get_bits(jwk.key.get());
  return jwk;
}

// Raw r||s (JWS) to the DER ECDSA-Sig-Value OpenSSL verifies.
std::optional<std::string> ecdsaRawToDer(std::string_view raw) {
  if (raw.size() != 64) return std::nullopt;
  BignumPtr r = toBignum(raw.substr(0, 32));
  BignumPtr s = toBignum(raw.substr(32));
  EcdsaSignaturePtr signature(ECDSA_SIG_new());
  if (!r || !s || !signature || ECDSA_SIG_set0(signature.get(), r.get(), s.get()) != 1) return std::nullopt;
  (void)r.release();  // owned by the signature now
  (void)s.release();
  const int length = i2d_ECDSA_SIG(signature.get(), nullptr);
  if (length <= 0) return std::nullopt;
  std::string der(static_cast<std::size_t>(length), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(signature.get(), &out) != length) return std::nullopt;
  return der;
}

std::size_t nestingDepth(std::string_view text, std::size_t limit) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool inString = false;
  bool escaped = false;
  for (const char c : text) {
    if (inString) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        inString = false;
      }
      continue;
    }
    if (c == '"') {
      inString = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::string trimTrailingSlash(std::string text) {
  while (!text.empty() && text.back() == '/') text.pop_back();
  return text;
}

}  // namespace

bool Jwk::usableFor(std::string_view jwsAlg) const {
  if (!key || (!alg.empty() && alg != jwsAlg)) return false;
  if (jwsAlg == "RS256") return kty == "RSA" && bits >= kMinRsaBits;
  if (jwsAlg == "ES256") return kty == "EC" && curve == "P-256";
  return false;
}

const Jwk* JwkSet::findKid(std::string_view kid) const {
  for (const auto& jwk : keys)
    if (jwk.kid == kid) return &jwk;
  return nullptr;
}

std::vector<const Jwk*> JwkSet::usableFor(std::string_view jwsAlg) const {
  std::vector<const Jwk*> usable;
  for (const auto& jwk : keys)
    if (jwk.usableFor(jwsAlg)) usable.push_back(&jwk);
  return usable;
}

Expected<Jwk, std::string> parseJwk(const nlohmann::json& object) {
  const ClearOpenSslErrorsOnExit clearErrors;
  if (!object.is_object()) return unexpected(std::string("key is not a JSON object"));
  Jwk jwk;
  jwk.kty = stringMember(object, "kty");
  jwk.kid = stringMember(object, "kid");
  jwk.alg = stringMember(object, "alg");
  const std::string label = jwk.kid.empty() ? std::string("key without kid") : "key '" + jwk.kid + "'";
  if (const auto use = object.find("use"); use != object.end() && (!use->is_string() || *use != "sig")) {
    return unexpected(label + ": not a signing key (use is not \"sig\")");
  }
  if (const auto ops = object.find("key_ops"); ops != object.end()) {
    if (!ops->is_array() || std::find(ops->begin(), ops->end(), "verify") == ops->end()) {
      return unexpected(label + ": key_ops does not allow \"verify\"");
    }
  }
  if (!jwk.alg.empty() && jwk.alg != "RS256" && jwk.alg != "ES256") {
    return unexpected(label + ": algorithm '" + jwk.alg + "' is not supported");
  }
  Expected<Jwk, std::string> parsed = unexpected(std::string());
  if (jwk.kty == "RSA") {
    if (!jwk.alg.empty() && jwk.alg != "RS256") return unexpected(label + ": alg does not fit an RSA key");
    parsed = parseRsaJwk(std::move(jwk), object);
  } else if (jwk.kty == "EC") {
    if (!jwk.alg.empty() && jwk.alg != "ES256") return unexpected(label + ": alg does not fit an EC key");
    parsed = parseEcJwk(std::move(jwk), object);
  } else {
    return unexpected(label + ": key type '" + jwk.kty + "' is not supported");
  }
  if (!parsed) return unexpected(label + ": " + parsed.error());
  return parsed;
}

Expected<JwkSet, std::string> parseJwks(std::string_view document) {
  if (document.size() > kMaxJwksDocumentBytes) return unexpected(std::string("JWKS document is too large"));
  const auto json = parseJsonLimited(document, 8);
  if (!json || !json->is_object()) return unexpected(std::string("JWKS document is not a JSON object"));
  const auto keys = json->find("keys");
  if (keys == json->end() || !keys->is_array())
    return unexpected(std::string("JWKS document has no \"keys\" array"));
  if (keys->size() > kMaxJwksKeys) {
    return unexpected("JWKS document has more than " + std::to_string(kMaxJwksKeys) + " keys");
  }
  JwkSet set;
  for (const auto& entry : *keys) {
    auto jwk = parseJwk(entry);
    if (jwk) {
      set.keys.push_back(std::move(jwk).value());
    } else {
      set.skipped.push_back(jwk.error());
    }
  }
  if (set.keys.empty()) {
    std::string why = "JWKS document holds no usable signing key";
    if (!set.skipped.empty()) why += " (" + set.skipped.front() + ")";
    return unexpected(why);
  }
  return set;
}

bool verifyJwsSignature(const Jwk& key, std::string_view jwsAlg, std::string_view signingInput,
                        std::string_view signature) {
  const ClearOpenSslErrorsOnExit clearErrors;
  if (!key.usableFor(jwsAlg)) return false;
  std::string der;
  std::string_view toVerify = signature;
  if (jwsAlg == "ES256") {
    auto converted = ecdsaRawToDer(signature);
    if (!converted) return false;
    der = std::move(*converted);
    toVerify = der;
  }
  const DigestContextPtr context(EVP_MD_CTX_new());
  if (!context || EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key.key.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(context.get(), bytes(toVerify), toVerify.size(), bytes(signingInput),
                          signingInput.size()) == 1;
}

std::optional<nlohmann::json> parseJsonLimited(std::string_view text, std::size_t maxDepth) {
  if (nestingDepth(text, maxDepth) > maxDepth) return std::nullopt;
  try {
    auto json = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (json.is_discarded()) return std::nullopt;
    return json;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::vector<std::string> metadataUrlsFor(const std::string& issuer) {
  const std::string base = trimTrailingSlash(issuer);
  std::vector<std::string> urls;
  const auto schemeEnd = base.find("://");
  const auto pathStart = schemeEnd == std::string::npos ? std::string::npos : base.find('/', schemeEnd + 3);
  if (pathStart != std::string::npos) {
    urls.push_back(base.substr(0, pathStart) + "/.well-known/oauth-authorization-server" +
                   base.substr(pathStart));
  }
  urls.push_back(base + "/.well-known/oauth-authorization-server");
  urls.push_back(base + "/.well-known/openid-configuration");
  return urls;
}

Expected<nlohmann::json, std::string> discoverIssuerMetadata(const std::string& issuer,
                                                             const HttpFetchOptions& http) {
  if (issuer.empty()) return unexpected(std::string("no issuer configured to discover metadata from"));
  std::string failures;
  for (const auto& url : metadataUrlsFor(issuer)) {
    if (!failures.empty()) failures += "; ";
    auto response = httpGet(url, http);
    if (!response) {
      failures += response.error();
      continue;
    }
    if (response->status != 200) {
      failures += "GET " + displayUrl(url) + " returned HTTP " + std::to_string(response->status);
      continue;
    }
    auto metadata = parseJsonLimited(response->body);
    if (!metadata || !metadata->is_object()) {
      failures += "GET " + displayUrl(url) + " did not return a JSON object";
      continue;
    }
    // RFC 8414 section 3.3: metadata naming another issuer must not be used (it could redirect
    // key lookups to an attacker's JWKS).
    if (stringMember(*metadata, "issuer") != issuer) {
      failures += displayUrl(url) + " describes a different issuer";
      continue;
    }
    return std::move(*metadata);
  }
  return unexpected("metadata discovery for " + displayUrl(issuer) + " failed: " + failures);
}

JwksCache::JwksCache(JwksSource source) : source_(std::move(source)) {}

JwksCache::Snapshot JwksCache::snapshotLocked() const {
  return Snapshot{keys_, lastAttemptFailed_ ? lastError_ : std::string(),
                  resolvedUri_.empty() ? source_.jwksUri : resolvedUri_};
}

int JwksCache::fetchCount() const {
  const std::lock_guard lock(stateMutex_);
  return fetchCount_;
}

JwksCache::Snapshot JwksCache::current() {
  std::uint64_t generation = 0;
  bool haveKeys = false;
  {
    const std::lock_guard lock(stateMutex_);
    const auto now = Clock::now();
    if (keys_ && now - fetchedAt_ < source_.ttl) return snapshotLocked();
    // After a failure, wait before asking again. Without any keys the wait is short (at most a
    // second): every request fails until the provider answers.
    auto backoff = std::chrono::duration_cast<Clock::duration>(source_.minRefreshInterval);
    if (!keys_) backoff = std::min<Clock::duration>(backoff, std::chrono::seconds(1));
    if (lastAttemptFailed_ && lastAttemptAt_ && now - *lastAttemptAt_ < backoff) return snapshotLocked();
    generation = generation_;
    haveKeys = keys_ != nullptr;
  }
  return refresh(generation, !haveKeys);
}

JwksCache::Snapshot JwksCache::refreshForUnknownKey() {
  std::uint64_t generation = 0;
  {
    const std::lock_guard lock(stateMutex_);
    const auto now = Clock::now();
    if (lastForcedAt_ && now - *lastForcedAt_ < source_.minRefreshInterval) return snapshotLocked();
    lastForcedAt_ = now;
    generation = generation_;
  }
  return refresh(generation, true);
}

JwksCache::Snapshot JwksCache::refresh(std::uint64_t seenGeneration, bool waitForRunningFetch) {
  std::unique_lock fetchLock(fetchMutex_, std::defer_lock);
  if (waitForRunningFetch) {
    fetchLock.lock();
  } else if (!fetchLock.try_lock()) {
    const std::lock_guard lock(stateMutex_);
    return snapshotLocked();  // someone is refreshing; the stale set is good enough meanwhile
  }
  {
    const std::lock_guard lock(stateMutex_);
    if (generation_ != seenGeneration) return snapshotLocked();  // fetched while we waited
  }
  auto loaded = load();
  const std::lock_guard lock(stateMutex_);
  const auto now = Clock::now();
  ++generation_;
  lastAttemptAt_ = now;
  lastAttemptFailed_ = !loaded;
  if (loaded) {
    keys_ = std::move(loaded).value();
    fetchedAt_ = now;
    lastError_.clear();
  } else {
    lastError_ = loaded.error();
  }
  return snapshotLocked();
}

Expected<std::shared_ptr<const JwkSet>, std::string> JwksCache::load() {
  std::string uri;
  {
    const std::lock_guard lock(stateMutex_);
    uri = source_.jwksUri.empty() ? resolvedUri_ : source_.jwksUri;
  }
  if (uri.empty()) {
    auto metadata = discoverIssuerMetadata(source_.issuer, source_.http);
    if (!metadata) return unexpected(metadata.error());
    uri = stringMember(*metadata, "jwks_uri");
    if (uri.empty()) return unexpected("the metadata of " + displayUrl(source_.issuer) + " has no jwks_uri");
  }
  auto response = httpGet(uri, source_.http);
  {
    const std::lock_guard lock(stateMutex_);
    ++fetchCount_;
    // Keep a discovered URI only while it works, so a provider moving its JWKS is followed.
    if (source_.jwksUri.empty()) resolvedUri_ = response && response->status == 200 ? uri : std::string();
  }
  if (!response) return unexpected(response.error());
  if (response->status != 200) {
    return unexpected("GET " + displayUrl(uri) + " returned HTTP " + std::to_string(response->status));
  }
  auto set = parseJwks(response->body);
  if (!set) return unexpected("the JWKS at " + displayUrl(uri) + " is unusable: " + set.error());
  return std::make_shared<const JwkSet>(std::move(set).value());
}

}  // namespace mcphost::auth
