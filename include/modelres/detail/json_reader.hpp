// A strict, small JSON reader for the metadata the offline core reads (the
// Hugging Face cache's trees/<commit>.json). The offline core may not depend on
// a JSON library (an offline-only program builds without one, docs/getting-started.md),
// and Boost 1.74 has no Boost.JSON; so this reads RFC 8259 and nothing more:
// no comments, no trailing commas, no leading zeros, no lone surrogates, no
// duplicate keys, no control characters in strings, nesting at most 64 deep.
// Malformed input is errc::corrupt_metadata with the byte offset. Fuzzed in CI
// (tests/fuzz/json_fuzzer.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "../error.hpp"
#include "../result.hpp"

namespace modelres::detail::json {

enum class kind { null, boolean, number, string, array, object };

// One value. Text and keys are views into the Document's own copy of the
// input, unescaped in place (an unescaped string is never longer than its
// escaped form), so reading a document allocates only the node array.
struct Node {
  kind type = kind::null;
  bool boolean = false;
  std::string_view text;      // a string's value, or a number as written
  std::string_view key;       // the member's name, when this node is an object's member
  std::uint32_t first = 0;    // first child (0: none; the root is nobody's child)
  std::uint32_t next = 0;     // next sibling (0: none)
  std::uint32_t size = 0;     // number of children
};

class Document {
 public:
  Document() = default;
  Document(Document&&) = default;  // moving a vector keeps its buffer, so the views stay valid
  Document& operator=(Document&&) = default;
  Document(const Document&) = delete;  // a copy's views would point into the original
  Document& operator=(const Document&) = delete;

  std::vector<Node> nodes;  // nodes[0] is the root

  const Node& root() const { return nodes[0]; }

  // The children of an array or object, in document order.
  class Children {
   public:
    class iterator {
     public:
      iterator(const std::vector<Node>* nodes, std::uint32_t at) : nodes_(nodes), at_(at) {}
      const Node& operator*() const { return (*nodes_)[at_]; }
      const Node* operator->() const { return &(*nodes_)[at_]; }
      iterator& operator++() {
        at_ = (*nodes_)[at_].next;
        return *this;
      }
      bool operator!=(const iterator& o) const { return at_ != o.at_; }
      bool operator==(const iterator& o) const { return at_ == o.at_; }

     private:
      const std::vector<Node>* nodes_;
      std::uint32_t at_;
    };
    Children(const std::vector<Node>& nodes, const Node& parent) : nodes_(&nodes), first_(parent.first) {}
    iterator begin() const { return {nodes_, first_}; }
    iterator end() const { return {nodes_, 0}; }

   private:
    const std::vector<Node>* nodes_;
    std::uint32_t first_;
  };
  Children children(const Node& n) const { return Children(nodes, n); }

  // The member `key` of an object, or nullptr.
  const Node* member(const Node& object, std::string_view key) const {
    if (object.type != kind::object) return nullptr;
    for (const Node& m : children(object))
      if (m.key == key) return &m;
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

 private:
  friend class Reader;
  std::vector<char> text_;  // the input, with strings unescaped in place
};

class Reader {
 public:
  static constexpr std::size_t max_depth = 64;
  static constexpr std::size_t max_size = 0xffffffffu;  // node indexes are 32 bits

  explicit Reader(std::string_view text) : input_(text) {}

  result<Document> read() {
    Document doc;
    if (input_.size() > max_size) return Error(errc::corrupt_metadata, {}, "JSON larger than 4 GiB");
    doc.text_.assign(input_.begin(), input_.end());
    buf_ = doc.text_.data();
    s_ = std::string_view(buf_, doc.text_.size());
    doc.nodes.reserve(s_.size() / 16 + 1);  // a guess: a node is rarely under 16 bytes of text
    doc.nodes.emplace_back();
    if (!value(doc, 0, 0)) return error();
    skip_space();
    if (pos_ != s_.size()) return fail("text after the JSON value"), error();
    return doc;
  }

 private:
  std::string_view input_;
  char* buf_ = nullptr;  // the document's copy, where strings are unescaped
  std::string_view s_;   // the same bytes, as read
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
  bool value(Document& doc, std::uint32_t at, std::size_t depth) {
    skip_space();
    if (pos_ >= s_.size()) return fail("unexpected end");
    const char c = s_[pos_];
    if (c == '{' || c == '[') {
      if (depth >= max_depth) return fail("nested too deeply");
      return c == '{' ? object(doc, at, depth) : array(doc, at, depth);
    }
    if (c == '"') {
      doc.nodes[at].type = kind::string;
      return string(doc.nodes[at].text);
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

  // Appends a new node as the last child of `parent`, after `last` (0: none yet).
  static std::uint32_t add_child(Document& doc, std::uint32_t parent, std::uint32_t last) {
    const auto child = static_cast<std::uint32_t>(doc.nodes.size());
    doc.nodes.emplace_back();  // may move nodes: index, never hold a reference across this
    if (last) doc.nodes[last].next = child;
    else doc.nodes[parent].first = child;
    ++doc.nodes[parent].size;
    return child;
  }

  bool object(Document& doc, std::uint32_t at, std::size_t depth) {
    doc.nodes[at].type = kind::object;
    ++pos_;
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
    // Duplicate keys: a linear look for small objects, a hash set once an
    // object grows (a tree listing can have 100k keys).
    std::unordered_set<std::string_view> seen;
    std::uint32_t last = 0;
    while (true) {
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a key");
      std::string_view key;
      if (!string(key)) return false;
      if (doc.nodes[at].size < 16) {
        for (std::uint32_t i = doc.nodes[at].first; i; i = doc.nodes[i].next)
          if (doc.nodes[i].key == key) return fail("duplicate key");
      } else {
        if (seen.empty())
          for (std::uint32_t i = doc.nodes[at].first; i; i = doc.nodes[i].next) seen.insert(doc.nodes[i].key);
        if (!seen.insert(key).second) return fail("duplicate key");
      }
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected ':'");
      ++pos_;
      last = add_child(doc, at, last);
      doc.nodes[last].key = key;
      if (!value(doc, last, depth + 1)) return false;
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
      return fail("expected ',' or '}'");
    }
  }

  bool array(Document& doc, std::uint32_t at, std::size_t depth) {
    doc.nodes[at].type = kind::array;
    ++pos_;
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
    std::uint32_t last = 0;
    while (true) {
      last = add_child(doc, at, last);
      if (!value(doc, last, depth + 1)) return false;
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
    n.text = s_.substr(start, pos_ - start);
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

  // Writes code point cp as UTF-8 at buf_[w]; w only ever trails pos_ (the
  // shortest escape, \uXXXX, is 6 bytes for at most 3 of UTF-8; a pair is 12 for 4).
  void put_utf8(std::size_t& w, unsigned cp) {
    if (cp < 0x80) {
      buf_[w++] = static_cast<char>(cp);
    } else if (cp < 0x800) {
      buf_[w++] = static_cast<char>(0xC0 | (cp >> 6));
      buf_[w++] = static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      buf_[w++] = static_cast<char>(0xE0 | (cp >> 12));
      buf_[w++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      buf_[w++] = static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      buf_[w++] = static_cast<char>(0xF0 | (cp >> 18));
      buf_[w++] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      buf_[w++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      buf_[w++] = static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Neither the closing quote, an escape nor a control character (a table:
  // strings are most of a tree listing's bytes).
  static bool plain_in_string(char c) {
    struct Table {
      bool plain[256];
      constexpr Table() : plain() {
        for (int i = 0x20; i < 256; ++i) plain[i] = i != '"' && i != '\\';
      }
    };
    static constexpr Table table;
    return table.plain[static_cast<unsigned char>(c)];
  }

  // Reads a string at pos_ and unescapes it in place; out views the result.
  bool string(std::string_view& out) {
    ++pos_;  // the opening quote
    const std::size_t begin = pos_;
    std::size_t w = pos_;  // where the unescaped text ends; equals pos_ until the first escape
    while (true) {
      // The run of plain characters up to the next quote, escape or control character, at once.
      const std::size_t run = pos_;
      const char* p = s_.data() + pos_;
      const char* const end = s_.data() + s_.size();
      while (p != end && plain_in_string(*p)) ++p;
      pos_ = static_cast<std::size_t>(p - s_.data());
      if (w != run) std::memmove(buf_ + w, buf_ + run, pos_ - run);
      w += pos_ - run;
      if (pos_ >= s_.size()) return fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') {
        out = std::string_view(buf_ + begin, w - begin);
        return true;
      }
      if (c != '\\') return fail("control character in a string");
      if (pos_ >= s_.size()) return fail("unterminated escape");
      switch (s_[pos_++]) {
        case '"': buf_[w++] = '"'; break;
        case '\\': buf_[w++] = '\\'; break;
        case '/': buf_[w++] = '/'; break;
        case 'b': buf_[w++] = '\b'; break;
        case 'f': buf_[w++] = '\f'; break;
        case 'n': buf_[w++] = '\n'; break;
        case 'r': buf_[w++] = '\r'; break;
        case 't': buf_[w++] = '\t'; break;
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
          put_utf8(w, cp);
          break;
        }
        default: return fail("unknown escape");
      }
    }
  }
};

inline result<Document> read(std::string_view text) { return Reader(text).read(); }

}  // namespace modelres::detail::json
