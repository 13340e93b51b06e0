#include "auth/mtls_mapper.hpp"

#include <map>
#include <optional>

#include "common/glob.hpp"

namespace mcphost::auth {

namespace {

std::vector<std::string> fieldValues(const ClientCertificate& cert, const std::string& field) {
  if (field == "subject_cn") return {cert.subjectCn};
  if (field == "issuer_cn") return {cert.issuerCn};
  if (field == "san_dns") return cert.sanDns;
  if (field == "san_uri") return cert.sanUri;
  if (field == "san_email") return cert.sanEmail;
  return {};
}

// The value of each field that satisfied the rule (or the first value), for the templates.
std::optional<std::map<std::string, std::string>> matchRule(const config::MtlsRule& rule,
                                                            const ClientCertificate& cert) {
  std::map<std::string, std::string> bound;
  for (const char* field : {"subject_cn", "issuer_cn", "san_dns", "san_uri", "san_email"}) {
    auto values = fieldValues(cert, field);
    if (!values.empty()) bound[field] = values.front();
  }
  for (const auto& [field, pattern] : rule.match) {
    bool matched = false;
    for (const auto& value : fieldValues(cert, field)) {
      if (!value.empty() && globMatch(pattern, value)) {
        bound[field] = value;
        matched = true;
        break;
      }
    }
    if (!matched) return std::nullopt;
  }
  return bound;
}

std::string expand(const std::string& text, const std::map<std::string, std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '{') {
      auto close = text.find('}', i);
      if (close != std::string::npos) {
        auto it = fields.find(text.substr(i + 1, close - i - 1));
        if (it != fields.end()) {
          out += it->second;
          i = close + 1;
          continue;
        }
      }
    }
    out += text[i++];
  }
  return out;
}

}  // namespace

MtlsMapper::MtlsMapper(std::vector<config::MtlsRule> rules) : rules_(std::move(rules)) {}

Expected<Principal, AuthFailure> MtlsMapper::map(const ClientCertificate& certificate) const {
  for (const auto& rule : rules_) {
    auto fields = matchRule(rule, certificate);
    if (!fields) continue;
    Principal p;
    p.subject = expand(rule.subject, *fields);
    if (p.subject.empty()) continue;
    p.displayName = certificate.subjectCn;
    p.authMethod = "mtls";
    p.groups = rule.groups;
    p.roles = rule.roles;
    p.tenant = rule.tenant;
    p.issuer = certificate.issuerCn;
    p.attributes = {{"certificate_subject", certificate.subjectDn},
                    {"certificate_sha256", certificate.fingerprintSha256},
                    {"san_dns", certificate.sanDns},
                    {"san_uri", certificate.sanUri},
                    {"san_email", certificate.sanEmail}};
    return p;
  }
  return unexpected(
      AuthFailure{AuthError::kInvalidCredentials,
                  "client certificate is trusted but not mapped to a principal (auth.mtls.rules)",
                  "no mtls rule matched subject '" + certificate.subjectDn + "'",
                  "Bearer",
                  {},
                  {}});
}

}  // namespace mcphost::auth
