// Connection-level plumbing for the LDAP authenticator: RAII for libldap resources, the SIGPIPE
// guard, bounded connection set-up (TLS-handshake watchdog, connect callback), binds and the pool
// of service-account connections. Internal to mcphost_auth_ldap (it needs <ldap.h>).
#pragma once

#include <ldap.h>
#include <signal.h>
#include <sys/time.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/auth_failure.hpp"
#include "auth/ldap_authenticator.hpp"
#include "common/expected.hpp"

namespace mcphost::auth::ldap_detail {

// ---- RAII for libldap resources -------------------------------------------------------------

struct LdapHandleDeleter {
  void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
using LdapHandle = std::unique_ptr<LDAP, LdapHandleDeleter>;

struct MessageDeleter {
  void operator()(LDAPMessage* message) const { ldap_msgfree(message); }
};
using MessagePtr = std::unique_ptr<LDAPMessage, MessageDeleter>;

struct LdapMemoryDeleter {
  void operator()(char* memory) const { ldap_memfree(memory); }
};
using LdapString = std::unique_ptr<char, LdapMemoryDeleter>;

struct BerElementDeleter {
  void operator()(BerElement* ber) const { ber_free(ber, 0); }
};
using BerPtr = std::unique_ptr<BerElement, BerElementDeleter>;

struct ValuesDeleter {
  void operator()(berval** values) const { ldap_value_free_len(values); }
};
using ValuesPtr = std::unique_ptr<berval*, ValuesDeleter>;

struct DnDeleter {
  void operator()(LDAPDN dn) const { ldap_dnfree(dn); }
};
using DnPtr = std::unique_ptr<LDAPRDN, DnDeleter>;

// libldap writes to sockets with write(): a server that closed the connection would raise
// SIGPIPE and kill the host. Block it in this thread for the duration of an LDAP call and
// swallow any SIGPIPE the call produced, without touching the process-wide disposition.
class SigpipeGuard {
 public:
  SigpipeGuard();
  ~SigpipeGuard();
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipeOnly_{};
  sigset_t previousMask_{};
  bool alreadyPending_ = false;
};

// ---- small helpers shared with the authenticator ----------------------------------------------

std::string asciiLower(std::string_view text);

// Server-provided text goes into log details: keep it printable and short.
std::string printable(std::string_view text);

timeval toTimeval(std::chrono::milliseconds duration);

// The handle's diagnostic message (printable), empty when there is none.
std::string diagnosticOf(LDAP* ld);

// "<ldap_err2string> (<code>)[: <diagnostic>]".
std::string describe(int code, const std::string& diagnostic);

// Client-side failures (server down, timeout, TLS, encoding) and the server saying it is busy
// or unavailable: the connection cannot be trusted for another request.
bool isConnectionLevelError(int code);

// Bind results that are about the credentials (or the account), not about the directory.
bool isCredentialRejection(int code);

AuthFailure invalidCredentials(std::string detail);
AuthFailure unavailable(std::string detail);

// The entries of a URL list separated by spaces or commas.
std::vector<std::string> splitUrls(const std::string& urls);

// ---- connection set-up and binds ----------------------------------------------------------------

// A simple bind. `password` empty means an anonymous bind (only ever used with an empty DN).
int simpleBind(LDAP* ld, const std::string& dn, std::string_view password, std::string& diagnostic);

// A connected handle (TLS established when configured), not yet bound. One URL at a time, so
// connection set-up (and its watchdog) concerns exactly one server and the detail can say which
// ones failed. All attempts share one deadline (settings.timeout).
Expected<LdapHandle, AuthFailure> openConnection(const LdapSettings& settings);

// A connection bound as the service account (or anonymously when there is none).
Expected<LdapHandle, AuthFailure> openServiceConnection(const LdapSettings& settings);

// Binds as `dn` on a fresh connection that is handed back for reads in template mode and
// otherwise closed; it never enters the service pool.
Expected<LdapHandle, AuthFailure> bindAsUser(const LdapSettings& settings, const std::string& dn,
                                             std::string_view password);

// ---- the service connection pool ------------------------------------------------------------

// Connections bound as the service account, reused across searches. At most `capacity` exist;
// callers beyond that wait (bounded by the timeout) so a burst cannot flood the directory.
class ServiceConnectionPool {
 public:
  using Factory = std::function<Expected<LdapHandle, AuthFailure>()>;

  class Lease {
   public:
    Lease(ServiceConnectionPool* pool, LdapHandle handle, bool reused)
        : pool_(pool), handle_(std::move(handle)), reused_(reused) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          handle_(std::move(other.handle_)),
          reused_(other.reused_),
          healthy_(other.healthy_) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->release(std::move(handle_), healthy_);
    }
    [[nodiscard]] LDAP* get() const { return handle_.get(); }
    [[nodiscard]] bool reused() const { return reused_; }
    void markBroken() { healthy_ = false; }

   private:
    ServiceConnectionPool* pool_;
    LdapHandle handle_;
    bool reused_;
    bool healthy_ = true;
  };

  ServiceConnectionPool(std::size_t capacity, std::chrono::milliseconds waitLimit, Factory factory);

  Expected<Lease, AuthFailure> acquire();

  // After the server dropped one pooled connection the others usually went with it.
  void discardIdle();

 private:
  struct IdleConnection {
    LdapHandle handle;
    std::chrono::steady_clock::time_point since;
  };

  void release(LdapHandle handle, bool healthy);

  const std::size_t capacity_;
  const std::chrono::milliseconds waitLimit_;
  const Factory factory_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<IdleConnection> idle_;
  std::size_t open_ = 0;  // idle + leased
};

}  // namespace mcphost::auth::ldap_detail
