// The inbound side of DLP: secrets a client puts into tool arguments, and the redacted copy
// of arguments that the audit log may keep. Neither function ever returns a matched value.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace mcphost::dlp {

class DetectorSet;

struct SecretFinding {
  std::string detector;  // jwt, api_key, private_key, secret_field (by key name) or nesting_limit
  std::string pointer;   // JSON pointer of the argument; never the value
};

// Key names that carry credentials: password, passwd, secret (client_secret, ...), token as a
// word (access_token, refreshToken, but not max_tokens or tokenizer), api_key/apikey/x-api-key,
// authorization, private_key, passphrase. Case-insensitive; camelCase, '_', '-', '.' split words.
bool isSecretFieldName(std::string_view key);

// JWTs, API keys and private keys in string values, and non-empty values of secret-named keys
// (reported once at the key, not descended into). Arguments nested deeper than 64 levels are
// reported as nesting_limit rather than silently skipped.
std::vector<SecretFinding> findSecrets(const DetectorSet& detectors, const nlohmann::json& arguments);

// A bounded copy for the audit log: values of secret-named keys and every string (or integer)
// any detector matches become "[REDACTED:<detector>]"; strings over 1 KiB are cut (at a UTF-8
// boundary) with "...[TRUNCATED:<n> bytes]", containers keep their first 256 members, and
// anything below depth 16 becomes "[TRUNCATED:depth]".
nlohmann::json redactForAudit(const DetectorSet& detectors, const nlohmann::json& arguments);

}  // namespace mcphost::dlp
