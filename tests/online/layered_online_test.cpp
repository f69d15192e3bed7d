// OnlinePolicy over a LayeredCache: the test hubs on 127.0.0.1, read-only
// roots filled as modelres or the Python clients fill them, and a writable
// cache that receives only what no root holds.
#include <modelres/modelres.hpp>
#include <modelres/hubs/huggingface_hub.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <unistd.h>

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

namespace layered_online_test {

const std::string bert_id = "acme/tiny-bert";
const std::string unet_id = "iic/cv_unet_skin_retouching_torch";
using HfOnline = OnlinePolicy<CurlTransport, HuggingFaceHub<CurlTransport>>;
using HfLayered = LayeredCache<HuggingFaceCache>;
using MsLayered = LayeredCache<ModelScopeCache>;

using Quiet = testing::QuietHubEnvironment;

HfOnline::Options hf_options(const HfTestHub& hub) {
  HfOnline::Options o;
  o.hub.endpoint = hub.endpoint();
  o.fetch.backoff = std::chrono::milliseconds(5);
  o.fetch.max_attempts = 2;
  return o;
}

result<ResolvedModel> hf_layered(const HfTestHub& hub, const fs::path& read_only, const fs::path& writable) {
  return Resolver<HfOnline, HfLayered>(HfLayered({HuggingFaceCache(read_only)}, HuggingFaceCache(writable)),
                                       HfOnline(hf_options(hub)))
      .resolve(bert_id);
}

// Fills `root` the way an ordinary online resolve does (our manifest included).
void hf_download(const HfTestHub& hub, const fs::path& root) {
  REQUIRE(Resolver<HfOnline, HuggingFaceCache>(HuggingFaceCache(root), HfOnline(hf_options(hub))).resolve(bert_id));
}

std::size_t file_requests(HfTestHub& hub) {
  std::size_t n = hub.cdn().requests().size();
  for (const auto& r : hub.hub().requests()) n += r.path.find("/resolve/") != std::string::npos;
  return n;
}

// The hub's model as the classic ModelScope client leaves it: the files, .msc
// recording each at its commit, .mdl and .mv.
void lay_out_ms_as_python(const fs::path& dir, const testing::HubModelSpec& model) {
  std::vector<detail::pickle::StringDict> records;
  for (const auto& f : model.files) {
    testing::write_file(dir / f.path, f.content);
    records.push_back({{"Path", f.path}, {"Revision", f.revision}});
  }
  testing::write_file(dir / ".msc", detail::pickle::Writer::list_of_dicts(records));
  testing::write_file(dir / ".mdl", detail::pickle::Writer::dict_only({{"id", model.id}}));
  testing::write_file(dir / ".mv", "Revision:master,CreatedAt:1713419382");
}

TEST_CASE("layered online: a read-only root holding the snapshot answers with one request, nothing written anywhere",
          "[online][layered]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  for (const bool python_wrote_it : {false, true}) {
    INFO((python_wrote_it ? "filled by huggingface_hub" : "filled by modelres"));
    TempDir ro, rw;
    if (python_wrote_it)
      testing::lay_out_as_python(ro.path(), model);
    else
      hf_download(hub, ro.path());
    const auto before = testing::tree_state(ro.path());
    const std::size_t requests = hub.hub().requests().size(), files = file_requests(hub);
    const fs::path writable = rw.path() / "cache";

    auto m = hf_layered(hub, ro.path(), writable);
    REQUIRE(m);
    CHECK(m.value().directory == ro.path() / "models--acme--tiny-bert/snapshots" / model.commit);
    CHECK(m.value().hub_check == HubCheck::current);
    CHECK(m.value().from_read_only_root);
    CHECK(m.value().cache_root == ro.path());
    CHECK(m.value().commit == model.commit);
    CHECK(m.value().revision == "main");
    CHECK(m.value().model_id == bert_id);
    // The revision request alone; what the root holds is hashed, not fetched (huggingface_hub's copy
    // has no manifest of ours and cannot be given one).
    CHECK(hub.hub().requests().size() - requests == 1);
    CHECK(file_requests(hub) == files);
    CHECK(testing::tree_state(ro.path()) == before);
    CHECK_FALSE(fs::exists(writable));  // no lock, no directory: nothing was written
  }
}

TEST_CASE("layered online: what no root holds whole is downloaded into the writable cache only", "[online][layered]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir ro, rw;
  testing::lay_out_as_python(ro.path(), model);
  // The weights' blob is damaged in the root: the root does not hold the snapshot.
  for (const auto& f : model.files)
    if (f.lfs) testing::write_file(ro.path() / "models--acme--tiny-bert/blobs" / testing::hf_etag(f), "damaged");
  const auto before = testing::tree_state(ro.path());
  auto m = hf_layered(hub, ro.path(), rw.path());
  REQUIRE(m);
  CHECK(m.value().directory == rw.path() / "models--acme--tiny-bert/snapshots" / model.commit);
  CHECK_FALSE(m.value().from_read_only_root);
  CHECK(m.value().cache_root == rw.path());
  CHECK(m.value().completeness == Completeness::verified);
  CHECK(testing::tree_state(ro.path()) == before);
  for (const auto& f : model.files) CHECK(testing::read_text(m.value().directory / f.path) == f.content);

  // Offline afterwards, through the same layers: the root's copy is still refused (its tree
  // lists a size the damaged blob lacks), the writable cache's served.
  auto offline = Resolver<LocalOnlyPolicy, HfLayered>(HfLayered({HuggingFaceCache(ro.path())}, HuggingFaceCache(rw.path())))
                     .resolve(bert_id);
  REQUIRE(offline);
  CHECK(offline.value().directory == m.value().directory);
}

TEST_CASE("layered online: on a read-only mount (EROFS) the root serves, the hub is asked, nothing fails to write",
          "[online][layered][mount]") {
  if (::geteuid() != 0) {
    WARN("needs root to bind-mount a directory read-only in a private mount namespace; CI runs as root");
    return;
  }
  Quiet quiet;
  TempDir ro, rw;
  // The hubs start in the children: forking while their threads run could leave a child a lock one held.
  {
    const int filled = testing::run_in_mount_namespace([&] {
      HfTestHub hub;
      hub.add(testing::tiny_bert_on_hub());
      hub.start();
      return Resolver<HfOnline, HuggingFaceCache>(HuggingFaceCache(ro.path()), HfOnline(hf_options(hub))).resolve(bert_id) ? 0 : 1;
    });
    REQUIRE(filled == 0);
    lay_out_ms_as_python(ro.path() / "models/iic/cv_unet_skin_retouching_torch", testing::unet_on_hub());
  }
  const int code = testing::run_with_read_only(ro.path(), [&] {
    if (::access(ro.path().c_str(), W_OK) == 0 || errno != EROFS) return 80;
    HfTestHub hub;
    hub.add(testing::tiny_bert_on_hub());
    hub.start();
    auto hf = hf_layered(hub, ro.path(), rw.path() / "hf");
    if (!hf || !hf.value().from_read_only_root || hf.value().hub_check != HubCheck::current) return 81;
    if (hub.cdn().requests().size() != 0) return 82;

    testing::TestHub ms_hub;
    ms_hub.add(testing::unet_on_hub());
    ms_hub.start();
    OnlineOptions o;
    o.hub.endpoint = ms_hub.endpoint();
    auto ms = Resolver<OnlinePolicy<CurlTransport>, MsLayered>(MsLayered({ModelScopeCache(ro.path())}, ModelScopeCache(rw.path() / "ms")),
                                                               OnlinePolicy<CurlTransport>(o))
                  .resolve(unet_id);
    // The client's .msc at the files' commits: hashed in place against the listed sha256, then served.
    if (!ms || !ms.value().from_read_only_root || ms.value().hub_check != HubCheck::current) return 83;
    for (const auto& r : ms_hub.server().requests())
      if (r.params.count("FilePath")) return 84;
    return 0;
  });
  CHECK(code == 0);
  CHECK(testing::files_below(rw.path()).empty());
}

}  // namespace layered_online_test
