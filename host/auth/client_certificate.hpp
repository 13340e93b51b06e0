// The verified client certificate of an mTLS connection, reduced to the fields mapping rules use.
#pragma once

#include <string>
#include <vector>

namespace mcphost::auth {

struct ClientCertificate {
  std::string subjectDn;  // RFC 2253
  std::string subjectCn;
  std::string issuerCn;
  std::vector<std::string> sanDns;
  std::vector<std::string> sanUri;
  std::vector<std::string> sanEmail;
  std::string fingerprintSha256;  // hex, for the log and audit
};

}  // namespace mcphost::auth
