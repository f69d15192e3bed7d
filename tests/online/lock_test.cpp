// Lock files online, against the loopback hubs: `modelres lock` records what
// the hub says; a locked resolve fetches exactly that (on Hugging Face the
// locked commit, after main moved on), asks nothing once a verified copy
// matches, and refuses with lock_mismatch, writing nothing, when the hub's
// revision no longer holds the locked files (ModelScope serves no old commits).
#include <modelres/modelres.hpp>
#include <modelres/hubs/huggingface_hub.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>
#include <modelres/verify.hpp>

#include <nlohmann/json.hpp>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/hf_test_hub.hpp"
#include "../support/test_hub.hpp"

using namespace modelres;
using testing::HfTestHub;
using testing::TempDir;
namespace fs = std::filesystem;

namespace lock_test {

using HfOnline = OnlinePolicy<CurlTransport, HuggingFaceHub<CurlTransport>>;
using Quiet = testing::QuietHubEnvironment;

const std::string commit_a = "5f0a3c8e2b1d4f6a7c9e0b2d4f6a8c0e2b4d6f8a";
const std::string commit_b = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

// tiny-bert after a push that changed config.json: main is at commit B.
testing::HfHubModel pushed(testing::HfHubModel m) {
  m.commit = commit_b;
  m.refs = {"main"};
  for (auto& f : m.files)
    if (f.path == "config.json") f.content = R"({"architectures": ["BertModel"], "hidden_size": 128})";
  return m;
}

Resolver<HfOnline, HuggingFaceCache> hf_resolver(const fs::path& cache, const HfTestHub& hub) {
  HfOnline::Options o;
  o.hub.endpoint = hub.endpoint();
  return Resolver<HfOnline, HuggingFaceCache>{HuggingFaceCache(cache), HfOnline(o)};
}

std::size_t requests(HfTestHub& hub) { return hub.hub().requests().size() + hub.cdn().requests().size(); }

TEST_CASE("lock: an entry from the Hugging Face hub pins the commit, and a locked resolve fetches it after main moved",
          "[online][lock]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();

  // What `modelres lock` asks the hub, as an entry.
  HuggingFaceHubOptions ho;
  ho.endpoint = hub.endpoint();
  HuggingFaceHub<CurlTransport> api(CurlTransport(), ho);
  auto snap = api.snapshot(ModelId::parse("acme/tiny-bert").value(), "");
  INFO((snap ? std::string() : snap.error().message()));
  REQUIRE(snap);
  LockedModel entry;
  entry.hub = Hub::huggingface;
  entry.id = "acme/tiny-bert";
  entry.revision = "main";
  entry.commit = snap.value().commit;
  entry.files = snap.value().files;
  CHECK(entry.commit == commit_a);

  hub.add(pushed(model));  // main moves on
  TempDir cache;
  auto resolver = hf_resolver(cache.path(), hub);
  ResolveOptions locked;
  locked.locked = entry;
  auto r = resolver.resolve("acme/tiny-bert", locked);
  REQUIRE(r);
  CHECK(r.value().commit == commit_a);
  CHECK(r.value().directory.filename() == commit_a);
  CHECK(testing::read_text(r.value().directory / "config.json") == model.files[1].content);

  // A verified copy that matches: nothing asked at all.
  const std::size_t asked = requests(hub);
  auto again = resolver.resolve("acme/tiny-bert", locked);
  REQUIRE(again);
  CHECK(again.value().directory == r.value().directory);
  CHECK(again.value().hub_check == HubCheck::not_asked);
  CHECK(requests(hub) == asked);

  // Unlocked, main is B; locked, offline, still A (the cache holds both).
  auto latest = resolver.resolve("acme/tiny-bert");
  REQUIRE(latest);
  CHECK(latest.value().commit == commit_b);
  auto offline = Resolver<LocalOnlyPolicy, HuggingFaceCache>(HuggingFaceCache(cache.path())).resolve("acme/tiny-bert", locked);
  REQUIRE(offline);
  CHECK(offline.value().commit == commit_a);

  // A cache holding only B is not the locked model.
  TempDir only_b;
  REQUIRE(hf_resolver(only_b.path(), hub).resolve("acme/tiny-bert"));
  auto other = Resolver<LocalOnlyPolicy, HuggingFaceCache>(HuggingFaceCache(only_b.path())).resolve("acme/tiny-bert", locked);
  REQUIRE_FALSE(other);
  CHECK(other.error() == errc::lock_mismatch);
  CHECK(other.error().detail.find("holds " + commit_b + ", the lock records " + commit_a) != std::string::npos);
}

TEST_CASE("lock: a copy huggingface_hub wrote is served as locked by its blob names, and not when they differ",
          "[online][lock]") {
  Quiet quiet;
  const auto model = testing::tiny_bert_on_hub();
  LockedModel entry;
  entry.hub = Hub::huggingface;
  entry.id = model.id;
  entry.revision = "main";
  entry.commit = model.commit;
  for (const auto& f : model.files)
    entry.files.push_back({f.path, f.content.size(), f.lfs ? testing::sha256_hex(f.content) : "", "",
                           f.lfs ? testing::git_blob_oid(testing::lfs_pointer(f.content)) : testing::git_blob_oid(f.content), ""});
  for (const bool tree : {true, false}) {
    INFO("trees/<commit>.json written: " << tree);
    TempDir cache;
    testing::lay_out_as_python(cache.path(), model, /*symlinks=*/true, tree);
    ResolveOptions o;
    o.locked = entry;
    using Offline = Resolver<LocalOnlyPolicy, HuggingFaceCache>;
    auto r = Offline(HuggingFaceCache(cache.path())).resolve(model.id, o);
    REQUIRE(r);
    CHECK(r.value().commit == model.commit);
    o.locked->files[3].sha256 = testing::sha256_hex("other weights");
    auto changed = Offline(HuggingFaceCache(cache.path())).resolve(model.id, o);
    REQUIRE_FALSE(changed);
    CHECK(changed.error() == errc::lock_mismatch);
    CHECK(changed.error().detail.find("model.safetensors (sha256 ") != std::string::npos);
  }
}

TEST_CASE("lock: ModelScope: the lock's files are fetched, a match asks nothing, and a moved master is lock_mismatch",
          "[online][lock]") {
  Quiet quiet;
  testing::TestHub hub;
  auto model = testing::unet_on_hub();
  hub.add(model);
  hub.start();
  OnlineOptions o;
  o.hub.endpoint = hub.endpoint();
  ModelScopeHub<CurlTransport> api(CurlTransport(), o.hub);
  auto snap = api.snapshot(ModelId::parse(model.id).value(), "");
  REQUIRE(snap);
  LockedModel entry;
  entry.id = model.id;
  entry.revision = "master";
  entry.files = snap.value().files;
  ResolveOptions locked;
  locked.locked = entry;

  TempDir cache;
  Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache> resolver{ModelScopeCache(cache.path()), OnlinePolicy<CurlTransport>(o)};
  auto r = resolver.resolve(model.id, locked);
  REQUIRE(r);
  CHECK(r.value().completeness == Completeness::verified);
  const std::size_t asked = hub.server().requests().size();
  REQUIRE(resolver.resolve(model.id, locked));
  CHECK(hub.server().requests().size() == asked);

  // master moves: configuration.json changes.
  model.files[0].content = R"({"framework": "pytorch", "task": "image-portrait-enhancement"})";
  hub.add(model);
  // The verified copy is still the locked model, and is served without asking.
  auto kept = resolver.resolve(model.id, locked);
  REQUIRE(kept);
  CHECK(testing::read_text(kept.value().directory / "configuration.json") == R"({"framework": "pytorch", "task": "skin-retouching"})");
  // A cache without it cannot get the locked bytes from the hub any more: refused, nothing written.
  TempDir fresh;
  Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache> elsewhere{ModelScopeCache(fresh.path()), OnlinePolicy<CurlTransport>(o)};
  auto moved = elsewhere.resolve(model.id, locked);
  REQUIRE_FALSE(moved);
  INFO(moved.error().message());
  CHECK(moved.error() == errc::lock_mismatch);
  CHECK(moved.error().detail.find("the hub's master differs from the lock: configuration.json (") != std::string::npos);
  CHECK(testing::files_below(fresh.path()).empty());
}

#ifdef MODELRES_CLI
TEST_CASE("lock: `modelres lock`, then `resolve --locked`, `download --locked` and `verify --locked`", "[online][lock][cli]") {
  Quiet quiet;
  HfTestHub hf;
  const auto bert = testing::tiny_bert_on_hub();
  hf.add(bert);
  hf.start();
  testing::TestHub ms;
  const auto unet = testing::unet_on_hub();
  ms.add(unet);
  ms.start();
  TempDir work, cache, ms_cache;
  const std::string lock_path = (work.path() / "modelres.lock").native();
  const std::map<std::string, std::string> env{{"MODELRES_HUB", ""},          {"HF_HUB_CACHE", cache.str()},
                                               {"HF_ENDPOINT", hf.endpoint()}, {"MODELSCOPE_CACHE", ms_cache.str()},
                                               {"MODELSCOPE_ENDPOINT", ms.endpoint()}};
  auto made = testing::run_command({MODELRES_CLI, "lock", "hf.co/acme/tiny-bert", unet.id, "-o", lock_path}, env);
  INFO(made.err);
  REQUIRE(made.status == 0);
  CHECK(made.out.empty());
  CHECK(made.err.find("locked  acme/tiny-bert  main at " + commit_a + "  4 files") != std::string::npos);

  const auto lock = nlohmann::json::parse(testing::read_text(lock_path));
  CHECK(lock["modelres_lock"] == 1);
  REQUIRE(lock["models"].size() == 2);
  const auto& b = lock["models"][0];
  CHECK(b["reference"] == "hf.co/acme/tiny-bert");
  CHECK(b["hub"] == "huggingface");
  CHECK(b["id"] == "acme/tiny-bert");
  CHECK(b["revision"] == "main");
  CHECK(b["commit"] == commit_a);
  REQUIRE(b["files"].size() == bert.files.size());
  for (const auto& f : b["files"]) {
    const auto& spec = *std::find_if(bert.files.begin(), bert.files.end(), [&](const auto& s) { return s.path == f["path"]; });
    CHECK(f["size"] == spec.content.size());
    if (spec.lfs)
      CHECK(f["sha256"] == testing::sha256_hex(spec.content));
    else
      CHECK(f["git_oid"] == testing::git_blob_oid(spec.content));
  }
  const auto& u = lock["models"][1];
  CHECK(u["hub"] == "modelscope");
  CHECK(u.count("commit") == 0);
  for (const auto& f : u["files"]) {
    CHECK(f["sha256"].get<std::string>().size() == 64);
    CHECK(f["revision"].get<std::string>().size() == 40);
  }

  // Every model of the lock, without naming them.
  auto d = testing::run_command({MODELRES_CLI, "download", "--locked", lock_path}, env);
  REQUIRE(d.status == 0);
  auto r = testing::run_command({MODELRES_CLI, "resolve", "hf.co/acme/tiny-bert", "--locked", lock_path, "--local-only", "--json"}, env);
  REQUIRE(r.status == 0);
  CHECK(nlohmann::json::parse(r.out)["commit"] == commit_a);

  auto stranger = testing::run_command({MODELRES_CLI, "resolve", "hf.co/acme/other", "--locked", lock_path, "--json"}, env);
  CHECK(stranger.status == 13);
  CHECK(nlohmann::json::parse(stranger.out)["error"]["code"] == "not_in_lock");
  auto both = testing::run_command({MODELRES_CLI, "resolve", "hf.co/acme/tiny-bert", "--locked", lock_path, "--revision", "v1.0"}, env);
  CHECK(both.status == 2);  // a lock names the revision

  auto v = testing::run_command({MODELRES_CLI, "verify", "--locked", lock_path}, env);
  CHECK(v.status == 0);
  CHECK(v.out.find("ok  acme/tiny-bert  4 of 4 files matched") != std::string::npos);
  CHECK(v.out.find("ok  " + unet.id + "  4 of 4 files matched") != std::string::npos);
  // A byte flipped in a blob: named, exit 12.
  const fs::path config = fs::path(nlohmann::json::parse(r.out)["directory"].get<std::string>()) / "config.json";
  std::string bytes = testing::read_text(config);
  bytes[2] ^= 1;
  const fs::path blob = fs::canonical(config);
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  testing::write_file(blob, bytes);
  auto bad = testing::run_command({MODELRES_CLI, "verify", "hf.co/acme/tiny-bert", "--locked", lock_path}, env);
  CHECK(bad.status == 12);
  CHECK(bad.err.find("config.json does not match") != std::string::npos);

  // --include: the lock holds what was chosen, and a locked download fetches only that.
  const std::string json_only = (work.path() / "json-only.lock").native();
  REQUIRE(testing::run_command({MODELRES_CLI, "lock", "hf.co/acme/tiny-bert", "--include", "*.json", "-o", json_only}, env).status == 0);
  CHECK(nlohmann::json::parse(testing::read_text(json_only))["models"][0]["files"].size() == 1);
  TempDir other_cache;
  auto env2 = env;
  env2["HF_HUB_CACHE"] = other_cache.str();
  const std::size_t cdn = hf.cdn().requests().size();
  REQUIRE(testing::run_command({MODELRES_CLI, "download", "--locked", json_only}, env2).status == 0);
  CHECK(hf.cdn().requests().size() == cdn);  // the LFS weights were not fetched
}
#endif

}  // namespace lock_test
