#include "auth/ldap_authenticator.hpp"

#include <fcntl.h>
#include <ldap.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "auth/ldap_filter.hpp"
#include "common/base64.hpp"

namespace mcphost::auth {

namespace {

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
  SigpipeGuard() {
    sigemptyset(&pipeOnly_);
    sigaddset(&pipeOnly_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    alreadyPending_ = sigismember(&pending, SIGPIPE) == 1;
    if (!alreadyPending_) pthread_sigmask(SIG_BLOCK, &pipeOnly_, &previousMask_);
  }
  ~SigpipeGuard() {
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
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipeOnly_{};
  sigset_t previousMask_{};
  bool alreadyPending_ = false;
};

// ---- small helpers ----------------------------------------------------------------------------

std::string asciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  return asciiLower(a) == asciiLower(b);
}

bool isValidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t codePoint = 0;
    if (lead < 0x80U) {
      ++i;
      continue;
    }
    if ((lead & 0xE0U) == 0xC0U) {
      length = 2;
      codePoint = lead & 0x1FU;
    } else if ((lead & 0xF0U) == 0xE0U) {
      length = 3;
      codePoint = lead & 0x0FU;
    } else if ((lead & 0xF8U) == 0xF0U) {
      length = 4;
      codePoint = lead & 0x07U;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0U) != 0x80U) return false;
      codePoint = (codePoint << 6U) | (next & 0x3FU);
    }
    const bool overlong = (length == 2 && codePoint < 0x80U) || (length == 3 && codePoint < 0x800U) ||
                          (length == 4 && codePoint < 0x10000U);
    if (overlong || codePoint > 0x10FFFFU || (codePoint >= 0xD800U && codePoint <= 0xDFFFU)) return false;
    i += length;
  }
  return true;
}

// Server-provided text goes into log details: keep it printable and short.
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

// Attributes that hold secrets in common schemas: never copied into a Principal.
bool isSecretAttribute(std::string_view name) {
  static const char* const kSecretAttributes[] = {
      "userpassword",         "authpassword",    "unicodepwd",
      "sambantpassword",      "sambalmpassword", "supplementalcredentials",
      "ntpwdhistory",         "lmpwdhistory",    "dbcspwd",
      "msds-managedpassword", "userpkcs12",      "krbprincipalkey"};
  const std::string lower = asciiLower(name);
  return std::any_of(std::begin(kSecretAttributes), std::end(kSecretAttributes),
                     [&](const char* secret) { return lower == secret; });
}

// ---- directory operations -----------------------------------------------------------------

struct DirectoryEntry {
  std::string dn;
  std::map<std::string, std::vector<std::string>> attributes;  // keyed by lowercased name

  [[nodiscard]] const std::vector<std::string>* values(std::string_view name) const {
    const auto found = attributes.find(asciiLower(name));
    return found == attributes.end() || found->second.empty() ? nullptr : &found->second;
  }
  [[nodiscard]] std::optional<std::string> firstText(std::string_view name) const {
    const auto* all = values(name);
    if (all == nullptr) return std::nullopt;
    for (const auto& value : *all)
      if (!value.empty() && isValidUtf8(value)) return value;
    return std::nullopt;
  }
};

struct SearchOutcome {
  int code = LDAP_SUCCESS;
  std::string diagnostic;
  std::vector<DirectoryEntry> entries;
};

DirectoryEntry readEntry(LDAP* ld, LDAPMessage* message) {
  DirectoryEntry entry;
  if (const LdapString dn(ldap_get_dn(ld, message)); dn) entry.dn = dn.get();
  BerElement* rawBer = nullptr;
  LdapString attribute(ldap_first_attribute(ld, message, &rawBer));
  const BerPtr ber(rawBer);
  for (; attribute; attribute.reset(ldap_next_attribute(ld, message, ber.get()))) {
    auto& target = entry.attributes[asciiLower(attribute.get())];
    const ValuesPtr values(ldap_get_values_len(ld, message, attribute.get()));
    if (!values) continue;
    for (berval** value = values.get(); *value != nullptr; ++value)
      target.emplace_back((*value)->bv_val, (*value)->bv_len);
  }
  return entry;
}

SearchOutcome search(LDAP* ld, const std::string& base, int scope, const std::string& filter,
                     const std::vector<std::string>& attributes, int sizeLimit,
                     std::chrono::milliseconds timeout) {
  std::vector<std::string> attributeStorage = attributes;
  if (attributeStorage.empty()) attributeStorage.emplace_back(LDAP_NO_ATTRS);
  std::vector<char*> attributeList;
  attributeList.reserve(attributeStorage.size() + 1);
  for (auto& name : attributeStorage) attributeList.push_back(name.data());
  attributeList.push_back(nullptr);

  timeval limit = toTimeval(timeout);
  LDAPMessage* rawResult = nullptr;
  SearchOutcome outcome;
  outcome.code = ldap_search_ext_s(ld, base.c_str(), scope, filter.c_str(), attributeList.data(), 0, nullptr,
                                   nullptr, &limit, sizeLimit, &rawResult);
  const MessagePtr result(rawResult);  // set on success and on many errors: always freed
  if (outcome.code != LDAP_SUCCESS) outcome.diagnostic = diagnosticOf(ld);
  if (result) {
    // Search references (Active Directory returns them for partitions) are skipped: referrals
    // are never chased.
    for (LDAPMessage* message = ldap_first_entry(ld, result.get()); message != nullptr;
         message = ldap_next_entry(ld, message))
      outcome.entries.push_back(readEntry(ld, message));
  }
  return outcome;
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

// The value of the first RDN ("hr" for "cn=hr,ou=groups,dc=example,dc=com").
std::optional<std::string> firstRdnValue(const std::string& dn) {
  LDAPDN parsed = nullptr;
  if (ldap_str2dn(dn.c_str(), &parsed, LDAP_DN_FORMAT_LDAP) != LDAP_SUCCESS || parsed == nullptr)
    return std::nullopt;
  const DnPtr owner(parsed);
  if (parsed[0] == nullptr || parsed[0][0] == nullptr) return std::nullopt;
  const berval& value = parsed[0][0]->la_value;
  return std::string(value.bv_val, value.bv_len);
}

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

  ServiceConnectionPool(std::size_t capacity, std::chrono::milliseconds waitLimit, Factory factory)
      : capacity_(std::max<std::size_t>(capacity, 1)), waitLimit_(waitLimit), factory_(std::move(factory)) {}

  Expected<Lease, AuthFailure> acquire() {
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
        if (std::chrono::steady_clock::now() - candidate.since < kMaxIdle &&
            looksAlive(candidate.handle.get()))
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
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= capacity_)
        return unexpected(unavailable("all " + std::to_string(capacity_) +
                                      " service connections busy for the whole timeout"));
    }
  }

  // After the server dropped one pooled connection the others usually went with it.
  void discardIdle() {
    std::vector<LdapHandle> discarded;
    std::lock_guard lock(mutex_);
    for (auto& idle : idle_) discarded.push_back(std::move(idle.handle));
    open_ -= idle_.size();
    idle_.clear();
    changed_.notify_all();
  }

 private:
  struct IdleConnection {
    LdapHandle handle;
    std::chrono::steady_clock::time_point since;
  };

  void release(LdapHandle handle, bool healthy) {
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

  const std::size_t capacity_;
  const std::chrono::milliseconds waitLimit_;
  const Factory factory_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<IdleConnection> idle_;
  std::size_t open_ = 0;  // idle + leased
};

std::optional<std::string> validateSettings(const LdapSettings& s) {
  if (splitUrls(s.url).empty()) return "ldap: url is empty";
  for (const auto& url : splitUrls(s.url)) {
    const std::string lower = asciiLower(url);
    if (lower.rfind("ldap://", 0) != 0 && lower.rfind("ldaps://", 0) != 0)
      return "ldap: url must be ldap://host:port or ldaps://host:port, got '" + printable(url) + "'";
  }
  if (s.timeout <= std::chrono::milliseconds::zero()) return "ldap: timeout must be positive";
  if (!s.bindDn.empty() && s.bindPassword.empty())
    return "ldap: bindDn is set but bindPassword is empty (an unauthenticated bind would pass)";
  if (s.bindDnTemplate.empty()) {
    if (s.userBase.empty()) return "ldap: userBase is required for search-then-bind";
    if (s.userFilter.find("{username}") == std::string::npos)
      return "ldap: userFilter must contain {username}";
  } else if (s.bindDnTemplate.find("{username}") == std::string::npos) {
    return "ldap: bindDnTemplate must contain {username}";
  }
  if (s.groupMode == LdapGroupMode::kSearch) {
    if (s.groupBase.empty()) return "ldap: groupBase is required when groups are searched";
    if (s.groupFilter.find("{dn}") == std::string::npos) return "ldap: groupFilter must contain {dn}";
  }
  if (!s.caFile.empty() && access(s.caFile.c_str(), R_OK) != 0)
    return "ldap: caFile " + s.caFile + " is not readable";
  return std::nullopt;
}

}  // namespace

// ---- the authenticator ----------------------------------------------------------------------

struct LdapAuthenticator::Impl {
  explicit Impl(LdapSettings s)
      : settings(std::move(s)),
        configError(validateSettings(settings)),
        pool(settings.poolSize, settings.timeout, [this] { return openServiceConnection(); }) {
    auto request = [this](const std::string& name) {
      if (name.empty() || isSecretAttribute(name)) return;
      for (const auto& existing : userAttributes)
        if (equalsIgnoringCase(existing, name)) return;
      userAttributes.push_back(name);
    };
    request("uid");
    request("sAMAccountName");
    request(settings.displayNameAttribute);
    request(settings.tenantAttribute);
    for (const auto& extra : settings.extraAttributes) request(extra);
    if (settings.groupMode == LdapGroupMode::kMemberOf) request("memberOf");
  }

  // One URL at a time, so connection set-up (and its watchdog) concerns exactly one server and
  // the detail can say which ones failed. All attempts share one deadline.
  Expected<LdapHandle, AuthFailure> openConnection() const {
    const auto deadline = std::chrono::steady_clock::now() + settings.timeout;
    std::string failures;
    for (const auto& url : splitUrls(settings.url)) {
      auto connection = openConnection(url, deadline);
      if (connection) return std::move(connection).value();
      failures += (failures.empty() ? "" : "; ") + connection.error();
      if (std::chrono::steady_clock::now() >= deadline) break;
    }
    return unexpected(unavailable(failures.empty() ? "no url to connect to" : failures));
  }

  // A connected handle (TLS established when configured), not yet bound.
  Expected<LdapHandle, std::string> openConnection(const std::string& url,
                                                   std::chrono::steady_clock::time_point deadline) const {
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
      const int requireCertificate =
          settings.verifyCertificate ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
      const int minimumProtocol = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
      const int clientContext = 0;
      optionsSet =
          (settings.caFile.empty() || ldap_set_option(ld.get(), LDAP_OPT_X_TLS_CACERTFILE,
                                                      settings.caFile.c_str()) == LDAP_OPT_SUCCESS) &&
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

  Expected<LdapHandle, AuthFailure> openServiceConnection() const {
    auto connection = openConnection();
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

  // A search on a pooled service connection; a pooled connection the server dropped is
  // discarded and the search retried once on a fresh connection.
  Expected<SearchOutcome, AuthFailure> searchAsService(const std::string& base, int scope,
                                                       const std::string& filter,
                                                       const std::vector<std::string>& attributes,
                                                       int sizeLimit) {
    for (int attempt = 0;; ++attempt) {
      auto lease = pool.acquire();
      if (!lease) return unexpected(lease.error());
      SearchOutcome outcome =
          search(lease->get(), base, scope, filter, attributes, sizeLimit, settings.timeout);
      if (!isConnectionLevelError(outcome.code)) return outcome;
      lease->markBroken();
      const bool serverWentAway = outcome.code == LDAP_SERVER_DOWN || outcome.code == LDAP_CONNECT_ERROR;
      if (serverWentAway && lease->reused() && attempt == 0) {
        pool.discardIdle();
        continue;
      }
      return unexpected(unavailable("search in '" + printable(base) +
                                    "' failed: " + describe(outcome.code, outcome.diagnostic)));
    }
  }

  Expected<SearchOutcome, AuthFailure> searchOn(LDAP* userConnection, const std::string& base, int scope,
                                                const std::string& filter,
                                                const std::vector<std::string>& attributes, int sizeLimit) {
    if (userConnection == nullptr) return searchAsService(base, scope, filter, attributes, sizeLimit);
    SearchOutcome outcome =
        search(userConnection, base, scope, filter, attributes, sizeLimit, settings.timeout);
    if (isConnectionLevelError(outcome.code))
      return unexpected(unavailable("search in '" + printable(base) +
                                    "' failed: " + describe(outcome.code, outcome.diagnostic)));
    return outcome;
  }

  // Binds as `dn` on a fresh connection that is handed back for reads in template mode and
  // otherwise closed; it never enters the service pool.
  Expected<LdapHandle, AuthFailure> bindAsUser(const std::string& dn, std::string_view password) const {
    auto connection = openConnection();
    if (!connection) return connection;
    std::string diagnostic;
    const int code = simpleBind(connection->get(), dn, password, diagnostic);
    if (code == LDAP_SUCCESS) return connection;
    if (isCredentialRejection(code))
      return unexpected(
          invalidCredentials("bind as '" + printable(dn) + "' rejected: " + describe(code, diagnostic)));
    return unexpected(unavailable("bind as '" + printable(dn) + "' failed: " + describe(code, diagnostic)));
  }

  Expected<std::vector<std::string>, AuthFailure> lookupGroups(const DirectoryEntry& user,
                                                               LDAP* userConnection) {
    std::vector<std::string> groups;
    auto add = [&groups](std::string name) {
      if (name.empty() || !isValidUtf8(name)) return;
      for (const auto& existing : groups)
        if (equalsIgnoringCase(existing, name)) return;
      groups.push_back(std::move(name));
    };
    if (settings.groupMode == LdapGroupMode::kMemberOf) {
      if (const auto* memberOf = user.values("memberOf"))
        for (const auto& groupDn : *memberOf) add(firstRdnValue(groupDn).value_or(groupDn));
    } else if (settings.groupMode == LdapGroupMode::kSearch) {
      const std::string filter = buildGroupFilter(settings.groupFilter, user.dn, settings.nestedGroups);
      auto found = searchOn(userConnection, settings.groupBase, LDAP_SCOPE_SUBTREE, filter,
                            {settings.groupNameAttribute}, LDAP_NO_LIMIT);
      if (!found) return unexpected(found.error());
      // Partial group lists would silently drop roles: anything but success fails closed.
      if (found->code != LDAP_SUCCESS)
        return unexpected(unavailable("group search in '" + printable(settings.groupBase) +
                                      "' failed: " + describe(found->code, found->diagnostic)));
      for (const auto& group : found->entries) {
        if (auto name = group.firstText(settings.groupNameAttribute)) {
          add(std::move(*name));
        } else {
          add(firstRdnValue(group.dn).value_or(group.dn));
        }
      }
    }
    return groups;
  }

  [[nodiscard]] Principal buildPrincipal(const std::string& typedName, const DirectoryEntry& user,
                                         std::vector<std::string> groups) const {
    Principal principal;
    principal.authMethod = "ldap";
    principal.issuer = settings.url;
    principal.subject = typedName;
    // The directory's spelling of the login name, preferring the value the user typed.
    for (const char* loginAttribute : {"uid", "sAMAccountName"}) {
      const auto* values = user.values(loginAttribute);
      if (values == nullptr) continue;
      const auto typed = std::find_if(values->begin(), values->end(),
                                      [&](const std::string& v) { return equalsIgnoringCase(v, typedName); });
      if (typed != values->end() && isValidUtf8(*typed)) {
        principal.subject = *typed;
      } else if (auto first = user.firstText(loginAttribute)) {
        principal.subject = std::move(*first);
      }
      break;
    }
    principal.displayName = user.firstText(settings.displayNameAttribute).value_or(principal.subject);
    if (!settings.tenantAttribute.empty())
      principal.tenant = user.firstText(settings.tenantAttribute).value_or("");
    principal.attributes["dn"] = isValidUtf8(user.dn) ? user.dn : base64Encode(user.dn);
    for (const auto& name : settings.extraAttributes) {
      const auto* values = name.empty() || isSecretAttribute(name) ? nullptr : user.values(name);
      if (values == nullptr) continue;
      // JSON needs UTF-8; binary values (objectGUID, photos) are carried as base64.
      nlohmann::json list = nlohmann::json::array();
      for (const auto& value : *values) list.push_back(isValidUtf8(value) ? value : base64Encode(value));
      principal.attributes[name] = list.size() == 1 ? list[0] : list;
    }
    for (const auto& group : groups) {
      for (const auto& [groupName, roles] : settings.groupRoles) {
        if (!equalsIgnoringCase(groupName, group)) continue;
        for (const auto& role : roles)
          if (std::find(principal.roles.begin(), principal.roles.end(), role) == principal.roles.end())
            principal.roles.push_back(role);
      }
    }
    principal.groups = std::move(groups);
    return principal;
  }

  Expected<Principal, AuthFailure> authenticate(std::string_view rawUsername, std::string_view password) {
    if (configError) return unexpected(unavailable(*configError));
    // Checked before any network traffic. An empty password in particular must never reach the
    // directory: a simple bind with a DN and no password is an "unauthenticated" bind that
    // many servers answer with success.
    if (rawUsername.size() > kLdapMaxUsernameBytes)
      return unexpected(invalidCredentials("username too long"));
    if (std::any_of(rawUsername.begin(), rawUsername.end(), [](char c) {
          const auto byte = static_cast<unsigned char>(c);
          return byte < 0x20U || byte == 0x7FU;
        }))
      return unexpected(invalidCredentials("username contains control characters"));
    const std::size_t first = rawUsername.find_first_not_of(' ');
    if (first == std::string_view::npos) return unexpected(invalidCredentials("empty username"));
    const std::string username(rawUsername.substr(first, rawUsername.find_last_not_of(' ') - first + 1));
    if (password.empty()) return unexpected(invalidCredentials("empty password refused"));
    if (password.size() > kLdapMaxPasswordBytes) return unexpected(invalidCredentials("password too long"));
    if (password.find('\0') != std::string_view::npos)
      return unexpected(invalidCredentials("password contains NUL"));

    DirectoryEntry user;
    LdapHandle userConnection;
    if (!settings.bindDnTemplate.empty()) {
      const std::string dn = buildBindDn(settings.bindDnTemplate, username);
      auto bound = bindAsUser(dn, password);
      if (!bound) return unexpected(bound.error());
      userConnection = std::move(bound).value();
      // Read with the service account when there is one (users often cannot read groups).
      LDAP* reader = settings.bindDn.empty() ? userConnection.get() : nullptr;
      auto read = searchOn(reader, dn, LDAP_SCOPE_BASE, "(objectClass=*)", userAttributes, 1);
      if (!read) return unexpected(read.error());
      if (read->code != LDAP_SUCCESS && read->code != LDAP_NO_SUCH_OBJECT)
        return unexpected(
            unavailable("reading '" + printable(dn) + "' failed: " + describe(read->code, read->diagnostic)));
      // An entry the reader may not see still bound successfully: authenticated, no attributes.
      if (read->code == LDAP_SUCCESS && !read->entries.empty()) user = std::move(read->entries.front());
      user.dn = dn;
      if (!settings.bindDn.empty()) userConnection.reset();
    } else {
      const std::string filter = buildUserFilter(settings.userFilter, username);
      // Size limit 2: enough to tell "exactly one" from "ambiguous".
      auto found = searchAsService(settings.userBase, LDAP_SCOPE_SUBTREE, filter, userAttributes, 2);
      if (!found) return unexpected(found.error());
      if (found->code == LDAP_SIZELIMIT_EXCEEDED || found->entries.size() > 1)
        return unexpected(invalidCredentials("ambiguous: more than one entry matches " + filter));
      if (found->code != LDAP_SUCCESS)
        return unexpected(unavailable("user search in '" + printable(settings.userBase) +
                                      "' failed: " + describe(found->code, found->diagnostic)));
      if (found->entries.empty() || found->entries.front().dn.empty())
        return unexpected(invalidCredentials("no entry matches " + filter));
      user = std::move(found->entries.front());
      auto bound = bindAsUser(user.dn, password);
      if (!bound) return unexpected(bound.error());
      // The user-bound connection is closed here, when `bound` goes out of scope.
    }

    auto groups = lookupGroups(user, userConnection.get());
    if (!groups) return unexpected(groups.error());
    return buildPrincipal(username, user, std::move(groups).value());
  }

  std::optional<std::string> probe() const {
    if (configError) return configError;
    auto connection = openServiceConnection();
    if (!connection) return connection.error().detail;
    return std::nullopt;
  }

  const LdapSettings settings;
  const std::optional<std::string> configError;
  std::vector<std::string> userAttributes;  // requested when reading the user entry
  ServiceConnectionPool pool;
};

LdapAuthenticator::LdapAuthenticator(LdapSettings settings) {
  // libldap's global defaults are initialised on first use; do it once here rather than racing
  // from several threads later.
  static std::once_flag libraryInitialised;
  std::call_once(libraryInitialised, [] {
    int version = 0;
    ldap_get_option(nullptr, LDAP_OPT_PROTOCOL_VERSION, &version);
  });
  impl_ = std::make_unique<Impl>(std::move(settings));
}

LdapAuthenticator::~LdapAuthenticator() {
  const SigpipeGuard guard;  // the pooled connections send an unbind as they close
  impl_.reset();
}

Expected<Principal, AuthFailure> LdapAuthenticator::authenticate(std::string_view username,
                                                                 std::string_view password) {
  const SigpipeGuard guard;
  try {
    return impl_->authenticate(username, password);
  } catch (const std::exception& e) {
    return unexpected(unavailable(std::string("internal error: ") + e.what()));
  } catch (...) {
    return unexpected(unavailable("internal error"));
  }
}

std::optional<std::string> LdapAuthenticator::probe() {
  const SigpipeGuard guard;
  try {
    return impl_->probe();
  } catch (const std::exception& e) {
    return std::string("ldap: internal error: ") + e.what();
  } catch (...) {
    return std::string("ldap: internal error");
  }
}

}  // namespace mcphost::auth
