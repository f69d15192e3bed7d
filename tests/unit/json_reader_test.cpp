// The strict JSON reader of the offline core: what Python's json module writes,
// read exactly; everything RFC 8259 forbids, refused with corrupt_metadata.
#include <modelres/detail/json_reader.hpp>

#include <string>

#include "../support/catch.hpp"

using namespace modelres;
namespace json = modelres::detail::json;

namespace json_reader_test {

// json.dump(data, f, indent=1) of a trees/<commit>.json, as huggingface_hub writes it.
const std::string python_tree = R"({
 "format_version": 1,
 "files": {
  "config.json": {
   "size": 519,
   "blob_id": "5c1e6f8d0f6a2c3b4e5d6c7b8a9f0e1d2c3b4a59"
  },
  "model.safetensors": {
   "size": 1234,
   "blob_id": "a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4",
   "lfs_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
   "lfs_size": 1234,
   "xet_hash": "0123"
  },
  "sub/caf\u00e9 \ud83d\ude00.txt": {
   "size": 0,
   "blob_id": "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
  }
 }
})";

std::vector<const json::Node*> children_of(const json::Document& d, const json::Node& n) {
  std::vector<const json::Node*> out;
  for (const json::Node& c : d.children(n)) out.push_back(&c);
  return out;
}

errc code_of(std::string_view text) {
  auto doc = json::read(text);
  return doc ? errc{} : static_cast<errc>(doc.error().code.value());
}

TEST_CASE("json: reads a tree listing as huggingface_hub writes it", "[json]") {
  auto doc = json::read(python_tree);
  REQUIRE(doc);
  const json::Document& d = doc.value();
  std::uint64_t version = 0;
  REQUIRE(json::Document::as_uint(*d.member(d.root(), "format_version"), version));
  CHECK(version == 1);
  const json::Node* files = d.member(d.root(), "files");
  REQUIRE(files);
  REQUIRE(files->size == 3);
  const auto listed = children_of(d, *files);
  REQUIRE(listed.size() == 3);
  CHECK(listed[0]->key == "config.json");
  CHECK(listed[2]->key == "sub/caf\xc3\xa9 \xf0\x9f\x98\x80.txt");  // \u escapes and a surrogate pair, as UTF-8
  const json::Node& weights = *listed[1];
  std::uint64_t size = 0;
  REQUIRE(json::Document::as_uint(*d.member(weights, "size"), size));
  CHECK(size == 1234);
  CHECK(d.member(weights, "lfs_sha256")->text == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  CHECK(d.member(weights, "missing") == nullptr);
}

TEST_CASE("json: every value kind and escape", "[json]") {
  auto doc = json::read(R"( [null, true, false, -0, 12.5e-3, "\"\\\/\b\f\n\r\t", {}, []] )");
  REQUIRE(doc);
  const auto& d = doc.value();
  REQUIRE(d.root().size == 8);
  const auto items = children_of(d, d.root());
  REQUIRE(items.size() == 8);
  CHECK(items[0]->type == json::kind::null);
  CHECK(items[1]->boolean);
  CHECK_FALSE(items[2]->boolean);
  CHECK(items[4]->text == "12.5e-3");
  CHECK(items[5]->text == "\"\\/\b\f\n\r\t");
  CHECK(items[6]->type == json::kind::object);
  CHECK(items[7]->type == json::kind::array);
}

// Strings are unescaped in place in the document's copy: each string's text
// must stay exactly its own, whatever escapes came before or after it.
TEST_CASE("json: strings unescaped in place keep their neighbours intact", "[json]") {
  auto doc = json::read(R"({"a\u0062c": "\u00e9\ud83d\ude00x", "n\nl": ["\t", "", "plain", "\\\"", 12],)"
                        R"( "z": {"\u0041\u0042": "\/\/"}})");
  REQUIRE(doc);
  const json::Document& d = doc.value();
  const auto members = children_of(d, d.root());
  REQUIRE(members.size() == 3);
  CHECK(members[0]->key == "abc");
  CHECK(members[0]->text == "\xc3\xa9\xf0\x9f\x98\x80x");
  CHECK(members[1]->key == "n\nl");
  const auto items = children_of(d, *members[1]);
  REQUIRE(items.size() == 5);
  CHECK(items[0]->text == "\t");
  CHECK(items[1]->text.empty());
  CHECK(items[2]->text == "plain");
  CHECK(items[3]->text == "\\\"");
  CHECK(items[4]->text == "12");
  CHECK(members[2]->key == "z");
  REQUIRE(d.member(*members[2], "AB"));
  CHECK(d.member(*members[2], "AB")->text == "//");
  // The document owns its text: it outlives the input and survives a move.
  std::string input = R"({"k": "v\u0031"})";
  auto moved = json::read(input);
  input.assign(input.size(), '#');
  REQUIRE(moved);
  json::Document kept = std::move(moved).value();
  CHECK(kept.member(kept.root(), "k")->text == "v1");
}

TEST_CASE("json: sizes are whole non-negative 64-bit numbers or nothing", "[json]") {
  const auto as_uint = [](const char* text, std::uint64_t& v) {
    auto doc = json::read(text);
    REQUIRE(doc);
    return json::Document::as_uint(doc.value().root(), v);
  };
  std::uint64_t v = 0;
  CHECK(as_uint("18446744073709551615", v));
  CHECK(v == UINT64_MAX);
  CHECK_FALSE(as_uint("18446744073709551616", v));
  CHECK_FALSE(as_uint("-1", v));
  CHECK_FALSE(as_uint("1.0", v));
  CHECK_FALSE(as_uint("1e3", v));
  CHECK_FALSE(as_uint("\"12\"", v));
}

TEST_CASE("json: what RFC 8259 forbids is corrupt_metadata, with the byte offset", "[json]") {
  for (const char* bad : {"", " ", "{", "[1,]", "{\"a\":1,}", "01", "-", "1.", "1e", "+1", ".5", "NaN", "Infinity",
                          "tru", "nul", "'a'", "{a:1}", "{\"a\" 1}", "[1 2]", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
                          "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\nb\"", "\"unterminated", "{\"a\":1,\"a\":2}",
                          "1 2", "[1] x", "/* c */ 1", "{\"a\":1}}"}) {
    INFO(bad);
    CHECK(code_of(bad) == errc::corrupt_metadata);
  }
  // A duplicate after many keys (the hashed check) as well as among few (the linear one).
  std::string many = "{";
  for (int i = 0; i < 40; ++i) many += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ",";
  CHECK(code_of(many + "\"k40\": 0}") == errc{});
  CHECK(code_of(many + "\"k3\": 0}") == errc::corrupt_metadata);
  CHECK(code_of(many + "\"k39\": 0}") == errc::corrupt_metadata);
  auto doc = json::read("[1, 2,, 3]");
  REQUIRE_FALSE(doc);
  CHECK(doc.error().detail == "JSON byte 6: expected a value");
}

TEST_CASE("json: nesting is bounded, every truncation of a valid document is refused", "[json]") {
  CHECK(code_of(std::string(64, '[') + std::string(64, ']')) == errc{});
  CHECK(code_of(std::string(65, '[') + std::string(65, ']')) == errc::corrupt_metadata);
  CHECK(code_of(std::string(100000, '[')) == errc::corrupt_metadata);
  for (std::size_t n = 0; n < python_tree.size(); ++n) {
    INFO(n);
    CHECK(code_of(std::string_view(python_tree).substr(0, n)) == errc::corrupt_metadata);
  }
}

}  // namespace json_reader_test
