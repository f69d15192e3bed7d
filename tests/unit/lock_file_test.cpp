// Lock files offline: the format read back as written, hostile files refused
// with corrupt_metadata, and LocalOnly / Path resolves that serve only a copy
// matching the entry, on caches laid out as the Python clients lay them out.
#include <modelres/modelres.hpp>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"

using namespace modelres;
using testing::TempDir;
namespace fs = std::filesystem;

namespace lock_file_test {

const std::string unet_id = "iic/cv_unet_skin_retouching_torch";

// The unet fixture's entry as `modelres lock` writes it from ModelScope: per-file commits, sha256.
LockedModel unet_entry() {
  LockedModel m;
  m.reference = unet_id;
  m.hub = Hub::modelscope;
  m.id = unet_id;
  m.revision = "master";
  for (const auto& [path, content] : testing::unet().files) {
    HubFile f;
    f.path = path;
    f.size = content.size();
    f.sha256 = std::string(64, 'c');  // never compared here: the Python client records no hashes
    f.revision = path == "pytorch_model.pt" || path == "assets/weights/joint.pth" ? "7a1c2b3d4e5f60718293a4b5c6d7e8f901234567"
                                                                                 : "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9";
    m.files.push_back(std::move(f));
  }
  return m;
}

result<ResolvedModel> local_only(const fs::path& root, const LockedModel& entry) {
  ResolveOptions o;
  o.locked = entry;
  return Resolver<LocalOnlyPolicy, ModelScopeCache>(ModelScopeCache(root)).resolve(unet_id, o);
}

TEST_CASE("lock file: read back as written, non-ASCII paths and both hubs", "[lock]") {
  LockFile lock;
  lock.models.push_back(unet_entry());
  LockedModel hf;
  hf.reference = "hf.co/acme/tiny-bert";
  hf.hub = Hub::huggingface;
  hf.id = "acme/tiny-bert";
  hf.revision = "main";
  hf.commit = "5f0a3c8e2b1d4f6a7c9e0b2d4f6a8c0e2b4d6f8a";
  hf.files.push_back({"données/vocab \"1\".txt", 12, "", "", std::string(40, 'a'), ""});
  lock.models.push_back(hf);
  const std::string text = write_lock_file(lock);
  CHECK(text.find("\\u00e9") != std::string::npos);  // as Python's json.dump writes it
  auto back = parse_lock_file(text, "modelres.lock");
  REQUIRE(back);
  REQUIRE(back.value().models.size() == 2);
  const LockedModel* m = back.value().find(Hub::huggingface, "acme/tiny-bert");
  REQUIRE(m);
  CHECK(m->commit == hf.commit);
  CHECK(m->pinned_revision() == hf.commit);
  REQUIRE(m->files.size() == 1);
  CHECK(m->files[0].path == "données/vocab \"1\".txt");
  CHECK(m->files[0].git_oid == std::string(40, 'a'));
  const LockedModel* u = back.value().find(Hub::modelscope, unet_id);
  REQUIRE(u);
  CHECK(u->pinned_revision() == "master");
  CHECK(u->files.size() == 4);
  CHECK(u->files[2].revision == "7a1c2b3d4e5f60718293a4b5c6d7e8f901234567");
  CHECK(back.value().find(Hub::modelscope, "acme/tiny-bert") == nullptr);  // found by hub and id
  auto missing = back.value().entry(Hub::huggingface, "acme/other");
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == errc::not_in_lock);
  CHECK(missing.error().detail.find("huggingface acme/tiny-bert") != std::string::npos);  // says what it does lock
}

TEST_CASE("lock file: a hostile or broken file is corrupt_metadata, saying what is wrong", "[lock]") {
  const std::string sha(64, 'a');
  const auto file = [&](const std::string& files, const std::string& head = R"("hub": "modelscope", "id": "a/b", "revision": "master")") {
    return R"({"modelres_lock": 1, "models": [{)" + head + R"(, "files": [)" + files + "]}]}";
  };
  const std::pair<std::string, std::string> cases[] = {
      {"", "not JSON"},
      {R"({"modelres_lock": 2, "models": []})", "newer version"},
      {R"({"models": []})", "not a modelres lock file"},
      {R"({"modelres_lock": 1, "models": {}})", "\"models\" must be an array"},
      {file(R"({"path": "../../etc/passwd", "size": 1})"), "would leave the model directory"},
      {file(R"({"path": "/etc/passwd", "size": 1})"), "would leave the model directory"},
      {file(R"({"path": "a", "size": -1})"), "whole number"},
      {file(R"({"path": "a", "size": 1.5})"), "whole number"},
      {file(R"({"path": "a", "size": 1, "sha256": "ABC"})"), "bad sha256"},
      {file(R"({"path": "a", "size": 1, "git_oid": ")" + sha + R"("})"), "bad git_oid"},
      {file(R"({"path": "a", "size": 1}, {"path": "a", "size": 2})"), "listed twice"},
      {file("", R"("hub": "github", "id": "a/b", "revision": "main")"), "unknown hub"},
      {file("", R"("hub": "modelscope", "id": "../b", "revision": "main")"), "invalid model id"},
      {file("", R"("hub": "huggingface", "id": "a/b", "revision": "main", "commit": "main")"), "40 lower-case hex"},
      {file("", R"("hub": "modelscope", "id": "a/b", "revision": 7)"), "must be strings"},
      {R"({"modelres_lock": 1, "models": [{"hub": "ms", "id": "a/b", "revision": "v", "files": []},)"
       R"({"hub": "modelscope", "id": "a/b", "revision": "w", "files": []}]})",
       "locked twice"},
  };
  for (const auto& [text, why] : cases) {
    INFO(text);
    auto r = parse_lock_file(text, "modelres.lock");
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::corrupt_metadata);
    CHECK(r.error().detail.find("modelres.lock") == 0);
    CHECK(r.error().detail.find(why) != std::string::npos);
  }
  TempDir dir;
  auto absent = read_lock_file((dir.path() / "modelres.lock").native());
  REQUIRE_FALSE(absent);
  CHECK(absent.error() == errc::path_not_found);
}

TEST_CASE("lock file: LocalOnly serves a ModelScope copy the Python client wrote only while its files match the entry",
          "[lock]") {
  TempDir root;
  const fs::path dir = testing::lay_out_classic(root.path() / "models" / unet_id);
  const auto before = testing::tree_state(root.path());

  auto served = local_only(root.path(), unet_entry());  // proven by the per-file commits the .msc records
  REQUIRE(served);
  CHECK(served.value().directory == dir);

  LockedModel moved = unet_entry();
  moved.files[0].revision = "0000000000000000000000000000000000000000";
  auto other = local_only(root.path(), moved);
  REQUIRE_FALSE(other);
  CHECK(other.error() == errc::lock_mismatch);
  CHECK(other.error().detail.find("configuration.json (last changed by e45fcc") != std::string::npos);

  LockedModel bigger = unet_entry();
  bigger.files[2].size += 1;
  auto sized = local_only(root.path(), bigger);
  REQUIRE_FALSE(sized);
  CHECK(sized.error() == errc::lock_mismatch);
  CHECK(sized.error().detail.find("pytorch_model.pt (4096 bytes, locked 4097)") != std::string::npos);

  LockedModel more = unet_entry();
  more.files.push_back({"extra.bin", 3, std::string(64, 'b'), "", "", ""});
  auto lacking = local_only(root.path(), more);
  REQUIRE_FALSE(lacking);
  CHECK(lacking.error().detail.find("extra.bin (not in the copy)") != std::string::npos);

  LockedModel tagged = unet_entry();
  tagged.revision = "v1.0.3";  // the cache holds master
  auto tag = local_only(root.path(), tagged);
  REQUIRE_FALSE(tag);
  CHECK(tag.error() == errc::lock_mismatch);
  CHECK(tag.error().detail.find("holds master, the lock records v1.0.3") != std::string::npos);

  LockedModel someone_else = unet_entry();
  someone_else.id = "iic/other";
  auto wrong = local_only(root.path(), someone_else);
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error() == errc::not_in_lock);

  CHECK(testing::tree_state(root.path()) == before);  // nothing written, locked or touched
}

TEST_CASE("lock file: a copy with nothing recorded to compare is not served as locked", "[lock]") {
  TempDir root;
  // modelscope >= 1.38 writes no metadata: sizes alone prove nothing.
  testing::lay_out_snapshot(root.path(), "iic--cv_unet_skin_retouching_torch", "master");
  auto r = local_only(root.path(), unet_entry());
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::lock_mismatch);
  INFO(r.error().message());
  CHECK(r.error().detail.find("nothing recorded of it to compare with the lock") != std::string::npos);
}

TEST_CASE("lock file: HubRouter finds the entry by hub and id, and checks a directory by the model it holds", "[lock]") {
  TempDir root;
  const fs::path dir = testing::lay_out_classic(root.path() / "models" / unet_id);
  LockFile lock;
  lock.models.push_back(unet_entry());
  using Side = Resolver<DefaultOfflinePolicy, ModelScopeCache>;
  HubRouter<Side, Side> router(Side(ModelScopeCache(root.path())), Side(ModelScopeCache(root.path())), Hub::modelscope);
  auto by_id = router.resolve(unet_id, lock);
  REQUIRE(by_id);
  CHECK(by_id.value().directory == dir);
  auto by_path = router.resolve(dir.native(), lock);
  REQUIRE(by_path);
  CHECK(by_path.value().model_id == unet_id);
  auto other_hub = router.resolve("hf.co/" + unet_id, lock);
  REQUIRE_FALSE(other_hub);
  CHECK(other_hub.error() == errc::not_in_lock);

  lock.models[0].files[1].revision = "1111111111111111111111111111111111111111";
  auto changed = router.resolve(dir.native(), lock);
  REQUIRE_FALSE(changed);
  CHECK(changed.error() == errc::lock_mismatch);
  CHECK(changed.error().detail.find("README.md") != std::string::npos);
}

}  // namespace lock_file_test
