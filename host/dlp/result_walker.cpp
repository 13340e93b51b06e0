#include "dlp/result_walker.hpp"

namespace mcphost::dlp {
namespace {

void addText(nlohmann::json& holder, std::string_view key, ResultSlots& slots) {
  if (!holder.is_object()) return;
  auto it = holder.find(key);
  if (it != holder.end() && it->is_string()) slots.texts.push_back(it->get_ptr<std::string*>());
}

// One content block: text, or an embedded resource whose text is scanned (its blob is not).
void addContentBlock(nlohmann::json& block, ResultSlots& slots) {
  if (!block.is_object()) return;
  addText(block, "text", slots);
  auto resource = block.find("resource");
  if (resource != block.end()) addText(*resource, "text", slots);
}

void addContentArray(nlohmann::json& holder, std::string_view key, ResultSlots& slots) {
  if (!holder.is_object()) return;
  auto it = holder.find(key);
  if (it == holder.end()) return;
  if (it->is_array()) {
    for (auto& block : *it) addContentBlock(block, slots);
  } else {
    addContentBlock(*it, slots);
  }
}

bool walk(nlohmann::json& node, JsonPath& path, std::size_t depth, std::size_t maxDepth,
          const std::function<bool(nlohmann::json&, const JsonPath&)>& visit) {
  if (node.is_object() || node.is_array()) {
    if (depth >= maxDepth) {
      node = "[REDACTED:depth]";
      return true;
    }
    if (node.is_object()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        path.push_back(it.key());
        const bool go = walk(it.value(), path, depth + 1, maxDepth, visit);
        path.pop_back();
        if (!go) return false;
      }
    } else {
      for (std::size_t i = 0; i < node.size(); ++i) {
        path.push_back(std::to_string(i));
        const bool go = walk(node[i], path, depth + 1, maxDepth, visit);
        path.pop_back();
        if (!go) return false;
      }
    }
    return true;
  }
  if (node.is_string() || node.is_number_integer()) return visit(node, path);
  return true;
}

}  // namespace

ResultSlots collectSlots(nlohmann::json& result, std::string_view kind) {
  ResultSlots slots;
  if (!result.is_object()) return slots;
  if (kind == "resource") {
    addContentArray(result, "contents", slots);
    return slots;
  }
  if (kind == "prompt") {
    addText(result, "description", slots);
    auto messages = result.find("messages");
    if (messages != result.end() && messages->is_array())
      for (auto& message : *messages) addContentArray(message, "content", slots);
    return slots;
  }
  addContentArray(result, "content", slots);
  auto structured = result.find("structuredContent");
  if (structured != result.end()) slots.structured = &*structured;
  return slots;
}

bool forEachLeaf(nlohmann::json& root, const std::function<bool(nlohmann::json&, const JsonPath&)>& visit,
                 std::size_t maxDepth) {
  JsonPath path;
  return walk(root, path, 0, maxDepth, visit);
}

std::optional<JsonPath> parsePointerPattern(std::string_view pointer) {
  JsonPath out;
  if (pointer.empty()) return out;
  if (pointer.front() != '/') return std::nullopt;
  std::string segment;
  for (std::size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      out.push_back(std::move(segment));
      segment.clear();
      continue;
    }
    if (pointer[i] != '~') {
      segment.push_back(pointer[i]);
      continue;
    }
    if (i + 1 >= pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1')) return std::nullopt;
    segment.push_back(pointer[++i] == '0' ? '~' : '/');
  }
  return out;
}

bool pointerCovers(const JsonPath& pattern, const JsonPath& path) {
  if (pattern.size() > path.size()) return false;
  for (std::size_t i = 0; i < pattern.size(); ++i)
    if (pattern[i] != "*" && pattern[i] != path[i]) return false;
  return true;
}

std::string pointerText(const JsonPath& path) {
  std::string out;
  for (const auto& segment : path) {
    out.push_back('/');
    for (char c : segment) {
      if (c == '~') {
        out += "~0";
      } else if (c == '/') {
        out += "~1";
      } else {
        out.push_back(c);
      }
    }
  }
  return out;
}

}  // namespace mcphost::dlp
