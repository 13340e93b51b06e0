// The `when` expression language: parsing (with columns in errors), evaluation semantics,
// limits.
#include "policy/expression.hpp"

#include <catch2/catch.hpp>
#include <string>

using mcphost::auth::Principal;
using mcphost::policy::EvalContext;
using mcphost::policy::Expression;
using mcphost::policy::ExpressionError;
using mcphost::policy::Truth;
using nlohmann::json;

namespace {

Principal samplePrincipal() {
  Principal p;
  p.subject = "alice";
  p.authMethod = "jwt";
  p.groups = {"hr", "staff"};
  p.roles = {"analyst"};
  p.tenant = "acme";
  p.sourceIp = "10.1.2.3";
  p.attributes = {{"department", "hr"}, {"level", 3}, {"manager", {{"name", "bob"}}}};
  return p;
}

struct Evaluation {
  json args = json::object();
  bool argumentsKnown = true;
  bool noArguments = false;
};

Truth evaluate(const std::string& text, const Evaluation& e = {}) {
  static const Principal principal = samplePrincipal();
  static const json annotations = {{"readOnlyHint", true}};
  static const std::vector<std::string> tags = {"pii", "finance"};
  auto compiled = Expression::compile(text);
  INFO(text);
  if (!compiled) FAIL("column " << compiled.error().column << ": " << compiled.error().message);
  EvalContext context;
  context.principal = &principal;
  context.action = "tools/call";
  context.targetKind = "tool";
  context.connector = "hr";
  context.name = "hr__query";
  context.annotations = &annotations;
  context.tags = &tags;
  context.arguments = e.noArguments ? nullptr : &e.args;
  context.argumentsKnown = e.argumentsKnown;
  return compiled->evaluate(context);
}

bool holds(const std::string& text, json args = json::object()) {
  Evaluation e;
  e.args = std::move(args);
  return evaluate(text, e) == Truth::kTrue;
}

ExpressionError compileError(const std::string& text) {
  auto compiled = Expression::compile(text);
  INFO(text);
  REQUIRE_FALSE(compiled);
  return compiled.error();
}

}  // namespace

TEST_CASE("expression: literals and comparisons", "[policy][expression]") {
  CHECK(holds("true"));
  CHECK_FALSE(holds("false"));
  CHECK_FALSE(holds("null"));
  CHECK_FALSE(holds("1"));  // only the boolean true holds
  CHECK(holds("1 == 1"));
  CHECK(holds("1 == 1.0"));
  CHECK(holds("-2.5 < -2"));
  CHECK(holds("1e3 == 1000"));
  CHECK(holds("'a' == \"a\""));
  CHECK(holds("'a' < 'b'"));
  CHECK(holds("'b' >= 'b'"));
  CHECK(holds("2 > 1 && 1 <= 1 && 1 != 2"));
  CHECK(holds("null == null"));
  CHECK(holds("[1, 'a', null] == [1, 'a', null]"));
  CHECK_FALSE(holds("[1, 2] == [2, 1]"));
  CHECK(holds("'it\\'s' == \"it's\""));
  CHECK(holds("9007199254740993 != 9007199254740992"));  // integers compare exactly
}

TEST_CASE("expression: type mismatches are false, != is their negation", "[policy][expression]") {
  CHECK_FALSE(holds("'5' < 6"));
  CHECK_FALSE(holds("'5' >= 6"));
  CHECK_FALSE(holds("'1' == 1"));
  CHECK(holds("'1' != 1"));
  CHECK_FALSE(holds("true == 1"));
  CHECK_FALSE(holds("null < 1"));
  CHECK_FALSE(holds("[1] < [2]"));
  CHECK_FALSE(holds("args.amount <= 1000", {{"amount", "500"}}));
  CHECK_FALSE(holds("'abc' startsWith 1"));
}

TEST_CASE("expression: precedence and parentheses", "[policy][expression]") {
  CHECK(holds("true || false && false"));  // && binds tighter than ||
  CHECK_FALSE(holds("(true || false) && false"));
  CHECK(holds("!false && true"));
  CHECK(holds("!1 == 2"));  // ! negates the comparison: !(1 == 2)
  CHECK_FALSE(holds("!(1 == 1)"));
  CHECK(holds("!!true"));
  CHECK(holds("((((1 < 2))))"));
  CHECK(holds("false || false || false || true"));
  CHECK_FALSE(holds("true && true && true && false"));
  CHECK(holds("(1 < 2) == true"));
}

TEST_CASE("expression: paths into args, principal, target and action", "[policy][expression]") {
  const json args = {{"amount", 250},
                     {"currency", "EUR"},
                     {"items", json::array({{{"sku", "A-1"}}, {{"sku", "B-2"}}})},
                     {"odd-key", true},
                     {"nothing", nullptr}};
  CHECK(holds("args.amount <= 1000 && args.currency == 'EUR'", args));
  CHECK(holds("args.items[1].sku == 'B-2'", args));
  CHECK(holds("args['odd-key']", args));
  CHECK(holds("args.items[5] == null", args));
  CHECK(holds("args.missing.deeper == null", args));
  CHECK(holds("args.amount.x == null", args));
  CHECK(holds("principal.subject == 'alice'"));
  CHECK(holds("principal.authMethod == 'jwt' && principal.tenant == 'acme'"));
  CHECK(holds("principal.groups[1] == 'staff'"));
  CHECK(holds("principal.groups == ['hr', 'staff']"));
  CHECK(holds("principal.attributes.department == 'hr' && principal.attributes.level >= 3"));
  CHECK(holds("principal.attributes.manager.name == 'bob'"));
  CHECK(holds("principal.sourceIp startsWith '10.'"));
  CHECK(holds("target.connector == 'hr' && target.name endsWith '__query' && target.kind == 'tool'"));
  CHECK(holds("target.annotations.readOnlyHint == true"));
  CHECK(holds("'pii' in target.tags"));
  CHECK(holds("action == 'tools/call'"));
}

TEST_CASE("expression: in, contains, startsWith, endsWith", "[policy][expression]") {
  CHECK(holds("'hr' in principal.groups"));
  CHECK_FALSE(holds("'eng' in principal.groups"));
  CHECK(holds("principal.groups contains 'staff'"));
  CHECK(holds("2 in [1, 2, 3]"));
  CHECK_FALSE(holds("'2' in [1, 2, 3]"));  // JSON types matter
  CHECK(holds("'ell' in 'hello'"));
  CHECK(holds("'hello' contains 'ell'"));
  CHECK_FALSE(holds("1 in 'hello'"));
  CHECK(holds("'currency' in args", {{"currency", "EUR"}}));
  CHECK(holds("args.tags contains 'x'", {{"tags", {"x", "y"}}}));
  CHECK(holds("'abc' startsWith 'ab' && 'abc' endsWith 'bc'"));
  CHECK_FALSE(holds("'ab' startsWith 'abc'"));
  CHECK_FALSE(holds("'ab' endsWith 'abc'"));
  CHECK(holds("'' startsWith ''"));
}

TEST_CASE("expression: exists distinguishes present null from missing", "[policy][expression]") {
  const json args = {{"nothing", nullptr}, {"flag", false}};
  CHECK(holds("exists(args.nothing)", args));
  CHECK(holds("exists(args.flag)", args));
  CHECK_FALSE(holds("exists(args.missing)", args));
  CHECK(holds("!exists(args.missing)", args));
  CHECK(holds("exists(principal.attributes.department)"));
}

TEST_CASE("expression: arguments not known yet are unknown, three-valued", "[policy][expression]") {
  Evaluation unknown;
  unknown.noArguments = true;
  unknown.argumentsKnown = false;
  CHECK(evaluate("args.amount <= 1000", unknown) == Truth::kUnknown);
  CHECK(evaluate("!(args.amount <= 1000)", unknown) == Truth::kUnknown);
  CHECK(evaluate("exists(args.x)", unknown) == Truth::kUnknown);
  CHECK(evaluate("false && args.x == 1", unknown) == Truth::kFalse);
  CHECK(evaluate("true || args.x == 1", unknown) == Truth::kTrue);
  CHECK(evaluate("true && args.x == 1", unknown) == Truth::kUnknown);
  CHECK(evaluate("principal.tenant == 'acme'", unknown) == Truth::kTrue);
  // Known to be absent: args reads as null.
  Evaluation absent;
  absent.noArguments = true;
  CHECK(evaluate("args.amount <= 1000", absent) == Truth::kFalse);
  CHECK(evaluate("args == null", absent) == Truth::kTrue);
}

TEST_CASE("expression: usesArguments and text", "[policy][expression]") {
  auto withArgs = Expression::compile("principal.subject == 'a' || args.x == 1");
  REQUIRE(withArgs);
  CHECK(withArgs->usesArguments());
  CHECK(withArgs->text() == "principal.subject == 'a' || args.x == 1");
  auto without = Expression::compile("principal.subject == 'a'");
  REQUIRE(without);
  CHECK_FALSE(without->usesArguments());
}

TEST_CASE("expression: errors name the column and what was expected", "[policy][expression]") {
  auto e = compileError("args.amount <= ");
  CHECK(e.column == 16);
  CHECK(e.message == "expected a value after '<='");
  e = compileError("args.amount <= && true");
  CHECK(e.column == 16);
  CHECK(e.message == "expected a value after '<=', found '&&'");
  e = compileError("(1 == 1");
  CHECK(e.column == 8);
  CHECK(e.message.find("expected ')' to close the '(' at column 1") != std::string::npos);
  e = compileError("args.a = 1");
  CHECK(e.column == 8);
  CHECK(e.message.find("'=='") != std::string::npos);
  e = compileError("'open");
  CHECK(e.column == 1);
  CHECK(e.message == "unterminated string");
  e = compileError("args.name matches 'a.*'");
  CHECK(e.column == 11);
  CHECK(e.message.find("regular expressions are not supported") != std::string::npos);
  e = compileError("user == 'x'");
  CHECK(e.column == 1);
  CHECK(e.message.find("unknown name 'user'") != std::string::npos);
  e = compileError("principal.email == 'x'");
  CHECK(e.column == 11);
  CHECK(e.message.find("unknown field 'email' of principal") != std::string::npos);
  e = compileError("1 < 2 < 3");
  CHECK(e.column == 7);
  CHECK(e.message.find("do not chain") != std::string::npos);
  e = compileError("true false");
  CHECK(e.column == 6);
  e = compileError("");
  CHECK(e.message.find("found nothing") != std::string::npos);
  e = compileError("   ");
  CHECK(e.column == 1);
  e = compileError("1 == #");
  CHECK(e.column == 6);
  CHECK(e.message == "unexpected character '#'");
  e = compileError("x in [args.a]");
  CHECK(e.column == 1);
  e = compileError("1 in [1, args.a]");
  CHECK(e.column == 10);
  CHECK(e.message.find("literal values") != std::string::npos);
  e = compileError("principal.subject.x == 1");
  CHECK(e.column == 18);
  e = compileError("exists(1)");
  CHECK(e.column == 8);
  e = compileError("'a\\q'");
  CHECK(e.message.find("unknown escape") != std::string::npos);
  e = compileError("1 ||");
  CHECK(e.message == "expected a value after '||'");
  e = compileError("!");
  CHECK(e.message == "expected a value after '!'");
  e = compileError("args.items[x]");
  CHECK(e.column == 12);
  e = compileError("== 1");
  CHECK(e.column == 1);
  CHECK(e.message == "expected a value, found '=='");
}

TEST_CASE("expression: nesting depth and size are bounded", "[policy][expression]") {
  const std::size_t depth = Expression::kMaxDepth;
  const std::string ok = std::string(depth, '(') + "true" + std::string(depth, ')');
  CHECK(holds(ok));
  const std::string deep = std::string(depth + 1, '(') + "true" + std::string(depth + 1, ')');
  auto e = compileError(deep);
  CHECK(e.message.find("nested deeper than 32") != std::string::npos);
  CHECK(e.column == depth + 1);
  CHECK(compileError(std::string(depth + 1, '!') + "true").message.find("nested deeper") !=
        std::string::npos);
  CHECK(compileError(std::string(depth + 1, '[') + std::string(depth + 1, ']') + " == 1")
            .message.find("nested deeper") != std::string::npos);

  // A long flat chain stays within the size limit and does not recurse.
  std::string chain = "true";
  while (chain.size() + 10 < Expression::kMaxLength) chain += " && true";
  CHECK(holds(chain));
  std::string tooLong(Expression::kMaxLength + 1, ' ');
  tooLong.replace(0, 4, "true");
  e = compileError(tooLong);
  CHECK(e.message.find("longer than 4096") != std::string::npos);
}

TEST_CASE("expression: evaluation without a principal or arguments reads null", "[policy][expression]") {
  auto compiled = Expression::compile("principal.subject == null && args.x == null && !('a' in target.tags)");
  REQUIRE(compiled);
  const EvalContext empty;
  CHECK(compiled->evaluate(empty) == Truth::kTrue);
}
