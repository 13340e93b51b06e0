// Why a request could not be authenticated, shaped so the transport can answer with the right
// status (401, 403, 429, 503) and a message that helps the client without leaking anything.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace mcphost::auth {

enum class AuthError {
  kNoCredentials,        // 401: nothing we accept was presented
  kInvalidCredentials,   // 401: presented but wrong, expired, unsigned, for someone else ...
  kInsufficientScope,    // 403: valid, but lacks a required scope
  kProviderUnavailable,  // 503: the identity provider / directory cannot decide (fail closed)
  kTooManyFailures,      // 429: failed attempts from this source or for this user are limited
};

struct AuthFailure {
  AuthError error = AuthError::kInvalidCredentials;
  // Safe to send to the client: says what was wrong and how to fix it, never a secret.
  std::string message;
  // For the host's log only (e.g. "kid k7 not in JWKS after refresh"); still no secrets.
  std::string detail;
  // The challenge scheme to advertise ("Bearer" or "Basic").
  std::string scheme = "Bearer";
  std::vector<std::string> requiredScopes;  // for insufficient_scope
  std::chrono::seconds retryAfter{0};       // for kTooManyFailures
};

inline int httpStatusFor(AuthError e) {
  switch (e) {
    case AuthError::kNoCredentials:
    case AuthError::kInvalidCredentials:
      return 401;
    case AuthError::kInsufficientScope:
      return 403;
    case AuthError::kProviderUnavailable:
      return 503;
    case AuthError::kTooManyFailures:
      return 429;
  }
  return 401;
}

}  // namespace mcphost::auth
