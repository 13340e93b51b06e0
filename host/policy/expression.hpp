// The `when` predicate language of a policy rule: a small, total, side-effect free expression
// over the call's arguments, the principal and the target.
//
//   args.amount <= 1000 && args.currency == 'EUR'
//   principal.tenant == 'acme' || 'admins' in principal.groups
//   !exists(args.force) && target.name startsWith 'hr__'
//
// Compiled once when the policy loads (errors carry a 1-based column); evaluated on every
// decision without throwing and without allocating. There are no regular expressions (a
// hostile or careless pattern would be a ReDoS vector on the request path), no function calls
// other than exists(), and no loops, so evaluation time is linear in the expression size, which
// is bounded by kMaxLength and kMaxDepth.
//
// Precedence, loosest first: ||, &&, !, comparisons (== != < <= > >= in contains startsWith
// endsWith). `!` negates the comparison that follows it (`!a == b` is `!(a == b)`, as with
// Python's `not`); comparisons do not chain. A value used as a condition holds only when it is
// the boolean true.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "auth/principal.hpp"
#include "common/expected.hpp"

namespace mcphost::policy {

// Three-valued result: kUnknown when the expression depends on arguments that are not known
// yet (a listing decides visibility before any call exists).
enum class Truth : std::uint8_t { kFalse, kTrue, kUnknown };

// What an expression can see. Null pointers read as missing (null), except that null
// arguments read as unknown when !argumentsKnown.
struct EvalContext {
  const auth::Principal* principal = nullptr;
  std::string_view action;
  std::string_view targetKind;
  std::string_view connector;
  std::string_view name;
  const nlohmann::json* annotations = nullptr;
  const std::vector<std::string>* tags = nullptr;
  const nlohmann::json* arguments = nullptr;
  bool argumentsKnown = true;
};

struct ExpressionError {
  std::size_t column = 0;  // 1-based position in the expression text
  std::string message;     // "expected a value after '<='"
};

namespace detail {
// One step of a compiled path such as args.items[0].sku or principal.attributes.department.
struct PathSegment {
  std::string key;        // object member, when !isIndex
  std::size_t index = 0;  // array element, when isIndex
  bool isIndex = false;
};
enum class PathRoot : std::uint8_t {
  kArgs,
  kAction,
  kSubject,
  kDisplayName,
  kAuthMethod,
  kGroups,
  kRoles,
  kScopes,
  kTenant,
  kAttributes,
  kSourceIp,
  kIssuer,
  kTargetKind,
  kTargetConnector,
  kTargetName,
  kTargetAnnotations,
  kTargetTags,
};
enum class Op : std::uint8_t {
  kLiteral,
  kPath,
  kExists,
  kNot,
  kAnd,
  kOr,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kContains,
  kStartsWith,
  kEndsWith,
};
struct Node {
  Op op = Op::kLiteral;
  std::uint32_t lhs = 0;  // operands of unary and binary operators (node indices)
  std::uint32_t rhs = 0;
  std::vector<std::uint32_t> operands;  // kAnd, kOr: flattened so long chains do not recurse
  nlohmann::json literal;               // kLiteral
  PathRoot root = PathRoot::kArgs;      // kPath, kExists
  std::vector<PathSegment> segments;
};
}  // namespace detail

class Expression {
 public:
  static constexpr std::size_t kMaxLength = 4096;
  static constexpr std::size_t kMaxDepth = 32;  // nested parentheses, '!' and list literals

  static Expected<Expression, ExpressionError> compile(std::string_view text);

  // kTrue only when the predicate holds; type mismatches compare false, missing paths are null.
  [[nodiscard]] Truth evaluate(const EvalContext& context) const noexcept;
  [[nodiscard]] bool holds(const EvalContext& context) const noexcept {
    return evaluate(context) == Truth::kTrue;
  }
  // True when some path starts with `args`: the expression can only be decided at call time.
  [[nodiscard]] bool usesArguments() const { return usesArguments_; }
  [[nodiscard]] const std::string& text() const { return text_; }

 private:
  Expression() = default;
  friend class ExpressionParser;

  std::string text_;
  std::vector<detail::Node> nodes_;
  std::uint32_t root_ = 0;
  bool usesArguments_ = false;
};

}  // namespace mcphost::policy
