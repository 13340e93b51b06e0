// TLS for the event-driven listener, on OpenSSL memory BIOs: the reactor keeps doing all socket
// I/O and only passes bytes through the TLS engine, so encrypted connections cost no threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "auth/client_certificate.hpp"
#include "common/expected.hpp"

using SSL_CTX = struct ssl_ctx_st;
using SSL = struct ssl_st;

namespace mcphost::transport {

struct TlsSettings {
  std::string certificateFile;     // PEM, leaf first, then the chain
  std::string privateKeyFile;      // PEM
  std::string minVersion = "1.2";  // "1.2" or "1.3"
  // mTLS: request a client certificate and verify it against this CA (chain, validity and the
  // clientAuth purpose); required refuses handshakes that present none.
  std::string clientCaFile;
  bool clientCertRequired = false;
};

class TlsContext {
 public:
  // Loads and checks the certificate and key; the error names the file and the problem.
  static Expected<std::shared_ptr<TlsContext>, std::string> create(const TlsSettings& settings);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  [[nodiscard]] SSL_CTX* native() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// The TLS state of one server-side connection. Used by the reactor thread only.
class TlsStream {
 public:
  explicit TlsStream(const TlsContext& context);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Ciphertext from the socket in; decrypted application bytes appended to plaintext.
  // False on a fatal TLS error or when the peer closed the TLS session.
  bool receive(std::string_view ciphertext, std::string& plaintext);
  // Application bytes in; ciphertext to put on the socket appended to wire.
  bool send(std::string_view plaintext, std::string& wire);
  // Ciphertext the engine produced on its own (handshake records, alerts).
  void drain(std::string& wire);
  [[nodiscard]] bool handshakeDone() const;
  // The verified client certificate (null when none was presented); computed once.
  [[nodiscard]] std::shared_ptr<const auth::ClientCertificate> peerCertificate();
  // Why the last receive() failed, e.g. "client certificate: certificate has expired".
  [[nodiscard]] const std::string& failure() const { return failure_; }

 private:
  SSL* ssl_ = nullptr;
  bool peerChecked_ = false;
  std::shared_ptr<const auth::ClientCertificate> peer_;
  std::string failure_;
};

}  // namespace mcphost::transport
