// The tokenizer of the `when` expression language (see expression.hpp). Internal to
// expression.cpp; a header only because the module's .cpp files are fixed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "policy/expression.hpp"

namespace mcphost::policy::detail {

enum class Tok : std::uint8_t {
  kEnd,
  kNumber,
  kString,
  kWord,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kDot,
  kMinus,
  kAndAnd,
  kOrOr,
  kBang,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
};

struct Token {
  Tok type = Tok::kEnd;
  std::size_t column = 0;  // 1-based
  std::string_view text;   // as written
  std::string value;       // kString: the unescaped contents
};

inline bool isWordStart(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
inline bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
inline bool isWordChar(char c) {
  return isWordStart(c) || isDigit(c);
}

inline Expected<std::vector<Token>, ExpressionError> tokenize(std::string_view text) {
  std::vector<Token> out;
  std::size_t i = 0;
  auto fail = [](std::size_t at, std::string message) {
    return unexpected(ExpressionError{at + 1, std::move(message)});
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    Token t;
    t.column = i + 1;
    const std::size_t start = i;
    // Used after the first character was consumed: is the next one `next`?
    auto two = [&](char next) { return i < text.size() && text[i] == next; };
    if (isWordStart(c)) {
      while (i < text.size() && isWordChar(text[i])) ++i;
      t.type = Tok::kWord;
    } else if (isDigit(c)) {
      while (i < text.size() && isDigit(text[i])) ++i;
      if (i + 1 < text.size() && text[i] == '.' && isDigit(text[i + 1])) {
        ++i;
        while (i < text.size() && isDigit(text[i])) ++i;
      }
      if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        std::size_t j = i + 1;
        if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
        if (j >= text.size() || !isDigit(text[j])) return fail(i, "expected digits in the exponent");
        i = j;
        while (i < text.size() && isDigit(text[i])) ++i;
      }
      if (i < text.size() && isWordStart(text[i])) return fail(i, "expected an operator after the number");
      t.type = Tok::kNumber;
    } else if (c == '\'' || c == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        const char s = text[i++];
        if (s == c) {
          closed = true;
          break;
        }
        if (s != '\\') {
          t.value.push_back(s);
          continue;
        }
        if (i >= text.size()) break;
        const char e = text[i++];
        switch (e) {
          case '\\':
            t.value.push_back('\\');
            break;
          case '\'':
            t.value.push_back('\'');
            break;
          case '"':
            t.value.push_back('"');
            break;
          case 'n':
            t.value.push_back('\n');
            break;
          case 't':
            t.value.push_back('\t');
            break;
          default:
            return fail(i - 2, std::string("unknown escape '\\") + e + "' (use \\\\, \\', \\\", \\n or \\t)");
        }
      }
      if (!closed) return fail(start, "unterminated string");
      t.type = Tok::kString;
    } else {
      ++i;
      switch (c) {
        case '(':
          t.type = Tok::kLParen;
          break;
        case ')':
          t.type = Tok::kRParen;
          break;
        case '[':
          t.type = Tok::kLBracket;
          break;
        case ']':
          t.type = Tok::kRBracket;
          break;
        case ',':
          t.type = Tok::kComma;
          break;
        case '.':
          t.type = Tok::kDot;
          break;
        case '-':
          t.type = Tok::kMinus;
          break;
        case '&':
          if (!two('&')) return fail(start, "expected '&&'");
          ++i;
          t.type = Tok::kAndAnd;
          break;
        case '|':
          if (!two('|')) return fail(start, "expected '||'");
          ++i;
          t.type = Tok::kOrOr;
          break;
        case '=':
          if (!two('=')) return fail(start, "expected '==' (a single '=' does not compare)");
          ++i;
          t.type = Tok::kEq;
          break;
        case '!':
          t.type = two('=') ? Tok::kNe : Tok::kBang;
          if (t.type == Tok::kNe) ++i;
          break;
        case '<':
          t.type = two('=') ? Tok::kLe : Tok::kLt;
          if (t.type == Tok::kLe) ++i;
          break;
        case '>':
          t.type = two('=') ? Tok::kGe : Tok::kGt;
          if (t.type == Tok::kGe) ++i;
          break;
        default:
          return fail(start, std::string("unexpected character '") + c + "'");
      }
    }
    t.text = text.substr(start, i - start);
    out.push_back(std::move(t));
  }
  Token end;
  end.column = text.size() + 1;
  out.push_back(std::move(end));
  return out;
}

inline std::optional<Op> comparisonOp(const Token& t) {
  switch (t.type) {
    case Tok::kEq:
      return Op::kEq;
    case Tok::kNe:
      return Op::kNe;
    case Tok::kLt:
      return Op::kLt;
    case Tok::kLe:
      return Op::kLe;
    case Tok::kGt:
      return Op::kGt;
    case Tok::kGe:
      return Op::kGe;
    case Tok::kWord:
      if (t.text == "in") return Op::kIn;
      if (t.text == "contains") return Op::kContains;
      if (t.text == "startsWith") return Op::kStartsWith;
      if (t.text == "endsWith") return Op::kEndsWith;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace mcphost::policy::detail
