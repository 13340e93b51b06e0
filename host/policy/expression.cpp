#include "policy/expression.hpp"

#include <charconv>
#include <optional>

#include "policy/expression_lexer.hpp"
#include "policy/expression_value.hpp"

namespace mcphost::policy {

using detail::comparisonOp;
using detail::Node;
using detail::Op;
using detail::PathRoot;
using detail::PathSegment;
using detail::Tok;
using detail::Token;
using detail::tokenize;
using detail::Value;
using Kind = detail::Value::Kind;

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent over the token list; the first error wins.

class ExpressionParser {
 public:
  ExpressionParser(std::vector<Token> tokens, Expression& out) : tokens_(std::move(tokens)), out_(out) {}

  std::optional<ExpressionError> run() {
    const auto root = parseOr("");
    if (!error_ && peek().type != Tok::kEnd) {
      fail(peek(), "expected an operator or the end of the expression, found " + describe(peek()));
    }
    if (error_) return error_;
    out_.root_ = *root;
    return std::nullopt;
  }

 private:
  using Index = std::optional<std::uint32_t>;

  const Token& peek() const { return tokens_[pos_]; }
  const Token& next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool isWord(std::string_view w) const { return peek().type == Tok::kWord && peek().text == w; }

  static std::string describe(const Token& t) {
    if (t.type == Tok::kEnd) return "the end of the expression";
    return "'" + std::string(t.text) + "'";
  }
  Index fail(const Token& at, std::string message) {
    if (!error_) error_ = ExpressionError{at.column, std::move(message)};
    return std::nullopt;
  }
  std::uint32_t add(Node node) {
    out_.nodes_.push_back(std::move(node));
    return static_cast<std::uint32_t>(out_.nodes_.size() - 1);
  }
  bool enter(const Token& at) {
    if (++depth_ <= Expression::kMaxDepth) return true;
    fail(at, "nested deeper than " + std::to_string(Expression::kMaxDepth) + " levels");
    return false;
  }

  // a || b || c and a && b && c become one node each, so long chains cost no recursion.
  Index parseOr(const std::string& after) { return parseChain(Op::kOr, Tok::kOrOr, "||", after); }
  Index parseChain(Op op, Tok separator, const char* spelling, const std::string& after) {
    auto operand = [&](const std::string& context) {
      return op == Op::kOr ? parseChain(Op::kAnd, Tok::kAndAnd, "&&", context) : parseUnary(context);
    };
    Index first = operand(after);
    if (!first || peek().type != separator) return first;
    Node chain;
    chain.op = op;
    chain.operands.push_back(*first);
    while (peek().type == separator) {
      next();
      Index more = operand(std::string("after '") + spelling + "'");
      if (!more) return std::nullopt;
      chain.operands.push_back(*more);
    }
    return add(std::move(chain));
  }

  Index parseUnary(const std::string& after) {
    if (peek().type != Tok::kBang) return parseComparison(after);
    const Token& bang = next();
    if (!enter(bang)) return std::nullopt;
    Index operand = parseUnary("after '!'");
    --depth_;
    if (!operand) return std::nullopt;
    Node n;
    n.op = Op::kNot;
    n.lhs = *operand;
    return add(std::move(n));
  }

  Index parseComparison(const std::string& after) {
    Index lhs = parsePrimary(after);
    if (!lhs) return std::nullopt;
    if (isWord("matches")) return refuseRegex(peek());
    const auto op = comparisonOp(peek());
    if (!op) return lhs;
    const Token& opToken = next();
    Index rhs = parsePrimary("after '" + std::string(opToken.text) + "'");
    if (!rhs) return std::nullopt;
    if (comparisonOp(peek())) {
      return fail(peek(), "comparisons do not chain; combine them with && or use parentheses");
    }
    Node n;
    n.op = *op;
    n.lhs = *lhs;
    n.rhs = *rhs;
    return add(std::move(n));
  }

  Index refuseRegex(const Token& at) {
    return fail(
        at, "regular expressions are not supported (ReDoS risk); use startsWith, endsWith, contains or in");
  }

  Index expectedValue(const std::string& after) {
    const Token& t = peek();
    std::string message = "expected a value";
    if (!after.empty()) message += " " + after;
    if (t.type != Tok::kEnd) message += ", found " + describe(t);
    return fail(t, message);
  }

  Index parsePrimary(const std::string& after) {
    const Token& t = peek();
    switch (t.type) {
      case Tok::kLParen: {
        next();
        if (!enter(t)) return std::nullopt;
        Index inner = parseOr("after '('");
        --depth_;
        if (!inner) return std::nullopt;
        if (peek().type != Tok::kRParen) {
          return fail(peek(), "expected ')' to close the '(' at column " + std::to_string(t.column) +
                                  ", found " + describe(peek()));
        }
        next();
        return inner;
      }
      case Tok::kNumber:
      case Tok::kString:
      case Tok::kMinus:
      case Tok::kLBracket: {
        auto literal = parseLiteral(after);
        if (!literal) return std::nullopt;
        Node n;
        n.literal = std::move(*literal);
        return add(std::move(n));
      }
      case Tok::kWord: {
        if (t.text == "true" || t.text == "false" || t.text == "null") {
          auto literal = parseLiteral(after);
          if (!literal) return std::nullopt;
          Node n;
          n.literal = std::move(*literal);
          return add(std::move(n));
        }
        if (t.text == "matches") return refuseRegex(t);
        if (comparisonOp(t)) return expectedValue(after);
        if (t.text == "exists") return parseExists();
        return parsePath(Op::kPath);
      }
      default:
        return expectedValue(after);
    }
  }

  // Literal values, also inside list literals: numbers, strings, true, false, null, [...].
  std::optional<nlohmann::json> parseLiteral(const std::string& after) {
    const Token& t = peek();
    if (t.type == Tok::kString) {
      next();
      return nlohmann::json(t.value);
    }
    if (t.type == Tok::kWord && (t.text == "true" || t.text == "false" || t.text == "null")) {
      next();
      if (t.text == "null") return nlohmann::json(nullptr);
      return nlohmann::json(t.text == "true");
    }
    if (t.type == Tok::kMinus || t.type == Tok::kNumber) {
      const bool negative = t.type == Tok::kMinus;
      if (negative) {
        next();
        if (peek().type != Tok::kNumber) {
          fail(peek(), "expected a number after '-'");
          return std::nullopt;
        }
      }
      const Token& number = next();
      std::string digits = (negative ? "-" : "") + std::string(number.text);
      std::int64_t integer = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), integer);
      if (ec == std::errc() && end == digits.data() + digits.size()) return nlohmann::json(integer);
      double real = 0;
      auto [realEnd, realEc] = std::from_chars(digits.data(), digits.data() + digits.size(), real);
      if (realEc != std::errc() || realEnd != digits.data() + digits.size()) {
        fail(number, "number out of range");
        return std::nullopt;
      }
      return nlohmann::json(real);
    }
    if (t.type == Tok::kLBracket) {
      next();
      if (!enter(t)) return std::nullopt;
      nlohmann::json list = nlohmann::json::array();
      if (peek().type != Tok::kRBracket) {
        while (true) {
          auto item = parseLiteral("in the list");
          if (!item) return std::nullopt;
          list.push_back(std::move(*item));
          if (peek().type == Tok::kComma) {
            next();
            continue;
          }
          if (peek().type == Tok::kRBracket) break;
          fail(peek(), "expected ',' or ']' in the list that starts at column " + std::to_string(t.column) +
                           ", found " + describe(peek()));
          return std::nullopt;
        }
      }
      next();
      --depth_;
      return list;
    }
    if (t.type == Tok::kWord && !comparisonOp(t)) {
      fail(t, "list elements must be literal values (numbers, strings, true, false, null)");
    } else {
      expectedValue(after);
    }
    return std::nullopt;
  }

  Index parseExists() {
    const Token& word = next();
    if (peek().type != Tok::kLParen) return fail(peek(), "expected '(' after 'exists'");
    next();
    if (peek().type != Tok::kWord) return fail(peek(), "expected a path such as args.name inside exists()");
    Index path = parsePath(Op::kExists);
    if (!path) return std::nullopt;
    if (peek().type != Tok::kRParen) {
      return fail(peek(), "expected ')' to close exists( at column " + std::to_string(word.column) +
                              ", found " + describe(peek()));
    }
    next();
    return path;
  }

  // root [. field] ( .member | [index] | ['member'] )*
  Index parsePath(Op op) {
    const Token& rootToken = next();
    Node n;
    n.op = op;
    bool membersAllowed = true;  // json-valued roots take members; string lists take [index]
    bool indexAllowed = true;
    if (rootToken.text == "args") {
      n.root = PathRoot::kArgs;
      out_.usesArguments_ = true;
    } else if (rootToken.text == "action") {
      n.root = PathRoot::kAction;
      membersAllowed = indexAllowed = false;
    } else if (rootToken.text == "principal" || rootToken.text == "target") {
      const bool principal = rootToken.text == "principal";
      if (peek().type != Tok::kDot)
        return fail(peek(), "expected '.' and a field after '" + std::string(rootToken.text) + "'");
      next();
      const Token& field = next();
      static constexpr std::pair<std::string_view, PathRoot> kPrincipal[] = {
          {"subject", PathRoot::kSubject},       {"displayName", PathRoot::kDisplayName},
          {"authMethod", PathRoot::kAuthMethod}, {"groups", PathRoot::kGroups},
          {"roles", PathRoot::kRoles},           {"scopes", PathRoot::kScopes},
          {"tenant", PathRoot::kTenant},         {"attributes", PathRoot::kAttributes},
          {"sourceIp", PathRoot::kSourceIp},     {"issuer", PathRoot::kIssuer}};
      static constexpr std::pair<std::string_view, PathRoot> kTarget[] = {
          {"kind", PathRoot::kTargetKind},
          {"connector", PathRoot::kTargetConnector},
          {"name", PathRoot::kTargetName},
          {"annotations", PathRoot::kTargetAnnotations},
          {"tags", PathRoot::kTargetTags}};
      bool found = false;
      const auto* begin = principal ? std::begin(kPrincipal) : std::begin(kTarget);
      const auto* end = principal ? std::end(kPrincipal) : std::end(kTarget);
      std::string known;
      for (const auto* it = begin; it != end; ++it) {
        known += (known.empty() ? "" : ", ") + std::string(it->first);
        if (field.type == Tok::kWord && it->first == field.text) {
          n.root = it->second;
          found = true;
        }
      }
      if (!found) {
        return fail(field, "unknown field " + describe(field) + " of " + std::string(rootToken.text) +
                               " (known: " + known + ")");
      }
      const bool json = n.root == PathRoot::kAttributes || n.root == PathRoot::kTargetAnnotations;
      const bool list = n.root == PathRoot::kGroups || n.root == PathRoot::kRoles ||
                        n.root == PathRoot::kScopes || n.root == PathRoot::kTargetTags;
      membersAllowed = json;
      indexAllowed = json || list;
    } else {
      return fail(rootToken, "unknown name " + describe(rootToken) +
                                 " (expected args, principal, target, action, "
                                 "a literal, exists() or '(')");
    }
    while (peek().type == Tok::kDot || peek().type == Tok::kLBracket) {
      const Token& opener = next();
      PathSegment segment;
      if (opener.type == Tok::kDot) {
        if (!membersAllowed) return fail(opener, "this value has no members");
        if (peek().type != Tok::kWord) return fail(peek(), "expected a member name after '.'");
        segment.key = std::string(next().text);
      } else {
        if (!indexAllowed) return fail(opener, "this value cannot be indexed");
        const Token& inside = next();
        if (inside.type == Tok::kString && membersAllowed) {
          segment.key = inside.value;
        } else if (inside.type == Tok::kNumber) {
          auto [end, ec] =
              std::from_chars(inside.text.data(), inside.text.data() + inside.text.size(), segment.index);
          if (ec != std::errc() || end != inside.text.data() + inside.text.size()) {
            return fail(inside, "expected a non-negative integer index");
          }
          segment.isIndex = true;
        } else {
          return fail(inside, "expected an index (or a quoted member name) inside '[...]'");
        }
        if (peek().type != Tok::kRBracket) return fail(peek(), "expected ']'");
        next();
      }
      n.segments.push_back(std::move(segment));
    }
    return add(std::move(n));
  }

  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
  Expression& out_;
  std::optional<ExpressionError> error_;
};

Expected<Expression, ExpressionError> Expression::compile(std::string_view text) {
  if (text.size() > kMaxLength) {
    return unexpected(ExpressionError{
        kMaxLength + 1, "expression is longer than " + std::to_string(kMaxLength) + " characters"});
  }
  auto tokens = tokenize(text);
  if (!tokens) return unexpected(tokens.error());
  if (tokens->size() == 1) return unexpected(ExpressionError{1, "expected a condition, found nothing"});
  Expression expression;
  expression.text_ = std::string(text);
  ExpressionParser parser(std::move(*tokens), expression);
  if (auto error = parser.run()) return unexpected(std::move(*error));
  return expression;
}

// ---------------------------------------------------------------------------------------------
// Evaluator: values are views (pointers and string_views) into the context, the literals and
// the arguments, so evaluation allocates nothing.

namespace {

class Evaluator {
 public:
  Evaluator(const std::vector<Node>& nodes, const EvalContext& context) : nodes_(nodes), context_(context) {}

  Truth truth(std::uint32_t index) const {
    const Node& n = nodes_[index];
    switch (n.op) {
      case Op::kAnd: {
        bool unknown = false;
        for (const auto operand : n.operands) {
          const Truth t = truth(operand);
          if (t == Truth::kFalse) return Truth::kFalse;
          unknown = unknown || t == Truth::kUnknown;
        }
        return unknown ? Truth::kUnknown : Truth::kTrue;
      }
      case Op::kOr: {
        bool unknown = false;
        for (const auto operand : n.operands) {
          const Truth t = truth(operand);
          if (t == Truth::kTrue) return Truth::kTrue;
          unknown = unknown || t == Truth::kUnknown;
        }
        return unknown ? Truth::kUnknown : Truth::kFalse;
      }
      case Op::kNot: {
        const Truth t = truth(n.lhs);
        if (t == Truth::kUnknown) return t;
        return t == Truth::kTrue ? Truth::kFalse : Truth::kTrue;
      }
      case Op::kExists: {
        const Value v = resolve(n);
        if (v.kind == Kind::kUnknown) return Truth::kUnknown;
        return v.kind == Kind::kMissing ? Truth::kFalse : Truth::kTrue;
      }
      case Op::kLiteral:
      case Op::kPath: {
        const Value v = value(index);
        if (v.kind == Kind::kUnknown) return Truth::kUnknown;
        return v.kind == Kind::kBool && v.boolean ? Truth::kTrue : Truth::kFalse;
      }
      default:
        break;
    }
    const Value a = value(n.lhs);
    const Value b = value(n.rhs);
    if (a.kind == Kind::kUnknown || b.kind == Kind::kUnknown) return Truth::kUnknown;
    bool result = false;
    switch (n.op) {
      case Op::kEq:
        result = equals(a, b);
        break;
      case Op::kNe:
        result = !equals(a, b);
        break;
      case Op::kLt:
      case Op::kLe:
      case Op::kGt:
      case Op::kGe: {
        const auto o = order(a, b);
        if (!o) break;  // mismatched types (or NaN) never compare
        result = n.op == Op::kLt ? *o < 0 : n.op == Op::kLe ? *o <= 0 : n.op == Op::kGt ? *o > 0 : *o >= 0;
        break;
      }
      case Op::kIn:
        result = within(a, b);
        break;
      case Op::kContains:
        result = within(b, a);
        break;
      case Op::kStartsWith:
        result =
            a.kind == Kind::kString && b.kind == Kind::kString && a.text.substr(0, b.text.size()) == b.text;
        break;
      case Op::kEndsWith:
        result = a.kind == Kind::kString && b.kind == Kind::kString && a.text.size() >= b.text.size() &&
                 a.text.substr(a.text.size() - b.text.size()) == b.text;
        break;
      default:
        break;
    }
    return result ? Truth::kTrue : Truth::kFalse;
  }

 private:
  Value value(std::uint32_t index) const {
    const Node& n = nodes_[index];
    if (n.op == Op::kLiteral) return Value::ofJson(&n.literal);
    if (n.op == Op::kPath) return resolve(n);
    const Truth t = truth(index);  // a condition used as a value: (a < b) == true
    return t == Truth::kUnknown ? Value::of(Kind::kUnknown) : Value::ofBool(t == Truth::kTrue);
  }

  Value resolve(const Node& n) const {
    const auth::Principal* p = context_.principal;
    Value v;
    switch (n.root) {
      case PathRoot::kArgs:
        if (context_.arguments == nullptr && !context_.argumentsKnown) return Value::of(Kind::kUnknown);
        v = Value::ofJson(context_.arguments);
        break;
      case PathRoot::kAction:
        return Value::ofString(context_.action);
      case PathRoot::kTargetKind:
        return Value::ofString(context_.targetKind);
      case PathRoot::kTargetConnector:
        return Value::ofString(context_.connector);
      case PathRoot::kTargetName:
        return Value::ofString(context_.name);
      case PathRoot::kTargetAnnotations:
        v = Value::ofJson(context_.annotations);
        break;
      case PathRoot::kTargetTags:
        v = Value::ofStrings(context_.tags);
        break;
      default:
        if (p == nullptr) return Value::of(Kind::kMissing);
        switch (n.root) {
          case PathRoot::kSubject:
            return Value::ofString(p->subject);
          case PathRoot::kDisplayName:
            return Value::ofString(p->displayName);
          case PathRoot::kAuthMethod:
            return Value::ofString(p->authMethod);
          case PathRoot::kTenant:
            return Value::ofString(p->tenant);
          case PathRoot::kSourceIp:
            return Value::ofString(p->sourceIp);
          case PathRoot::kIssuer:
            return Value::ofString(p->issuer);
          case PathRoot::kGroups:
            v = Value::ofStrings(&p->groups);
            break;
          case PathRoot::kRoles:
            v = Value::ofStrings(&p->roles);
            break;
          case PathRoot::kScopes:
            v = Value::ofStrings(&p->scopes);
            break;
          case PathRoot::kAttributes:
            v = Value::ofJson(&p->attributes);
            break;
          default:
            return Value::of(Kind::kMissing);
        }
    }
    for (const PathSegment& s : n.segments) {
      if (s.isIndex) {
        if (!v.isList() || s.index >= v.size()) return Value::of(Kind::kMissing);
        v = v.element(s.index);
      } else {
        if (v.kind != Kind::kObject) return Value::of(Kind::kMissing);
        const auto it = v.json->find(s.key);
        if (it == v.json->end()) return Value::of(Kind::kMissing);
        v = Value::ofJson(&*it);
      }
    }
    return v;
  }

  const std::vector<Node>& nodes_;
  const EvalContext& context_;
};

}  // namespace

Truth Expression::evaluate(const EvalContext& context) const noexcept {
  if (nodes_.empty()) return Truth::kFalse;
  return Evaluator(nodes_, context).truth(root_);
}

}  // namespace mcphost::policy
