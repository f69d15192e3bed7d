// The Hub extension point: a hub written here, for a protocol neither real hub
// speaks (a company's artifact store: one JSON index per version, files below
// it), served on 127.0.0.1 and used through OnlinePolicy with the one Fetcher.
#include <modelres/modelres.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/http_server.hpp"
#include "../support/test_hub.hpp"

using namespace modelres;
using testing::TempDir;
namespace fs = std::filesystem;

namespace user_hub_test {

// The client side, as a user would write it against docs/traits.md.
template <class Transport>
class ArtifactStoreHub {
 public:
  struct Options {
    std::string base_url;
  };

  ArtifactStoreHub(Transport transport, Options options) : transport_(std::move(transport)), options_(std::move(options)) {}

  result<HubSnapshot> snapshot(const ModelId& id, std::string_view revision) {
    const std::string version(revision.empty() ? "latest" : revision);
    HttpRequest req;
    req.url = version_url(id, version);
    std::string body;
    auto sent = transport_.send(req, [&](const ResponseHead&, std::string_view chunk) {
      body.append(chunk);
      return true;
    });
    if (!sent) return std::move(sent).error();
    if (sent.value().status != 200) return status_error(id, version, sent.value().status);
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("files") || !j["files"].is_array())
      return Error(errc::malformed_response, id.str(), "no file list").with_revision(version);
    HubSnapshot snap;
    snap.revision = j.value("version", version);
    snap.endpoint = options_.base_url;
    for (const auto& f : j["files"]) {
      HubFile file;
      file.path = f.value("name", "");
      file.size = f.value("bytes", std::uint64_t{0});
      file.sha256 = f.value("sha256", "");
      snap.files.push_back(std::move(file));  // paths unchecked on purpose: OnlinePolicy checks them too
    }
    return snap;
  }

  HttpRequest file_request(const ModelId& id, const HubSnapshot& snapshot, const HubFile& file) const {
    HttpRequest req;
    req.url = version_url(id, snapshot.revision) + "/blobs/" + file.path;
    return req;
  }

  Error file_error(const ModelId& id, const HubSnapshot& snapshot, const std::string& path, const ResponseHead& head,
                   std::string_view) const {
    Error e = status_error(id, snapshot.revision, head.status);
    e.detail = "downloading " + path + ": " + e.detail;
    return e;
  }

 private:
  std::string version_url(const ModelId& id, const std::string& version) const {
    return options_.base_url + "/v2/" + id.owner + "/" + id.name + "/versions/" + version;
  }
  static Error status_error(const ModelId& id, const std::string& version, int status) {
    const errc code = status == 404 ? errc::unknown_model : status == 429 ? errc::rate_limited : errc::server_error;
    return Error(code, id.str(), "HTTP " + std::to_string(status)).with_revision(version);
  }

  Transport transport_;
  Options options_;
};

static_assert(is_hub_for<ArtifactStoreHub<CurlTransport>, CurlTransport>::value);
static_assert(!is_hub_for<ArtifactStoreHub<CurlTransport>, int>::value);
static_assert(is_hub_for<ModelScopeHub<CurlTransport>, CurlTransport>::value);

struct StoredFile {
  std::string content;
  std::string listed_sha256;  // empty: the right one
};

// The server side: versions of one model, each an index and its files.
class ArtifactStore {
 public:
  ArtifactStore() {
    server_.routes().Get(R"(/v2/acme/detector/versions/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string version = req.matches[1].str() == "latest" ? "2.1.0" : req.matches[1].str();
      if (version != "2.1.0") {
        res.status = 404;
        return;
      }
      nlohmann::json files = nlohmann::json::array();
      for (const auto& [name, f] : files_)
        files.push_back({{"name", name}, {"bytes", f.content.size()},
                         {"sha256", f.listed_sha256.empty() ? testing::sha256_hex(f.content) : f.listed_sha256}});
      res.set_content(nlohmann::json({{"version", version}, {"files", files}}).dump(), "application/json");
    });
    server_.routes().Get(R"(/v2/acme/detector/versions/2\.1\.0/blobs/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      const auto it = files_.find(req.matches[1].str());
      if (it == files_.end()) {
        res.status = 404;
        return;
      }
      res.set_content(it->second.content, "application/octet-stream");
    });
  }
  std::map<std::string, StoredFile> files_{{"detector.onnx", {testing::pattern_bytes(70000, 3), ""}},
                                           {"labels/coco.txt", {"person\nbicycle\ncar\n", ""}}};
  testing::HttpServer server_;
};

using UserOnline = OnlinePolicy<CurlTransport, ArtifactStoreHub<CurlTransport>>;

Resolver<UserOnline, ModelScopeCache> resolver(ArtifactStore& store, const TempDir& root) {
  UserOnline::Options o;
  o.hub.base_url = store.server_.url();
  o.fetch.backoff = std::chrono::milliseconds(5);
  o.fetch.max_attempts = 2;
  return Resolver<UserOnline, ModelScopeCache>(ModelScopeCache(root.path()), UserOnline(o));
}

std::size_t blob_requests(testing::HttpServer& server) {
  std::size_t n = 0;
  for (const auto& r : server.requests()) n += r.path.find("/blobs/") != std::string::npos;
  return n;
}

TEST_CASE("user hub: its snapshot is fetched, verified and cached, and a current cache costs its one request",
          "[online][hub_trait]") {
  ArtifactStore store;
  store.server_.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto first = resolver(store, root).resolve("acme/detector");
  REQUIRE(first);
  CHECK(first.value().completeness == Completeness::verified);
  CHECK(first.value().revision == "2.1.0");
  CHECK(testing::read_text(first.value().directory / "detector.onnx") == store.files_["detector.onnx"].content);
  CHECK(testing::read_text(first.value().directory / "labels/coco.txt") == "person\nbicycle\ncar\n");
  CHECK(blob_requests(store.server_) == 2);

  const std::size_t before = store.server_.requests().size();
  auto again = resolver(store, root).resolve("acme/detector");
  REQUIRE(again);
  CHECK(again.value().hub_check == HubCheck::current);
  CHECK(store.server_.requests().size() - before == 1);
}

TEST_CASE("user hub: bytes that do not hash to what it listed are refused by the shared Fetcher", "[online][hub_trait]") {
  ArtifactStore store;
  store.files_["detector.onnx"].listed_sha256 = std::string(64, 'a');
  store.server_.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto r = resolver(store, root).resolve("acme/detector");
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::checksum_mismatch);
  CHECK(r.error().detail.find("detector.onnx") != std::string::npos);
  CHECK_FALSE(fs::exists(root.path() / "models/acme/detector/detector.onnx"));
}

TEST_CASE("user hub: a listed path that leaves the model directory is refused by OnlinePolicy itself",
          "[online][hub_trait]") {
  ArtifactStore store;
  store.files_["../../../escaped.txt"] = {"owned", ""};
  store.server_.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto r = resolver(store, root).resolve("acme/detector");
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::unsafe_file_list);
  CHECK(blob_requests(store.server_) == 0);
  CHECK_FALSE(fs::exists(root.path() / "escaped.txt"));
  CHECK_FALSE(fs::exists(root.path().parent_path() / "escaped.txt"));
}

TEST_CASE("user hub: its own typed errors come through, with the model and version", "[online][hub_trait]") {
  ArtifactStore store;
  store.server_.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  UserOnline::Options o;
  o.hub.base_url = store.server_.url();
  o.strict = true;
  Resolver<UserOnline, ModelScopeCache> r(ModelScopeCache(root.path()), UserOnline(o));
  ResolveOptions pinned;
  pinned.revision = "9.9.9";
  auto missing = r.resolve("acme/detector", pinned);
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == errc::unknown_model);
  CHECK(missing.error().reference == "acme/detector");
  CHECK(missing.error().revision == "9.9.9");
}

}  // namespace user_hub_test
