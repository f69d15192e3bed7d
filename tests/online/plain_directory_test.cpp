// PlainDirectoryCache: a model downloaded as a plain directory (files and
// modelres's manifest, no hub layout), read back by either cache's path
// resolve and by verify(); `modelres download --to`.
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
using testing::ScopedEnv;
using testing::TempDir;
namespace fs = std::filesystem;

namespace plain_directory_test {

const std::string bert_id = "acme/tiny-bert";
using HfOnline = OnlinePolicy<CurlTransport, HuggingFaceHub<CurlTransport>>;

using Quiet = testing::QuietHubEnvironment;

template <class Cache>
result<ResolvedModel> resolve_path(const fs::path& dir) {
  return Resolver<DefaultOfflinePolicy, Cache>().resolve(dir.native());
}

TEST_CASE("plain directory: the model's files and a manifest, no hub layout, read back verified by either cache",
          "[online][plain]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir out;
  const fs::path dir = out.path() / "bert";
  HfOnline::Options o;
  o.hub.endpoint = hub.endpoint();
  Resolver<HfOnline, PlainDirectoryCache> baker{PlainDirectoryCache(dir), HfOnline(o)};
  auto baked = baker.resolve(bert_id);
  REQUIRE(baked);
  CHECK(baked.value().directory == dir);
  CHECK(baked.value().completeness == Completeness::verified);
  std::vector<std::string> expected{".modelres", ".modelres.lock"};
  for (const auto& f : model.files) {
    CHECK(testing::read_text(dir / f.path) == f.content);
    CHECK_FALSE(fs::is_symlink(dir / f.path));
    expected.push_back(f.path);
  }
  std::sort(expected.begin(), expected.end());
  CHECK(testing::files_below(dir) == expected);  // no blobs/, refs/, snapshots/, partial directory

  for (auto m : {resolve_path<HuggingFaceCache>(dir), resolve_path<ModelScopeCache>(dir)}) {
    REQUIRE(m);
    CHECK(m.value().completeness == Completeness::verified);
    CHECK(m.value().model_id == bert_id);
    CHECK(m.value().files.size() == model.files.size());
  }
  auto v = verify(HuggingFaceCache(), resolve_path<HuggingFaceCache>(dir).value());
  CHECK(v.passed());
  CHECK(v.count(FileState::matched) == model.files.size());

  // Again: current, nothing fetched.
  const std::size_t cdn = hub.cdn().requests().size();
  auto again = baker.resolve(bert_id);
  REQUIRE(again);
  CHECK(again.value().hub_check == HubCheck::current);
  CHECK(hub.cdn().requests().size() == cdn);

  // A file that lost bytes is not served verified; without the manifest nothing vouches.
  testing::write_file(dir / "config.json", "{}");
  auto shrunk = resolve_path<HuggingFaceCache>(dir);
  REQUIRE_FALSE(shrunk);
  CHECK(shrunk.error() == errc::incomplete);
  fs::remove(dir / ".modelres");
  auto bare = resolve_path<HuggingFaceCache>(dir);
  REQUIRE(bare);
  CHECK(bare.value().completeness == Completeness::unknown);
}

TEST_CASE("plain directory: a hub listing the manifest's own name is refused before any file is fetched",
          "[online][plain]") {
  Quiet quiet;
  testing::TestHub hub;
  auto model = testing::unet_on_hub();
  model.files.push_back({".modelres", "{}", "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9", nullptr});
  hub.add(model);
  hub.start();
  TempDir out;
  OnlineOptions o;
  o.hub.endpoint = hub.endpoint();
  auto r = Resolver<OnlinePolicy<CurlTransport>, PlainDirectoryCache>(PlainDirectoryCache(out.path() / "unet"),
                                                                    OnlinePolicy<CurlTransport>(o))
               .resolve(model.id);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::unsafe_file_list);
  CHECK(testing::files_below(out.path()) == std::vector<std::string>{"unet/.modelres.lock"});  // taken before the plan
  for (const auto& req : hub.server().requests()) CHECK(req.params.count("FilePath") == 0);  // no file fetched
}

// ModelScope lists some files with Size 0 (unknown): a copy of any length is
// on disk, in a plain directory as in ModelScope's cache, so a second run fetches nothing.
TEST_CASE("plain directory: a file the hub lists with size 0 is kept at the size that arrived, and not downloaded again", "[online][plain]") {
  Quiet quiet;
  testing::TestHub hub;
  const auto model = testing::unet_on_hub();
  hub.add(model);
  hub.list_size("configuration.json", 0);
  hub.start();
  TempDir out, cache;
  OnlineOptions o;
  o.hub.endpoint = hub.endpoint();
  const auto fetched = [&] {
    std::size_t n = 0;
    for (const auto& req : hub.server().requests()) n += req.params.count("FilePath");
    return n;
  };
  const std::string config = model.files[0].content;
  const auto twice = [&](auto resolver) {
    const std::size_t before = fetched();
    auto first = resolver.resolve(model.id);
    REQUIRE(first);
    CHECK(testing::read_text(fs::path(first.value().directory) / "configuration.json") == config);
    CHECK(fetched() == before + model.files.size());
    auto second = resolver.resolve(model.id);
    REQUIRE(second);
    CHECK(second.value().hub_check == HubCheck::current);
    CHECK(fetched() == before + model.files.size());
    for (const auto& m : {first.value(), second.value()})
      for (const auto& f : m.files)
        if (f.path == "configuration.json") CHECK(f.size == config.size());  // the size that arrived
    auto offline = resolve_path<ModelScopeCache>(first.value().directory);
    REQUIRE(offline);
    CHECK(offline.value().completeness == Completeness::verified);
    // Shortened after the download: the manifest recorded the size that arrived, so this is no longer served.
    const fs::path shortened = fs::path(first.value().directory) / "configuration.json";
    testing::write_file(shortened, "{}");
    auto short_offline = resolve_path<ModelScopeCache>(first.value().directory);
    REQUIRE_FALSE(short_offline);
    CHECK(short_offline.error() == errc::incomplete);
    auto mended = resolver.resolve(model.id);
    REQUIRE(mended);
    CHECK(testing::read_text(shortened) == config);
    CHECK(fetched() == before + model.files.size() + 1);
  };
  twice(Resolver<OnlinePolicy<CurlTransport>, PlainDirectoryCache>{PlainDirectoryCache(out.path() / "unet"),
                                                                   OnlinePolicy<CurlTransport>(o)});
  twice(Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache>{ModelScopeCache(cache.path()), OnlinePolicy<CurlTransport>(o)});
}

#ifdef MODELRES_CLI
TEST_CASE("plain directory: `modelres download --to DIR`, then `resolve DIR` and `verify DIR`", "[online][plain][cli]") {
  Quiet quiet;
  HfTestHub hub;
  hub.add(testing::tiny_bert_on_hub());
  hub.start();
  TempDir out, cache;
  const fs::path dir = out.path() / "bert";
  const std::map<std::string, std::string> env{{"MODELRES_HUB", ""}, {"HF_HUB_CACHE", cache.str()}};
  auto d = testing::run_command({MODELRES_CLI, "download", "hf.co/acme/tiny-bert", "--to", dir.native(), "--endpoint", hub.endpoint()},
                                env);
  REQUIRE(d.status == 0);
  CHECK(d.out == dir.native() + "\n");
  CHECK(testing::files_below(cache.path()).empty());  // the cache is not touched

  auto r = testing::run_command({MODELRES_CLI, "resolve", dir.native(), "--hub", "hf", "--json"}, env);
  REQUIRE(r.status == 0);
  CHECK(nlohmann::json::parse(r.out)["completeness"] == "verified");
  auto v = testing::run_command({MODELRES_CLI, "verify", dir.native(), "--hub", "hf"}, env);
  CHECK(v.status == 0);
  CHECK(v.out.rfind("ok  acme/tiny-bert  4 of 4 files matched", 0) == 0);

  auto two = testing::run_command({MODELRES_CLI, "download", "a/b", "c/d", "--to", dir.native()}, env);
  CHECK(two.status == 2);
}
#endif

}  // namespace plain_directory_test
