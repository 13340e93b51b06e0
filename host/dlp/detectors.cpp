#include "dlp/detectors.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "common/base64.hpp"

namespace mcphost::dlp {
namespace {

// Patterns favour precision: each one is anchored on a word boundary or a distinctive prefix,
// and the validator rejects what a pattern alone cannot (checksums, ranges, context).
// Bounded repetitions are kept small because every counter multiplies RE2's DFA states.
// Lengths are bounded (local part 64, domain 253) so that a long run of word characters never
// keeps an e-mail "thread" alive for long: a rejected candidate restarts the search, and that
// restart must only re-read a bounded stretch of text (otherwise "1.1.1.1.1..." is quadratic).
constexpr const char* kEmail =
    R"([A-Za-z0-9_%+\-][A-Za-z0-9._%+\-]{0,63}@[A-Za-z0-9\-][A-Za-z0-9.\-]{0,250}\.[A-Za-z]{2,24}\b)";
// E.164 (+, 8-15 digits, single separators, optional parentheses) or North American formats:
// (555) 123-4567, 555-123-4567, 555.123.4567, 1-555-123-4567. A bare digit run never matches:
// long numbers are left to the card validator.
constexpr const char* kPhone =
    R"(\+[1-9](?:[ .\-]?\(?\d\)?){7,14}\b|(?:\b1[\-. ])?(?:\(\d{3}\) ?|\b\d{3}[\-. ])\d{3}[\-. ]\d{4}\b)";
constexpr const char* kSsn = R"(\b\d{3}-\d{2}-\d{4}\b|\b\d{3} \d{2} \d{4}\b)";
// Issuer ranges 2-6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay 6): this
// excludes millisecond timestamps (1...) and most internal ids; contiguous 13-19 digits,
// 4-4-4-x groups, or the Amex/Diners 4-6-4/5 layout.
constexpr const char* kCard =
    R"(\b[2-6]\d{12,18}\b|\b[2-6]\d{3}(?:[ \-]\d{4}){2}[ \-]\d{1,7}\b|\b3\d{3}[ \-]\d{6}[ \-]\d{4,5}\b)";
// Country code, check digits, then groups of four (optionally space separated) and a short
// tail: grouping keeps a following upper-case word out of the match in most layouts.
constexpr const char* kIban = R"(\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b)";
// IPv4, full IPv6, and compressed IPv6 with at least one group next to the "::"; a leading
// group starts at a word boundary, so C++ "std::vector" is no candidate.
constexpr const char* kIp =
    R"(\b(?:\d{1,3}\.){3}\d{1,3}\b)"
    R"(|\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4})"
    R"(|(?:\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})"
    R"(|\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}::)";
constexpr const char* kJwt = R"(\beyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*)";
constexpr const char* kApiKey = R"(\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)"
                                R"(|\bgh[opsur]_[A-Za-z0-9]{36}\b)"
                                R"(|\bgithub_pat_[A-Za-z0-9_]{22,255}\b)"
                                R"(|\bxox[abprs]-[A-Za-z0-9\-]{10,250})"
                                R"(|\b[rs]k_live_[A-Za-z0-9]{16,}\b)"
                                R"(|\bAIza[0-9A-Za-z_\-]{35})"
                                R"(|\bsk-[A-Za-z0-9_\-]{20,250})";
// Only the BEGIN line: the validator extends the match to the END line with a plain search,
// which keeps the DFA small and the cost linear even for a BEGIN without an END.
constexpr const char* kPrivateKey =
    R"(-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----)";

constexpr std::size_t kMaxPrivateKeyBytes = std::size_t{64} * 1024;
constexpr std::int64_t kMaxMem = 64LL << 20;

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isAlnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

std::string digitsOf(std::string_view s) {
  std::string out;
  for (char c : s)
    if (isDigit(c)) out.push_back(c);
  return out;
}

// True when [begin, end) is one part of a longer dotted/dashed/slashed number such as
// 10.1.2.3.4, 2024-123-45-6789 or 1/555-123-4567: such runs are ids, versions or dates.
bool gluedToNumber(std::string_view text, std::size_t begin, std::size_t end) {
  auto sep = [](char c) { return c == '.' || c == '-' || c == '/'; };
  if (begin >= 2 && sep(text[begin - 1]) && isDigit(text[begin - 2])) return true;
  return end + 1 < text.size() && sep(text[end]) && isDigit(text[end + 1]);
}

// The digits of a short candidate without allocating (validators run on every candidate, and
// most candidates are rejected).
struct Digits {
  std::array<char, 48> d{};
  std::size_t n = 0;
  explicit Digits(std::string_view s) {
    for (char c : s)
      if (isDigit(c) && n < d.size()) d[n++] = c;
  }
  [[nodiscard]] std::string_view view() const { return {d.data(), n}; }
};

bool validCard(std::string_view text, std::size_t begin, std::size_t end) {
  const Digits digits(text.substr(begin, end - begin));
  return digits.n >= 13 && digits.n <= 19 && luhnValid(digits.view()) && !gluedToNumber(text, begin, end);
}

bool validSsn(std::string_view text, std::size_t begin, std::size_t end) {
  const Digits digits(text.substr(begin, end - begin));
  if (digits.n != 9 || gluedToNumber(text, begin, end)) return false;
  const std::string_view d = digits.view();
  const int area = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
  return area != 0 && area != 666 && area < 900 && d.substr(3, 2) != "00" && d.substr(5, 4) != "0000";
}

bool validPhone(std::string_view text, std::size_t begin, std::size_t end) {
  const std::string_view c = text.substr(begin, end - begin);
  const Digits digits(c);
  if (c.front() == '+') return digits.n >= 8 && digits.n <= 15;
  if (gluedToNumber(text, begin, end) || (digits.n != 10 && digits.n != 11)) return false;
  const std::string_view local = digits.view().substr(digits.n - 10);
  return local[0] >= '2' && local[3] >= '2';  // NANP: area code and exchange start with 2-9
}

bool validIpv4(std::string_view c) {
  int octets = 0;
  std::size_t i = 0;
  while (i <= c.size()) {
    std::size_t j = i;
    int value = 0;
    while (j < c.size() && isDigit(c[j])) value = value * 10 + (c[j++] - '0');
    if (j == i || j - i > 3 || value > 255) return false;
    ++octets;
    if (j == c.size()) break;
    if (c[j] != '.') return false;
    i = j + 1;
  }
  return octets == 4;
}

bool validIp(std::string_view text, std::size_t begin, std::size_t& end) {
  const std::string_view c = text.substr(begin, end - begin);
  if (c.find(':') == std::string_view::npos) return validIpv4(c) && !gluedToNumber(text, begin, end);
  // IPv6: not part of a longer word or colon run (C++ "a::b", MAC-like runs).
  auto joins = [](char ch) { return isAlnum(ch) || ch == ':' || ch == '_'; };
  if (begin > 0 && (joins(text[begin - 1]) || text[begin - 1] == '.')) return false;
  if (end < text.size() && text[end] == '.') {
    // IPv4-mapped tail (::ffff:192.0.2.1): the last group is the first octet.
    const std::size_t lastColon = text.rfind(':', end - 1);
    std::size_t tail = end;
    while (tail < text.size() && (isDigit(text[tail]) || text[tail] == '.')) ++tail;
    if (!validIpv4(text.substr(lastColon + 1, tail - lastColon - 1))) return false;
    end = tail;
  }
  if (end < text.size() && joins(text[end])) return false;
  return std::any_of(c.begin(), c.end(), isDigit);  // "dead::beef" is more likely code
}

bool validJwt(std::string_view text, std::size_t begin, std::size_t end) {
  const std::string_view c = text.substr(begin, end - begin);
  const std::size_t dot = c.find('.');
  const std::size_t dot2 = c.find('.', dot + 1);
  const auto header = base64UrlDecode(c.substr(0, dot));
  if (!header || header->empty() || header->back() != '}') return false;
  return base64UrlDecode(c.substr(dot + 1, dot2 - dot - 1)).has_value();
}

bool validApiKey(std::string_view text, std::size_t begin, std::size_t end) {
  const std::string_view c = text.substr(begin, end - begin);
  if (c.starts_with("AIza")) {
    return end == text.size() || !(isAlnum(text[end]) || text[end] == '_' || text[end] == '-');
  }
  if (c.starts_with("sk-")) {
    // Prose like "sk-this-is-just-a-hyphenated-phrase" has no digits; real keys do.
    return std::any_of(c.begin() + 3, c.end(), isDigit) && std::any_of(c.begin() + 3, c.end(), [](char ch) {
             return std::isalpha(static_cast<unsigned char>(ch)) != 0;
           });
  }
  return true;
}

bool validEmail(std::string_view text, std::size_t begin, std::size_t end) {
  const std::string_view c = text.substr(begin, end - begin);
  const std::size_t at = c.find('@');
  if (at > 64 || c.size() - at - 1 > 253) return false;
  if (c[at - 1] == '.' || c[at + 1] == '.' || c.find("..") != std::string_view::npos) return false;
  if (c.find(".-") != std::string_view::npos || c.find("-.") != std::string_view::npos) return false;
  // Retina image names (logo@2x.png) look like addresses.
  const std::string_view tld = c.substr(c.rfind('.') + 1);
  static constexpr std::array<std::string_view, 7> kFileTypes = {"png", "jpg",  "jpeg", "gif",
                                                                 "svg", "webp", "css"};
  std::string lower(tld);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char ch) { return static_cast<char>(std::tolower(static_cast<unsigned char>(ch))); });
  return std::find(kFileTypes.begin(), kFileTypes.end(), lower) == kFileTypes.end();
}

// Grows a BEGIN line to the end of its END line. A key without an END line (truncated
// output) still leaks, so it grows over the base64 body instead.
std::size_t privateKeyEnd(std::string_view text, std::size_t headerEnd) {
  const std::string_view window = text.substr(headerEnd, kMaxPrivateKeyBytes);
  const std::size_t endLine = window.find("-----END ");
  if (endLine != std::string_view::npos) {
    const std::size_t close = window.find("-----", endLine + 9);
    if (close != std::string_view::npos && close - endLine < 64) return headerEnd + close + 5;
  }
  std::size_t end = headerEnd;
  auto body = [](char ch) {
    return isAlnum(ch) || ch == '+' || ch == '/' || ch == '=' || ch == '\\' || ch == ':' || ch == ',' ||
           ch == '-' || std::isspace(static_cast<unsigned char>(ch)) != 0;
  };
  while (end < text.size() && end - headerEnd < kMaxPrivateKeyBytes && body(text[end])) ++end;
  return end;
}

struct IbanLength {
  std::string_view country;
  std::size_t length;
};
constexpr std::array<IbanLength, 89> kIbanLengths = {{
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24},
    {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27},
    {"GT", 28}, {"HN", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26},
    {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20},
    {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20},
    {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24},
    {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23}, {"ST", 25},
    {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
    {"YE", 30},
}};

std::size_t ibanLength(std::string_view country) {
  for (const auto& entry : kIbanLengths)
    if (entry.country == country) return entry.length;
  return 0;
}

bool mod97(std::string_view iban) {
  int remainder = 0;
  auto feed = [&remainder](char ch) {
    const int v = isDigit(ch) ? ch - '0' : std::toupper(static_cast<unsigned char>(ch)) - 'A' + 10;
    remainder = (v >= 10 ? remainder * 100 + v : remainder * 10 + v) % 97;
  };
  for (char ch : iban.substr(4)) feed(ch);
  for (char ch : iban.substr(0, 4)) feed(ch);
  return remainder == 1;
}

// The built-in IBAN validator may shorten the match to the country's length when the extra
// characters are a separate group ("DE.. .... 00 EURO" style trailing words).
bool validIban(std::string_view text, std::size_t begin, std::size_t& end) {
  const std::string_view c = text.substr(begin, end - begin);
  const std::size_t want = ibanLength(c.substr(0, 2));
  if (want == 0) return false;
  std::string compact;
  std::size_t cut = c.size();
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (c[i] == ' ') continue;
    if (compact.size() == want) {
      if (c[i - 1] != ' ') return false;  // longer than the country allows, not a new group
      cut = i - 1;
      break;
    }
    compact.push_back(c[i]);
  }
  if (compact.size() != want || !mod97(compact)) return false;
  end = begin + cut;
  return true;
}

bool suppressesOverlaps(Validator v) {
  return v == Validator::kLuhn || v == Validator::kIban || v == Validator::kCard || v == Validator::kSsn ||
         v == Validator::kPhone || v == Validator::kIpAddress;
}

}  // namespace

const std::vector<DetectorSpec>& builtinDetectors() {
  static const std::vector<DetectorSpec> kCatalog = {
      {"private_key", kPrivateKey, Validator::kPrivateKey, Normalization::kNone, "-"},
      {"jwt", kJwt, Validator::kJwt, Normalization::kNone, "."},
      {"api_key", kApiKey, Validator::kApiKey, Normalization::kNone, ""},
      {"email", kEmail, Validator::kEmail, Normalization::kLowercase, "@"},
      {"iban", kIban, Validator::kIban, Normalization::kUpperAlnum, ""},
      {"payment_card", kCard, Validator::kCard, Normalization::kDigits, ""},
      {"us_ssn", kSsn, Validator::kSsn, Normalization::kDigits, "- "},
      {"phone", kPhone, Validator::kPhone, Normalization::kDigits, "+-. ("},
      {"ip_address", kIp, Validator::kIpAddress, Normalization::kLowercase, ".:"},
  };
  return kCatalog;
}

std::optional<Validator> parseCustomValidator(std::string_view name) {
  if (name.empty()) return Validator::kNone;
  if (name == "luhn") return Validator::kLuhn;
  if (name == "iban") return Validator::kIban;
  return std::nullopt;
}

bool luhnValid(std::string_view candidate) {
  int sum = 0;
  int count = 0;
  for (auto it = candidate.rbegin(); it != candidate.rend(); ++it) {
    if (!isDigit(*it)) continue;
    int d = *it - '0';
    if (count++ % 2 == 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return count >= 2 && sum % 10 == 0;
}

bool ibanValid(std::string_view candidate) {
  std::size_t end = candidate.size();
  return validIban(candidate, 0, end) && end == candidate.size();
}

bool validateCandidate(Validator validator, std::string_view text, std::size_t begin, std::size_t& end) {
  switch (validator) {
    case Validator::kNone:
      return true;
    case Validator::kLuhn:
      return luhnValid(text.substr(begin, end - begin));
    case Validator::kIban:
      return validIban(text, begin, end);
    case Validator::kCard:
      return validCard(text, begin, end);
    case Validator::kSsn:
      return validSsn(text, begin, end);
    case Validator::kPhone:
      return validPhone(text, begin, end);
    case Validator::kIpAddress:
      return validIp(text, begin, end);
    case Validator::kJwt:
      return validJwt(text, begin, end);
    case Validator::kApiKey:
      return validApiKey(text, begin, end);
    case Validator::kEmail:
      return validEmail(text, begin, end);
    case Validator::kPrivateKey:
      end = privateKeyEnd(text, end);
      return true;
  }
  return false;
}

std::string normalizeValue(Normalization normalization, std::string_view value) {
  std::string out;
  switch (normalization) {
    case Normalization::kNone:
      return std::string(value);
    case Normalization::kDigits:
      return digitsOf(value);
    case Normalization::kLowercase:
      for (char c : value) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      return out;
    case Normalization::kUpperAlnum:
      for (char c : value)
        if (isAlnum(c)) out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
      return out;
  }
  return out;
}

namespace {

// Numeric detectors: after a rejection nothing of interest starts strictly inside the
// rejected span (only its own suffixes, which are artifacts), so the search resumes after it.
bool resumesAfterRejection(Validator v) {
  return v == Validator::kCard || v == Validator::kSsn || v == Validator::kPhone ||
         v == Validator::kIpAddress;
}

// Bytes an anchored match of `re` can start with, from RE2's possible-match range (a
// superset); all bytes when RE2 cannot tell.
std::array<bool, 256> firstBytes(const RE2& re) {
  std::array<bool, 256> table{};
  std::string min;
  std::string max;
  if (!re.PossibleMatchRange(&min, &max, 1) || min.empty() || max.empty()) {
    table.fill(true);
    return table;
  }
  for (int b = static_cast<unsigned char>(min[0]); b <= static_cast<unsigned char>(max[0]); ++b)
    table[static_cast<std::size_t>(b)] = true;
  return table;
}

}  // namespace

struct DetectorSet::Impl {
  std::vector<DetectorSpec> specs;
  std::vector<std::unique_ptr<RE2>> singles;    // anchored runs to tell detectors apart
  std::vector<std::array<bool, 256>> starts;    // per detector: bytes a match can start with
  std::vector<std::array<bool, 256>> required;  // per detector: requiredAny as a table
  std::vector<std::unique_ptr<RE2>> laterOnes;  // [d]: detectors after d combined, or null
  std::unique_ptr<RE2> combined;

  [[nodiscard]] bool mayMatch(std::size_t d, std::string_view span) const {
    if (!starts[d][static_cast<unsigned char>(span.front())]) return false;
    if (specs[d].requiredAny.empty()) return true;
    return std::any_of(span.begin(), span.end(),
                       [&](char c) { return required[d][static_cast<unsigned char>(c)]; });
  }

  // The first detector >= from that matches at s, given that one of them matches [s, e)
  // exactly (RE2's leftmost-first choice). Returns n when none does.
  std::size_t identify(std::string_view text, std::size_t from, std::size_t s, std::size_t e) const {
    const re2::StringPiece piece(text.data(), text.size());
    const std::string_view span = text.substr(s, e - s);
    std::size_t last = specs.size();
    for (std::size_t d = from; d < specs.size(); ++d) {
      if (!mayMatch(d, span)) continue;
      if (last != specs.size()) {  // an earlier possible one: run it to see whether it matches
        re2::StringPiece one;
        if (singles[last]->Match(piece, s, text.size(), RE2::ANCHOR_START, &one, 1)) return last;
      }
      last = d;
    }
    return last;  // the only one left (or none)
  }
};

std::unique_ptr<RE2> alternation(const std::vector<DetectorSpec>& specs, std::size_t from,
                                 const RE2::Options& options) {
  std::string pattern;
  for (std::size_t d = from; d < specs.size(); ++d) {
    if (!pattern.empty()) pattern += '|';
    pattern += "(?:" + specs[d].pattern + ")";
  }
  if (pattern.empty()) return nullptr;
  return std::make_unique<RE2>(pattern, options);
}

DetectorSet::DetectorSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DetectorSet::DetectorSet(DetectorSet&&) noexcept = default;
DetectorSet& DetectorSet::operator=(DetectorSet&&) noexcept = default;
DetectorSet::~DetectorSet() = default;

Expected<DetectorSet, std::string> DetectorSet::compile(std::vector<DetectorSpec> specs) {
  RE2::Options options;
  options.set_max_mem(kMaxMem);
  options.set_log_errors(false);
  auto impl = std::make_unique<Impl>();
  for (const auto& spec : specs) {
    auto single = std::make_unique<RE2>(spec.pattern, options);
    if (!single->ok())
      return unexpected("detector '" + spec.name + "': invalid RE2 pattern: " + single->error());
    if (RE2::FullMatch("", *single))
      return unexpected("detector '" + spec.name + "': pattern matches the empty string");
    impl->starts.push_back(firstBytes(*single));
    std::array<bool, 256> required{};
    for (char c : spec.requiredAny) required[static_cast<unsigned char>(c)] = true;
    impl->required.push_back(required);
    impl->singles.push_back(std::move(single));
  }
  impl->combined = alternation(specs, 0, options);
  if (impl->combined && !impl->combined->ok())
    return unexpected("detectors: the combined pattern does not compile: " + impl->combined->error());
  for (std::size_t d = 0; d < specs.size(); ++d) {
    impl->laterOnes.push_back(alternation(specs, d + 1, options));
    if (impl->laterOnes.back() && !impl->laterOnes.back()->ok())
      return unexpected("detectors: the combined pattern does not compile: " +
                        impl->laterOnes.back()->error());
  }
  impl->specs = std::move(specs);
  return DetectorSet(std::move(impl));
}

std::size_t DetectorSet::size() const {
  return impl_->specs.size();
}
const DetectorSpec& DetectorSet::spec(std::size_t index) const {
  return impl_->specs.at(index);
}

std::optional<std::size_t> DetectorSet::indexOf(std::string_view name) const {
  for (std::size_t i = 0; i < impl_->specs.size(); ++i)
    if (impl_->specs[i].name == name) return i;
  return std::nullopt;
}

bool DetectorSet::scan(std::string_view text, const std::vector<char>& enabled,
                       const std::function<bool(const DetectorMatch&)>& onMatch) const {
  const Impl& impl = *impl_;
  const std::size_t n = impl.specs.size();
  if (n == 0 || text.empty()) return true;
  const re2::StringPiece piece(text.data(), text.size());
  std::vector<std::size_t> suppressedUntil(n, 0);

  std::size_t pos = 0;
  while (pos < text.size()) {
    re2::StringPiece span;
    if (!impl.combined->Match(piece, pos, text.size(), RE2::UNANCHORED, &span, 1)) break;
    const auto s = static_cast<std::size_t>(span.data() - text.data());
    std::size_t e = s + span.size();
    std::size_t resume = s + 1;
    DetectorMatch match;
    bool found = false;
    bool first = true;
    for (std::size_t from = 0; !found && from < n;) {
      const std::size_t d = impl.identify(text, from, s, e);
      if (d >= n) break;
      const Validator v = impl.specs[d].validator;
      if (first && resumesAfterRejection(v)) resume = e;
      first = false;
      std::size_t end = e;
      if (enabled[d] != 0 && suppressedUntil[d] <= s && validateCandidate(v, text, s, end) && end > s) {
        match = {d, s, end};
        found = true;
        break;
      }
      if (enabled[d] != 0 && suppressesOverlaps(v)) suppressedUntil[d] = std::max(suppressedUntil[d], e);
      // Rejected: does any later detector match at the same start?
      if (!impl.laterOnes[d] ||
          !impl.laterOnes[d]->Match(piece, s, text.size(), RE2::ANCHOR_START, &span, 1) || span.empty())
        break;
      e = s + span.size();
      from = d + 1;
    }
    if (found) {
      if (!onMatch(match)) return false;
      pos = match.end;
    } else {
      pos = std::max(resume, s + 1);
    }
  }
  return true;
}

}  // namespace mcphost::dlp
