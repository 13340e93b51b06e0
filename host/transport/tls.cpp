#include "transport/tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace mcphost::transport {

namespace {

std::string lastError() {
  const unsigned long code = ERR_get_error();
  if (code == 0) return "unknown OpenSSL error";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof buffer);
  ERR_clear_error();
  return buffer;
}

}  // namespace

Expected<std::shared_ptr<TlsContext>, std::string> TlsContext::create(const TlsSettings& settings) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return unexpected("cannot create a TLS context: " + lastError());
  std::shared_ptr<TlsContext> context(new TlsContext(ctx));  // NOLINT: private constructor
  if (settings.minVersion != "1.2" && settings.minVersion != "1.3") {
    return unexpected("server.tls.min_version must be \"1.2\" or \"1.3\", not \"" + settings.minVersion +
                      "\"");
  }
  SSL_CTX_set_min_proto_version(ctx, settings.minVersion == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  // No renegotiation, no compression, server cipher preference.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx, settings.certificateFile.c_str()) != 1) {
    return unexpected("server.tls.certificate_file '" + settings.certificateFile + "': " + lastError());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, settings.privateKeyFile.c_str(), SSL_FILETYPE_PEM) != 1) {
    const bool mismatch = ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH;
    return unexpected(
        "server.tls.private_key_file '" + settings.privateKeyFile + "': " +
        (mismatch ? "the private key does not match the certificate (" + lastError() + ")" : lastError()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return unexpected("server.tls: the private key does not match the certificate: " + lastError());
  }
  return context;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

TlsStream::TlsStream(const TlsContext& context) : ssl_(SSL_new(context.native())) {
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl_, in, out);  // ssl_ owns both BIOs now
  SSL_set_accept_state(ssl_);
}

TlsStream::~TlsStream() {
  SSL_free(ssl_);
}

bool TlsStream::handshakeDone() const {
  return SSL_is_init_finished(ssl_) == 1;
}

bool TlsStream::receive(std::string_view ciphertext, std::string& plaintext) {
  if (!ciphertext.empty() &&
      BIO_write(SSL_get_rbio(ssl_), ciphertext.data(), static_cast<int>(ciphertext.size())) <= 0) {
    return false;
  }
  char buffer[16384];
  for (;;) {
    const int n = SSL_read(ssl_, buffer, sizeof buffer);
    if (n > 0) {
      plaintext.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    const int error = SSL_get_error(ssl_, n);
    ERR_clear_error();
    return error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE;
  }
}

bool TlsStream::send(std::string_view plaintext, std::string& wire) {
  while (!plaintext.empty()) {
    const int n = SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size()));
    if (n <= 0) {
      ERR_clear_error();
      return false;
    }
    plaintext.remove_prefix(static_cast<std::size_t>(n));
  }
  drain(wire);
  return true;
}

void TlsStream::drain(std::string& wire) {
  BIO* out = SSL_get_wbio(ssl_);
  char buffer[16384];
  while (BIO_ctrl_pending(out) > 0) {
    const int n = BIO_read(out, buffer, sizeof buffer);
    if (n <= 0) break;
    wire.append(buffer, static_cast<std::size_t>(n));
  }
}

}  // namespace mcphost::transport
