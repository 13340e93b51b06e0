// The built-in DLP detectors: a true and a false positive (at least) for each, validators, and
// custom detectors.
#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "dlp/detectors.hpp"

using mcphost::dlp::DetectorMatch;
using mcphost::dlp::DetectorSet;
using mcphost::dlp::DetectorSpec;

namespace {

const DetectorSet& builtins() {
  static const DetectorSet set = std::move(DetectorSet::compile(mcphost::dlp::builtinDetectors()).value());
  return set;
}

// (detector, matched text) for every finding in text.
std::vector<std::pair<std::string, std::string>> findAll(const DetectorSet& set, const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::vector<char> all(set.size(), 1);
  set.scan(text, all, [&](const DetectorMatch& m) {
    out.emplace_back(set.spec(m.detector).name, text.substr(m.begin, m.end - m.begin));
    return true;
  });
  return out;
}

// The single finding in "before <value> after", which must be exactly value as detector.
void requireFinds(const std::string& detector, const std::string& value) {
  INFO(detector << ": " << value);
  const auto found = findAll(builtins(), "before " + value + " after.");
  REQUIRE(found.size() == 1);
  CHECK(found[0].first == detector);
  CHECK(found[0].second == value);
}

void requireClean(const std::string& text) {
  INFO(text);
  CHECK(findAll(builtins(), text).empty());
}

const std::string kJwt =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5"
    "MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

}  // namespace

TEST_CASE("dlp: catalog names") {
  std::vector<std::string> names;
  for (const auto& spec : mcphost::dlp::builtinDetectors()) names.push_back(spec.name);
  CHECK(names == std::vector<std::string>{"private_key", "jwt", "api_key", "email", "iban", "payment_card",
                                          "us_ssn", "phone", "ip_address"});
}

TEST_CASE("dlp: email true and false positives") {
  requireFinds("email", "jane.doe@example.com");
  requireFinds("email", "a+tag@sub.example.co.uk");
  requireFinds("email", "J_Smith-1@Example.ORG");
  requireClean("user@localhost is not routable");
  requireClean("see logo@2x.png and icon@3x.jpg");
  requireClean("twitter handle @example.com only");
  requireClean("foo.@bar.com is not an address");
}

TEST_CASE("dlp: phone true and false positives") {
  requireFinds("phone", "+14155552671");
  requireFinds("phone", "+44 20 7946 0958");
  requireFinds("phone", "+1 (415) 555-2671");
  requireFinds("phone", "(415) 555-2671");
  requireFinds("phone", "415-555-2671");
  requireFinds("phone", "415.555.2671");
  requireFinds("phone", "1-415-555-2671");
  requireClean("call 123-456-7890 now");         // NANP area codes never start with 1
  requireClean("call 415-155-2671 now");         // nor exchanges
  requireClean("order 41555526712345 shipped");  // a bare digit run is not a phone
  requireClean("short +12345 and 2024-01-15");
  requireClean("ref 10-415-555-2671-9");  // part of a longer dashed id
}

TEST_CASE("dlp: US SSN true and false positives") {
  requireFinds("us_ssn", "123-45-6789");
  requireFinds("us_ssn", "078-05-1120");
  requireFinds("us_ssn", "123 45 6789");
  requireClean("id 999-12-3456");  // 9xx areas are not issued
  requireClean("id 000-12-3456");
  requireClean("id 666-12-3456");
  requireClean("id 123-00-6789 and 123-45-0000");
  requireClean("part 1-123-45-6789-2 of a longer id");
  requireClean("serial 2023-45-6789");
}

TEST_CASE("dlp: payment card true and false positives") {
  requireFinds("payment_card", "4111 1111 1111 1111");
  requireFinds("payment_card", "4111-1111-1111-1111");
  requireFinds("payment_card", "4111111111111111");
  requireFinds("payment_card", "5555555555554444");
  requireFinds("payment_card", "378282246310005");
  requireFinds("payment_card", "3782 822463 10005");
  requireFinds("payment_card", "6011111111111117");
  requireClean("order 4111111111111112 shipped");  // fails Luhn
  requireClean("order 4000 1234 1234 1235 shipped");
  requireClean("timestamp 1700000000000 and 1234567812345670");  // issuer digit 1
  requireClean("id4111111111111111 glued to a word");
  requireClean("amount 4111111111111111.25");  // part of a decimal
  // The rejected 16-digit prefix is not re-split: the Luhn-valid suffix "4111 1111 1111 1111"
  // belongs to a longer grouped number.
  REQUIRE_FALSE(mcphost::dlp::luhnValid("4000 4111 1111 1111"));
  requireClean("ref 4000 4111 1111 1111 1111 end");
}

TEST_CASE("dlp: a rejected candidate does not hide another detector inside it") {
  // "DE00 4111 ..." is no IBAN (too short for DE); the card inside it is still found.
  const auto found = findAll(builtins(), "x DE00 4111 1111 1111 1111 y");
  REQUIRE(found.size() == 1);
  CHECK(found[0] == std::make_pair(std::string("payment_card"), std::string("4111 1111 1111 1111")));
}

TEST_CASE("dlp: a rejected candidate lets a later detector match at the same start") {
  auto set = DetectorSet::compile({
      {"first", R"(\b\d{8}\b)", mcphost::dlp::Validator::kLuhn, mcphost::dlp::Normalization::kDigits, ""},
      {"second", R"(\b\d{8}\b)", mcphost::dlp::Validator::kNone, mcphost::dlp::Normalization::kNone, ""},
  });
  REQUIRE(set);
  const auto found = findAll(*set, "12345674 12345678");
  REQUIRE(found.size() == 2);
  CHECK(found[0] == std::make_pair(std::string("first"), std::string("12345674")));
  CHECK(found[1] == std::make_pair(std::string("second"), std::string("12345678")));
}

TEST_CASE("dlp: IBAN true and false positives") {
  requireFinds("iban", "DE89 3704 0044 0532 0130 00");
  requireFinds("iban", "GB82WEST12345698765432");
  requireFinds("iban", "GB29 NWBK 6016 1331 9268 19");
  requireFinds("iban", "FR1420041010050500013M02606");
  requireFinds("iban", "NL91ABNA0417164300");
  requireClean("DE89 3704 0044 0532 0130 01");  // wrong check
  requireClean("DE88 3704 0044 0532 0130 00");  // wrong check digits
  requireClean("XX89 3704 0044 0532 0130 00");  // no such country
  requireClean("DE89 3704 0044 0532 0130");     // too short for DE
  // A following upper-case word is not part of the IBAN.
  const auto found = findAll(builtins(), "pay DE89 3704 0044 0532 0130 00 EUR now");
  REQUIRE(found.size() == 1);
  CHECK(found[0].second == "DE89 3704 0044 0532 0130 00");
  const auto grouped = findAll(builtins(), "NL91 ABNA 0417 1643 00EU");
  CHECK(grouped.empty());
  CHECK(mcphost::dlp::ibanValid("GB82 WEST 1234 5698 7654 32"));
  CHECK_FALSE(mcphost::dlp::ibanValid("GB82 WEST 1234 5698 7654 33"));
}

TEST_CASE("dlp: IP address true and false positives") {
  requireFinds("ip_address", "192.168.1.10");
  requireFinds("ip_address", "8.8.8.8");
  requireFinds("ip_address", "2001:db8::8a2e:370:7334");
  requireFinds("ip_address", "2001:0db8:85a3:0000:0000:8a2e:0370:7334");
  requireFinds("ip_address", "fe80::1");
  requireFinds("ip_address", "::1");
  requireFinds("ip_address", "::ffff:192.0.2.1");
  requireClean("version 1.2.3.4.5 released");
  requireClean("bad 300.1.1.1 and 1.2.3.256");
  requireClean("at 10:30:00 and 1.2.3");
  requireClean("std::vector<int> and a::b");
  requireClean("mac 00:1a:2b:3c:4d:5e");
  requireClean("v1.2.3.4 tag");
}

TEST_CASE("dlp: JWT true and false positives") {
  requireFinds("jwt", kJwt);
  requireFinds("jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");  // unsecured, empty signature
  requireClean("eyJhbGciOi.eyJzdWIiOiJ4In0.abc");               // header is not a JSON object
  requireClean("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 alone");   // one segment
  requireClean("keyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.abc");
}

TEST_CASE("dlp: API key true and false positives") {
  requireFinds("api_key", "AKIAIOSFODNN7EXAMPLE");
  requireFinds("api_key", "ASIAY34FZKBOKMUTVV7A");
  requireFinds("api_key", "ghp_" + std::string(36, 'a'));
  requireFinds("api_key", "github_pat_11ABCDEFG0123456789abc_" + std::string(59, 'x'));
  requireFinds("api_key", "xoxb-123456789012-abcdefghijkl");
  requireFinds("api_key", "sk_live_" + std::string(24, 'Z'));
  requireFinds("api_key", "AIzaSyA-1234567890abcdefghijklmnopqrstu");
  requireFinds("api_key", "sk-proj-4f8Tq2ZxY9wLmN3vB7cK1dR6");
  requireClean("AKIA1234 is too short");
  requireClean("ghp_short and gho_ and xoxb-x");
  requireClean("sk-this-is-just-a-hyphenated-phrase");
  requireClean("task-abcdefghijklmnopqrstuvwxyz0123 is no key");
  requireClean("sk_test_" + std::string(24, 'Z'));
  requireClean("AIzaSyA-1234567890abcdefghijklmnopqrstuvwxyz");  // 35 characters exactly
}

TEST_CASE("dlp: private key true and false positives") {
  const std::string rsa =
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
      "aNDp4kq9Yc4mT3pW1GT8XqE=\n-----END RSA PRIVATE KEY-----";
  requireFinds("private_key", rsa);
  const std::string encrypted =
      "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n"
      "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn\n-----END RSA PRIVATE KEY-----";
  requireFinds("private_key", encrypted);
  requireFinds("private_key",
               "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\n-----END OPENSSH "
               "PRIVATE KEY-----");  // JSON-escaped newlines
  // A truncated key (no END line) still covers its body.
  const auto truncated = findAll(builtins(), "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQ");
  REQUIRE(truncated.size() == 1);
  CHECK(truncated[0].second.size() > 40);
  requireClean(
      "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----");
  requireClean("-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----");
}

TEST_CASE("dlp: several findings in one text are reported in order") {
  const auto found =
      findAll(builtins(), "mail bob@example.com, card 4242424242424242, ip 10.0.0.1, ssn 123-45-6789");
  REQUIRE(found.size() == 4);
  CHECK(found[0].first == "email");
  CHECK(found[1].first == "payment_card");
  CHECK(found[2].first == "ip_address");
  CHECK(found[3].first == "us_ssn");
}

TEST_CASE("dlp: disabled detectors are not reported") {
  const DetectorSet& set = builtins();
  std::vector<char> onlyEmail(set.size(), 0);
  onlyEmail[*set.indexOf("email")] = 1;
  std::vector<std::string> seen;
  const std::string text = "10.0.0.1 a@example.com 4111111111111111";
  set.scan(text, onlyEmail, [&](const DetectorMatch& m) {
    seen.push_back(text.substr(m.begin, m.end - m.begin));
    return true;
  });
  CHECK(seen == std::vector<std::string>{"a@example.com"});
}

TEST_CASE("dlp: Luhn and IBAN validators") {
  CHECK(mcphost::dlp::luhnValid("4111111111111111"));
  CHECK(mcphost::dlp::luhnValid("4111-1111-1111-1111"));
  CHECK_FALSE(mcphost::dlp::luhnValid("4111111111111112"));
  CHECK_FALSE(mcphost::dlp::luhnValid("0"));
  CHECK(mcphost::dlp::ibanValid("DE89370400440532013000"));
  CHECK_FALSE(mcphost::dlp::ibanValid("DE8937040044053201300"));
}

TEST_CASE("dlp: custom detectors with validators and capture groups") {
  std::vector<DetectorSpec> specs = {
      {"employee", R"(EMP-(\d{6}))", mcphost::dlp::Validator::kNone, mcphost::dlp::Normalization::kNone, ""},
      {"loyalty", R"(\bLC(\d{16})\b)", mcphost::dlp::Validator::kLuhn, mcphost::dlp::Normalization::kDigits,
       ""},
  };
  auto set = DetectorSet::compile(specs);
  REQUIRE(set);
  const auto found = findAll(*set, "EMP-123456 LC4111111111111111 LC4111111111111112");
  REQUIRE(found.size() == 2);
  CHECK(found[0] == std::make_pair(std::string("employee"), std::string("EMP-123456")));
  CHECK(found[1] == std::make_pair(std::string("loyalty"), std::string("LC4111111111111111")));
}

TEST_CASE("dlp: custom detector errors name the detector") {
  auto bad = DetectorSet::compile({{"broken", "(unclosed", mcphost::dlp::Validator::kNone, {}, ""}});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().find("broken") != std::string::npos);
  CHECK(bad.error().find("invalid RE2") != std::string::npos);
  auto backref = DetectorSet::compile({{"backref", R"((a)\1)", mcphost::dlp::Validator::kNone, {}, ""}});
  REQUIRE_FALSE(backref);  // RE2 has no backreferences (that is what keeps it linear)
  auto empty = DetectorSet::compile({{"empty", "x*", mcphost::dlp::Validator::kNone, {}, ""}});
  REQUIRE_FALSE(empty);
  CHECK(empty.error().find("empty string") != std::string::npos);
  CHECK(mcphost::dlp::parseCustomValidator("luhn") == mcphost::dlp::Validator::kLuhn);
  CHECK_FALSE(mcphost::dlp::parseCustomValidator("crc32"));
}

TEST_CASE("dlp: pathological inputs stay linear") {
  // Many overlapping rejected candidates: dotted digit runs and long digit strings.
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "1.1.1.1.";
  text += std::string(200000, '4');
  text += " " + std::string(100000, 'a') + "@";
  const auto found = findAll(builtins(), text);
  CHECK(found.empty());
}
