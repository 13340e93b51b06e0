#include "support/test_idp.hpp"

#include <Poco/Net/HTMLForm.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/URI.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/base64.hpp"
#include "common/crypto.hpp"

extern char** environ;  // NOLINT(readability-redundant-declaration): posix_spawnp needs it

namespace mcphost::test {

namespace {

using Json = nlohmann::json;

template <auto Free>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* object) const {
    Free(object);
  }
};
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<&BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<&BN_free>>;
using DigestContextPtr = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<&EVP_MD_CTX_free>>;
using EcdsaSignaturePtr = std::unique_ptr<ECDSA_SIG, OpenSslDeleter<&ECDSA_SIG_free>>;
using KeyPtr = std::shared_ptr<EVP_PKEY>;

void runOpenssl(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  std::vector<char*> pointers;
  pointers.reserve(argv.size() + 1);
  for (auto& argument : argv) pointers.push_back(argument.data());
  pointers.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // genpkey prints progress dots on stderr; the test output stays readable without them.
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "openssl", &actions, nullptr, pointers.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) throw std::runtime_error("test idp: cannot run the openssl command line");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("test idp: openssl " + arguments.front() + " failed");
  }
}

KeyPtr generateKey(const std::filesystem::path& file, bool rsa) {
  if (rsa) {
    runOpenssl({"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", file.string()});
  } else {
    runOpenssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", file.string()});
  }
  const BioPtr bio(BIO_new_file(file.c_str(), "r"));
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (key == nullptr) throw std::runtime_error("test idp: cannot load " + file.string());
  return KeyPtr(key, &EVP_PKEY_free);
}

std::string bignumParam(EVP_PKEY* key, const char* name, int padTo = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) throw std::runtime_error("test idp: cannot read key");
  const BignumPtr value(raw);
  const int size = padTo > 0 ? padTo : BN_num_bytes(value.get());
  std::string out(static_cast<std::size_t>(size), '\0');
  BN_bn2binpad(value.get(), reinterpret_cast<unsigned char*>(out.data()), size);
  return out;
}

std::string signWith(EVP_PKEY* key, const std::string& input) {
  const DigestContextPtr context(EVP_MD_CTX_new());
  std::size_t length = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &length, data, input.size()) != 1) {
    throw std::runtime_error("test idp: signing failed");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data,
                     input.size()) != 1) {
    throw std::runtime_error("test idp: signing failed");
  }
  signature.resize(length);
  return signature;
}

// JWS ES256 wants raw r||s, OpenSSL produces DER.
std::string derToRaw(const std::string& der) {
  const auto* cursor = reinterpret_cast<const unsigned char*>(der.data());
  const EcdsaSignaturePtr signature(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
  if (!signature) throw std::runtime_error("test idp: bad ECDSA signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(signature.get(), &r, &s);
  std::string raw(64, '\0');
  BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  return raw;
}

bool verifyWith(EVP_PKEY* key, const std::string& input, const std::string& signature) {
  const DigestContextPtr context(EVP_MD_CTX_new());
  const bool ok = EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
                  EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                                   signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                                   input.size()) == 1;
  ERR_clear_error();
  return ok;
}

void mergeInto(Json& target, const Json& overrides) {
  for (const auto& [name, value] : overrides.items()) {
    if (value.is_null()) {
      target.erase(name);
    } else {
      target[name] = value;
    }
  }
}

long long nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct TestIdentityProvider::State {
  std::filesystem::path directory;
  std::string issuer;
  std::uint16_t port = 0;
  mutable std::mutex mutex;
  KeyPtr rsaKey;
  std::string rsaKid;
  KeyPtr ecKey;
  std::string ecKid;
  int rsaGeneration = 0;
  JwksMode jwksMode = JwksMode::kNormal;
  int jwksFetches = 0;
  int tokenRequests = 0;
  bool oauthMetadata = true;
  bool openidMetadata = true;
  std::map<std::string, int> metadataFetches;
  std::map<std::string, std::string> lastTokenForm;

  void newRsaKey() {
    const int generation = ++rsaGeneration;
    KeyPtr key = generateKey(directory / ("rsa-" + std::to_string(generation) + ".pem"), true);
    const std::lock_guard lock(mutex);
    rsaKey = std::move(key);
    rsaKid = "rsa-" + std::to_string(generation) + "-" + randomToken(4);
  }

  [[nodiscard]] Json jwks() const {
    const std::lock_guard lock(mutex);
    return Json{{"keys",
                 {{{"kty", "RSA"},
                   {"use", "sig"},
                   {"alg", "RS256"},
                   {"kid", rsaKid},
                   {"n", base64UrlEncode(bignumParam(rsaKey.get(), OSSL_PKEY_PARAM_RSA_N))},
                   {"e", base64UrlEncode(bignumParam(rsaKey.get(), OSSL_PKEY_PARAM_RSA_E))}},
                  {{"kty", "EC"},
                   {"use", "sig"},
                   {"alg", "ES256"},
                   {"crv", "P-256"},
                   {"kid", ecKid},
                   {"x", base64UrlEncode(bignumParam(ecKey.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32))},
                   {"y", base64UrlEncode(bignumParam(ecKey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32))}}}}};
  }

  [[nodiscard]] Json metadata() const {
    return Json{
        {"issuer", issuer},
        {"authorization_endpoint", issuer + "/authorize"},
        {"token_endpoint", issuer + "/token"},
        {"jwks_uri", issuer + "/jwks"},
        {"response_types_supported", {"code"}},
        {"subject_types_supported", {"public"}},
        {"id_token_signing_alg_values_supported", {"RS256", "ES256"}},
        {"token_endpoint_auth_methods_supported", {"client_secret_basic"}},
        {"grant_types_supported",
         {"authorization_code", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"}}};
  }

  [[nodiscard]] std::string sign(const std::string& alg, const std::string& input,
                                 const std::string& secret) const {
    KeyPtr rsa;
    KeyPtr ec;
    {
      const std::lock_guard lock(mutex);
      rsa = rsaKey;
      ec = ecKey;
    }
    if (alg == "RS256") return signWith(rsa.get(), input);
    if (alg == "ES256") return derToRaw(signWith(ec.get(), input));
    if (alg == "HS256") return hmacSha256(secret, input);
    if (alg == "none") return {};
    throw std::invalid_argument("test idp: cannot sign with " + alg);
  }

  [[nodiscard]] std::string compact(const Json& header, const std::string& payload, const std::string& alg,
                                    const std::string& secret) const {
    const std::string input = base64UrlEncode(header.dump()) + "." + base64UrlEncode(payload);
    return input + "." + base64UrlEncode(sign(alg, input, secret));
  }

  [[nodiscard]] std::string mint(const Json& claims, const std::string& audience, const std::string& alg,
                                 const std::string& secret, const Json& extraHeader) const {
    Json header = {{"alg", alg}, {"typ", "JWT"}};
    {
      const std::lock_guard lock(mutex);
      if (alg == "RS256") header["kid"] = rsaKid;
      if (alg == "ES256") header["kid"] = ecKid;
    }
    mergeInto(header, extraHeader);
    const long long now = nowSeconds();
    Json payload = {{"iss", issuer}, {"sub", "alice"}, {"iat", now}, {"exp", now + 300}};
    if (!audience.empty()) payload["aud"] = audience;
    mergeInto(payload, claims);
    return compact(header, payload.dump(), alg, secret);
  }

  // The subject of a token this provider signed with its current RSA key, if still valid.
  [[nodiscard]] std::optional<std::string> verifiedSubject(const std::string& token) const {
    const auto firstDot = token.find('.');
    const auto secondDot = token.find('.', firstDot == std::string::npos ? 0 : firstDot + 1);
    if (firstDot == std::string::npos || secondDot == std::string::npos) return std::nullopt;
    const auto header = base64UrlDecode(std::string_view(token).substr(0, firstDot));
    const auto payload =
        base64UrlDecode(std::string_view(token).substr(firstDot + 1, secondDot - firstDot - 1));
    const auto signature = base64UrlDecode(std::string_view(token).substr(secondDot + 1));
    if (!header || !payload || !signature) return std::nullopt;
    const Json headerJson = Json::parse(*header, nullptr, false);
    const Json claims = Json::parse(*payload, nullptr, false);
    if (!headerJson.is_object() || headerJson.value("alg", "") != "RS256" || !claims.is_object())
      return std::nullopt;
    KeyPtr rsa;
    {
      const std::lock_guard lock(mutex);
      rsa = rsaKey;
    }
    if (!verifyWith(rsa.get(), token.substr(0, secondDot), *signature)) return std::nullopt;
    if (!claims.contains("exp") || !claims["exp"].is_number() ||
        claims["exp"].get<double>() < double(nowSeconds())) {
      return std::nullopt;
    }
    if (!claims.contains("sub") || !claims["sub"].is_string()) return std::nullopt;
    return claims["sub"].get<std::string>();
  }
};

namespace {

void sendJson(Poco::Net::HTTPServerResponse& response, Poco::Net::HTTPResponse::HTTPStatus status,
              const Json& body) {
  const std::string text = body.dump();
  response.setStatus(status);
  response.setContentType("application/json");
  response.set("Cache-Control", "no-store");
  response.setContentLength64(static_cast<Poco::Int64>(text.size()));
  response.send() << text;
}

class IdpRequestHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit IdpRequestHandler(std::shared_ptr<TestIdentityProvider::State> state) : state_(std::move(state)) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    try {
      const std::string path = Poco::URI(request.getURI()).getPath();
      if (request.getMethod() == "GET" && (path == "/.well-known/openid-configuration" ||
                                           path == "/.well-known/oauth-authorization-server")) {
        serveMetadata(path, response);
      } else if (request.getMethod() == "GET" && path == "/jwks") {
        serveJwks(response);
      } else if (path == "/redirect") {
        // For checking that clients do not follow redirects.
        response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_FOUND);
        response.set("Location", "/jwks");
        response.setContentLength64(0);
        response.send();
      } else if (request.getMethod() == "POST" && path == "/token") {
        serveToken(request, response);
      } else {
        sendJson(response, Poco::Net::HTTPResponse::HTTP_NOT_FOUND, {{"error", "not_found"}});
      }
    } catch (const std::exception& e) {
      if (!response.sent())
        sendJson(response, Poco::Net::HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, {{"error", e.what()}});
    }
  }

 private:
  void serveMetadata(const std::string& path, Poco::Net::HTTPServerResponse& response) {
    bool enabled = false;
    {
      const std::lock_guard lock(state_->mutex);
      ++state_->metadataFetches[path];
      enabled = path == "/.well-known/openid-configuration" ? state_->openidMetadata : state_->oauthMetadata;
    }
    if (!enabled) {
      sendJson(response, Poco::Net::HTTPResponse::HTTP_NOT_FOUND, {{"error", "not_found"}});
      return;
    }
    sendJson(response, Poco::Net::HTTPResponse::HTTP_OK, state_->metadata());
  }

  void serveJwks(Poco::Net::HTTPServerResponse& response) {
    using JwksMode = TestIdentityProvider::JwksMode;
    JwksMode mode = JwksMode::kNormal;
    {
      const std::lock_guard lock(state_->mutex);
      ++state_->jwksFetches;
      mode = state_->jwksMode;
    }
    if (mode == JwksMode::kDown) {
      sendJson(response, Poco::Net::HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
               {{"error", "temporarily_unavailable"}});
    } else if (mode == JwksMode::kGarbage) {
      const std::string garbage = "<html><body>Gateway says hello</body></html>";
      response.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
      response.setContentType("text/html");
      response.setContentLength64(static_cast<Poco::Int64>(garbage.size()));
      response.send() << garbage;
    } else {
      sendJson(response, Poco::Net::HTTPResponse::HTTP_OK, state_->jwks());
    }
  }

  void serveToken(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) {
    Poco::Net::HTMLForm form;
    form.load(request, request.stream());
    std::map<std::string, std::string> fields;
    for (const auto& [name, value] : form) fields[name] = value;
    {
      const std::lock_guard lock(state_->mutex);
      ++state_->tokenRequests;
      state_->lastTokenForm = fields;
    }
    // client_secret_basic: RFC 6749 section 2.3.1 form-encodes id and secret before base64.
    std::string clientId;
    std::string clientSecret;
    const std::string authorization = request.get("Authorization", "");
    if (authorization.rfind("Basic ", 0) == 0) {
      const auto decoded = base64Decode(authorization.substr(6));
      const auto colon = decoded ? decoded->find(':') : std::string::npos;
      if (colon != std::string::npos) {
        Poco::URI::decode(decoded->substr(0, colon), clientId, true);
        Poco::URI::decode(decoded->substr(colon + 1), clientSecret, true);
      }
    }
    if (clientId != TestIdentityProvider::kExchangeClientId ||
        !constantTimeEquals(clientSecret, TestIdentityProvider::kExchangeClientSecret)) {
      response.set("WWW-Authenticate", "Basic realm=\"test-idp\"");
      sendJson(response, Poco::Net::HTTPResponse::HTTP_UNAUTHORIZED,
               {{"error", "invalid_client"}, {"error_description", "client authentication failed"}});
      return;
    }
    if (fields["grant_type"] != "urn:ietf:params:oauth:grant-type:token-exchange") {
      sendJson(response, Poco::Net::HTTPResponse::HTTP_BAD_REQUEST, {{"error", "unsupported_grant_type"}});
      return;
    }
    const auto subject = state_->verifiedSubject(fields["subject_token"]);
    if (fields["subject_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || !subject) {
      sendJson(response, Poco::Net::HTTPResponse::HTTP_BAD_REQUEST,
               {{"error", "invalid_grant"}, {"error_description", "the subject token is not valid"}});
      return;
    }
    const std::string audience = !fields["audience"].empty() ? fields["audience"] : fields["resource"];
    Json claims = {{"sub", *subject}, {"act", {{"sub", TestIdentityProvider::kExchangeClientId}}}};
    if (!fields["scope"].empty()) claims["scope"] = fields["scope"];
    const std::string issued = state_->mint(claims, audience, "RS256", "", Json::object());
    sendJson(response, Poco::Net::HTTPResponse::HTTP_OK,
             {{"access_token", issued},
              {"issued_token_type", "urn:ietf:params:oauth:token-type:access_token"},
              {"token_type", "Bearer"},
              {"expires_in", 300}});
  }

  std::shared_ptr<TestIdentityProvider::State> state_;
};

class IdpHandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit IdpHandlerFactory(std::shared_ptr<TestIdentityProvider::State> state) : state_(std::move(state)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest& /*request*/) override {
    return std::make_unique<IdpRequestHandler>(state_).release();  // Poco takes ownership
  }

 private:
  std::shared_ptr<TestIdentityProvider::State> state_;
};

// One server per provider; kept outside State so handlers never keep the server alive.
std::mutex serversMutex;
std::map<const TestIdentityProvider::State*, std::unique_ptr<Poco::Net::HTTPServer>> servers;

}  // namespace

TestIdentityProvider::TestIdentityProvider(const std::string& tempDir) : state_(std::make_shared<State>()) {
  state_->directory = tempDir;
  std::filesystem::create_directories(state_->directory);
  state_->newRsaKey();
  state_->ecKey = generateKey(state_->directory / "ec.pem", false);
  state_->ecKid = "ec-" + randomToken(4);

  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  state_->port = socket.address().port();
  state_->issuer = "http://127.0.0.1:" + std::to_string(state_->port);
  auto params = Poco::makeAuto<Poco::Net::HTTPServerParams>();
  params->setMaxThreads(8);
  params->setKeepAlive(false);
  auto server = std::make_unique<Poco::Net::HTTPServer>(
      Poco::Net::HTTPRequestHandlerFactory::Ptr(Poco::makeShared<IdpHandlerFactory>(state_)), socket, params);
  server->start();
  const std::lock_guard lock(serversMutex);
  servers[state_.get()] = std::move(server);
}

TestIdentityProvider::~TestIdentityProvider() {
  std::unique_ptr<Poco::Net::HTTPServer> server;
  {
    const std::lock_guard lock(serversMutex);
    auto found = servers.find(state_.get());
    if (found != servers.end()) {
      server = std::move(found->second);
      servers.erase(found);
    }
  }
  if (!server) return;
  server->stopAll(true);
  // Let in-flight handlers finish; they hold the state alive through their shared_ptr anyway.
  for (int i = 0; i < 200 && server->currentConnections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string TestIdentityProvider::issuer() const {
  return state_->issuer;
}
std::uint16_t TestIdentityProvider::port() const {
  return state_->port;
}

void TestIdentityProvider::setJwksMode(JwksMode mode) {
  const std::lock_guard lock(state_->mutex);
  state_->jwksMode = mode;
}

int TestIdentityProvider::jwksFetchCount() const {
  const std::lock_guard lock(state_->mutex);
  return state_->jwksFetches;
}

void TestIdentityProvider::setMetadataEnabled(bool oauthAuthorizationServer, bool openidConfiguration) {
  const std::lock_guard lock(state_->mutex);
  state_->oauthMetadata = oauthAuthorizationServer;
  state_->openidMetadata = openidConfiguration;
}

int TestIdentityProvider::metadataFetchCount(const std::string& path) const {
  const std::lock_guard lock(state_->mutex);
  const auto found = state_->metadataFetches.find(path);
  return found == state_->metadataFetches.end() ? 0 : found->second;
}

void TestIdentityProvider::rotateRsaKey() {
  state_->newRsaKey();
}

std::string TestIdentityProvider::rsaKid() const {
  const std::lock_guard lock(state_->mutex);
  return state_->rsaKid;
}

std::string TestIdentityProvider::ecKid() const {
  const std::lock_guard lock(state_->mutex);
  return state_->ecKid;
}

nlohmann::json TestIdentityProvider::jwksDocument() const {
  return state_->jwks();
}

std::string TestIdentityProvider::mint(const nlohmann::json& claims, const std::string& audience,
                                       const std::string& alg, const std::string& hmacSecret,
                                       const nlohmann::json& extraHeader) const {
  return state_->mint(claims, audience, alg, hmacSecret, extraHeader);
}

std::string TestIdentityProvider::mintRaw(const nlohmann::json& header, const std::string& payload,
                                          const std::string& alg, const std::string& hmacSecret) const {
  return state_->compact(header, payload, alg, hmacSecret);
}

std::string TestIdentityProvider::rsaPublicKeyPem() const {
  KeyPtr rsa;
  {
    const std::lock_guard lock(state_->mutex);
    rsa = state_->rsaKey;
  }
  const BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), rsa.get()) != 1)
    throw std::runtime_error("test idp: PEM export failed");
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(length));
}

int TestIdentityProvider::tokenExchangeCount() const {
  const std::lock_guard lock(state_->mutex);
  return state_->tokenRequests;
}

std::map<std::string, std::string> TestIdentityProvider::lastTokenRequest() const {
  const std::lock_guard lock(state_->mutex);
  return state_->lastTokenForm;
}

}  // namespace mcphost::test
