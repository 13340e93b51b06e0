// Small wrappers over OpenSSL for the primitives the host needs in several places.
#pragma once

#include <string>
#include <string_view>

namespace mcphost {

std::string randomBytes(std::size_t count);  // CSPRNG; aborts if the RNG fails
std::string randomToken(std::size_t bytes);  // hex, visible ASCII
std::string hmacSha256(std::string_view key, std::string_view data);
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace mcphost
