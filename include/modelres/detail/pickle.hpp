// A strict reader for the small Python pickles the ModelScope client writes
// (.msc: a list of {'Path','Revision'} dicts; .mdl: {'id': ...}).
//
// It accepts only data opcodes (protocols 2 to 5: containers, strings, small
// ints, None, booleans, memo) and rejects anything that would make Python
// import or call code (GLOBAL, REDUCE, BUILD, ...) with errc::unsafe_metadata.
// It executes nothing, allocates in proportion to its input, and returns
// errc::corrupt_metadata for truncated or malformed bytes.
//
// The Writer produces the same bytes as Python's pickle at protocol 2 for the
// same data (a list of string dicts, or one string dict), so the Python client
// reads what we write. Fuzzed by tests/fuzz/pickle_fuzzer.cpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../result.hpp"

namespace modelres::detail::pickle {

enum class kind : std::uint8_t { none, boolean, integer, string, list, dict };

struct Node {
  kind type = kind::none;
  std::int64_t integer = 0;          // boolean and integer
  std::string text;                  // string
  std::vector<std::uint32_t> items;  // list: elements; dict: key, value, key, value ...
  bool shared = false;               // referenced again through the memo
};

struct Document {
  std::vector<Node> nodes;
  std::uint32_t root = 0;

  const Node& at(std::uint32_t i) const { return nodes[i]; }
  const Node& root_node() const { return nodes[root]; }

  // Like find_string, but hands the string over: moved out unless the pickle
  // shares the node through its memo, then copied. False if absent or not a string.
  bool take_string(const Node& dict, std::string_view key, std::string& out) {
    for (std::size_t i = 0; i + 1 < dict.items.size(); i += 2) {
      const Node& k = nodes[dict.items[i]];
      Node& v = nodes[dict.items[i + 1]];
      if (k.type != kind::string || k.text != key) continue;
      if (v.type != kind::string) return false;
      out = v.shared ? v.text : std::move(v.text);
      return true;
    }
    return false;
  }

  // The string value of dict[key], or nullptr if absent or not a string.
  const std::string* find_string(const Node& dict, std::string_view key) const {
    for (std::size_t i = 0; i + 1 < dict.items.size(); i += 2) {
      const Node& k = nodes[dict.items[i]];
      const Node& v = nodes[dict.items[i + 1]];
      if (k.type == kind::string && k.text == key) return v.type == kind::string ? &v.text : nullptr;
    }
    return nullptr;
  }
};

namespace limits {
constexpr std::size_t max_nodes = 1u << 22;      // 4M values; a 100k-file .msc uses 300k
constexpr std::size_t max_memo = 1u << 22;
constexpr std::size_t max_mark_depth = 64;
}  // namespace limits

class Reader {
 public:
  explicit Reader(std::string_view bytes) : in_(bytes) {
    // A value costs at least 2 bytes of pickle; reserving avoids regrowth on the hot path.
    doc_.nodes.reserve(std::min(bytes.size() / 2 + 1, limits::max_nodes));
    memo_.reserve(std::min(bytes.size() / 2 + 1, limits::max_memo));
    stack_.reserve(16);
  }

  result<Document> read() {
    if (in_.empty()) return fail(errc::corrupt_metadata, "empty file");
    while (true) {
      if (pos_ >= in_.size()) return fail(errc::corrupt_metadata, "truncated: no STOP opcode");
      const std::size_t at = pos_;
      const auto op = static_cast<unsigned char>(in_[pos_++]);
      switch (op) {
        case 0x80: {  // PROTO
          std::uint64_t v = 0;
          if (!read_le(1, v)) return truncated();
          if (at != 0) return fail(errc::corrupt_metadata, "PROTO not at the start", at);
          if (v < 2 || v > 5) return fail(errc::corrupt_metadata, "unsupported pickle protocol " + std::to_string(v), at);
          break;
        }
        case 0x95: {  // FRAME: a length hint; the frame's bytes follow inline
          std::uint64_t n = 0;
          if (!read_le(8, n)) return truncated();
          if (n > in_.size() - pos_) return truncated();
          break;
        }
        case ']': push_new(kind::list); break;  // EMPTY_LIST
        case '}': push_new(kind::dict); break;  // EMPTY_DICT
        case 'N': push_new(kind::none); break;  // NONE
        case 0x88:
        case 0x89: {  // NEWTRUE, NEWFALSE
          push_new(kind::boolean);
          doc_.nodes.back().integer = op == 0x88;
          break;
        }
        case 'K':
        case 'M':
        case 'J': {  // BININT1, BININT2, BININT
          std::uint64_t v = 0;
          const std::size_t width = op == 'K' ? 1 : op == 'M' ? 2 : 4;
          if (!read_le(width, v)) return truncated();
          push_new(kind::integer);
          doc_.nodes.back().integer = width == 4 ? static_cast<std::int32_t>(v) : static_cast<std::int64_t>(v);
          break;
        }
        case 0x8c:
        case 'X':
        case 0x8d: {  // SHORT_BINUNICODE, BINUNICODE, BINUNICODE8
          std::uint64_t n = 0;
          if (!read_le(op == 0x8c ? 1 : op == 'X' ? 4 : 8, n)) return truncated();
          if (n > in_.size() - pos_) return truncated();
          push_new(kind::string);
          doc_.nodes.back().text.assign(in_.data() + pos_, static_cast<std::size_t>(n));
          pos_ += static_cast<std::size_t>(n);
          break;
        }
        case '(':  // MARK
          if (marks_.size() >= limits::max_mark_depth) return fail(errc::corrupt_metadata, "MARKs nested too deep", at);
          marks_.push_back(stack_.size());
          break;
        case 0x94:  // MEMOIZE
          if (values_above_mark() < 1) return fail(errc::corrupt_metadata, "MEMOIZE with no value above the MARK", at);
          if (memo_.size() >= limits::max_memo) return fail(errc::corrupt_metadata, "memo too large", at);
          memo_.push_back(stack_.back());
          break;
        case 'q':
        case 'r': {  // BINPUT, LONG_BINPUT
          std::uint64_t i = 0;
          if (!read_le(op == 'q' ? 1 : 4, i)) return truncated();
          if (values_above_mark() < 1) return fail(errc::corrupt_metadata, "BINPUT with no value above the MARK", at);
          if (i >= limits::max_memo) return fail(errc::corrupt_metadata, "memo index too large", at);
          if (i == memo_.size()) {
            memo_.push_back(stack_.back());  // the pickler numbers its memo in order: the usual case
          } else {
            if (i > memo_.size()) memo_.resize(static_cast<std::size_t>(i) + 1, unset);
            memo_[static_cast<std::size_t>(i)] = stack_.back();
          }
          break;
        }
        case 'h':
        case 'j': {  // BINGET, LONG_BINGET
          std::uint64_t i = 0;
          if (!read_le(op == 'h' ? 1 : 4, i)) return truncated();
          if (i >= memo_.size() || memo_[static_cast<std::size_t>(i)] == unset)
            return fail(errc::corrupt_metadata, "BINGET of an unset memo slot", at);
          const std::uint32_t ref = memo_[static_cast<std::size_t>(i)];
          // Shared or cyclic containers never occur in these files; refusing
          // them keeps the result a tree.
          if (doc_.nodes[ref].type == kind::list || doc_.nodes[ref].type == kind::dict)
            return fail(errc::corrupt_metadata, "memo reference to a container", at);
          doc_.nodes[ref].shared = true;
          stack_.push_back(ref);
          break;
        }
        case 'a':  // APPEND
          if (values_above_mark() < 2) return fail(errc::corrupt_metadata, "APPEND needs a list and a value above the MARK", at);
          if (!append_to(stack_[stack_.size() - 2], stack_.size() - 1, kind::list, at)) return error_;
          break;
        case 'e':  // APPENDS
        case 'u': {  // SETITEMS
          if (marks_.empty()) return fail(errc::corrupt_metadata, "APPENDS/SETITEMS without a MARK", at);
          const std::size_t mark = marks_.back();
          marks_.pop_back();
          if (mark == 0) return fail(errc::corrupt_metadata, "APPENDS/SETITEMS with no container", at);
          if (op == 'u' && (stack_.size() - mark) % 2 != 0)
            return fail(errc::corrupt_metadata, "SETITEMS with an odd number of items", at);
          if (!append_to(stack_[mark - 1], mark, op == 'e' ? kind::list : kind::dict, at)) return error_;
          break;
        }
        case 's':  // SETITEM
          if (values_above_mark() < 3)
            return fail(errc::corrupt_metadata, "SETITEM needs a dict, a key and a value above the MARK", at);
          if (!append_to(stack_[stack_.size() - 3], stack_.size() - 2, kind::dict, at)) return error_;
          break;
        case '.':  // STOP
          if (stack_.size() != 1 || !marks_.empty())
            return fail(errc::corrupt_metadata, "STOP with " + std::to_string(stack_.size()) + " values on the stack", at);
          if (pos_ != in_.size()) return fail(errc::corrupt_metadata, "bytes after STOP", pos_);
          doc_.root = stack_.back();
          return std::move(doc_);
        case 'c': case 0x93: case 'R': case 'b': case 'i': case 'o': case 0x81: case 0x92:
        case 'P': case 'Q': case 0x82: case 0x83: case 0x84:
          return fail(errc::unsafe_metadata, std::string("opcode ") + opcode_name(op) + " would import or call code", at);
        default:
          return fail(errc::corrupt_metadata, "unsupported opcode " + hex_byte(op), at);
      }
      if (doc_.nodes.size() > limits::max_nodes) return fail(errc::corrupt_metadata, "too many values", at);
    }
  }

 private:
  static constexpr std::uint32_t unset = 0xffffffffu;

  bool read_le(std::size_t width, std::uint64_t& out) {
    if (in_.size() - pos_ < width) return false;
    out = 0;
    for (std::size_t i = 0; i < width; ++i)
      out |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[pos_ + i])) << (8 * i);
    pos_ += width;
    return true;
  }

  // Python's unpickler starts a new stack at each MARK, so no opcode may take
  // values from below the innermost one; this also keeps every mark <= stack_.size().
  std::size_t values_above_mark() const { return stack_.size() - (marks_.empty() ? 0 : marks_.back()); }

  void push_new(kind k) {
    doc_.nodes.emplace_back();
    doc_.nodes.back().type = k;
    stack_.push_back(static_cast<std::uint32_t>(doc_.nodes.size() - 1));
  }

  // Moves stack_[first..] into the container `target`, which must be of `want`.
  bool append_to(std::uint32_t target, std::size_t first, kind want, std::size_t at) {
    Node& container = doc_.nodes[target];
    if (container.type != want) {
      error_ = fail(errc::corrupt_metadata, want == kind::list ? "append to a non-list" : "set item on a non-dict", at);
      return false;
    }
    const std::size_t needed = container.items.size() + (stack_.size() - first);
    if (needed > container.items.capacity())  // at least doubling: APPEND adds one at a time
      container.items.reserve(std::max(needed, 2 * container.items.capacity()));
    for (std::size_t i = first; i < stack_.size(); ++i) {
      const std::uint32_t item = stack_[i];
      if (item == target) {
        error_ = fail(errc::corrupt_metadata, "container inserted into itself", at);
        return false;
      }
      container.items.push_back(item);
    }
    stack_.resize(first);
    return true;
  }

  Error fail(errc code, std::string what, std::size_t at) const {
    return Error(code, {}, "pickle byte " + std::to_string(at) + ": " + std::move(what));
  }
  Error fail(errc code, std::string what) const { return Error(code, {}, "pickle: " + std::move(what)); }
  Error truncated() const { return fail(errc::corrupt_metadata, "truncated", in_.size()); }

  static std::string hex_byte(unsigned char b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", b);
    return buf;
  }
  static const char* opcode_name(unsigned char op) {
    switch (op) {
      case 'c': return "GLOBAL";
      case 0x93: return "STACK_GLOBAL";
      case 'R': return "REDUCE";
      case 'b': return "BUILD";
      case 'i': return "INST";
      case 'o': return "OBJ";
      case 0x81: return "NEWOBJ";
      case 0x92: return "NEWOBJ_EX";
      case 'P': return "PERSID";
      case 'Q': return "BINPERSID";
      default: return "EXT";
    }
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  Document doc_;
  std::vector<std::uint32_t> stack_;
  std::vector<std::size_t> marks_;
  std::vector<std::uint32_t> memo_;
  Error error_;
};

inline result<Document> read(std::string_view bytes) { return Reader(bytes).read(); }

using StringDict = std::vector<std::pair<std::string, std::string>>;  // in insertion order

// Python's protocol-2 pickler for list[dict[str, str]] and dict[str, str], as
// the client calls it: every object is memoized in order; a key seen before is
// a memo reference (the client's keys are shared literals, and pickle memoizes
// by identity), a value is always written afresh (values come from parsed
// JSON, each its own object); items go in batches of 1000.
class Writer {
 public:
  static std::string list_of_dicts(const std::vector<StringDict>& records) {
    Writer w;
    w.out_ = "\x80\x02]";
    w.put_memo();
    w.batched(records.size(), 'a', 'e', [&](std::size_t i) { w.dict(records[i]); });
    w.out_ += '.';
    return std::move(w.out_);
  }
  static std::string dict_only(const StringDict& d) {
    Writer w;
    w.out_ = "\x80\x02";
    w.dict(d);
    w.out_ += '.';
    return std::move(w.out_);
  }

 private:
  static constexpr std::size_t batch_size = 1000;

  void dict(const StringDict& d) {
    out_ += '}';
    put_memo();
    batched(d.size(), 's', 'u', [&](std::size_t i) {
      key(d[i].first);
      value(d[i].second);
    });
  }

  template <class Save>
  void batched(std::size_t n, char one, char many, Save save) {
    for (std::size_t start = 0; start < n; start += batch_size) {
      const std::size_t count = std::min(batch_size, n - start);
      if (count > 1) out_ += '(';
      for (std::size_t i = start; i < start + count; ++i) save(i);
      out_ += count > 1 ? many : one;
    }
  }

  void key(const std::string& s) {
    if (const auto it = keys_.find(s); it != keys_.end()) {
      put_index(it->second, 'h', 'j');
      return;
    }
    keys_.emplace(s, next_);
    value(s);
  }

  void value(const std::string& s) {
    out_ += 'X';
    put_le32(static_cast<std::uint32_t>(s.size()));
    out_ += s;
    put_memo();
  }

  void put_memo() { put_index(next_++, 'q', 'r'); }
  void put_index(std::uint32_t i, char small, char large) {
    if (i < 256) {
      out_ += small;
      out_ += static_cast<char>(i);
    } else {
      out_ += large;
      put_le32(i);
    }
  }
  void put_le32(std::uint32_t v) {
    for (int b = 0; b < 4; ++b) out_ += static_cast<char>((v >> (8 * b)) & 0xff);
  }

  std::string out_;
  std::unordered_map<std::string, std::uint32_t> keys_;
  std::uint32_t next_ = 0;
};

}  // namespace modelres::detail::pickle
