#include <modelres/model_ref.hpp>

#include <string>

#include "../support/catch.hpp"

using modelres::classify_reference;
using modelres::errc;
using modelres::ModelId;
using modelres::parse_revision;
using modelres::reference_kind;

TEST_CASE("valid model ids parse into owner and name", "[model_ref]") {
  for (const char* text : {"iic/cv_unet_skin_retouching_torch", "Qwen/Qwen2.5-0.5B-Instruct", "AI-ModelScope/bge-large-zh-v1.5",
                           "a/b", "_x/y_", "damo/nlp_structbert_word-segmentation_chinese-base"}) {
    auto id = ModelId::parse(text);
    INFO(text);
    REQUIRE(id);
    CHECK(id.value().str() == text);
  }
  auto qwen = ModelId::parse("Qwen/Qwen2.5-0.5B-Instruct");
  CHECK(qwen.value().owner == "Qwen");
  CHECK(qwen.value().name == "Qwen2.5-0.5B-Instruct");
}

TEST_CASE("invalid model ids are invalid_model_id with the offending input", "[model_ref]") {
  const std::string long_name(ModelId::max_name_length + 1, 'x');
  const std::string long_owner(ModelId::max_owner_length + 1, 'x');
  const char* const bad[] = {
      "",           "noslash",      "/abs/path",  "a/b/c",       "a//b",          "/a",         "a/",
      "../b",       "a/..",         "a/../b",     "a/.",         "./b",           "a/b..c",     "a\\b/c",
      "a/b\\c",     "a/b c",        "a/b\tc",     "a/b\nc",      "a/.hidden",     "a/-flag",    "-a/b",
      "a/b.",       "a--b/c",       "ow:ner/n",   "a/n\xc3\xa9", "C:\\x/y",       "~/b",        "a/b?",
  };
  for (const char* text : bad) {
    INFO(text);
    auto id = ModelId::parse(text);
    REQUIRE_FALSE(id);
    CHECK(id.error() == errc::invalid_model_id);
    CHECK_FALSE(id.error().detail.empty());
  }
  auto long_id = ModelId::parse("o/" + long_name);
  REQUIRE_FALSE(long_id);
  CHECK(long_id.error() == errc::invalid_model_id);
  CHECK(long_id.error().detail.find("more than 96") != std::string::npos);
  CHECK(ModelId::parse(long_owner + "/n").error() == errc::invalid_model_id);
  // A NUL in the middle must not be cut off and accepted.
  CHECK(ModelId::parse(std::string("a/b\0c", 5)).error() == errc::invalid_model_id);
  // The offending input is in the error, with control bytes made printable.
  auto ctl = ModelId::parse("a/b\x01");
  CHECK(ctl.error().reference == "a/b\\x01");
}

TEST_CASE("revisions: branch and tag names, nothing that could leave a directory", "[model_ref]") {
  for (const char* ok : {"master", "v1.0.3", "release/2024-01", "main", "a_b-c.d"}) {
    INFO(ok);
    auto r = parse_revision(ok);
    REQUIRE(r);
    CHECK(r.value() == ok);
  }
  CHECK(parse_revision("").value().empty());
  for (const char* bad : {"..", "../x", "a/../b", "/abs", "a/", "a//b", ".hidden", "a/.x", "x.lock", "a b", "a\nb",
                          "a\\b", "a:b", "a~1"}) {
    INFO(bad);
    auto r = parse_revision(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_revision);
  }
  CHECK(parse_revision(std::string(129, 'a')).error() == errc::invalid_revision);
}

TEST_CASE("references are paths or ids by spelling alone", "[model_ref]") {
  for (const char* p : {"/models/unet", "./models/unet", "../unet", ".", "..", "~", "~/models", "~bob/m"})
    CHECK(classify_reference(p) == reference_kind::path);
  for (const char* id : {"models/unet", "Qwen/Qwen2.5-0.5B", "unet", "a/b/c", ""})
    CHECK(classify_reference(id) == reference_kind::model_id);
}
