// The strict YAML reading helpers the configuration loaders share: the first error wins and
// names the file, the line and the key path.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace mcphost::config::detail {

// Collects the first error with its location.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[nodiscard]] bool failed() const { return !error_.empty(); }
  [[nodiscard]] const std::string& error() const { return error_; }

  void fail(const YAML::Node& node, const std::string& key, const std::string& problem) {
    if (failed()) return;
    const int line = node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
    error_ = source_ + ":" + std::to_string(line) + ": " + key + ": " + problem;
  }

  void allowKeys(const YAML::Node& map, const std::string& path, const std::set<std::string>& keys) {
    if (!map.IsMap()) {
      fail(map, path, "expected a mapping");
      return;
    }
    for (const auto& kv : map) {
      const auto key = kv.first.as<std::string>();
      if (keys.count(key) == 0) {
        std::string known;
        for (const auto& k : keys) {
          if (!known.empty()) known += ", ";
          known += k;
        }
        std::string problem = "unknown key (known keys: ";
        problem.append(known).append(")");
        std::string where = path;
        if (!where.empty()) where += ".";
        where += key;
        fail(kv.first, where, problem);
      }
    }
  }

  template <typename T>
  void read(const YAML::Node& map, const std::string& path, const char* key, T& out) {
    const YAML::Node node = map[key];
    if (!node) return;
    try {
      out = node.as<T>();
    } catch (const YAML::Exception&) {
      fail(node, path + "." + key, "expected " + describe<T>());
    }
  }

  void readDuration(const YAML::Node& map, const std::string& path, const char* key,
                    std::chrono::milliseconds& out) {
    const YAML::Node node = map[key];
    if (!node) return;
    auto d = parseDuration(node.IsScalar() ? node.Scalar() : "");
    if (!d) {
      fail(node, path + "." + key, d.error());
      return;
    }
    out = *d;
  }

  void readStringMap(const YAML::Node& map, const std::string& path, const char* key,
                     std::map<std::string, std::string>& out) {
    const YAML::Node node = map[key];
    if (!node) return;
    if (!node.IsMap()) {
      fail(node, path + "." + key, "expected a mapping of names to strings");
      return;
    }
    for (const auto& kv : node) {
      if (!kv.second.IsScalar()) {
        fail(kv.second, path + "." + key + "." + kv.first.as<std::string>(), "expected a string");
        return;
      }
      out[kv.first.as<std::string>()] = kv.second.Scalar();
    }
  }

  void readStrings(const YAML::Node& map, const std::string& path, const char* key,
                   std::vector<std::string>& out) {
    const YAML::Node node = map[key];
    if (!node) return;
    if (!node.IsSequence()) {
      fail(node, path + "." + key, "expected a list of strings");
      return;
    }
    for (const auto& item : node) {
      if (!item.IsScalar()) {
        fail(item, path + "." + key, "expected a string");
        return;
      }
      out.push_back(item.Scalar());
    }
  }

 private:
  template <typename T>
  static std::string describe() {
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_integral_v<T>) return "a non-negative integer";
    return "a string";
  }
  std::string source_;
  std::string error_;
};

// A YAML subtree as JSON: plain scalars become booleans, numbers or null when they read as
// such; quoted scalars stay strings.
inline nlohmann::json yamlToJson(const YAML::Node& node) {
  if (node.IsMap()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& kv : node) out[kv.first.as<std::string>()] = yamlToJson(kv.second);
    return out;
  }
  if (node.IsSequence()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : node) out.push_back(yamlToJson(item));
    return out;
  }
  if (!node.IsScalar()) return nullptr;
  const std::string& v = node.Scalar();
  if (node.Tag() != "?") return v;  // quoted or explicitly tagged: a string
  if (v == "true" || v == "True" || v == "TRUE") return true;
  if (v == "false" || v == "False" || v == "FALSE") return false;
  if (v == "null" || v == "~" || v.empty()) return nullptr;
  static const std::regex kInteger("^-?[0-9]{1,18}$");
  static const std::regex kNumber("^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$");
  if (std::regex_match(v, kInteger)) return std::stoll(v);
  if (std::regex_match(v, kNumber)) return std::stod(v);
  return v;
}

}  // namespace mcphost::config::detail
