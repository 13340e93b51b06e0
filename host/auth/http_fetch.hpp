// A small, strict HTTP client for talking to identity providers (discovery documents, JWKS,
// token endpoints). Strict because what it fetches decides who gets in: TLS is verified with
// host name checks, plain http is only allowed to loopback, redirects are never followed and
// responses are size limited.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "common/expected.hpp"

namespace mcphost::auth {

struct HttpFetchOptions {
  // Applies to connecting and to each send/receive; not a bound on the whole exchange.
  std::chrono::milliseconds timeout{5000};
  std::string caFile;  // PEM bundle to trust instead of the system CAs; empty = system CAs
  std::size_t maxBytes = std::size_t{1} << 20;
};

struct HttpFetchResult {
  int status = 0;  // any status, including 3xx (redirects are reported, not followed)
  std::string body;
  std::string contentType;
};

// Errors are for logs: they name the URL (without query or user info) and never carry secrets.
Expected<HttpFetchResult, std::string> httpGet(const std::string& url, const HttpFetchOptions& options);

// POSTs an application/x-www-form-urlencoded body. With basicUser set, the client authenticates
// with HTTP Basic as RFC 6749 section 2.3.1 describes (both parts form-encoded first).
Expected<HttpFetchResult, std::string> httpPostForm(
    const std::string& url, const std::vector<std::pair<std::string, std::string>>& form,
    const HttpFetchOptions& options, const std::string& basicUser = "",
    const std::string& basicPassword = "");

// Percent-encodes everything but RFC 3986 unreserved characters (so '+' and ' ' are unambiguous).
std::string formUrlEncode(std::string_view text);

// True for "localhost", 127.0.0.0/8 and ::1: the only hosts plain http may reach.
bool isLoopbackHost(const std::string& host);

// The URL as it may appear in a log line: scheme, host, port and path, without query or user info.
std::string displayUrl(const std::string& url);

}  // namespace mcphost::auth
