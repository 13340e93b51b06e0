// Maps a verified client certificate to a principal by the configured rules (auth.mtls.rules).
// The TLS layer has already checked the chain, validity and purpose; this decides who it is.
#pragma once

#include <vector>

#include "auth/auth_failure.hpp"
#include "auth/client_certificate.hpp"
#include "auth/principal.hpp"
#include "common/expected.hpp"
#include "config/config.hpp"

namespace mcphost::auth {

class MtlsMapper {
 public:
  explicit MtlsMapper(std::vector<config::MtlsRule> rules);
  // The first rule whose every match holds names the principal; none matching is a refusal.
  [[nodiscard]] Expected<Principal, AuthFailure> map(const ClientCertificate& certificate) const;
  [[nodiscard]] bool empty() const { return rules_.empty(); }

 private:
  std::vector<config::MtlsRule> rules_;
};

}  // namespace mcphost::auth
