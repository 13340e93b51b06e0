#include "transport/tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>

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

std::string nameEntry(X509_NAME* name, int nid) {
  if (name == nullptr) return {};
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length));
  OPENSSL_free(utf8);
  return out;
}

std::string oneLine(X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr || name == nullptr) {
    BIO_free(bio);
    return {};
  }
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(length > 0 ? length : 0));
  BIO_free(bio);
  return out;
}

auth::ClientCertificate describe(X509* cert) {
  auth::ClientCertificate out;
  out.subjectDn = oneLine(X509_get_subject_name(cert));
  out.subjectCn = nameEntry(X509_get_subject_name(cert), NID_commonName);
  out.issuerCn = nameEntry(X509_get_issuer_name(cert), NID_commonName);
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    auto* value = static_cast<ASN1_STRING*>(GENERAL_NAME_get0_value(name, &type));
    if (value == nullptr || (type != GEN_DNS && type != GEN_URI && type != GEN_EMAIL)) continue;
    std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                     static_cast<std::size_t>(ASN1_STRING_length(value)));
    if (text.find('\0') != std::string::npos) continue;  // embedded NUL: a spoofing attempt
    (type == GEN_DNS ? out.sanDns : type == GEN_URI ? out.sanUri : out.sanEmail).push_back(std::move(text));
  }
  GENERAL_NAMES_free(names);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (X509_digest(cert, EVP_sha256(), digest.data(), &length) == 1) {
    static const char* kHex = "0123456789abcdef";
    for (unsigned int i = 0; i < length; ++i) {
      out.fingerprintSha256 += kHex[digest[i] >> 4];
      out.fingerprintSha256 += kHex[digest[i] & 15];
    }
  }
  return out;
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
  if (!settings.clientCaFile.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, settings.clientCaFile.c_str(), nullptr) != 1) {
      return unexpected("server.tls.client_ca_file '" + settings.clientCaFile + "': " + lastError());
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.clientCaFile.c_str());
    if (names == nullptr) {
      return unexpected("server.tls.client_ca_file '" + settings.clientCaFile + "': no CA certificate in it");
    }
    SSL_CTX_set_client_CA_list(ctx, names);  // ctx owns the list now
    // Chain, validity period and the clientAuth purpose are checked by OpenSSL: a server-only
    // certificate from the same CA is refused.
    SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    SSL_CTX_set_verify(
        ctx, SSL_VERIFY_PEER | (settings.clientCertRequired ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
    static const unsigned char kSessionContext[] = "mcphost";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
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

std::shared_ptr<const auth::ClientCertificate> TlsStream::peerCertificate() {
  if (peerChecked_ || !handshakeDone()) return peer_;
  peerChecked_ = true;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert != nullptr && SSL_get_verify_result(ssl_) == X509_V_OK) {
    peer_ = std::make_shared<const auth::ClientCertificate>(describe(cert));
  }
  return peer_;
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
    const bool retry = error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE;
    if (!retry && failure_.empty()) {
      const long verify = SSL_get_verify_result(ssl_);
      failure_ = verify != X509_V_OK
                     ? std::string("client certificate: ") + X509_verify_cert_error_string(verify)
                     : lastError();
    }
    ERR_clear_error();
    return retry;
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
