// The Fetcher against the test hub: verified, resumable, retried downloads
// where nothing partial is ever visible under a final name.
#include <sys/wait.h>

#include <modelres/fetcher.hpp>
#include <modelres/hubs/modelscope_hub.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <atomic>
#include <set>
#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/test_hub.hpp"

using namespace modelres;
using testing::TempDir;
using testing::TestHub;
namespace fs = std::filesystem;

namespace fetcher_test {

const ModelId unet{"iic", "cv_unet_skin_retouching_torch"};

struct Setup {
  TestHub& server;
  ModelScopeHub<CurlTransport> hub;
  HubSnapshot snap;
  std::vector<FetchItem> items;

  explicit Setup(TestHub& s) : server(s), hub(CurlTransport(), options(s)) {
    auto r = hub.snapshot(unet, "");
    if (!r) std::abort();
    snap = std::move(r).value();
    for (const auto& f : snap.files) items.push_back({f.path, f.size, f.sha256, hub.file_request(unet, snap, f), {}, {}, {}});
  }
  static ModelScopeHubOptions options(const TestHub& s) {
    ModelScopeHubOptions o;
    o.endpoint = s.endpoint();
    return o;
  }
  Fetcher<CurlTransport> fetcher(FetchOptions o = fast()) {
    return Fetcher<CurlTransport>([] { return CurlTransport(); },
                                  [this](const FetchItem& i, const ResponseHead& h, std::string_view body) {
                                    return hub.file_error(unet, snap, i.path, h, body);
                                  },
                                  std::move(o));
  }
  static FetchOptions fast() {
    FetchOptions o;
    o.backoff = std::chrono::milliseconds(10);
    o.stall_timeout = std::chrono::seconds(1);
    return o;
  }
  // Requests the hub saw for one file, in order.
  std::vector<testing::RecordedRequest> file_requests(const std::string& path) {
    std::vector<testing::RecordedRequest> out;
    for (const auto& r : server.server().requests())
      if (r.params.count("FilePath") && r.params.at("FilePath") == path) out.push_back(r);
    return out;
  }
};

void check_all_fetched(const fs::path& dir) {
  for (const auto& f : testing::unet_on_hub().files) {
    INFO(f.path);
    CHECK(testing::read_text(dir / f.path) == f.content);
  }
}

TEST_CASE("fetch: every file lands verified, no partial file is left", "[online][fetch]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.start();
  Setup s(server);
  TempDir out, partial;
  std::mutex m;
  std::map<std::string, std::uint64_t> last_per_file;
  std::uint64_t last_total = 0, total_size = 0;
  FetchOptions o = Setup::fast();
  o.on_progress = [&](const FetchProgress& p) {
    std::lock_guard<std::mutex> lock(m);
    last_per_file[std::string(p.path)] = p.file_bytes;
    last_total = std::max(last_total, p.total_bytes);
    total_size = p.total_size;
  };
  auto r = s.fetcher(o).fetch(s.items, out.str(), partial.str());
  REQUIRE(r);
  check_all_fetched(out.path());
  CHECK(testing::files_below(partial.path()).empty());
  CHECK(total_size == 300000 + 5000 + 32 + 51);
  CHECK(last_total == total_size);
  CHECK(last_per_file["pytorch_model.pt"] == 300000);
}

TEST_CASE("fetch: a partial file from an earlier run resumes with Range", "[online][fetch]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.start();
  Setup s(server);
  TempDir out, partial;
  const std::string weights = testing::pattern_bytes(300000, 7);
  testing::write_file(partial.path() / "pytorch_model.pt.incomplete", weights.substr(0, 123456));
  REQUIRE(s.fetcher().fetch(s.items, out.str(), partial.str()));
  CHECK(testing::read_text(out.path() / "pytorch_model.pt") == weights);
  const auto reqs = s.file_requests("pytorch_model.pt");
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].header("range") == "bytes=123456-");
}

TEST_CASE("fetch: a partial file of a process that is gone is taken over, one a live process writes is not touched",
          "[online][fetch][shared]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.start();
  Setup s(server);
  TempDir out, partial;
  const std::string weights = testing::pattern_bytes(300000, 7);
  const pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  REQUIRE(::waitpid(gone, nullptr, 0) == gone);
  const std::string host = detail::host_tag();
  // Claims as a killed download and a running one on this machine, and one on another machine, leave them.
  const fs::path killed = partial.path() / ("pytorch_model.pt." + host + "-" + std::to_string(gone) + "-0.incomplete");
  const fs::path running = partial.path() / ("README.md." + host + "-" + std::to_string(::getppid()) + "-0.incomplete");
  const fs::path elsewhere = partial.path() / ("configuration.json.0123456789ab-" + std::to_string(gone) + "-0.incomplete");
  testing::write_file(killed, weights.substr(0, 120000));
  testing::write_file(running, "being written");
  testing::write_file(elsewhere, "being written elsewhere");
  CHECK(detail::process_is_gone(host + "-" + std::to_string(gone) + "-0"));
  CHECK_FALSE(detail::process_is_gone(host + "-" + std::to_string(::getppid()) + "-0"));
  CHECK_FALSE(detail::process_is_gone(detail::process_tag() + "-0"));  // this process: another of its fetches may write it
  CHECK_FALSE(detail::process_is_gone("0123456789ab-" + std::to_string(gone) + "-0"));

  REQUIRE(s.fetcher().fetch(s.items, out.str(), partial.str()));
  check_all_fetched(out.path());
  const auto reqs = s.file_requests("pytorch_model.pt");
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].header("range") == "bytes=120000-");  // the killed download's bytes were resumed
  CHECK_FALSE(fs::exists(killed));
  CHECK(testing::read_text(running) == "being written");
  CHECK(testing::read_text(elsewhere) == "being written elsewhere");
}

TEST_CASE("fetch: an interrupted file rests as NAME.incomplete, which the next run resumes", "[online][fetch][shared]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  std::atomic<bool> cut{true};
  server.intercept([&](const httplib::Request& req, httplib::Response& res) {
    if (!cut || req.get_param_value("FilePath") != "pytorch_model.pt") return false;
    res.set_content_provider(300000, "application/octet-stream", [](std::size_t offset, std::size_t, httplib::DataSink& sink) {
      if (offset >= 100000) return false;  // the connection drops after 100000 bytes
      const std::string part = testing::pattern_bytes(300000, 7).substr(offset, 50000);
      sink.write(part.data(), part.size());
      return true;
    });
    return true;
  });
  server.start();
  Setup s(server);
  TempDir out, partial;
  FetchOptions once = Setup::fast();
  once.max_attempts = 1;
  REQUIRE_FALSE(s.fetcher(once).fetch(s.items, out.str(), partial.str()));
  CHECK(testing::files_below(partial.path()) == std::vector<std::string>{"pytorch_model.pt.incomplete"});
  CHECK(testing::read_text(partial.path() / "pytorch_model.pt.incomplete") == testing::pattern_bytes(300000, 7).substr(0, 100000));
  cut = false;
  REQUIRE(s.fetcher().fetch(s.items, out.str(), partial.str()));
  check_all_fetched(out.path());
  CHECK(s.file_requests("pytorch_model.pt").back().header("range") == "bytes=100000-");
  CHECK(testing::files_below(partial.path()).empty());
}

TEST_CASE("fetch: a 200 answer to a resume restarts the file, never appends", "[online][fetch]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.intercept([](const httplib::Request& req, httplib::Response&) {
    testing::ignore_range(req);  // a mirror that ignores Range
    return false;
  });
  server.start();
  Setup s(server);
  TempDir out, partial;
  const std::string weights = testing::pattern_bytes(300000, 7);
  testing::write_file(partial.path() / "pytorch_model.pt.incomplete", weights.substr(0, 100000));
  REQUIRE(s.fetcher().fetch(s.items, out.str(), partial.str()));
  CHECK(testing::read_text(out.path() / "pytorch_model.pt") == weights);
}

TEST_CASE("fetch: a partial file that is not a prefix of the real one fails the hash and starts over", "[online][fetch]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.start();
  Setup s(server);
  TempDir out, partial;
  testing::write_file(partial.path() / "pytorch_model.pt.incomplete", std::string(1000, 'Z'));  // garbage
  REQUIRE(s.fetcher().fetch(s.items, out.str(), partial.str()));
  CHECK(testing::read_text(out.path() / "pytorch_model.pt") == testing::pattern_bytes(300000, 7));
  CHECK(s.file_requests("pytorch_model.pt").size() == 2);  // resumed, hash failed, fetched whole
}

TEST_CASE("fetch: wrong bytes are checksum_mismatch and leave nothing behind", "[online][fetch]") {
  TestHub server;
  auto model = testing::unet_on_hub();
  model.files[2].sha256 = testing::sha256_hex("something else");
  server.add(model);
  server.start();
  Setup s(server);
  TempDir out, partial;
  auto r = s.fetcher().fetch(s.items, out.str(), partial.str());
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::checksum_mismatch);
  CHECK(r.error().reference == "pytorch_model.pt");
  CHECK(r.error().detail.find("after 5 attempts") != std::string::npos);
  CHECK_FALSE(fs::exists(out.path() / "pytorch_model.pt"));
  CHECK(testing::files_below(partial.path()).empty());
  CHECK(testing::read_text(out.path() / "configuration.json") == model.files[0].content);  // the others landed
}

TEST_CASE("fetch: more bytes than listed are refused", "[online][fetch]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.start();
  Setup s(server);
  s.items[2].size = 1000;  // the hub listed fewer bytes than it serves
  s.items[2].sha256.clear();
  TempDir out, partial;
  auto r = s.fetcher().fetch(s.items, out.str(), partial.str());
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::checksum_mismatch);
  CHECK_FALSE(fs::exists(out.path() / "pytorch_model.pt"));
}

TEST_CASE("fetch: a connection dropped mid-body resumes where it broke", "[online][fetch]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  const std::string weights = testing::pattern_bytes(300000, 7);
  std::atomic<int> drops{1};
  server.intercept([&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("FilePath") != "pytorch_model.pt" || drops-- <= 0) return false;
    res.set_content_provider(weights.size(), "application/octet-stream",
                             [&](std::size_t offset, std::size_t, httplib::DataSink& sink) {
                               if (offset >= 150000) return false;
                               sink.write(weights.data() + offset, 50000);
                               return true;
                             });
    return true;
  });
  server.start();
  Setup s(server);
  TempDir out, partial;
  REQUIRE(s.fetcher().fetch(s.items, out.str(), partial.str()));
  CHECK(testing::read_text(out.path() / "pytorch_model.pt") == weights);
  const auto reqs = s.file_requests("pytorch_model.pt");
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[1].header("range") == "bytes=150000-");
}

TEST_CASE("fetch: 5xx bursts are retried, 429 waits for Retry-After", "[online][fetch]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  std::atomic<int> failures{2};
  std::atomic<int> status{503};
  server.intercept([&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("FilePath") != "README.md" || failures-- <= 0) return false;
    TestHub::envelope_error(res, status, "busy");
    if (status == 429) res.set_header("Retry-After", "1");
    return true;
  });
  server.start();
  Setup s(server);
  {
    TempDir out, partial;
    REQUIRE(s.fetcher().fetch(s.items, out.str(), partial.str()));
    check_all_fetched(out.path());
    CHECK(s.file_requests("README.md").size() == 3);
  }
  {
    failures = 1;
    status = 429;
    TempDir out, partial;
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(s.fetcher().fetch(s.items, out.str(), partial.str()));
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(950));  // waited as told
    check_all_fetched(out.path());
  }
}

TEST_CASE("fetch: waits before a retry are spread at random, never shorter than asked", "[online][fetch]") {
  FetchOptions o;  // backoff 500 ms, doubling, at most 30 s
  std::set<long long> after_429, third_attempt;
  for (int i = 0; i < 200; ++i) {
    const auto w = detail::retry_wait(1, std::chrono::seconds(1), o).count();  // Retry-After: 1
    CHECK(w >= 1000);
    CHECK(w <= 1500);
    after_429.insert(w);
    const auto b = detail::retry_wait(3, std::chrono::milliseconds(0), o).count();  // no Retry-After: 500 ms doubled twice
    CHECK(b >= 2000);
    CHECK(b <= 3000);
    third_attempt.insert(b);
    CHECK(detail::retry_wait(20, std::chrono::milliseconds(0), o).count() <= 45000);  // the cap, plus half
  }
  // A fleet refused at one moment does not come back at one moment.
  CHECK(after_429.size() > 50);
  CHECK(third_attempt.size() > 50);
}

TEST_CASE("fetch: a Retry-After beyond the limit fails at once as rate_limited", "[online][fetch]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.intercept([](const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("FilePath") != "README.md") return false;
    TestHub::envelope_error(res, 429, "slow down");
    res.set_header("Retry-After", "3600");
    return true;
  });
  server.start();
  Setup s(server);
  TempDir out, partial;
  auto r = s.fetcher().fetch(s.items, out.str(), partial.str());
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::rate_limited);
  CHECK(r.error().detail.find("Retry-After: 3600") != std::string::npos);
  CHECK(s.file_requests("README.md").size() == 1);
}

TEST_CASE("fetch: a file the hub does not have is a typed error, others land", "[online][fetch]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.start();
  Setup s(server);
  HubFile missing{"not_on_hub.bin", 3, "", "", "", ""};
  s.items.push_back({missing.path, 3, "", s.hub.file_request(unet, s.snap, missing), {}, {}, {}});
  TempDir out, partial;
  auto r = s.fetcher().fetch(s.items, out.str(), partial.str());
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::unknown_model);
  CHECK(r.error().detail.find("downloading not_on_hub.bin: HTTP 404") == 0);
  check_all_fetched(out.path());
}

TEST_CASE("fetch: many files in parallel", "[online][fetch]") {
  TestHub server;
  auto model = testing::unet_on_hub();
  for (int i = 0; i < 12; ++i)
    model.files.push_back({"shards/part-" + std::to_string(i) + ".bin", testing::pattern_bytes(200000 + i, 100 + i),
                           "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9", nullptr});
  server.add(model);
  server.start();
  Setup s(server);
  TempDir out, partial;
  FetchOptions o = Setup::fast();
  o.parallel = 4;
  REQUIRE(s.fetcher(o).fetch(s.items, out.str(), partial.str()));
  for (const auto& f : model.files) CHECK(testing::read_text(out.path() / f.path) == f.content);
}

TEST_CASE("fetch: a cancel flag stops it", "[online][fetch]") {
  TestHub server;
  server.add(testing::unet_on_hub());
  server.start();
  Setup s(server);
  TempDir out, partial;
  std::atomic<bool> stop{true};
  FetchOptions o = Setup::fast();
  o.cancel = &stop;
  auto r = s.fetcher(o).fetch(s.items, out.str(), partial.str());
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::cancelled);
  CHECK_FALSE(fs::exists(out.path() / "pytorch_model.pt"));
}

TEST_CASE("fetch: a full disk is disk_full, and nothing half-written is visible", "[online][fetch]") {
  if (::geteuid() != 0) {
    WARN("needs root to mount a small tmpfs in a private mount namespace; CI runs as root");
    return;
  }
  TempDir tiny;
  // The hub starts in the child: forking while its threads run could leave
  // the child a lock one of them held.
  const int code = testing::run_on_128k_disk(tiny.path(), [&] {
    TestHub server;
    server.add(testing::unet_on_hub());
    server.start();
    Setup s(server);
    auto r = s.fetcher().fetch(s.items, (tiny.path() / "out").native(), (tiny.path() / "partial").native());
    if (r) return 91;
    if (fs::exists(tiny.path() / "out/pytorch_model.pt")) return 92;
    return r.error().code.value();
  });
  CHECK(code == static_cast<int>(errc::disk_full));
}

}  // namespace fetcher_test
