// HuggingFaceCache against caches laid out exactly as huggingface_hub lays
// them out: symlinks into blobs/ and the no-symlink variant, refs for branches
// and refs/pr/N, cached trees, and hostile entries.
#include <modelres/modelres.hpp>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"

using namespace modelres;
using testing::HfFile;
using testing::HfOptions;
using testing::TempDir;
namespace fs = std::filesystem;

namespace huggingface_cache_test {

const ModelId gemma{"google", "gemma-2b"};
const std::string commit = "0123456789abcdef0123456789abcdef01234567";
const std::string other_commit = "89abcdef0123456789abcdef0123456789abcdef";

const std::vector<HfFile> files = {
    {"config.json", "{\"model_type\": \"gemma\"}\n"},
    {"model.safetensors", std::string(4096, 'w')},
    {"tokenizer/tokenizer.json", "{\"version\": \"1.0\"}"},
};

void check_files(const ResolvedModel& m) {
  REQUIRE(m.files.size() == 3);
  CHECK(m.files[0].path == "config.json");
  CHECK(m.files[0].size == files[0].content.size());
  CHECK(m.files[1].path == "model.safetensors");
  CHECK(m.files[1].size == 4096);
  CHECK(m.files[2].path == "tokenizer/tokenizer.json");
}

std::string verdict_for(const Error& e, const fs::path& path) {
  for (const auto& p : e.looked_at)
    if (p.path == path.native()) return p.verdict;
  return "(not looked at)";
}

TEST_CASE("huggingface: a snapshot of symlinks into blobs/ resolves through refs/main", "[huggingface]") {
  TempDir root;
  const fs::path snapshot = testing::lay_out_hf(root.path(), "google/gemma-2b", commit, files);
  auto m = HuggingFaceCache(root.path()).locate(gemma, "");
  REQUIRE(m);
  CHECK(m.value().directory == snapshot);
  CHECK(m.value().model_id == "google/gemma-2b");
  CHECK(m.value().revision == "main");
  CHECK(m.value().commit == commit);
  CHECK(m.value().layout == HuggingFaceCache::layout);
  CHECK(m.value().completeness == Completeness::unknown);  // no cached tree to prove it whole
  check_files(m.value());
}

TEST_CASE("huggingface: the no-symlink layout (plain files, no blobs/) resolves the same", "[huggingface]") {
  TempDir root;
  HfOptions o;
  o.symlinks = false;
  const fs::path snapshot = testing::lay_out_hf(root.path(), "google/gemma-2b", commit, files, o);
  CHECK_FALSE(fs::exists(snapshot.parent_path().parent_path() / "blobs"));
  auto m = HuggingFaceCache(root.path()).locate(gemma, "main");
  REQUIRE(m);
  CHECK(m.value().directory == snapshot);
  check_files(m.value());
}

TEST_CASE("huggingface: a cached tree proves the snapshot whole, or names what it lacks", "[huggingface]") {
  TempDir root;
  HfOptions o;
  o.tree = true;
  const fs::path snapshot = testing::lay_out_hf(root.path(), "google/gemma-2b", commit, files, o);
  auto whole = HuggingFaceCache(root.path()).locate(gemma, "");
  REQUIRE(whole);
  CHECK(whole.value().completeness == Completeness::listed);
  check_files(whole.value());

  // A partial snapshot: what snapshot_download leaves when it is interrupted.
  fs::remove(snapshot / "model.safetensors");
  auto partial = HuggingFaceCache(root.path()).locate(gemma, "");
  REQUIRE_FALSE(partial);
  CHECK(partial.error() == errc::incomplete);
  CHECK(partial.error().detail == "missing files listed in trees/" + commit + ".json: model.safetensors");
  CHECK(partial.error().reference == "google/gemma-2b");

  // A file of another size than listed (a truncated blob).
  testing::write_file(snapshot / "model.safetensors", "short");
  auto truncated = HuggingFaceCache(root.path()).locate(gemma, "");
  REQUIRE_FALSE(truncated);
  CHECK(truncated.error() == errc::incomplete);
  CHECK(truncated.error().detail == "files of another size than listed: model.safetensors (5 bytes, listed 4096)");
}

TEST_CASE("huggingface: a tree huggingface_hub would ignore is ignored, and said so", "[huggingface]") {
  TempDir root;
  const fs::path snapshot = testing::lay_out_hf(root.path(), "google/gemma-2b", commit, files);
  const fs::path tree = snapshot.parent_path().parent_path() / "trees" / (commit + ".json");
  for (const std::string& bytes : {std::string("{\"format_version\": 2, \"files\": {}}"), std::string("{\"files\": {"),
                                   std::string("{\"format_version\": 1, \"files\": {\"a\": {\"blob_id\": \"x\"}}}")}) {
    INFO(bytes);
    testing::write_file(tree, bytes);
    auto m = HuggingFaceCache(root.path()).locate(gemma, "");
    REQUIRE(m);
    CHECK(m.value().completeness == Completeness::unknown);
    check_files(m.value());
  }
}

TEST_CASE("huggingface: branches, tags and refs/pr/N through refs/, a full commit directly", "[huggingface]") {
  TempDir root;
  HfOptions o;
  o.refs = {"main", "v1.0", "refs/pr/1"};
  testing::lay_out_hf(root.path(), "google/gemma-2b", commit, files, o);
  HfOptions pr;
  pr.refs = {};
  const fs::path other = testing::lay_out_hf(root.path(), "google/gemma-2b", other_commit, files, pr);
  HuggingFaceCache cache(root.path());
  CHECK(cache.locate(gemma, "v1.0").value().commit == commit);
  CHECK(cache.locate(gemma, "refs/pr/1").value().commit == commit);
  auto pinned = cache.locate(gemma, other_commit);  // no ref names it: found without reading refs/
  REQUIRE(pinned);
  CHECK(pinned.value().directory == other);
  CHECK(pinned.value().revision == other_commit);

  // The JS and Rust clients write refs with a newline; huggingface_hub does not.
  testing::write_file(root.path() / "models--google--gemma-2b/refs/main", other_commit + "\n");
  CHECK(cache.locate(gemma, "").value().directory == other);
}

TEST_CASE("huggingface: what is not there is a typed miss with every path looked at", "[huggingface]") {
  TempDir root;
  testing::lay_out_hf(root.path(), "google/gemma-2b", commit, files);
  HuggingFaceCache cache(root.path());

  auto absent = cache.locate(ModelId{"google", "gemma-7b"}, "");
  REQUIRE_FALSE(absent);
  CHECK(absent.error() == errc::not_cached);
  CHECK(verdict_for(absent.error(), root.path() / "models--google--gemma-7b") == "does not exist");

  auto branch = cache.locate(gemma, "v2");
  REQUIRE_FALSE(branch);
  CHECK(branch.error() == errc::revision_mismatch);
  CHECK(branch.error().revision == "v2");
  CHECK(branch.error().detail == "the cache does not know which commit 'v2' is (no refs/v2); it holds the commits " + commit);

  auto missing_snapshot = cache.locate(gemma, other_commit);
  REQUIRE_FALSE(missing_snapshot);
  CHECK(missing_snapshot.error() == errc::not_cached);
  CHECK(verdict_for(missing_snapshot.error(), root.path() / "models--google--gemma-2b/snapshots" / other_commit) ==
        "does not exist");

  auto traversal = cache.locate(gemma, "../../../etc/hostname");  // locate() called directly, not through a Resolver
  REQUIRE_FALSE(traversal);
  CHECK(traversal.error() == errc::invalid_revision);

  testing::write_file(root.path() / "models--google--gemma-2b/refs/main", "<html>captive portal</html>");
  auto garbage = cache.locate(gemma, "");
  REQUIRE_FALSE(garbage);
  CHECK(garbage.error() == errc::corrupt_metadata);
}

TEST_CASE("huggingface: leftovers of the client (.no_exist, .incomplete blobs, locks) change nothing", "[huggingface]") {
  TempDir root;
  const fs::path snapshot = testing::lay_out_hf(root.path(), "google/gemma-2b", commit, files);
  const fs::path repo = root.path() / "models--google--gemma-2b";
  testing::write_file(repo / ".no_exist" / commit / "generation_config.json", "");
  testing::write_file(repo / "blobs" / (testing::fake_etag(9) + ".1a2b3c4d.incomplete"), "part");
  testing::write_file(root.path() / ".locks/models--google--gemma-2b" / (testing::fake_etag(1) + ".lock"), "");
  testing::write_file(root.path() / "CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n");
  auto m = HuggingFaceCache(root.path()).locate(gemma, "");
  REQUIRE(m);
  check_files(m.value());
}

TEST_CASE("huggingface: a link out of the model's folder, or a tree listing '..', is not served", "[huggingface]") {
  TempDir root;
  TempDir elsewhere;
  testing::write_file(elsewhere.path() / "secret", "not a model file");
  const fs::path snapshot = testing::lay_out_hf(root.path(), "google/gemma-2b", commit, files);
  fs::create_symlink(elsewhere.path() / "secret", snapshot / "planted.json");
  auto file_link = HuggingFaceCache(root.path()).locate(gemma, "");
  REQUIRE_FALSE(file_link);
  CHECK(file_link.error() == errc::unsafe_metadata);
  fs::remove(snapshot / "planted.json");

  // Relative, as huggingface_hub writes its links, but climbing out: to the root, and to the folder itself.
  testing::write_file(root.path() / "secret", "not a model file");
  for (const char* target : {"../../../secret", "../..", "../../blobs/../../secret"}) {
    fs::create_symlink(target, snapshot / "planted.json");
    auto relative_link = HuggingFaceCache(root.path()).locate(gemma, "");
    INFO(target);
    REQUIRE_FALSE(relative_link);
    CHECK(relative_link.error() == errc::unsafe_metadata);
    fs::remove(snapshot / "planted.json");
  }
  // Out and back in by name is still inside.
  fs::create_symlink("../../../models--google--gemma-2b/snapshots/" + commit + "/config.json", snapshot / "again.json");
  CHECK(HuggingFaceCache(root.path()).locate(gemma, ""));
  fs::remove(snapshot / "again.json");

  fs::create_directory_symlink(elsewhere.path(), snapshot / "planted_dir");
  auto dir_link = HuggingFaceCache(root.path()).locate(gemma, "");
  REQUIRE_FALSE(dir_link);
  CHECK(dir_link.error() == errc::unsafe_metadata);
  fs::remove(snapshot / "planted_dir");

  testing::write_file(root.path() / "models--google--gemma-2b/trees" / (commit + ".json"),
                      "{\"format_version\": 1, \"files\": {\"../../../../secret\": {\"size\": 16, \"blob_id\": \"x\"}}}");
  auto tree = HuggingFaceCache(root.path()).locate(gemma, "");
  REQUIRE_FALSE(tree);
  CHECK(tree.error() == errc::unsafe_metadata);
}

TEST_CASE("huggingface: a link is shown inside by counting only when it plainly is", "[huggingface]") {
  using modelres::detail::huggingface::stays_inside_by_counting;
  const std::string inside = "/c/models--o--n/", file = inside + "snapshots/abc/f";
  CHECK(stays_inside_by_counting(inside, file, "../../blobs/x"));
  CHECK(stays_inside_by_counting(inside, file, "sub/../../../blobs/x"));
  CHECK(stays_inside_by_counting(inside, file, "./../../blobs//x"));
  CHECK(stays_inside_by_counting(inside, inside + "snapshots/abc/dir", "../../blobs"));
  // Not shown (the full check decides): climbing above, ending at the folder, absolute, or an unusual spelling.
  CHECK_FALSE(stays_inside_by_counting(inside, file, "../../../x"));
  CHECK_FALSE(stays_inside_by_counting(inside, file, "../.."));
  CHECK_FALSE(stays_inside_by_counting(inside, file, "../../../models--o--n/blobs/x"));
  CHECK_FALSE(stays_inside_by_counting(inside, file, "/c/models--o--n/blobs/x"));
  CHECK_FALSE(stays_inside_by_counting(inside, file, ""));
  CHECK_FALSE(stays_inside_by_counting(inside, "/c/./models--o--n/snapshots/abc/f", "../../blobs/x"));
  CHECK_FALSE(stays_inside_by_counting(inside, inside + "snapshots/../x/f", "blobs/x"));
  CHECK_FALSE(stays_inside_by_counting(inside, inside + "f", "blobs/x"));
}

TEST_CASE("huggingface: the root, read at each call, in huggingface_hub's order", "[huggingface]") {
  TempDir home;
  testing::ScopedEnv h("HOME", home.path().native());
  testing::ScopedEnv a("HF_HUB_CACHE", "");
  testing::ScopedEnv b("HUGGINGFACE_HUB_CACHE", "");
  testing::ScopedEnv c("HF_HOME", "");
  testing::ScopedEnv d("XDG_CACHE_HOME", "");
  testing::ScopedEnv e("MODELRES_TEST_DIR", "elsewhere");
  HuggingFaceCache cache;
  const std::string base = home.path().native();
  CHECK(cache.root().value() == base + "/.cache/huggingface/hub");
  ::setenv("XDG_CACHE_HOME", (base + "/xdg").c_str(), 1);
  CHECK(cache.root().value() == base + "/xdg/huggingface/hub");
  ::setenv("HF_HOME", "~/hf-home", 1);
  CHECK(cache.root().value() == base + "/hf-home/hub");
  ::setenv("HUGGINGFACE_HUB_CACHE", "$HOME/legacy", 1);
  CHECK(cache.root().value() == base + "/legacy");
  ::setenv("HF_HUB_CACHE", "${HOME}/$MODELRES_TEST_DIR/hub", 1);
  CHECK(cache.root().value() == base + "/elsewhere/hub");
  ::setenv("HF_HUB_CACHE", "/x/$MODELRES_UNSET_VARIABLE/hub", 1);  // left as written, as Python leaves it
  CHECK(cache.root().value() == "/x/$MODELRES_UNSET_VARIABLE/hub");
  CHECK(HuggingFaceCache("~/given").root().value() == base + "/given");
}

TEST_CASE("huggingface: the resolver serves ids from the cache and snapshot paths through inspect", "[huggingface]") {
  TempDir root;
  HfOptions o;
  o.tree = true;
  const fs::path snapshot = testing::lay_out_hf(root.path(), "google/gemma-2b", commit, files, o);
  Resolver<DefaultOfflinePolicy, HuggingFaceCache> resolver{HuggingFaceCache(root.path())};
  auto by_id = resolver.resolve("google/gemma-2b");
  REQUIRE(by_id);
  CHECK(by_id.value().directory == snapshot);
  auto by_path = resolver.resolve(snapshot.native());
  REQUIRE(by_path);
  CHECK(by_path.value().commit == commit);
  CHECK(by_path.value().completeness == Completeness::listed);
  ResolveOptions pinned;
  pinned.revision = "v9";
  auto wrong = resolver.resolve(snapshot.native(), pinned);
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error() == errc::revision_mismatch);
  pinned.revision = "main";
  CHECK(resolver.resolve(snapshot.native(), pinned));
}

TEST_CASE("huggingface: a lookup writes, creates, locks and moves nothing", "[huggingface]") {
  TempDir root;
  HfOptions o;
  o.tree = true;
  testing::lay_out_hf(root.path(), "google/gemma-2b", commit, files, o);
  const auto before = testing::tree_state(root.path());
  HuggingFaceCache cache(root.path());
  CHECK(cache.locate(gemma, ""));
  CHECK(cache.locate(gemma, "v2").error() == errc::revision_mismatch);
  CHECK(cache.locate(ModelId{"google", "gemma-7b"}, "").error() == errc::not_cached);
  CHECK(testing::tree_state(root.path()) == before);
}

}  // namespace huggingface_cache_test
