// LayeredCache offline: read-only roots consulted in order before the writable
// cache, each laid out as the Python clients lay them out, never written.
#include <modelres/caches/layered_cache.hpp>
#include <modelres/modelres.hpp>

#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"

using namespace modelres;
using testing::HfFile;
using testing::HfOptions;
using testing::TempDir;
namespace fs = std::filesystem;

namespace layered_cache_test {

const std::string unet_id = "iic/cv_unet_skin_retouching_torch";
const std::string commit = "0123456789abcdef0123456789abcdef01234567";
const std::vector<HfFile> gemma_files = {{"config.json", "{}"}, {"model.safetensors", std::string(300, 'w')}};

using HfLayered = LayeredCache<HuggingFaceCache>;
using MsLayered = LayeredCache<ModelScopeCache>;

result<ResolvedModel> hf_resolve(const std::vector<fs::path>& read_only, const fs::path& writable) {
  std::vector<HuggingFaceCache> roots;
  for (const auto& r : read_only) roots.emplace_back(r);
  return Resolver<LocalOnlyPolicy, HfLayered>(HfLayered(std::move(roots), HuggingFaceCache(writable))).resolve("google/gemma-2b");
}

result<ResolvedModel> ms_resolve(const std::vector<fs::path>& read_only, const fs::path& writable) {
  std::vector<ModelScopeCache> roots;
  for (const auto& r : read_only) roots.emplace_back(r);
  return Resolver<LocalOnlyPolicy, MsLayered>(MsLayered(std::move(roots), ModelScopeCache(writable))).resolve(unet_id);
}

TEST_CASE("layered: a model in a read-only root is served from it, which is left exactly as it was", "[layered]") {
  TempDir ro, rw;
  const fs::path snapshot = testing::lay_out_hf(ro.path(), "google/gemma-2b", commit, gemma_files, HfOptions{true, true});
  const auto before = testing::tree_state(ro.path());
  const fs::path absent = rw.path() / "not-created";
  auto m = hf_resolve({ro.path()}, absent);
  REQUIRE(m);
  CHECK(m.value().directory == snapshot);
  CHECK(m.value().completeness == Completeness::listed);
  CHECK(m.value().cache_root == ro.path());
  CHECK(m.value().from_read_only_root);
  CHECK(testing::tree_state(ro.path()) == before);
  CHECK_FALSE(fs::exists(absent));  // the writable cache is not even created

  // ModelScope, the layout the 1.23-1.37 client writes.
  TempDir ms_ro;
  const fs::path dir = testing::lay_out_classic(ms_ro.path() / "models/iic/cv_unet_skin_retouching_torch");
  const auto ms_before = testing::tree_state(ms_ro.path());
  auto ms = ms_resolve({ms_ro.path()}, absent);
  REQUIRE(ms);
  CHECK(ms.value().directory == dir);
  CHECK(ms.value().completeness == Completeness::verified);
  CHECK(ms.value().cache_root == ms_ro.path());
  CHECK(ms.value().from_read_only_root);
  CHECK(testing::tree_state(ms_ro.path()) == ms_before);
  CHECK_FALSE(fs::exists(absent));
}

TEST_CASE("layered: on a read-only mount (EROFS for any write) both caches serve from it", "[layered][mount]") {
  if (::geteuid() != 0) {
    WARN("needs root to bind-mount a directory read-only in a private mount namespace; CI runs as root");
    return;
  }
  TempDir ro, rw;
  testing::lay_out_hf(ro.path(), "google/gemma-2b", commit, gemma_files, HfOptions{true, true});
  testing::lay_out_classic(ro.path() / "models/iic/cv_unet_skin_retouching_torch");
  const int code = testing::run_with_read_only(ro.path(), [&] {
    // A write really fails here, so a lookup that tried one would not go unnoticed.
    if (::access(ro.path().c_str(), W_OK) == 0 || errno != EROFS) return 80;
    auto hf = hf_resolve({ro.path()}, rw.path());
    if (!hf || !hf.value().from_read_only_root || hf.value().completeness != Completeness::listed) return 81;
    auto ms = ms_resolve({ro.path()}, rw.path());
    if (!ms || !ms.value().from_read_only_root || ms.value().completeness != Completeness::verified) return 82;
    return 0;
  });
  CHECK(code == 0);
  CHECK(testing::files_below(rw.path()).empty());
}

TEST_CASE("layered: roots are consulted in order, and the writable cache last", "[layered]") {
  TempDir first, second, rw;
  const fs::path in_second = testing::lay_out_hf(second.path(), "google/gemma-2b", commit, gemma_files, HfOptions{true, true});
  const fs::path in_rw = testing::lay_out_hf(rw.path(), "google/gemma-2b", commit, gemma_files, HfOptions{true, true});
  auto m = hf_resolve({first.path(), second.path()}, rw.path());
  REQUIRE(m);
  CHECK(m.value().directory == in_second);
  CHECK(m.value().cache_root == second.path());

  const fs::path in_first = testing::lay_out_hf(first.path(), "google/gemma-2b", commit, gemma_files, HfOptions{true, true});
  m = hf_resolve({first.path(), second.path()}, rw.path());
  REQUIRE(m);
  CHECK(m.value().directory == in_first);

  m = hf_resolve({}, rw.path());
  REQUIRE(m);
  CHECK(m.value().directory == in_rw);
  CHECK(m.value().cache_root == rw.path());
  CHECK_FALSE(m.value().from_read_only_root);
}

TEST_CASE("layered: an incomplete copy in a read-only root is not served: the next root is asked", "[layered]") {
  TempDir ro, rw;
  testing::ClassicOptions partial;
  partial.skip_files = {"pytorch_model.pt"};
  testing::lay_out_classic(ro.path() / "models/iic/cv_unet_skin_retouching_torch", partial);

  SECTION("the writable cache holds it whole: served from there") {
    const fs::path whole = testing::lay_out_classic(rw.path() / "models/iic/cv_unet_skin_retouching_torch");
    auto m = ms_resolve({ro.path()}, rw.path());
    REQUIRE(m);
    CHECK(m.value().directory == whole);
    CHECK(m.value().cache_root == rw.path());
    CHECK_FALSE(m.value().from_read_only_root);
  }
  SECTION("nothing else holds it: incomplete, naming what every root looked at") {
    auto m = ms_resolve({ro.path()}, rw.path());
    REQUIRE_FALSE(m);
    CHECK(m.error() == errc::incomplete);
    CHECK(m.error().detail.find("pytorch_model.pt") != std::string::npos);
    bool saw_ro = false, saw_rw = false;
    for (const Probe& p : m.error().looked_at) {
      saw_ro = saw_ro || p.path.rfind(ro.path().native(), 0) == 0;
      saw_rw = saw_rw || p.path.rfind(rw.path().native(), 0) == 0;
    }
    CHECK(saw_ro);
    CHECK(saw_rw);
  }
  SECTION("no root holds anything: not_cached") {
    TempDir empty;
    auto m = ms_resolve({empty.path()}, rw.path());
    REQUIRE_FALSE(m);
    CHECK(m.error() == errc::not_cached);
  }
}

TEST_CASE("layered: MODELRES_READ_ONLY_CACHES names the roots, colon-separated, read at each call", "[layered]") {
  TempDir one, two, rw;
  const fs::path in_two = testing::lay_out_hf(two.path(), "google/gemma-2b", commit, gemma_files, HfOptions{true, true});
  Resolver<LocalOnlyPolicy, HfLayered> resolver{HfLayered(HuggingFaceCache(rw.path()))};
  {
    testing::ScopedEnv env("MODELRES_READ_ONLY_CACHES", one.str() + "::" + two.str() + ":");
    CHECK(read_only_roots_from_environment() == std::vector<fs::path>{one.path(), two.path()});
    auto m = resolver.resolve("google/gemma-2b");
    REQUIRE(m);
    CHECK(m.value().directory == in_two);
    CHECK(m.value().from_read_only_root);
  }
  {
    testing::ScopedEnv env("MODELRES_READ_ONLY_CACHES", "");
    auto m = resolver.resolve("google/gemma-2b");
    REQUIRE_FALSE(m);
    CHECK(m.error() == errc::not_cached);
  }
  // Roots given explicitly are exactly those: the environment is not read.
  testing::ScopedEnv env("MODELRES_READ_ONLY_CACHES", two.str());
  auto m = hf_resolve({}, rw.path());
  REQUIRE_FALSE(m);
  CHECK(m.error() == errc::not_cached);
}

}  // namespace layered_cache_test
