// Small wrappers over OpenSSL for the primitives the host needs in several places.
#pragma once

#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace mcphost {

std::string randomBytes(std::size_t count);  // CSPRNG; aborts if the RNG fails
std::string randomToken(std::size_t bytes);  // hex, visible ASCII
std::string hmacSha256(std::string_view key, std::string_view data);
std::string sha256(std::string_view data);  // the raw 32-byte digest
std::string toHex(std::string_view raw);    // lowercase
bool constantTimeEquals(std::string_view a, std::string_view b);
// SHA-256 of a file as lowercase hex, read in chunks; the error names the file and errno.
Expected<std::string, std::string> sha256FileHex(const std::string& path);

}  // namespace mcphost
