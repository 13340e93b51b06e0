#include "common/crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace mcphost {

std::string randomBytes(std::size_t count) {
  std::string out(count, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(count)) != 1) {
    // Without randomness, session ids and keys would be guessable: stop rather than continue.
    std::fputs("mcphost: fatal: the OpenSSL CSPRNG failed\n", stderr);
    std::abort();
  }
  return out;
}

std::string toHex(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string randomToken(std::size_t bytes) {
  return toHex(randomBytes(bytes));
}

Expected<std::string, std::string> sha256FileHex(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rbe"), &std::fclose);
  if (!file) return unexpected("cannot read " + path + ": " + std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  char buffer[65536];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) EVP_DigestUpdate(ctx.get(), buffer, n);
  if (std::ferror(file.get()) != 0) return unexpected("cannot read " + path + ": " + std::strerror(errno));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return toHex(std::string_view(reinterpret_cast<const char*>(digest), len));
}

namespace {

// OpenSSL 3 looks an algorithm up in its provider tables on every call that names it with
// EVP_sha256() or HMAC(); the audit log and token checks run these per request, so the
// algorithms are fetched once and a keyed HMAC context is reused (below).
const EVP_MD* sha256Algorithm() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

struct MacContextFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};
using MacContext = std::unique_ptr<EVP_MAC_CTX, MacContextFree>;

MacContext keyedHmac(std::string_view key) {
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  MacContext ctx(hmac != nullptr ? EVP_MAC_CTX_new(hmac) : nullptr);
  if (!ctx) return ctx;
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                               OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) != 1)
    ctx.reset();
  return ctx;
}

}  // namespace

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const EVP_MD* md = sha256Algorithm();
  if (EVP_Digest(data.data(), data.size(), digest, &length, md != nullptr ? md : EVP_sha256(), nullptr) != 1)
    std::abort();
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string hmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  // One keyed context per thread for the key used last (callers mostly use one key, e.g. the
  // audit key): copying it skips the key schedule and the algorithm lookup.
  thread_local std::string cachedKey;
  thread_local MacContext keyed;
  if (!key.empty() && (!keyed || cachedKey != key)) {
    keyed = keyedHmac(key);
    cachedKey.assign(key);
  }
  if (!key.empty() && keyed) {
    MacContext ctx(EVP_MAC_CTX_dup(keyed.get()));
    std::size_t len = 0;
    if (ctx &&
        EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1 &&
        EVP_MAC_final(ctx.get(), mac, &len, sizeof mac) == 1)
      return std::string(reinterpret_cast<const char*>(mac), len);
  }
  unsigned int len = 0;  // an empty key, or OpenSSL refused the fast path
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace mcphost
