// A strict, small JSON reader for the metadata the offline core reads (the
// Hugging Face cache's trees/<commit>.json). The offline core may not depend on
// a JSON library (an offline-only program builds without one, docs/getting-started.md),
// and Boost 1.74 has no Boost.JSON; so this reads RFC 8259 and nothing more:
// no comments, no trailing commas, no leading zeros, no lone surrogates, no
// duplicate keys, no control characters in strings, nesting at most 64 deep.
// Malformed input is errc::corrupt_metadata with the byte offset. Fuzzed in CI
// (tests/fuzz/json_fuzzer.cpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../result.hpp"

namespace modelres::detail::json {

enum class kind { null, boolean, number, string, array, object };

struct Node {
  kind type = kind::null;
  bool boolean = false;
  std::string text;                 // a string's value, or a number as written
  std::vector<std::size_t> items;   // array elements, or object values (node indexes)
  std::vector<std::string> keys;    // object keys, parallel to items
};

struct Document {
  std::vector<Node> nodes;  // nodes[0] is the root

  const Node& root() const { return nodes[0]; }

  // The member `key` of an object, or nullptr.
  const Node* member(const Node& object, std::string_view key) const {
    if (object.type != kind::object) return nullptr;
    for (std::size_t i = 0; i < object.keys.size(); ++i)
      if (object.keys[i] == key) return &nodes[object.items[i]];
    return nullptr;
  }

  // A number that is a whole, non-negative integer that fits 64 bits.
  static bool as_uint(const Node& n, std::uint64_t& out) {
    if (n.type != kind::number || n.text.empty() || n.text.front() == '-') return false;
    std::uint64_t v = 0;
    for (char c : n.text) {
      if (c < '0' || c > '9') return false;  // a fraction or an exponent
      const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
      if (v > (UINT64_MAX - digit) / 10) return false;
      v = v * 10 + digit;
    }
    out = v;
    return true;
  }
};

class Reader {
 public:
  static constexpr std::size_t max_depth = 64;

  explicit Reader(std::string_view text) : s_(text) {}

  result<Document> read() {
    Document doc;
    doc.nodes.reserve(s_.size() / 16 + 1);  // a guess: a node is rarely under 16 bytes of text
    doc.nodes.emplace_back();
    if (!value(doc, 0, 0)) return error();
    skip_space();
    if (pos_ != s_.size()) return fail("text after the JSON value"), error();
    return doc;
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
  std::string why_;

  Error error() const {
    return Error(errc::corrupt_metadata, {}, "JSON byte " + std::to_string(pos_) + ": " + why_);
  }
  bool fail(const char* why) {
    if (why_.empty()) why_ = why;
    return false;
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return fail("unknown literal");
    pos_ += word.size();
    return true;
  }

  // Parses one value into doc.nodes[at].
  bool value(Document& doc, std::size_t at, std::size_t depth) {
    skip_space();
    if (pos_ >= s_.size()) return fail("unexpected end");
    const char c = s_[pos_];
    if (c == '{' || c == '[') {
      if (depth >= max_depth) return fail("nested too deeply");
      return c == '{' ? object(doc, at, depth) : array(doc, at, depth);
    }
    if (c == '"') {
      doc.nodes[at].type = kind::string;
      std::string text;
      if (!string(text)) return false;
      doc.nodes[at].text = std::move(text);
      return true;
    }
    if (c == 't' || c == 'f') {
      doc.nodes[at].type = kind::boolean;
      doc.nodes[at].boolean = c == 't';
      return literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') return literal("null");
    if (c == '-' || (c >= '0' && c <= '9')) return number(doc.nodes[at]);
    return fail("expected a value");
  }

  bool object(Document& doc, std::size_t at, std::size_t depth) {
    doc.nodes[at].type = kind::object;
    ++pos_;
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
    // Duplicate keys: a linear look for small objects, a hash set once an
    // object grows (a tree listing can have 100k keys).
    std::unordered_set<std::string> seen;
    while (true) {
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a key");
      std::string key;
      if (!string(key)) return false;
      const std::vector<std::string>& keys = doc.nodes[at].keys;
      if (keys.size() < 16) {
        if (std::find(keys.begin(), keys.end(), key) != keys.end()) return fail("duplicate key");
      } else {
        if (seen.empty()) seen.insert(keys.begin(), keys.end());
        if (!seen.insert(key).second) return fail("duplicate key");
      }
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected ':'");
      ++pos_;
      const std::size_t child = doc.nodes.size();
      doc.nodes.emplace_back();  // may move nodes: index, never hold a reference across this
      if (!value(doc, child, depth + 1)) return false;
      if (doc.nodes[at].keys.empty()) {
        doc.nodes[at].keys.reserve(4);
        doc.nodes[at].items.reserve(4);
      }
      doc.nodes[at].keys.push_back(std::move(key));
      doc.nodes[at].items.push_back(child);
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
      return fail("expected ',' or '}'");
    }
  }

  bool array(Document& doc, std::size_t at, std::size_t depth) {
    doc.nodes[at].type = kind::array;
    ++pos_;
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
    while (true) {
      const std::size_t child = doc.nodes.size();
      doc.nodes.emplace_back();
      if (!value(doc, child, depth + 1)) return false;
      doc.nodes[at].items.push_back(child);
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
      return fail("expected ',' or ']'");
    }
  }

  bool number(Node& n) {
    const std::size_t start = pos_;
    const auto digits = [&] {
      const std::size_t from = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ > from;
    };
    if (s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
      if (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') return fail("leading zero");
    } else if (!digits()) {
      return fail("expected digits");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digits()) return fail("expected digits after '.'");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digits()) return fail("expected digits in the exponent");
    }
    n.type = kind::number;
    n.text = std::string(s_.substr(start, pos_ - start));
    return true;
  }

  bool hex4(unsigned& out) {
    if (s_.size() - pos_ < 4) return fail("short \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      out <<= 4;
      if (c >= '0' && c <= '9') out |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') out |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') out |= static_cast<unsigned>(c - 'A' + 10);
      else return fail("bad \\u escape");
    }
    return true;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool string(std::string& out) {
    ++pos_;  // the opening quote
    while (true) {
      // The run of plain characters up to the next quote, escape or control character, at once.
      const std::size_t run = pos_;
      while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\\' && static_cast<unsigned char>(s_[pos_]) >= 0x20) ++pos_;
      out.append(s_.data() + run, pos_ - run);
      if (pos_ >= s_.size()) return fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (c != '\\') return fail("control character in a string");
      if (pos_ >= s_.size()) return fail("unterminated escape");
      switch (s_[pos_++]) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned low = 0;
            if (s_.substr(pos_, 2) != "\\u") return fail("lone high surrogate");
            pos_ += 2;
            if (!hex4(low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return fail("lone high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: return fail("unknown escape");
      }
    }
  }
};

inline result<Document> read(std::string_view text) { return Reader(text).read(); }

}  // namespace modelres::detail::json
