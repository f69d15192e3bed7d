// The demo: the scenario modelres exists for, end to end, on this machine.
//
// 1. An embedded ModelScope hub on 127.0.0.1 serves a small generated model.
// 2. OnlinePolicy resolves it: asks the hub, downloads (progress bar), verifies.
// 3. The hub goes away. The same call still resolves, and says the copy is unchecked.
// 4. LocalOnlyPolicy and PathPolicy resolve it with no network code at all;
//    a cache written by the Python client (>= 1.38 layout) resolves too;
//    a model never downloaded is a typed miss naming every path looked at.
// 5. The same for Hugging Face: an embedded hub (its CDN on 127.0.0.2) serves
//    a small model; it is downloaded into the cache huggingface_hub reads,
//    checked again for one request, then resolved with the hub gone and offline.
//
// Exits non-zero if any outcome is not the expected one.
#include <modelres/modelres.hpp>
#include <modelres/hubs/huggingface_hub.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "progress_bar.hpp"
#include "hf_test_hub.hpp"  // tests/support: the loopback hubs the tests use
#include "test_hub.hpp"

namespace fs = std::filesystem;
using namespace modelres;

namespace {

int failures = 0;

void show(const char* title, const result<ResolvedModel>& r, bool expect_ok, errc expected = errc::not_cached) {
  std::printf("\n== %s\n", title);
  if (r) {
    const ResolvedModel& m = r.value();
    std::printf("   directory    %s\n   model        %s\n   revision     %s\n   layout       %s\n"
                "   files        %zu (%s)\n   completeness %s\n   hub check    %s%s%s\n",
                m.directory.c_str(), m.model_id.empty() ? "-" : m.model_id.c_str(),
                m.revision.empty() ? "-" : m.revision.c_str(), m.layout.c_str(), m.files.size(),
                modelres_tools::human_size(m.total_size()).c_str(), to_string(m.completeness), to_string(m.hub_check),
                m.hub_check_reason.empty() ? "" : ": ", m.hub_check_reason.c_str());
  } else {
    std::printf("   error %s (%d)\n   %s\n", to_string(static_cast<errc>(r.error().code.value())), r.error().code.value(),
                r.error().message().c_str());
  }
  if (expect_ok ? !r : (r || r.error() != expected)) {
    ++failures;
    std::printf("   ^ UNEXPECTED\n");
  }
}

// Step 5: a Hugging Face model online, then offline, in the cache huggingface_hub reads.
void hugging_face(const fs::path& root) {
  ::setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1", 1);  // the demo hub needs no token: none of the user's is sent
  auto hub = std::make_unique<testing::HfTestHub>();
  hub->add(testing::tiny_bert_on_hub(8u << 20));
  hub->start();
  std::printf("\nAn embedded Hugging Face hub serves acme/tiny-bert (8 MiB of LFS weights, from its CDN on 127.0.0.2) at %s\n",
              hub->endpoint().c_str());
  using HfOnline = OnlinePolicy<CurlTransport, HuggingFaceHub<CurlTransport>>;
  HfOnline::Options online;
  online.hub.endpoint = hub->endpoint();
  HuggingFaceCache cache(root);
  Resolver<HfOnline, HuggingFaceCache> resolver{cache, HfOnline(online)};
  auto first = resolver.resolve("acme/tiny-bert");
  show("OnlinePolicy<CurlTransport, HuggingFaceHub>: download into models--acme--tiny-bert", first, true);
  if (first && (first.value().hub_check != HubCheck::current || first.value().completeness != Completeness::verified)) ++failures;

  const std::size_t before = hub->hub().requests().size();
  auto again = resolver.resolve("acme/tiny-bert");
  const std::size_t requests = hub->hub().requests().size() - before;
  show("OnlinePolicy again: the cache is current", again, true);
  std::printf("   requests     %zu (the revision; the file list is the cached trees/<commit>.json)\n", requests);
  if (requests != 1) ++failures;

  hub.reset();
  std::printf("\n(the Hugging Face hub is stopped)\n");
  auto fallback = resolver.resolve("acme/tiny-bert");
  show("OnlinePolicy, hub gone: the same call", fallback, true);
  if (fallback && fallback.value().hub_check != HubCheck::unavailable) ++failures;
  Resolver<LocalOnlyPolicy, HuggingFaceCache> local_only{cache};
  show("LocalOnlyPolicy on the Hugging Face cache", local_only.resolve("acme/tiny-bert"), true);
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // keep the story in order with the bar on stderr
  ::unsetenv("MODELRES_OFFLINE");  // the demo shows the online path; it talks to 127.0.0.1 only
  ::unsetenv("HF_HUB_OFFLINE");
  std::string tmpl = (fs::temp_directory_path() / "modelres-demo-XXXXXX").native();
  if (!::mkdtemp(tmpl.data())) return 1;
  const fs::path root = tmpl;
  ModelScopeCache cache(root);

  auto hub = std::make_unique<testing::TestHub>();
  hub->add(testing::unet_on_hub(24u << 20, 3u << 20));
  // Paced at ~40 MB/s, so that the progress bar can be seen.
  hub->intercept([](const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("FilePath") != "pytorch_model.pt") return false;
    static const std::string bytes = testing::pattern_bytes(24u << 20, 7);
    res.set_content_provider(bytes.size(), "application/octet-stream", [](std::size_t offset, std::size_t, httplib::DataSink& sink) {
      const std::size_t n = std::min<std::size_t>(1u << 20, bytes.size() - offset);
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      return sink.write(bytes.data() + offset, n);
    });
    return true;
  });
  hub->start();
  const std::string endpoint = hub->endpoint();
  std::printf("An embedded ModelScope hub serves iic/cv_unet_skin_retouching_torch (27 MiB) at %s\n", endpoint.c_str());
  std::printf("The cache is %s\n", root.c_str());

  OnlineOptions online;
  online.hub.endpoint = endpoint;
  modelres_tools::ProgressBar bar;
  if (::isatty(2)) online.fetch.on_progress = [&bar](const FetchProgress& p) { bar(p); };
  Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache> resolver{cache, OnlinePolicy<CurlTransport>(online)};

  std::printf("\n== OnlinePolicy: ask the hub, download, verify\n");
  auto first = resolver.resolve("iic/cv_unet_skin_retouching_torch");
  bar.finish();
  show("OnlinePolicy: first resolve", first, true);
  if (first && first.value().hub_check != HubCheck::current) ++failures;

  hub.reset();  // the hub goes away: the factory's network is down
  std::printf("\n(the hub at %s is stopped)\n", endpoint.c_str());
  auto fallback = resolver.resolve("iic/cv_unet_skin_retouching_torch");
  show("OnlinePolicy, hub gone: the same call", fallback, true);
  if (fallback && fallback.value().hub_check != HubCheck::unavailable) ++failures;

  Resolver<LocalOnlyPolicy, ModelScopeCache> local_only{cache};
  Resolver<PathPolicy, ModelScopeCache> by_path{cache};
  show("LocalOnlyPolicy (no network code compiled in)", local_only.resolve("iic/cv_unet_skin_retouching_torch"), true);
  if (first) show("PathPolicy: the directory itself", by_path.resolve(first.value().directory.native()), true);

  // A cache the Python client (modelscope >= 1.38) wrote: files only, no metadata.
  const fs::path snapshot = root / "models/Qwen--Qwen2.5-0.5B-Instruct/snapshots/master";
  fs::create_directories(snapshot);
  std::ofstream(snapshot / "config.json") << R"({"model_type": "qwen2"})";
  show("LocalOnlyPolicy: a model the Python client downloaded", local_only.resolve("Qwen/Qwen2.5-0.5B-Instruct"), true);

  show("LocalOnlyPolicy: a model never downloaded (the typed miss)", local_only.resolve("damo/not_downloaded"), false,
       errc::not_cached);

  hugging_face(root / "huggingface");

  std::error_code ec;
  fs::remove_all(root, ec);
  std::printf("\n%s\n", failures == 0 ? "demo: every outcome as expected" : "demo: UNEXPECTED OUTCOMES");
  return failures == 0 ? 0 : 1;
}
