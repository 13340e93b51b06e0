// The DLP detector catalog: built-in patterns for personal data and secrets, the validators
// that turn a regex candidate into a finding (Luhn, mod-97, octet ranges, ...), and
// DetectorSet, which compiles every detector into ONE RE2 so a scan is a single linear DFA pass
// over the text regardless of how many detectors are configured.
//
// Matching model. The combined pattern is `(?:d1)|(?:d2)|...` in catalog order (built-ins
// first, then custom detectors). RE2 returns the leftmost match and, at one start position,
// the first alternative that matches there. Only the span is asked for: submatch extraction
// over a program this size costs several times the DFA scan. Which detector it was is found
// by running the single patterns anchored at the start, skipping those whose first byte or
// required bytes (DetectorSpec::requiredAny) rule them out; when one candidate is left it
// needs no run at all. The candidate is then validated in context (validators see the text
// around it). When a candidate is rejected (or its detector is not enabled here):
//   1. the later detectors get their chance ANCHORED at the same start (an earlier one cannot
//      match there, or RE2 would have returned it): one anchored run of a combined pattern of
//      the later detectors, so a rejected order number costs one extra run, not one per
//      detector; then
//   2. numeric detectors (card, SSN, phone, IP) resume after the rejected span: nothing else
//      starts inside a rejected digit run, and its suffixes are artifacts (a 19-digit order
//      number that fails Luhn is not re-split into a Luhn-valid 15-digit suffix). The others
//      resume at start + 1, and a rejected Luhn/IBAN detector stays suppressed until the end
//      of its rejected span (a failed IBAN may still contain a card number).
// Accepted matches never overlap; the scan resumes at the end of each accepted match.
// Cost: linear in the text as long as each detector's matches have bounded length (the
// built-ins do; keep custom patterns bounded too), since a rejection re-reads only a bounded
// stretch.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace mcphost::dlp {

// How a candidate is checked beyond its pattern. kLuhn and kIban are also offered to custom
// detectors; the others are specific to one built-in detector.
enum class Validator {
  kNone,
  kLuhn,        // digits of the candidate pass the Luhn checksum
  kIban,        // country length table + ISO 7064 mod-97 == 1
  kCard,        // kLuhn + 13..19 digits + not glued to a longer dotted/dashed number
  kSsn,         // area 001-899 except 666, group 01-99, serial 0001-9999
  kPhone,       // E.164: 8-15 digits; North American: NANP area and exchange start with 2-9
  kIpAddress,   // IPv4 octets <= 255 and not part of a longer dotted run; IPv6 structure
  kJwt,         // the header segment base64url-decodes to a JSON object
  kApiKey,      // generic sk- keys need a digit; no trailing key characters
  kEmail,       // no leading/trailing dot in the local part, no image-file "TLDs"
  kPrivateKey,  // extends the BEGIN line to the matching END line (see privateKeyEnd)
};

// How a value is normalized before pseudonymization, so that "4111 1111 1111 1111" and
// "4111-1111-1111-1111" map to the same token.
enum class Normalization { kNone, kLowercase, kDigits, kUpperAlnum };

struct DetectorSpec {
  std::string name;
  std::string pattern;  // RE2 syntax
  Validator validator = Validator::kNone;
  Normalization normalization = Normalization::kNone;
  // Optional filter: every match contains at least one of these bytes. Lets the scanner tell
  // which detector matched without running each one (empty = no filter, e.g. custom ones).
  std::string requiredAny;
};

// The built-in catalog in priority order (earlier wins at the same start position):
// private_key, jwt, api_key, email, iban, payment_card, us_ssn, phone, ip_address.
const std::vector<DetectorSpec>& builtinDetectors();

// "" -> kNone, "luhn", "iban"; anything else is not offered to custom detectors.
std::optional<Validator> parseCustomValidator(std::string_view name);

// Exposed for tests.
bool luhnValid(std::string_view candidate);  // ignores non-digits; needs >= 2 digits
bool ibanValid(std::string_view candidate);  // ignores spaces
// Checks a candidate [begin, end) in its surrounding text; may move `end` forward (private
// keys grow to their END line).
bool validateCandidate(Validator validator, std::string_view text, std::size_t begin, std::size_t& end);
std::string normalizeValue(Normalization normalization, std::string_view value);

struct DetectorMatch {
  std::size_t detector = 0;  // index into the DetectorSet
  std::size_t begin = 0;
  std::size_t end = 0;
};

class DetectorSet {
 public:
  // Compiles every spec alone (to report errors per detector) and all of them combined.
  static Expected<DetectorSet, std::string> compile(std::vector<DetectorSpec> specs);

  DetectorSet(DetectorSet&&) noexcept;
  DetectorSet& operator=(DetectorSet&&) noexcept;
  DetectorSet(const DetectorSet&) = delete;
  DetectorSet& operator=(const DetectorSet&) = delete;
  ~DetectorSet();

  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] const DetectorSpec& spec(std::size_t index) const;
  [[nodiscard]] std::optional<std::size_t> indexOf(std::string_view name) const;

  // Reports validated matches of the detectors with enabled[index] != 0, left to right and
  // non-overlapping. onMatch returns false to stop; scan then returns false. Thread-safe.
  bool scan(std::string_view text, const std::vector<char>& enabled,
            const std::function<bool(const DetectorMatch&)>& onMatch) const;

 private:
  struct Impl;
  explicit DetectorSet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcphost::dlp
