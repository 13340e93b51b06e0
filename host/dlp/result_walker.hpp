// Where DLP looks inside an MCP result. This file knows the MCP result shapes; it knows nothing
// about detectors or rules, so the engine can change without touching the walk and vice versa.
//
//   tool     (tools/call)      content[].text, content[].resource.text (embedded resources),
//                              and structuredContent (every string and integer, recursively)
//   resource (resources/read)  contents[].text
//   prompt   (prompts/get)     description, messages[].content.text and
//                              messages[].content.resource.text (content may also be an array)
// Binary payloads (`blob`, `data` of image/audio) are left alone: base64 of arbitrary bytes is
// not text the detectors can reason about, and decoding it would cost more than it finds.
// An unknown kind is walked like a tool result (content / structuredContent), which is the
// superset that most custom methods follow.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcphost::dlp {

using JsonPath = std::vector<std::string>;  // unescaped reference tokens; array indexes in decimal

struct ResultSlots {
  std::vector<std::string*> texts;       // string values outside structuredContent, in document order
  nlohmann::json* structured = nullptr;  // tool results only
};

// Pointers stay valid while the result's structure is not changed (string values may be
// reassigned in place).
ResultSlots collectSlots(nlohmann::json& result, std::string_view kind);

// Visits every string and integer leaf below root, depth first, in document order.
// visit returns false to stop the walk (forEachLeaf then returns false). A subtree deeper than
// maxDepth is replaced by "[REDACTED:depth]": failing closed beats an unbounded recursion on
// hostile input.
bool forEachLeaf(nlohmann::json& root, const std::function<bool(nlohmann::json&, const JsonPath&)>& visit,
                 std::size_t maxDepth = 256);

// JSON pointer patterns: "" (the whole document) or "/a/b"; "~0" and "~1" are unescaped and a
// segment "*" matches any key or index. Returns nullopt for anything else.
std::optional<JsonPath> parsePointerPattern(std::string_view pointer);
// True when path is at or below the node the pattern names.
bool pointerCovers(const JsonPath& pattern, const JsonPath& path);
// RFC 6901 text for a path ("/a~1b/0").
std::string pointerText(const JsonPath& path);

}  // namespace mcphost::dlp
