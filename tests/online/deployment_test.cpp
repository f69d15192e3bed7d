// The recipes of docs/deployment.md that are not run elsewhere, as written
// there: an air-gapped copy, and a forward proxy (tinyproxy) taken from the
// environment as the Python clients take it.
#include <modelres/modelres.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <thread>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
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

}  // namespace deployment_test
