// Strict base64 / base64url codecs. Strict means: a decoder rejects bad characters and bad
// padding instead of guessing, because decoded values are compared against security headers.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mcphost {

std::string base64Encode(std::string_view data);
std::string base64UrlEncode(std::string_view data);                 // no padding
std::optional<std::string> base64Decode(std::string_view text);     // padding required
std::optional<std::string> base64UrlDecode(std::string_view text);  // no padding

}  // namespace mcphost
