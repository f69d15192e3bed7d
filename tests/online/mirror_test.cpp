// Mirrors: an ordered list of endpoints (the next asked only while one cannot
// be), against real loopback hubs, one of them failing the way a mirror does.
#include <modelres/modelres.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/hf_test_hub.hpp"
#include "../support/proxy_servers.hpp"
#include "../support/test_hub.hpp"

using namespace modelres;
using testing::TempDir;
using testing::TestHub;
namespace fs = std::filesystem;

namespace mirror_test {

using Quiet = testing::QuietHubEnvironment;
const std::string nobody = "http://127.0.0.1:1";  // nothing listens there

std::size_t files_fetched(TestHub& hub) {
  std::size_t n = 0;
  for (const auto& r : hub.server().requests()) n += r.params.count("FilePath");
  return n;
}

result<ResolvedModel> resolve_via(const fs::path& cache, std::vector<std::string> endpoints, const std::string& id,
                                  bool strict = false) {
  OnlineOptions o;
  o.endpoints = std::move(endpoints);
  o.strict = strict;
  o.fetch.backoff = std::chrono::milliseconds(50);  // the attempts, not the waits between them, are tested here
  return Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache>{ModelScopeCache(cache), OnlinePolicy<CurlTransport>(o)}.resolve(id);
}

#ifdef MODELRES_CLI
// A fleet: `modelres download REFERENCE --endpoint ENDPOINT` once per
// environment of `envs` (each naming the node's own cache), all at once. Every
// node must succeed with every file of `model` right. How long they took together.
template <class Model>
std::chrono::milliseconds download_at_once(const std::string& reference, const std::string& endpoint,
                                           const std::vector<std::map<std::string, std::string>>& envs, const Model& model) {
  const auto started = std::chrono::steady_clock::now();
  const auto results = testing::run_at_once({MODELRES_CLI, "download", reference, "--endpoint", endpoint}, envs);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  for (const auto& r : results) {
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path dir = r.out.substr(0, r.out.size() - 1);
    for (const auto& f : model.files) CHECK(testing::read_text(dir / f.path) == f.content);
  }
  return took;
}

// The environments of ModelScope nodes, one per cache.
std::vector<std::map<std::string, std::string>> modelscope_nodes(const std::vector<TempDir>& caches) {
  std::vector<std::map<std::string, std::string>> envs;
  for (const TempDir& c : caches) envs.push_back({{"MODELSCOPE_CACHE", c.str()}, {"MODELRES_HUB", ""}});
  return envs;
}
#endif

TEST_CASE("endpoints: the next is asked while one cannot be, and the one that answered serves the files", "[online][mirror]") {
  Quiet quiet;
  const auto model = testing::unet_on_hub();
  TestHub failing, good;
  failing.add(model);
  failing.intercept([](const httplib::Request&, httplib::Response& res) {
    TestHub::envelope_error(res, 502, "upstream unreachable");  // a mirror whose upstream is down
    return true;
  });
  good.add(model);
  failing.start();
  good.start();
  TempDir cache;
  auto r = resolve_via(cache.path(), {nobody, failing.endpoint(), good.endpoint()}, model.id);
  REQUIRE(r);
  CHECK(r.value().endpoint == good.endpoint());
  CHECK(r.value().hub_check == HubCheck::current);
  CHECK(files_fetched(good) == model.files.size());
  CHECK(files_fetched(failing) == 0);
  CHECK(failing.server().requests().size() >= 1);  // asked, and it failed on its side
}

TEST_CASE("endpoints: an answer is final, even `no such model`", "[online][mirror]") {
  Quiet quiet;
  const auto model = testing::unet_on_hub();
  TestHub empty, good;  // a mirror that does not carry the model
  good.add(model);
  empty.start();
  good.start();
  TempDir cache;
  auto r = resolve_via(cache.path(), {empty.endpoint(), good.endpoint()}, model.id);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::unknown_model);
  CHECK(good.server().requests().empty());
}

TEST_CASE("endpoints: none can be asked: each named, and a cached copy still served unchecked", "[online][mirror]") {
  Quiet quiet;
  const auto model = testing::unet_on_hub();
  TestHub good;
  good.add(model);
  good.start();
  TempDir cache;
  const std::string also_nobody = "http://127.0.0.1:2";
  auto none = resolve_via(cache.path(), {nobody, also_nobody}, model.id, /*strict=*/true);
  REQUIRE_FALSE(none);
  CHECK(none.error() == errc::hub_unreachable);
  CHECK(none.error().detail.find(nobody + ": hub unreachable") == 0);
  CHECK(none.error().detail.find("; then " + also_nobody + ": ") != std::string::npos);

  REQUIRE(resolve_via(cache.path(), {good.endpoint()}, model.id));
  auto cached = resolve_via(cache.path(), {nobody, also_nobody}, model.id);
  REQUIRE(cached);
  CHECK(cached.value().hub_check == HubCheck::unavailable);
  CHECK(cached.value().endpoint.empty());
}

TEST_CASE("endpoints: MODELRES_ENDPOINTS, comma-separated, read at each resolve", "[online][mirror]") {
  Quiet quiet;
  const auto model = testing::unet_on_hub();
  TestHub good;
  good.add(model);
  good.start();
  TempDir cache;
  testing::ScopedEnv env("MODELRES_ENDPOINTS", nobody + " , " + good.endpoint() + "/");
  auto r = resolve_via(cache.path(), {}, model.id);
  REQUIRE(r);
  CHECK(r.value().endpoint == good.endpoint());
}

#ifdef MODELRES_CLI
TEST_CASE("endpoints: `--endpoint` repeated, and --json says which answered", "[online][mirror][cli]") {
  Quiet quiet;
  const auto model = testing::unet_on_hub();
  TestHub good;
  good.add(model);
  good.start();
  TempDir cache;
  auto r = testing::run_command({MODELRES_CLI, "resolve", "--endpoint", nobody, model.id, "--endpoint", good.endpoint(), "--json"},
                                {{"MODELSCOPE_CACHE", cache.str()}, {"MODELRES_HUB", ""}});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(nlohmann::json::parse(r.out)["endpoint"] == good.endpoint());
}
#endif

#ifdef MODELRES_CLI
// The recipe of docs/deployment.md, as written: 16 nodes (processes, each
// with its own cache) resolve through one nginx at once, and the hub behind
// it serves each file once.
TEST_CASE("nginx pull-through mirror: 16 processes at once, each file served by the hub once", "[online][mirror][nginx]") {
  Quiet quiet;
  const auto model = testing::unet_on_hub(4u << 20, 300000);
  TestHub hub;
  hub.add(model);
  hub.start();
  testing::NginxMirror mirror(hub.endpoint());
  INFO(mirror.log());
  REQUIRE(mirror.running());

  constexpr int nodes = 16;
  // The fleet: `nodes` downloads at once through `endpoint`, each into its
  // own cache, every file checked; how long they took together.
  const auto fleet = [&](const std::string& endpoint) {
    std::vector<TempDir> caches(nodes);
    return download_at_once(model.id, endpoint, modelscope_nodes(caches), model);
  };
  const auto through_mirror = fleet(mirror.url());

  std::map<std::string, int> served, asked;  // files by path; metadata requests by path
  for (const auto& r : hub.server().requests()) {
    if (r.params.count("FilePath"))
      ++served[r.params.at("FilePath")];
    else
      ++asked[r.path];
  }
  CHECK(served.size() == model.files.size());
  for (const auto& [path, times] : served) {
    INFO(path);
    CHECK(times == 1);
  }
  for (const auto& [path, times] : asked) {
    INFO(path);
    CHECK(times == 1);  // the revisions and the file list, asked once for all 16
  }

  // The reference, for docs/benchmarks.md: the same fleet asking the hub itself.
  TestHub direct;
  direct.add(model);
  direct.start();
  const auto without_mirror = fleet(direct.endpoint());
  // Bytes of file content each hub sent, from the files it was asked for.
  const auto bytes_sent = [&](TestHub& h) {
    std::uint64_t n = 0;
    for (const auto& r : h.server().requests())
      for (const auto& f : model.files)
        if (r.params.count("FilePath") && r.params.at("FilePath") == f.path) n += f.content.size();
    return n;
  };
  std::uint64_t model_bytes = 0;
  for (const auto& f : model.files) model_bytes += f.content.size();
  std::cout << "fleet of " << nodes << " processes, model of " << model_bytes << " bytes in " << model.files.size()
            << " files: through nginx, " << hub.server().requests().size() << " requests reached the hub, " << bytes_sent(hub)
            << " bytes sent, " << through_mirror.count() << " ms; without it, " << direct.server().requests().size()
            << " requests, " << bytes_sent(direct) << " bytes, " << without_mirror.count() << " ms\n";
}
#endif

#ifdef MODELRES_CLI
// The same for Hugging Face (tests/docs/nginx_hf_mirror.conf): the hub
// redirects the weights to its CDN, and nginx rewrites that redirect to
// itself, so the CDN too is asked once for all, through the mirror.
TEST_CASE("nginx pull-through mirror of Hugging Face: 16 processes at once, the hub and its CDN each asked once per file",
          "[online][mirror][nginx][hf_online]") {
  Quiet quiet;
  testing::HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub(4u << 20);
  hub.add(model);
  hub.start();
  const auto mirror = testing::NginxMirror::hugging_face(hub.endpoint(), hub.cdn().url());
  INFO(mirror->log());
  REQUIRE(mirror->running());

  constexpr int nodes = 16;
  std::vector<TempDir> caches(nodes);
  TempDir home;
  std::vector<std::map<std::string, std::string>> envs;
  for (const TempDir& c : caches)
    envs.push_back({{"HF_HUB_CACHE", c.str()}, {"HF_HOME", home.str()}, {"HF_TOKEN", ""}, {"MODELRES_HUB", ""}});
  const auto took = download_at_once("hf.co/" + model.id, mirror->url(), envs, model);

  CHECK(hub.cdn().requests().size() == 1);  // the weights, once for all 16
  std::map<std::string, int> asked;         // by path: the listings and each file
  for (const auto& r : hub.hub().requests()) ++asked[r.path];
  for (const auto& [path, times] : asked) {
    INFO(path);
    if (path.find("/resolve/") != std::string::npos && path.find("model.safetensors") != std::string::npos)
      CHECK(times <= nodes);  // the redirect to the CDN: signed and short-lived, so not kept
    else
      CHECK(times == 1);
  }
  std::cout << "Hugging Face fleet of " << nodes << " processes through nginx: " << hub.hub().requests().size()
            << " requests reached the hub, " << hub.cdn().requests().size() << " its CDN; " << took.count() << " ms\n";
}
#endif

#ifdef MODELRES_CLI
// A fleet restarting at once: the hub refuses most requests of the first
// moments with 429 and Retry-After. Every process waits (a jittered wait) and
// finishes; none gives up.
TEST_CASE("fleet restart: a 429 storm with Retry-After, every process finishes", "[online][mirror][restart]") {
  Quiet quiet;
  const auto model = testing::unet_on_hub();
  TestHub hub;
  hub.add(model);
  std::mutex mutex;
  std::optional<std::chrono::steady_clock::time_point> first;
  std::size_t seen = 0, refused = 0;
  constexpr auto storm = std::chrono::milliseconds(2500);
  hub.intercept([&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    const auto now = std::chrono::steady_clock::now();
    if (!first) first = now;
    ++seen;
    if (now - *first > storm || seen % 4 == 0) return false;  // during the storm, 3 requests of 4 are refused
    ++refused;
    TestHub::envelope_error(res, 429, "too many requests");
    res.set_header("Retry-After", "1");
    return true;
  });
  hub.start();

  constexpr int nodes = 16;
  std::vector<TempDir> caches(nodes);
  const auto took = download_at_once(model.id, hub.endpoint(), modelscope_nodes(caches), model);
  std::lock_guard<std::mutex> lock(mutex);
  CHECK(refused >= nodes);  // the storm happened: each process was refused about once or more
  // Each process makes 6 requests when nothing is refused; every refusal costs one more, and no more.
  CHECK(seen == static_cast<std::size_t>(nodes) * (2 + model.files.size()) + refused);
  std::cout << "fleet restart: " << nodes << " processes, " << seen << " requests reached the hub, " << refused
            << " refused with 429 (Retry-After: 1) during the first " << storm.count() << " ms; all done in " << took.count()
            << " ms\n";
}
#endif

// A mirror's faults, through the policy.
TEST_CASE("mirror faults: a captive portal's HTML with 200 for a model file is checksum_mismatch, nothing kept",
          "[online][mirror]") {
  Quiet quiet;
  const auto model = testing::unet_on_hub();
  TestHub mirror;
  mirror.add(model);
  mirror.intercept([](const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("FilePath") != "pytorch_model.pt") return false;
    res.status = 200;
    res.set_content("<!DOCTYPE html><html><body>Please sign in to the guest network</body></html>", "text/html");
    return true;
  });
  mirror.start();
  TempDir cache;
  auto r = resolve_via(cache.path(), {mirror.endpoint()}, model.id, /*strict=*/true);
  REQUIRE_FALSE(r);
  INFO(r.error().message());
  for (const auto& f : testing::files_below(cache.path())) INFO(f);
  CHECK(r.error() == errc::checksum_mismatch);
  CHECK(r.error().detail.find("pytorch_model.pt") != std::string::npos);
  const fs::path dir = cache.path() / "models" / model.id;
  CHECK_FALSE(fs::exists(dir / "pytorch_model.pt"));  // the page is not kept under the file's name
  for (const auto& f : testing::files_below(cache.path())) CHECK(f.find("incomplete") == std::string::npos);  // nor as a partial
  auto offline = Resolver<LocalOnlyPolicy, ModelScopeCache>(ModelScopeCache(cache.path())).resolve(model.id);
  REQUIRE_FALSE(offline);  // and the model is not served
  CHECK(offline.error() == errc::incomplete);
}

TEST_CASE("mirror faults: a cold miss slow to send its first byte waits on the first-byte timeout, not the metadata one",
          "[online][mirror]") {
  Quiet quiet;
  const auto model = testing::unet_on_hub();
  TestHub mirror;
  mirror.add(model);
  mirror.intercept([](const httplib::Request& req, httplib::Response&) {
    if (req.get_param_value("FilePath") == "pytorch_model.pt") std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    return false;  // then answered: the mirror has fetched it from upstream meanwhile
  });
  mirror.start();
  TempDir cache;
  OnlineOptions o;
  o.endpoints = {mirror.endpoint()};
  o.strict = true;
  o.hub.metadata_timeout = std::chrono::milliseconds(1000);  // shorter than the cold miss
  auto r = Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache>{ModelScopeCache(cache.path()), OnlinePolicy<CurlTransport>(o)}
               .resolve(model.id);
  INFO((r ? std::string() : r.error().message()));
  REQUIRE(r);
  CHECK(testing::read_text(r.value().directory / "pytorch_model.pt") == model.files[2].content);

  o.fetch.first_byte_timeout = std::chrono::milliseconds(500);  // a first-byte limit shorter than the miss does apply
  o.fetch.max_attempts = 1;
  TempDir other;
  auto impatient = Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache>{ModelScopeCache(other.path()), OnlinePolicy<CurlTransport>(o)}
                       .resolve(model.id);
  REQUIRE_FALSE(impatient);
  CHECK(impatient.error() == errc::timed_out);
}

}  // namespace mirror_test
