#include "auth/ldap_connection.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <thread>

namespace mcphost::auth::ldap_detail {

// ---- SIGPIPE guard ----------------------------------------------------------------------------

SigpipeGuard::SigpipeGuard() {
  sigemptyset(&pipeOnly_);
  sigaddset(&pipeOnly_, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  alreadyPending_ = sigismember(&pending, SIGPIPE) == 1;
  if (!alreadyPending_) pthread_sigmask(SIG_BLOCK, &pipeOnly_, &previousMask_);
}

SigpipeGuard::~SigpipeGuard() {
  if (alreadyPending_) return;
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  if (sigismember(&pending, SIGPIPE) == 1) {
    const timespec noWait{0, 0};
    while (sigtimedwait(&pipeOnly_, nullptr, &noWait) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &previousMask_, nullptr);
}

// ---- small helpers ----------------------------------------------------------------------------

std::string asciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string printable(std::string_view text) {
  constexpr std::size_t kMaxLength = 200;
  std::string out;
  for (const char c : text.substr(0, kMaxLength)) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(byte >= 0x20U && byte < 0x7FU ? c : '?');
  }
  return out;
}

timeval toTimeval(std::chrono::milliseconds duration) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(duration.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((duration.count() % 1000) * 1000);
  return tv;
}

std::string diagnosticOf(LDAP* ld) {
  char* raw = nullptr;
  if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, static_cast<void*>(&raw)) != LDAP_OPT_SUCCESS ||
      raw == nullptr)
    return {};
  const LdapString message(raw);
  return printable(message.get());
}

std::string describe(int code, const std::string& diagnostic) {
  std::string text = std::string(ldap_err2string(code)) + " (" + std::to_string(code) + ")";
  if (!diagnostic.empty()) text += ": " + diagnostic;
  return text;
}

// Client-side failures (server down, timeout, TLS, encoding) and the server saying it is busy
// or unavailable: the connection cannot be trusted for another request.
bool isConnectionLevelError(int code) {
  return code < 0 || code == LDAP_BUSY || code == LDAP_UNAVAILABLE;
}

// Bind results that are about the credentials (or the account), not about the directory.
bool isCredentialRejection(int code) {
  return code == LDAP_INVALID_CREDENTIALS || code == LDAP_INAPPROPRIATE_AUTH ||
         code == LDAP_UNWILLING_TO_PERFORM || code == LDAP_INVALID_DN_SYNTAX || code == LDAP_NO_SUCH_OBJECT ||
         code == LDAP_INSUFFICIENT_ACCESS || code == LDAP_CONSTRAINT_VIOLATION;
}

AuthFailure invalidCredentials(std::string detail) {
  AuthFailure failure;
  failure.error = AuthError::kInvalidCredentials;
  failure.message = std::string(kLdapInvalidCredentialsMessage);
  failure.detail = "ldap: " + std::move(detail);
  failure.scheme = "Basic";
  return failure;
}

AuthFailure unavailable(std::string detail) {
  AuthFailure failure;
  failure.error = AuthError::kProviderUnavailable;
  failure.message = std::string(kLdapUnavailableMessage);
  failure.detail = "ldap: " + std::move(detail);
  failure.scheme = "Basic";
  return failure;
}

std::vector<std::string> splitUrls(const std::string& urls) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < urls.size()) {
    const std::size_t end = std::min(urls.find_first_of(" ,", start), urls.size());
    if (end > start) out.push_back(urls.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// A simple bind. `password` empty means an anonymous bind (only ever used with an empty DN).
int simpleBind(LDAP* ld, const std::string& dn, std::string_view password, std::string& diagnostic) {
  std::string credential(password);  // berval wants a mutable buffer; wiped below
  berval wire{};
  wire.bv_len = credential.size();
  wire.bv_val = credential.empty() ? nullptr : credential.data();
  const int code = ldap_sasl_bind_s(ld, dn.empty() ? nullptr : dn.c_str(), LDAP_SASL_SIMPLE, &wire, nullptr,
                                    nullptr, nullptr);
  volatile char* wipe = credential.data();
  for (std::size_t i = 0; i < credential.size(); ++i) wipe[i] = '\0';
  if (code != LDAP_SUCCESS) diagnostic = diagnosticOf(ld);
  return code;
}

namespace {

// An idle connection has nothing to say: readable data or a hang-up means the server closed it
// (or sent a notice of disconnection) while it sat in the pool.
bool looksAlive(LDAP* ld) {
  int descriptor = -1;
  if (ldap_get_option(ld, LDAP_OPT_DESC, &descriptor) != LDAP_OPT_SUCCESS || descriptor < 0) return false;
  pollfd watch{descriptor, static_cast<short>(POLLIN | POLLRDHUP), 0};
  return poll(&watch, 1, 0) == 0;
}

// ---- bounded connection set-up --------------------------------------------------------------

// libldap 2.5 with GnuTLS does not bound the TLS handshake: with LDAP_OPT_NETWORK_TIMEOUT set it
// makes the socket non-blocking and gnutls_handshake() then spins on EAGAIN for as long as a
// peer that accepted the TCP connection stays silent. So for TLS connections a watchdog owns a
// duplicate of the socket (it cannot be closed and reused under us) and shuts it down at the
// deadline, which makes a blocked handshake fail at once; the handshake itself runs blocking.
class ConnectWatchdog {
 public:
  explicit ConnectWatchdog(std::chrono::steady_clock::time_point deadline)
      : thread_([this, deadline] { run(deadline); }) {}
  ~ConnectWatchdog() {
    {
      const std::lock_guard lock(mutex_);
      finished_ = true;
    }
    wake_.notify_all();
    thread_.join();
    if (socket_ >= 0) ::close(socket_);
  }
  ConnectWatchdog(const ConnectWatchdog&) = delete;
  ConnectWatchdog& operator=(const ConnectWatchdog&) = delete;

  bool watch(int descriptor) {
    const std::lock_guard lock(mutex_);
    if (socket_ >= 0) ::close(socket_);
    socket_ = ::fcntl(descriptor, F_DUPFD_CLOEXEC, 0);
    if (expired_ && socket_ >= 0) ::shutdown(socket_, SHUT_RDWR);
    return socket_ >= 0;
  }
  [[nodiscard]] bool expired() {
    const std::lock_guard lock(mutex_);
    return expired_;
  }

 private:
  void run(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    if (wake_.wait_until(lock, deadline, [this] { return finished_; })) return;
    expired_ = true;
    if (socket_ >= 0) ::shutdown(socket_, SHUT_RDWR);
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  bool finished_ = false;
  bool expired_ = false;
  int socket_ = -1;
  std::thread thread_;  // last: starts once the members it uses exist
};

// What the connect callback needs to know about the connection being set up. libldap calls it
// synchronously in the connecting thread, hence a thread-local.
struct ConnectionSetup {
  bool active = false;
  ConnectWatchdog* watchdog = nullptr;  // TLS connections only
};
thread_local ConnectionSetup connectionSetup;

class ConnectionSetupScope {
 public:
  explicit ConnectionSetupScope(ConnectWatchdog* watchdog)
      : previous_(std::exchange(connectionSetup, ConnectionSetup{true, watchdog})) {}
  ~ConnectionSetupScope() { connectionSetup = previous_; }
  ConnectionSetupScope(const ConnectionSetupScope&) = delete;
  ConnectionSetupScope& operator=(const ConnectionSetupScope&) = delete;

 private:
  ConnectionSetup previous_;
};

// Runs once the TCP connection exists, before any TLS.
int onConnected(LDAP* ld, Sockbuf* socketBuffer, LDAPURLDesc* /*url*/, sockaddr* /*address*/,
                ldap_conncb* /*callbacks*/) {
  // libldap silently reconnects a handle whose connection was lost; that new connection would
  // be unbound (anonymous) and, with StartTLS, unencrypted. Only openConnection() may connect.
  if (!connectionSetup.active) return -1;
  if (connectionSetup.watchdog == nullptr) return 0;
  int descriptor = -1;
  ber_sockbuf_ctrl(socketBuffer, LBER_SB_OPT_GET_FD, &descriptor);
  // Without a watchdog the handshake would be unbounded: refuse the connection instead.
  if (descriptor < 0 || !connectionSetup.watchdog->watch(descriptor)) return -1;
  const timeval blocking{-1, 0};  // a blocking handshake, which the watchdog can interrupt
  ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &blocking);
  return 0;
}
void onClosed(LDAP* /*ld*/, Sockbuf* /*socketBuffer*/, ldap_conncb* /*callbacks*/) {}
ldap_conncb kConnectCallbacks{onConnected, onClosed, nullptr};

// A connected handle (TLS established when configured), not yet bound.
Expected<LdapHandle, std::string> openConnection(const LdapSettings& settings, const std::string& url,
                                                 std::chrono::steady_clock::time_point deadline) {
  const auto remaining =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (remaining <= std::chrono::milliseconds::zero()) return unexpected(url + ": no time left");
  LDAP* raw = nullptr;
  const int initialized = ldap_initialize(&raw, url.c_str());
  LdapHandle ld(raw);
  if (initialized != LDAP_SUCCESS || !ld)
    return unexpected("cannot use url '" + printable(url) + "': " + describe(initialized, {}));
  const bool tls = settings.startTls || asciiLower(url).rfind("ldaps://", 0) == 0;
  const int version = LDAP_VERSION3;
  const timeval connectTimeout = toTimeval(remaining);
  const timeval operationTimeout = toTimeval(settings.timeout);
  bool optionsSet =
      ldap_set_option(ld.get(), LDAP_OPT_PROTOCOL_VERSION, &version) == LDAP_OPT_SUCCESS &&
      ldap_set_option(ld.get(), LDAP_OPT_REFERRALS, LDAP_OPT_OFF) == LDAP_OPT_SUCCESS &&
      ldap_set_option(ld.get(), LDAP_OPT_NETWORK_TIMEOUT, &connectTimeout) == LDAP_OPT_SUCCESS &&
      ldap_set_option(ld.get(), LDAP_OPT_TIMEOUT, &operationTimeout) == LDAP_OPT_SUCCESS &&
      ldap_set_option(ld.get(), LDAP_OPT_CONNECT_CB, &kConnectCallbacks) == LDAP_OPT_SUCCESS;
  if (optionsSet && tls) {
    const int requireCertificate = settings.verifyCertificate ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
    const int minimumProtocol = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
    const int clientContext = 0;
    optionsSet =
        (settings.caFile.empty() ||
         ldap_set_option(ld.get(), LDAP_OPT_X_TLS_CACERTFILE, settings.caFile.c_str()) == LDAP_OPT_SUCCESS) &&
        ldap_set_option(ld.get(), LDAP_OPT_X_TLS_REQUIRE_CERT, &requireCertificate) == LDAP_OPT_SUCCESS &&
        ldap_set_option(ld.get(), LDAP_OPT_X_TLS_PROTOCOL_MIN, &minimumProtocol) == LDAP_OPT_SUCCESS &&
        // A context of this handle's own, so these TLS settings apply here and nowhere else.
        ldap_set_option(ld.get(), LDAP_OPT_X_TLS_NEWCTX, &clientContext) == LDAP_OPT_SUCCESS;
  }
  if (!optionsSet) return unexpected("cannot set connection options: " + diagnosticOf(ld.get()));

  std::optional<ConnectWatchdog> watchdog;
  if (tls) watchdog.emplace(deadline);
  const ConnectionSetupScope setup(watchdog ? &*watchdog : nullptr);
  auto failed = [&](const std::string& what, int code) {
    std::string detail = printable(url) + ": " + what + ": " + describe(code, diagnosticOf(ld.get()));
    if (watchdog && watchdog->expired()) detail += " (TLS set-up did not finish within the timeout)";
    return unexpected(std::move(detail));
  };
  if (const int connected = ldap_connect(ld.get()); connected != LDAP_SUCCESS)
    return failed("connect", connected);
  if (settings.startTls && ldap_tls_inplace(ld.get()) == 0) {
    // Never fall back to plain text: the password would cross the network in the clear.
    if (const int upgraded = ldap_start_tls_s(ld.get(), nullptr, nullptr); upgraded != LDAP_SUCCESS)
      return failed("StartTLS failed", upgraded);
  }
  // The watchdog's blocking set-up is over; later operations are bounded by LDAP_OPT_TIMEOUT.
  ldap_set_option(ld.get(), LDAP_OPT_NETWORK_TIMEOUT, &operationTimeout);
  return ld;
}

}  // namespace

// One URL at a time, so connection set-up (and its watchdog) concerns exactly one server and
// the detail can say which ones failed. All attempts share one deadline.
Expected<LdapHandle, AuthFailure> openConnection(const LdapSettings& settings) {
  const auto deadline = std::chrono::steady_clock::now() + settings.timeout;
  std::string failures;
  for (const auto& url : splitUrls(settings.url)) {
    auto connection = openConnection(settings, url, deadline);
    if (connection) return std::move(connection).value();
    failures += (failures.empty() ? "" : "; ") + connection.error();
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  return unexpected(unavailable(failures.empty() ? "no url to connect to" : failures));
}

Expected<LdapHandle, AuthFailure> openServiceConnection(const LdapSettings& settings) {
  auto connection = openConnection(settings);
  if (!connection) return connection;
  std::string diagnostic;
  // Without a service account the searches run anonymously (an anonymous bind forces the
  // connection to be established and checked here rather than on the first search).
  const int code = simpleBind(connection->get(), settings.bindDn, settings.bindPassword, diagnostic);
  if (code != LDAP_SUCCESS) {
    const std::string who = settings.bindDn.empty() ? "anonymous" : "'" + printable(settings.bindDn) + "'";
    return unexpected(unavailable("service bind as " + who + " failed: " + describe(code, diagnostic)));
  }
  return connection;
}

Expected<LdapHandle, AuthFailure> bindAsUser(const LdapSettings& settings, const std::string& dn,
                                             std::string_view password) {
  auto connection = openConnection(settings);
  if (!connection) return connection;
  std::string diagnostic;
  const int code = simpleBind(connection->get(), dn, password, diagnostic);
  if (code == LDAP_SUCCESS) return connection;
  if (isCredentialRejection(code))
    return unexpected(
        invalidCredentials("bind as '" + printable(dn) + "' rejected: " + describe(code, diagnostic)));
  return unexpected(unavailable("bind as '" + printable(dn) + "' failed: " + describe(code, diagnostic)));
}

// ---- the service connection pool ------------------------------------------------------------

ServiceConnectionPool::ServiceConnectionPool(std::size_t capacity, std::chrono::milliseconds waitLimit,
                                             Factory factory)
    : capacity_(std::max<std::size_t>(capacity, 1)), waitLimit_(waitLimit), factory_(std::move(factory)) {}

Expected<ServiceConnectionPool::Lease, AuthFailure> ServiceConnectionPool::acquire() {
  std::vector<LdapHandle> discarded;  // unbound after the lock is released
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + waitLimit_;
  while (true) {
    while (!idle_.empty()) {
      IdleConnection candidate = std::move(idle_.back());
      idle_.pop_back();
      // Firewalls and servers drop idle connections silently; past this age a fresh one is
      // cheaper than a timeout.
      constexpr auto kMaxIdle = std::chrono::minutes(5);
      if (std::chrono::steady_clock::now() - candidate.since < kMaxIdle && looksAlive(candidate.handle.get()))
        return Lease(this, std::move(candidate.handle), true);
      --open_;
      discarded.push_back(std::move(candidate.handle));
    }
    if (open_ < capacity_) {
      ++open_;
      lock.unlock();
      auto created = factory_();
      if (!created) {
        lock.lock();
        --open_;
        changed_.notify_one();
        return unexpected(created.error());
      }
      return Lease(this, std::move(created).value(), false);
    }
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= capacity_)
      return unexpected(unavailable("all " + std::to_string(capacity_) +
                                    " service connections busy for the whole timeout"));
  }
}

void ServiceConnectionPool::discardIdle() {
  std::vector<LdapHandle> discarded;
  std::lock_guard lock(mutex_);
  for (auto& idle : idle_) discarded.push_back(std::move(idle.handle));
  open_ -= idle_.size();
  idle_.clear();
  changed_.notify_all();
}

void ServiceConnectionPool::release(LdapHandle handle, bool healthy) {
  LdapHandle discarded;
  {
    std::lock_guard lock(mutex_);
    if (healthy && handle) {
      idle_.push_back({std::move(handle), std::chrono::steady_clock::now()});
    } else {
      --open_;
      discarded = std::move(handle);
    }
  }
  changed_.notify_one();
}

}  // namespace mcphost::auth::ldap_detail
