// References that name their hub, and HubRouter sending each to its hub's resolver.
#include <modelres/modelres.hpp>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"

using namespace modelres;
using testing::TempDir;
namespace fs = std::filesystem;

namespace hub_router_test {

using ModelScopeSide = Resolver<DefaultOfflinePolicy, ModelScopeCache>;
using HuggingFaceSide = Resolver<DefaultOfflinePolicy, HuggingFaceCache>;
using Router = HubRouter<ModelScopeSide, HuggingFaceSide>;

const std::string commit = "0123456789abcdef0123456789abcdef01234567";

Router router(const TempDir& ms, const TempDir& hf, std::optional<Hub> default_hub = std::nullopt) {
  return Router(ModelScopeSide(ModelScopeCache(ms.path())), HuggingFaceSide(HuggingFaceCache(hf.path())), default_hub);
}

TEST_CASE("hub prefixes: the ollama spelling, and URLs pasted from a browser", "[router]") {
  const auto check = [](std::string_view ref, bool named, Hub hub, std::string_view id) {
    INFO(ref);
    const HubPrefixed p = split_hub_prefix(ref);
    CHECK(p.named == named);
    if (named) CHECK(p.hub == hub);
    CHECK(p.id == id);
  };
  check("hf.co/google/gemma-2b", true, Hub::huggingface, "google/gemma-2b");
  check("huggingface.co/google/gemma-2b", true, Hub::huggingface, "google/gemma-2b");
  check("https://huggingface.co/google/gemma-2b", true, Hub::huggingface, "google/gemma-2b");
  check("https://www.modelscope.cn/iic/unet", true, Hub::modelscope, "iic/unet");
  check("modelscope.cn/iic/unet", true, Hub::modelscope, "iic/unet");
  check("google/gemma-2b", false, Hub::modelscope, "google/gemma-2b");
  check("./hf.co/google/gemma-2b", false, Hub::modelscope, "./hf.co/google/gemma-2b");  // a path stays a path
  check("/models/hf.co/x", false, Hub::modelscope, "/models/hf.co/x");
  check("hf.com/google/gemma-2b", false, Hub::modelscope, "hf.com/google/gemma-2b");
  Hub h;
  CHECK((parse_hub_name("hf", h) && h == Hub::huggingface));
  CHECK((parse_hub_name("modelscope", h) && h == Hub::modelscope));
  CHECK_FALSE(parse_hub_name("HuggingFace", h));
}

TEST_CASE("router: each reference goes to its hub's cache, bare ids to the default hub", "[router]") {
  TempDir ms, hf;
  const fs::path unet = testing::lay_out_classic(ms.path() / "models/iic/cv_unet_skin_retouching_torch");
  const fs::path gemma = testing::lay_out_hf(hf.path(), "google/gemma-2b", commit, {{"config.json", "{}"}});
  testing::ScopedEnv env("MODELRES_HUB", "");
  auto r = router(ms, hf);
  CHECK(r.resolve("hf.co/google/gemma-2b").value().directory == gemma);
  CHECK(r.resolve("modelscope.cn/iic/cv_unet_skin_retouching_torch").value().directory == unet);
  CHECK(r.resolve("iic/cv_unet_skin_retouching_torch").value().directory == unet);  // ModelScope by default
  auto miss = r.resolve("google/gemma-2b");  // a bare id is not looked for on the other hub
  REQUIRE_FALSE(miss);
  CHECK(miss.error() == errc::not_cached);

  ::setenv("MODELRES_HUB", "huggingface", 1);  // read at each call
  CHECK(r.resolve("google/gemma-2b").value().directory == gemma);
  CHECK(r.resolve(gemma.native()).value().commit == commit);  // a path: the default hub's cache reads it

  ::setenv("MODELRES_HUB", "gitlab", 1);
  auto bad = r.resolve("google/gemma-2b");
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == errc::unsupported_reference);
  CHECK(bad.error().detail == "MODELRES_HUB=gitlab: expected huggingface (hf) or modelscope (ms)");
  CHECK(r.resolve("hf.co/google/gemma-2b"));  // a named hub needs no default

  // A default given to the router wins over the environment.
  CHECK(router(ms, hf, Hub::modelscope).resolve("iic/cv_unet_skin_retouching_torch").value().directory == unet);
}

}  // namespace hub_router_test
