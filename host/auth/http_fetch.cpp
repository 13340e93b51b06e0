#include "auth/http_fetch.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/NetException.h>
#include <Poco/URI.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <memory>
#include <mutex>

#include "common/base64.hpp"

namespace mcphost::auth {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// One TLS context per trust anchor: building one loads the CA store, which is too slow to repeat
// for every JWKS refresh. Poco contexts are safe to share between sessions and threads.
Poco::Net::Context::Ptr tlsContextFor(const std::string& caFile) {
  static std::mutex mutex;
  static std::map<std::string, Poco::Net::Context::Ptr> contexts;
  std::lock_guard lock(mutex);
  auto found = contexts.find(caFile);
  if (found != contexts.end()) return found->second;
  // VERIFY_STRICT makes Poco check the certificate chain and, with extended verification, the
  // host name - also for localhost, so a test CA has to name the host it is used for.
  Poco::Net::Context::Params params;
  params.verificationMode = Poco::Net::Context::VERIFY_STRICT;
  params.cipherList = "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES";
  if (caFile.empty()) {
    params.loadDefaultCAs = true;
  } else {
    params.caLocation = caFile;
    params.loadDefaultCAs = false;
  }
  auto context = Poco::makeAuto<Poco::Net::Context>(Poco::Net::Context::TLS_CLIENT_USE, params);
  context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
  context->enableExtendedCertificateVerification(true);
  contexts.emplace(caFile, context);
  return context;
}

Poco::Timespan span(std::chrono::milliseconds ms) {
  const auto clamped = std::max<std::chrono::milliseconds::rep>(ms.count(), 1);
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(clamped) * 1000);
}

struct Target {
  bool https = false;
  std::string host;
  std::uint16_t port = 0;
  std::string pathAndQuery;
  std::string display;
};

Expected<Target, std::string> parseTarget(const std::string& url) {
  Poco::URI uri;
  try {
    uri = Poco::URI(url);
  } catch (const Poco::Exception&) {
    return unexpected(std::string("invalid URL (cannot be parsed)"));
  }
  Target target;
  const std::string scheme = lower(uri.getScheme());
  if (scheme != "https" && scheme != "http") {
    return unexpected("unsupported URL scheme '" + scheme + "' in " + displayUrl(url) +
                      " (only https, or http to a loopback host)");
  }
  target.https = scheme == "https";
  target.host = uri.getHost();
  target.port = uri.getPort();
  target.display = displayUrl(url);
  if (target.host.empty()) return unexpected("URL has no host: " + target.display);
  if (!uri.getUserInfo().empty()) {
    return unexpected("credentials in URLs are not supported: " + target.display);
  }
  if (!target.https && !isLoopbackHost(target.host)) {
    // Checked before any connection: keys or tokens fetched in the clear could be swapped by
    // anyone on the path.
    return unexpected("refusing plain http:// for " + target.display +
                      ": only loopback hosts (127.0.0.0/8, ::1, localhost) may be reached without TLS; "
                      "use https://");
  }
  target.pathAndQuery = uri.getPathAndQuery();
  if (target.pathAndQuery.empty()) target.pathAndQuery = "/";
  return target;
}

Expected<HttpFetchResult, std::string> perform(const std::string& method, const std::string& url,
                                               const std::string& body, const std::string& contentType,
                                               const std::string& authorization,
                                               const HttpFetchOptions& options) {
  auto target = parseTarget(url);
  if (!target) return unexpected(target.error());
  const std::string what = method + " " + target->display;
  try {
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (target->https) {
      session = std::make_unique<Poco::Net::HTTPSClientSession>(target->host, target->port,
                                                                tlsContextFor(options.caFile));
    } else {
      session = std::make_unique<Poco::Net::HTTPClientSession>(target->host, target->port);
    }
    session->setTimeout(span(options.timeout), span(options.timeout), span(options.timeout));
    session->setKeepAlive(false);

    Poco::Net::HTTPRequest request(method, target->pathAndQuery, Poco::Net::HTTPMessage::HTTP_1_1);
    request.set("Accept", "application/json");
    request.set("User-Agent", "mcphost");
    if (!authorization.empty()) request.set("Authorization", authorization);
    if (method == "POST") {
      request.setContentType(contentType);
      request.setContentLength64(static_cast<Poco::Int64>(body.size()));
    }
    std::ostream& out = session->sendRequest(request);
    if (!body.empty()) out.write(body.data(), static_cast<std::streamsize>(body.size()));

    Poco::Net::HTTPResponse response;
    std::istream& in = session->receiveResponse(response);
    HttpFetchResult result;
    result.status = static_cast<int>(response.getStatus());
    result.contentType = response.getContentType();
    if (response.hasContentLength() &&
        response.getContentLength64() > static_cast<Poco::Int64>(options.maxBytes)) {
      return unexpected(what + " failed: the response is larger than " + std::to_string(options.maxBytes) +
                        " bytes");
    }
    std::array<char, 8192> buffer{};
    while (in) {
      in.read(buffer.data(), buffer.size());
      const auto got = static_cast<std::size_t>(in.gcount());
      if (got == 0) break;
      if (result.body.size() + got > options.maxBytes) {
        return unexpected(what + " failed: the response is larger than " + std::to_string(options.maxBytes) +
                          " bytes");
      }
      result.body.append(buffer.data(), got);
    }
    return result;
  } catch (const Poco::TimeoutException&) {
    return unexpected(what + " failed: timed out after " + std::to_string(options.timeout.count()) + " ms");
  } catch (const Poco::Exception& e) {
    return unexpected(what + " failed: " + e.displayText());
  } catch (const std::exception& e) {
    return unexpected(what + " failed: " + e.what());
  }
}

}  // namespace

bool isLoopbackHost(const std::string& host) {
  std::string name = lower(host);
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  if (name == "localhost" || name == "localhost.") return true;
  Poco::Net::IPAddress address;
  if (!Poco::Net::IPAddress::tryParse(name, address)) return false;
  return address.isLoopback();  // 127.0.0.0/8 and ::1
}

std::string displayUrl(const std::string& url) {
  try {
    const Poco::URI uri(url);
    std::string shown = uri.getScheme() + "://";
    const std::string& host = uri.getHost();
    shown += host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (uri.getSpecifiedPort() != 0) shown += ":" + std::to_string(uri.getSpecifiedPort());
    shown += uri.getPath();
    return shown;
  } catch (const Poco::Exception&) {
    return "(invalid URL)";
  }
}

std::string formUrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Expected<HttpFetchResult, std::string> httpGet(const std::string& url, const HttpFetchOptions& options) {
  return perform("GET", url, "", "", "", options);
}

Expected<HttpFetchResult, std::string> httpPostForm(
    const std::string& url, const std::vector<std::pair<std::string, std::string>>& form,
    const HttpFetchOptions& options, const std::string& basicUser, const std::string& basicPassword) {
  std::string body;
  for (const auto& [name, value] : form) {
    if (!body.empty()) body += '&';
    body += formUrlEncode(name);
    body += '=';
    body += formUrlEncode(value);
  }
  std::string authorization;
  if (!basicUser.empty()) {
    authorization = "Basic " + base64Encode(formUrlEncode(basicUser) + ":" + formUrlEncode(basicPassword));
  }
  return perform("POST", url, body, "application/x-www-form-urlencoded", authorization, options);
}

}  // namespace mcphost::auth
