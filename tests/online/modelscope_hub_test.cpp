// ModelScopeHub over CurlTransport against the test hub on 127.0.0.1: the
// requests the client makes, and every hub answer mapped to a typed error.
#include <modelres/hubs/modelscope_hub.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/test_hub.hpp"

using namespace modelres;
using testing::TestHub;

namespace modelscope_hub_test {

const ModelId unet{"iic", "cv_unet_skin_retouching_torch"};

ModelScopeHub<CurlTransport> hub_at(const TestHub& hub, std::string token = {}) {
  ModelScopeHubOptions o;
  o.endpoint = hub.endpoint();
  o.token = std::move(token);
  o.metadata_timeout = std::chrono::seconds(10);
  return ModelScopeHub<CurlTransport>(CurlTransport(), o);
}

TEST_CASE("hub: a snapshot is the file list alone in one request, and the revision date only when asked", "[online][hub]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.start();
  auto hub = hub_at(server);
  auto snap = hub.snapshot(unet, "");
  REQUIRE(snap);
  CHECK(snap.value().revision == "master");
  CHECK(snap.value().created_at == 0);
  REQUIRE(snap.value().files.size() == 4);  // the tree entry is not a file
  const HubFile& weights = snap.value().files[2];
  CHECK(weights.path == "pytorch_model.pt");
  CHECK(weights.size == 300000);
  CHECK(weights.sha256 == testing::sha256_hex(testing::pattern_bytes(300000, 7)));
  CHECK(weights.revision == "7a1c2b3d4e5f60718293a4b5c6d7e8f901234567");

  auto reqs = server.server().requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].path == "/api/v1/models/iic/cv_unet_skin_retouching_torch/repo/files");
  CHECK(reqs[0].params.at("Revision") == "master");
  CHECK(reqs[0].params.at("Recursive") == "True");
  CHECK(reqs[0].header("x-request-id").size() == 32);

  // What a commit records in .mv: one more request, made only when something is written.
  REQUIRE(hub.revision_details(unet, snap.value()));
  CHECK(snap.value().created_at == 1713419382);
  reqs = server.server().requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[1].path == "/api/v1/models/iic/cv_unet_skin_retouching_torch/revisions");
}

TEST_CASE("hub: a tag, and an unknown revision naming the known ones", "[online][hub]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.start();
  auto hub = hub_at(server);
  CHECK(hub.snapshot(unet, "v1.0.3").value().revision == "v1.0.3");
  auto bad = hub.snapshot(unet, "v9");
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == errc::unknown_revision);
  CHECK(bad.error().revision == "v9");
  CHECK(bad.error().detail == "the hub knows master, v1.0.3");
}

TEST_CASE("hub: status codes and envelopes become typed errors with status and request id", "[online][hub]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  int status = 0;
  server.intercept([&](const httplib::Request&, httplib::Response& res) {
    if (status == 0) return false;
    TestHub::envelope_error(res, status, "refused");
    if (status == 429) res.set_header("Retry-After", "7");
    return true;
  });
  server.start();
  auto hub = hub_at(server);

  auto missing = hub.snapshot(ModelId{"iic", "absent"}, "");
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == errc::unknown_model);
  CHECK(missing.error().reference == "iic/absent");
  CHECK(missing.error().detail == "HTTP 404: 模型不存在 (request id req-7f3a)");

  const std::pair<int, errc> cases[] = {{401, errc::unauthorized}, {403, errc::unauthorized}, {429, errc::rate_limited},
                                        {500, errc::server_error},  {503, errc::server_error},  {400, errc::malformed_response}};
  for (const auto& [code, expected] : cases) {
    status = code;
    auto r = hub.snapshot(unet, "");
    INFO("HTTP " << code);
    REQUIRE_FALSE(r);
    CHECK(r.error() == expected);
    CHECK(r.error().detail.find("HTTP " + std::to_string(code)) == 0);
    CHECK(r.error().detail.find("request id req-7f3a") != std::string::npos);
  }
  status = 429;
  CHECK(hub.snapshot(unet, "").error().detail == "HTTP 429: refused (request id req-7f3a); Retry-After: 7");
}

TEST_CASE("hub: answers that are not the protocol are malformed_response", "[online][hub]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  std::string body;
  server.intercept([&](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "application/json");
    return true;
  });
  server.start();
  auto hub = hub_at(server);
  for (const std::string& b : {std::string(R"({"Code":200,"Data":{"RevisionMap":{"Branches":[{"Revi)"),
                              std::string("<html><body>Please log in to the captive portal</body></html>"),
                              std::string(R"({"Code":200,"Data":{"Nothing":1},"Success":true})"),
                              std::string(R"({"Code":200,"Data":{"RevisionMap":{"Branches":[{"Revision":7}]}}})"), std::string("[]")}) {
    body = b;
    auto r = hub.snapshot(unet, "");
    INFO(b);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::malformed_response);
  }
  // An envelope that says it failed, with HTTP 200.
  body = R"({"Code":10010205001,"Message":"model is being reviewed","RequestId":"abc","Success":false})";
  auto failed = hub.snapshot(unet, "");
  REQUIRE_FALSE(failed);
  CHECK(failed.error() == errc::server_error);
  CHECK(failed.error().detail == "HTTP 500: model is being reviewed (request id abc)");
}

TEST_CASE("hub: a file list with paths that leave the model directory is refused whole", "[online][hub]") {
  for (const char* evil : {"../../../etc/cron.d/x", "/etc/passwd", "a/../../b", "ok/./x", "a//b", "..", "c:\\x\\..\\..\\y"}) {
    TestHub server;
    auto model = testing::unet_on_hub();
    model.extra_entries.push_back({{"Path", evil}, {"Name", "x"}, {"Type", "blob"}, {"Size", 1},
                                   {"Sha256", testing::sha256_hex("x")}, {"Revision", "r"}});
    server.add(model);
    server.start();
    auto r = hub_at(server).snapshot(unet, "");
    INFO(evil);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::unsafe_file_list);
  }
}

TEST_CASE("hub: Sha256 must be 64 hex digits when given, null or empty means none", "[online][hub]") {
  TestHub server;
  auto model = testing::unet_on_hub();
  model.files[0].sha256 = nlohmann::json();  // computed
  model.extra_entries.push_back({{"Path", "no_hash.bin"}, {"Type", "blob"}, {"Size", 3}, {"Sha256", nullptr}, {"Revision", "r"}});
  model.extra_entries.push_back({{"Path", "empty_hash.bin"}, {"Type", "blob"}, {"Size", 3}, {"Sha256", ""}, {"Revision", "r"}});
  model.extra_entries.push_back({{"Path", ".gitattributes"}, {"Name", ".gitattributes"}, {"Type", "blob"}, {"Size", 3}, {"Revision", "r"}});
  server.add(model);
  server.start();
  auto snap = hub_at(server).snapshot(unet, "");
  REQUIRE(snap);
  REQUIRE(snap.value().files.size() == 6);  // .gitattributes dropped, as the client does
  CHECK(snap.value().files[4].path == "no_hash.bin");
  CHECK(snap.value().files[4].sha256.empty());
  CHECK(snap.value().files[5].path == "empty_hash.bin");
  CHECK(snap.value().files[5].sha256.empty());
  CHECK(snap.value().files[5].size == 3);

  TestHub bad;
  auto m2 = testing::unet_on_hub();
  m2.files[1].sha256 = "not-a-hash";
  bad.add(m2);
  bad.start();
  CHECK(hub_at(bad).snapshot(unet, "").error() == errc::malformed_response);
}

TEST_CASE("hub: the token goes as Bearer and cookie, never into an error", "[online][hub]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  bool refuse = false;
  server.intercept([&](const httplib::Request&, httplib::Response& res) {
    if (!refuse) return false;
    TestHub::envelope_error(res, 403, "token expired");
    return true;
  });
  server.start();
  testing::ScopedEnv env("MODELSCOPE_API_TOKEN", "ms-SECRET-123");
  auto hub = hub_at(server);
  REQUIRE(hub.snapshot(unet, ""));
  const auto reqs = server.server().requests();
  CHECK(reqs[0].header("authorization") == "Bearer ms-SECRET-123");
  CHECK(reqs[0].header("cookie") == "m_session_id=ms-SECRET-123");
  refuse = true;
  auto denied = hub.snapshot(unet, "");
  REQUIRE_FALSE(denied);
  CHECK(denied.error() == errc::unauthorized);
  CHECK(denied.error().message().find("SECRET") == std::string::npos);
}

TEST_CASE("hub: the endpoint from argument, MODELSCOPE_ENDPOINT, MODELSCOPE_DOMAIN, or the default", "[online][hub]") {
  testing::ScopedEnv e1("MODELSCOPE_ENDPOINT", "");
  testing::ScopedEnv e2("MODELSCOPE_DOMAIN", "");
  CHECK(ModelScopeHub<CurlTransport>().endpoint() == "https://www.modelscope.cn");
  {
    testing::ScopedEnv d("MODELSCOPE_DOMAIN", "www.modelscope.ai");
    CHECK(ModelScopeHub<CurlTransport>().endpoint() == "https://www.modelscope.ai");
    testing::ScopedEnv e("MODELSCOPE_ENDPOINT", "http://mirror.internal:8080/");
    CHECK(ModelScopeHub<CurlTransport>().endpoint() == "http://mirror.internal:8080");
    ModelScopeHubOptions o;
    o.endpoint = "https://explicit.example";
    CHECK(ModelScopeHub<CurlTransport>(CurlTransport(), o).endpoint() == "https://explicit.example");
  }
}

TEST_CASE("hub: the file URL is the client's, and serves the bytes", "[online][hub]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.start();
  auto hub = hub_at(server);
  HubSnapshot master;
  master.revision = "master";
  HubFile joint;
  joint.path = "assets/weights/joint.pth";
  const HttpRequest req = hub.file_request(unet, master, joint);
  CHECK(req.url == server.endpoint() +
                       "/api/v1/models/iic/cv_unet_skin_retouching_torch/repo?Revision=master&FilePath=assets%2Fweights%2Fjoint.pth");
  std::string body;
  auto r = hub.transport().send(req, [&](const ResponseHead&, std::string_view c) {
    body.append(c);
    return true;
  });
  REQUIRE(r);
  CHECK(r.value().status == 200);
  CHECK(body == testing::pattern_bytes(5000, 9));
}

TEST_CASE("hub: no hub listening is hub_unreachable for that model", "[online][hub]") {
  ModelScopeHubOptions o;
  o.endpoint = "http://127.0.0.1:1";
  auto r = ModelScopeHub<CurlTransport>(CurlTransport(), o).snapshot(unet, "");
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::hub_unreachable);
  CHECK(r.error().reference == "iic/cv_unet_skin_retouching_torch");
  CHECK(r.error().revision == "master");
}

TEST_CASE("hub: a hub without /revisions (as the newest client never asks) still serves the file list", "[online][hub]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.intercept([](const httplib::Request& req, httplib::Response& res) {
    if (req.path.size() < 10 || req.path.substr(req.path.size() - 10) != "/revisions") return false;
    TestHub::envelope_error(res, 404, "no such route");
    return true;
  });
  server.start();
  auto hub = hub_at(server);
  auto snap = hub.snapshot(unet, "");
  REQUIRE(snap);
  CHECK(snap.value().revision == "master");
  CHECK(snap.value().created_at == 0);
  CHECK(snap.value().files.size() == 4);
  // What a commit would add is not there: not an error, the date stays unknown.
  REQUIRE(hub.revision_details(unet, snap.value()));
  CHECK(snap.value().created_at == 0);
  auto absent = hub.snapshot(ModelId{"iic", "absent"}, "");
  REQUIRE_FALSE(absent);
  CHECK(absent.error() == errc::unknown_model);
}

}  // namespace modelscope_hub_test
