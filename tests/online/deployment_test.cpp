// The recipes of docs/deployment.md that are not run elsewhere, as written
// there: an air-gapped copy, and a forward proxy (tinyproxy) taken from the
// environment as the Python clients take it.
#include <modelres/hubs/huggingface_hub.hpp>
#include <modelres/modelres.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <string>
#include <thread>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/hf_test_hub.hpp"
#include "../support/http_server.hpp"
#include "../support/proxy_servers.hpp"
#include "../support/test_hub.hpp"

using namespace modelres;
using testing::TempDir;
using testing::TestHub;
namespace fs = std::filesystem;

namespace deployment_test {

using Quiet = testing::QuietHubEnvironment;

// Proxies cleared, so that only what a test sets is used.
struct NoProxies {
  testing::ScopedEnv a{"http_proxy", ""}, b{"HTTP_PROXY", ""}, c{"https_proxy", ""}, d{"HTTPS_PROXY", ""}, e{"ALL_PROXY", ""},
      f{"all_proxy", ""}, g{"NO_PROXY", ""}, h{"no_proxy", ""};
};

#ifdef MODELRES_CLI
TEST_CASE("deployment: air-gapped: download on one machine, copy the cache, resolve --local-only on the other",
          "[online][deployment]") {
  Quiet quiet;
  const auto model = testing::unet_on_hub();
  TempDir transfer, offline;
  std::string online_dir;
  {
    TestHub hub;
    hub.add(model);
    hub.start();
    auto d = testing::run_command({MODELRES_CLI, "download", model.id, "--cache-dir", (transfer.path() / "modelscope").native(),
                                   "--endpoint", hub.endpoint()},
                                  {{"MODELRES_HUB", ""}});
    INFO(d.err);
    REQUIRE(d.status == 0);
  }  // the hub is gone: the other machine has no network
  REQUIRE(testing::run_command({"/bin/cp", "-a", (transfer.path() / "modelscope").native(), (offline.path() / "modelscope").native()})
              .status == 0);
  auto r = testing::run_command({MODELRES_CLI, "resolve", model.id, "--local-only", "--cache-dir",
                                 (offline.path() / "modelscope").native(), "--json"},
                                {{"MODELRES_HUB", ""}});
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["completeness"] == "verified");
  const fs::path dir = j["directory"].get<std::string>();
  CHECK(dir.native().rfind((offline.path() / "modelscope").native(), 0) == 0);
  for (const auto& f : model.files) CHECK(testing::read_text(dir / f.path) == f.content);
}

TEST_CASE("deployment: forward proxy: http_proxy is used, NO_PROXY is honoured", "[online][deployment][proxy]") {
  Quiet quiet;
  NoProxies none;
  const auto model = testing::unet_on_hub();
  TestHub hub;
  hub.add(model);
  hub.start();
  testing::Tinyproxy proxy;
  INFO(proxy.log());
  REQUIRE(proxy.running());
  TempDir cache, direct;
  auto via = testing::run_command({MODELRES_CLI, "download", model.id, "--endpoint", hub.endpoint()},
                                  {{"MODELSCOPE_CACHE", cache.str()}, {"MODELRES_HUB", ""}, {"http_proxy", proxy.url()}});
  INFO(via.err);
  REQUIRE(via.status == 0);
  const std::size_t through_proxy = hub.server().requests().size();
  REQUIRE(through_proxy >= model.files.size());
  for (const auto& req : hub.server().requests()) CHECK(req.header("via").find("tinyproxy") != std::string::npos);

  auto bypass = testing::run_command({MODELRES_CLI, "download", model.id, "--endpoint", hub.endpoint()},
                                     {{"MODELSCOPE_CACHE", direct.str()}, {"MODELRES_HUB", ""}, {"http_proxy", proxy.url()},
                                      {"NO_PROXY", "127.0.0.1"}});
  REQUIRE(bypass.status == 0);
  const auto all = hub.server().requests();
  REQUIRE(all.size() > through_proxy);
  for (std::size_t i = through_proxy; i < all.size(); ++i) CHECK(all[i].header("via").empty());
}
#endif

TEST_CASE("deployment: forward proxy: HTTPS_PROXY tunnels https with CONNECT, the hub's certificate still verified",
          "[online][deployment][proxy]") {
  NoProxies none;
  const std::string tls_dir = std::string(MODELRES_FIXTURES_DIR) + "/tls";
  httplib::SSLServer server((tls_dir + "/server.pem").c_str(), (tls_dir + "/server.key").c_str());
  server.Get("/hello", [](const httplib::Request&, httplib::Response& res) { res.set_content("hi", "text/plain"); });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { server.listen_after_bind(); });
  testing::Tinyproxy proxy;
  REQUIRE(proxy.running());
  testing::ScopedEnv https_proxy("HTTPS_PROXY", proxy.url());
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/hello";
  const auto get = [&](CurlOptions o, std::string& body) {
    HttpRequest r;
    r.url = url;
    r.timeout = std::chrono::seconds(10);
    return CurlTransport(o).send(r, [&](const ResponseHead&, std::string_view c) {
      body.append(c);
      return true;
    });
  };
  {
    testing::ScopedEnv file("SSL_CERT_FILE", "");
    testing::ScopedEnv dir("SSL_CERT_DIR", "");
    std::string body;
    auto refused = get(CurlOptions(), body);  // the tunnel changes nothing about trust
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == errc::hub_unreachable);
    CHECK(body.empty());
  }
  CurlOptions trusted;
  trusted.ca_bundle = tls_dir + "/ca.pem";
  std::string body;
  auto r = get(trusted, body);
  INFO(proxy.log());
  REQUIRE(r);
  CHECK(body == "hi");
  CHECK(proxy.log().find("CONNECT 127.0.0.1:" + std::to_string(port)) != std::string::npos);
  server.stop();
  serving.join();
}

#if defined(MODELRES_CLI) && defined(MODELRES_FLOCK_THAT_LOCKS_NOTHING)
// docs/deployment.md, "Shared writable caches on network filesystems": where
// flock locks nothing across machines, processes filling one cache at once
// each write their own partial files, so a reader sees the model whole and
// right, or not at all. The processes run with the flock of such a
// filesystem preloaded (tests/support/flock_that_locks_nothing.cpp).
const std::map<std::string, std::string> flock_locks_nothing = {
    {"MODELRES_HUB", ""}, {"LD_PRELOAD", MODELRES_FLOCK_THAT_LOCKS_NOTHING}, {"ASAN_OPTIONS", "verify_asan_link_order=0"}};
constexpr int writers = 4;

struct SharedFill {
  std::vector<testing::CommandResult> results;
  std::size_t served_whole = 0, served_wrong = 0;  // what the reader saw
};

// `writers` processes run `argv` at once with `env`, while a reader calls
// `resolve_offline` every 5 ms and, whenever it serves the model, reads every
// file of `files` (path, content) from it.
template <class ResolveOffline>
SharedFill fill_at_once(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                        ResolveOffline resolve_offline, const std::vector<std::pair<std::string, std::string>>& files) {
  SharedFill fill;
  std::atomic<bool> writing{true};
  std::thread reader([&] {
    while (writing) {
      if (auto r = resolve_offline()) {
        ++fill.served_whole;
        for (const auto& [path, content] : files) fill.served_wrong += testing::read_text(r.value().directory / path) != content;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  fill.results = testing::run_at_once(argv, std::vector<std::map<std::string, std::string>>(writers, env));
  writing = false;
  reader.join();
  for (const auto& r : fill.results) {
    INFO(r.err);
    CHECK(r.status == 0);
  }
  CHECK(fill.served_wrong == 0);
  return fill;
}

template <class ResolveOffline>
void check_filled(const fs::path& cache, ResolveOffline resolve_offline, const std::vector<std::pair<std::string, std::string>>& files) {
  auto after = resolve_offline();
  REQUIRE(after);
  CHECK(after.value().completeness == Completeness::verified);
  for (const auto& [path, content] : files) CHECK(testing::read_text(after.value().directory / path) == content);
  for (const std::string& f : testing::files_below(cache))  // each process's partial files went into place
    CHECK(f.find(".incomplete") == std::string::npos);
}

TEST_CASE("shared cache: with a flock that locks nothing, processes downloading at once corrupt nothing",
          "[online][deployment][shared]") {
  Quiet quiet;
  const auto model = testing::unet_on_hub(6u << 20, 300000);
  TestHub hub;
  hub.add(model);
  // Each file answers after 300 ms, so that the processes' downloads overlap.
  hub.intercept([](const httplib::Request& req, httplib::Response&) {
    if (req.has_param("FilePath")) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return false;
  });
  hub.start();
  TempDir cache;
  auto env = flock_locks_nothing;
  env["MODELSCOPE_CACHE"] = cache.str();
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& f : model.files) files.emplace_back(f.path, f.content);
  const auto resolve_offline = [&] { return Resolver<LocalOnlyPolicy, ModelScopeCache>(ModelScopeCache(cache.path())).resolve(model.id); };
  const std::vector<std::string> download = {MODELRES_CLI, "download", model.id, "--endpoint", hub.endpoint()};

  const SharedFill fill = fill_at_once(download, env, resolve_offline, files);
  std::size_t weights_served = 0;
  for (const auto& r : hub.server().requests()) weights_served += r.params.count("FilePath") && r.params.at("FilePath") == "pytorch_model.pt";
  // The lock held no one back: more than one process fetched the weights into the one cache at once.
  CHECK(weights_served >= 2);
  check_filled(cache.path(), resolve_offline, files);
  std::cout << "shared ModelScope cache, flock locking nothing: " << writers << " processes at once, the weights served "
            << weights_served << " times; the reader saw the model whole " << fill.served_whole << " times, wrong "
            << fill.served_wrong << " times\n";

  {  // A filesystem that cannot lock at all (ENOSYS, as Lustre without -o flock) is used unlocked.
    TempDir other;
    env["MODELSCOPE_CACHE"] = other.str();
    env["FLOCK_FAILS_WITH"] = "ENOSYS";
    const auto alone = testing::run_at_once(download, {env});
    INFO(alone[0].err);
    CHECK(alone[0].status == 0);
    CHECK(testing::read_text(fs::path(alone[0].out.substr(0, alone[0].out.size() - 1)) / "pytorch_model.pt") == files[2].second);
  }
}

TEST_CASE("shared cache: the same for a Hugging Face cache", "[online][deployment][shared][hf_online]") {
  Quiet quiet;
  testing::HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub(6u << 20);
  hub.add(model);
  const auto slowly = [](const httplib::Request& req, httplib::Response&) {
    if (req.path.find("/resolve/") != std::string::npos || req.path.find("/blobs/") != std::string::npos)
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return false;
  };
  hub.intercept(slowly);
  hub.intercept_cdn(slowly);
  hub.start();
  TempDir cache, home;
  auto env = flock_locks_nothing;
  env.insert({{"HF_HOME", home.str()}, {"HF_TOKEN", ""}});
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& f : model.files) files.emplace_back(f.path, f.content);
  const auto resolve_offline = [&] {
    return Resolver<LocalOnlyPolicy, HuggingFaceCache>(HuggingFaceCache(cache.path())).resolve(model.id);
  };
  const SharedFill fill = fill_at_once(
      {MODELRES_CLI, "download", "hf.co/" + model.id, "--endpoint", hub.endpoint(), "--cache-dir", cache.str()}, env,
      resolve_offline, files);
  CHECK(hub.cdn().requests().size() >= 2);  // the weights, fetched by more than one process at once
  check_filled(cache.path(), resolve_offline, files);
  std::cout << "shared Hugging Face cache, flock locking nothing: " << writers << " processes at once, the weights served "
            << hub.cdn().requests().size() << " times; the reader saw the model whole " << fill.served_whole
            << " times, wrong " << fill.served_wrong << " times\n";
}
#endif

}  // namespace deployment_test
