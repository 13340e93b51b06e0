// Values of the `when` expression language during evaluation: views (pointers and
// string_views) into the context, the literals and the arguments, so evaluation allocates
// nothing. Internal to expression.cpp.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcphost::policy::detail {

struct Value {
  enum class Kind : std::uint8_t {
    kMissing,
    kNull,
    kBool,
    kInteger,
    kReal,
    kString,
    kArray,
    kObject,
    kStrings,
    kUnknown
  };
  Kind kind = Kind::kMissing;
  bool boolean = false;
  std::int64_t integer = 0;
  double real = 0;
  std::string_view text;
  const nlohmann::json* json = nullptr;               // kArray, kObject (and the source of any json value)
  const std::vector<std::string>* strings = nullptr;  // kStrings: principal groups, roles, scopes, tags

  static Value of(Kind k) {
    Value v;
    v.kind = k;
    return v;
  }
  static Value ofString(std::string_view s) {
    Value v = of(Kind::kString);
    v.text = s;
    return v;
  }
  static Value ofBool(bool b) {
    Value v = of(Kind::kBool);
    v.boolean = b;
    return v;
  }
  static Value ofStrings(const std::vector<std::string>* list) {
    if (list == nullptr) return of(Kind::kMissing);
    Value v = of(Kind::kStrings);
    v.strings = list;
    return v;
  }
  static Value ofJson(const nlohmann::json* j) {
    if (j == nullptr) return of(Kind::kMissing);
    Value v;
    v.json = j;
    switch (j->type()) {
      case nlohmann::json::value_t::boolean:
        v.kind = Kind::kBool;
        v.boolean = j->get<bool>();
        break;
      case nlohmann::json::value_t::number_integer:
        v.kind = Kind::kInteger;
        v.integer = j->get<std::int64_t>();
        break;
      case nlohmann::json::value_t::number_unsigned: {
        const auto u = j->get<std::uint64_t>();
        if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          v.kind = Kind::kInteger;
          v.integer = static_cast<std::int64_t>(u);
        } else {
          v.kind = Kind::kReal;
          v.real = static_cast<double>(u);
        }
        break;
      }
      case nlohmann::json::value_t::number_float:
        v.kind = Kind::kReal;
        v.real = j->get<double>();
        break;
      case nlohmann::json::value_t::string:
        v.kind = Kind::kString;
        v.text = j->get_ref<const std::string&>();
        break;
      case nlohmann::json::value_t::array:
        v.kind = Kind::kArray;
        break;
      case nlohmann::json::value_t::object:
        v.kind = Kind::kObject;
        break;
      default:
        v.kind = Kind::kNull;
        break;
    }
    return v;
  }

  [[nodiscard]] bool isNullish() const { return kind == Kind::kMissing || kind == Kind::kNull; }
  [[nodiscard]] bool isNumber() const { return kind == Kind::kInteger || kind == Kind::kReal; }
  [[nodiscard]] bool isList() const { return kind == Kind::kArray || kind == Kind::kStrings; }
  [[nodiscard]] double asReal() const { return kind == Kind::kInteger ? static_cast<double>(integer) : real; }
  [[nodiscard]] std::size_t size() const { return kind == Kind::kStrings ? strings->size() : json->size(); }
  [[nodiscard]] Value element(std::size_t i) const {
    return kind == Kind::kStrings ? ofString((*strings)[i]) : ofJson(&(*json)[i]);
  }
};

using ValueKind = Value::Kind;

inline bool equals(const Value& a, const Value& b) {
  if (a.isNullish() || b.isNullish()) return a.isNullish() && b.isNullish();
  if (a.isNumber() && b.isNumber()) {
    if (a.kind == ValueKind::kInteger && b.kind == ValueKind::kInteger) return a.integer == b.integer;
    return a.asReal() == b.asReal();
  }
  if (a.kind != b.kind) {
    if (!(a.isList() && b.isList())) return false;
  } else if (a.kind == ValueKind::kObject || (a.kind == ValueKind::kArray && b.kind == ValueKind::kArray)) {
    return *a.json == *b.json;
  }
  switch (a.kind) {
    case ValueKind::kBool:
      return a.boolean == b.boolean;
    case ValueKind::kString:
      return a.text == b.text;
    case ValueKind::kArray:
    case ValueKind::kStrings: {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i)
        if (!equals(a.element(i), b.element(i))) return false;
      return true;
    }
    default:
      return false;
  }
}

// -1, 0, 1 for two numbers or two strings; nullopt for anything else (the comparison is false).
inline std::optional<int> order(const Value& a, const Value& b) {
  if (a.isNumber() && b.isNumber()) {
    if (a.kind == ValueKind::kInteger && b.kind == ValueKind::kInteger) {
      return a.integer < b.integer ? -1 : (a.integer > b.integer ? 1 : 0);
    }
    const double x = a.asReal();
    const double y = b.asReal();
    if (x < y) return -1;
    if (x > y) return 1;
    if (x == y) return 0;
    return std::nullopt;  // NaN
  }
  if (a.kind == ValueKind::kString && b.kind == ValueKind::kString) {
    const int c = a.text.compare(b.text);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return std::nullopt;
}

// `needle in haystack`: an element of a list, a substring of a string, a member of an object.
inline bool within(const Value& needle, const Value& haystack) {
  if (haystack.isList()) {
    for (std::size_t i = 0; i < haystack.size(); ++i)
      if (equals(needle, haystack.element(i))) return true;
    return false;
  }
  if (needle.kind != ValueKind::kString) return false;
  if (haystack.kind == ValueKind::kString) return haystack.text.find(needle.text) != std::string_view::npos;
  if (haystack.kind == ValueKind::kObject) return haystack.json->contains(needle.text);
  return false;
}

}  // namespace mcphost::policy::detail
