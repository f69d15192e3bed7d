// The Fetcher on large files: byte ranges over several connections, checked
// whole before they are renamed into place, resumed range by range across
// runs (a process killed with SIGKILL), and fetched in one stream from a
// server that does not serve ranges as asked.
#include <modelres/fetcher.hpp>
#include <modelres/hubs/modelscope_hub.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <set>
#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/test_hub.hpp"

using namespace modelres;
using testing::TempDir;
using testing::TestHub;
namespace fs = std::filesystem;

namespace ranged_fetch_test {

const ModelId unet{"iic", "cv_unet_skin_retouching_torch"};
constexpr std::size_t weights_size = 3000000;  // pytorch_model.pt
constexpr std::size_t joint_size = 2000000;    // assets/weights/joint.pth

// CurlTransport, counting the bytes of file that reach the Fetcher (2xx bodies).
struct CountingTransport {
  std::atomic<std::uint64_t>* received;
  CurlTransport curl;
  result<HttpResponse> send(const HttpRequest& req, const BodySink& sink) {
    return curl.send(req, [&](const ResponseHead& head, std::string_view chunk) {
      if (head.status / 100 == 2) *received += chunk.size();
      return sink(head, chunk);
    });
  }
};

FetchOptions ranged(unsigned connections = 4) {
  FetchOptions o;
  o.parallel = connections;
  o.ranged_threshold = 1 << 20;  // ranges of at least 256 KiB
  o.backoff = std::chrono::milliseconds(10);
  o.stall_timeout = std::chrono::seconds(5);
  return o;
}

struct Setup {
  ModelScopeHub<CurlTransport> hub;
  HubSnapshot snap;
  std::vector<FetchItem> items;
  std::atomic<std::uint64_t> received{0};

  explicit Setup(const std::string& endpoint) : hub(CurlTransport(), options(endpoint)) {
    auto r = hub.snapshot(unet, "");
    if (!r) std::abort();
    snap = std::move(r).value();
    for (const auto& f : snap.files) items.push_back({f.path, f.size, f.sha256, hub.file_request(unet, snap, f), {}, {}, {}});
  }
  void only(const std::string& path) {
    items.erase(std::remove_if(items.begin(), items.end(), [&](const FetchItem& i) { return i.path != path; }), items.end());
  }
  static ModelScopeHubOptions options(const std::string& endpoint) {
    ModelScopeHubOptions o;
    o.endpoint = endpoint;
    return o;
  }
  result<void> fetch(const fs::path& out, const fs::path& partial, FetchOptions o = ranged()) {
    Fetcher<CountingTransport> fetcher([this] { return CountingTransport{&received, CurlTransport()}; },
                                       [this](const FetchItem& i, const ResponseHead& h, std::string_view body) {
                                         return hub.file_error(unet, snap, i.path, h, body);
                                       },
                                       std::move(o));
    return fetcher.fetch(items, out.native(), partial.native());
  }
};

struct Range {
  std::uint64_t first = 0, last = 0;
  bool operator<(const Range& o) const { return first < o.first; }
};

// The byte ranges the hub was asked for one file ("bytes=A-B"), in order of
// their start; an open or missing Range is [A, size).
std::vector<Range> asked(testing::HttpServer& server, const std::string& path, std::uint64_t size) {
  std::vector<Range> out;
  for (const auto& r : server.requests()) {
    if (!r.params.count("FilePath") || r.params.at("FilePath") != path) continue;
    unsigned long long a = 0, b = 0;
    const std::string range = r.header("range");
    if (std::sscanf(range.c_str(), "bytes=%llu-%llu", &a, &b) == 2)
      out.push_back({a, b});
    else if (std::sscanf(range.c_str(), "bytes=%llu-", &a) == 1)
      out.push_back({a, size - 1});
    else
      out.push_back({0, size - 1});
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("ranged fetch: large files come in ranges that cover each exactly once, over at most `parallel` connections",
          "[online][fetch][ranged]") {
  TestHub server;
  const auto model = testing::unet_on_hub(weights_size, joint_size);
  server.add(model);
  testing::Concurrency concurrency;
  server.intercept([&](const httplib::Request&, httplib::Response&) { return concurrency.hold(); });
  server.start();
  Setup s(server.endpoint());
  TempDir out, partial;
  REQUIRE(s.fetch(out.path(), partial.path()));
  for (const auto& f : model.files) CHECK(testing::read_text(out.path() / f.path) == f.content);
  CHECK(testing::files_below(partial.path()).empty());  // no data, no journal left

  for (const auto& [path, size] : {std::pair<std::string, std::uint64_t>{"pytorch_model.pt", weights_size},
                                   {"assets/weights/joint.pth", joint_size}}) {
    INFO(path);
    const auto ranges = asked(server.server(), path, size);
    REQUIRE(ranges.size() > 1);
    std::uint64_t next = 0;
    for (const auto& r : ranges) {
      CHECK(r.first == next);  // no gap, no overlap
      next = r.last + 1;
    }
    CHECK(next == size);
  }
  CHECK(s.received == weights_size + joint_size + model.files[0].content.size() + model.files[1].content.size());
  CHECK(concurrency.most <= 4);  // whole files and ranges share the 4 connections
  CHECK(concurrency.most >= 3);
}

TEST_CASE("ranged fetch: a file at or below the threshold, or without a listed hash, comes in one stream",
          "[online][fetch][ranged]") {
  TestHub server;
  server.add(testing::unet_on_hub(weights_size, joint_size));
  server.start();
  Setup s(server.endpoint());
  s.items[3].sha256.clear();  // joint.pth: only its size is known
  FetchOptions o = ranged();
  o.ranged_threshold = weights_size;
  TempDir out, partial;
  REQUIRE(s.fetch(out.path(), partial.path(), o));
  CHECK(asked(server.server(), "pytorch_model.pt", weights_size).size() == 1);
  CHECK(asked(server.server(), "assets/weights/joint.pth", joint_size).size() == 1);
  CHECK(testing::read_text(out.path() / "pytorch_model.pt") == testing::pattern_bytes(weights_size, 7));
}

TEST_CASE("ranged fetch: a server that ignores Range gets the file in one stream, never appended",
          "[online][fetch][ranged]") {
  TestHub server;
  server.add(testing::unet_on_hub(weights_size, joint_size));
  server.intercept([](const httplib::Request& req, httplib::Response&) {
    testing::ignore_range(req);
    return false;
  });
  server.start();
  Setup s(server.endpoint());
  TempDir out, partial;
  REQUIRE(s.fetch(out.path(), partial.path()));
  CHECK(testing::read_text(out.path() / "pytorch_model.pt") == testing::pattern_bytes(weights_size, 7));
  CHECK(testing::files_below(partial.path()).empty());
  // The first range was answered with 200: the file was asked for once more, whole.
  const auto requests = server.server().requests();
  std::vector<std::string> ranges;
  for (const auto& r : requests)
    if (r.params.count("FilePath") && r.params.at("FilePath") == "pytorch_model.pt") ranges.push_back(r.header("range"));
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0] == "bytes=0-262143");  // ranges of a quarter of the threshold
  CHECK(ranges[1].empty());
}

TEST_CASE("ranged fetch: a Content-Range other than the one asked for sends the file to one stream",
          "[online][fetch][ranged]") {
  TestHub server;
  server.add(testing::unet_on_hub(weights_size, joint_size));
  server.intercept([](const httplib::Request& req, httplib::Response&) {
    // A mirror that serves "bytes=A-" for "bytes=A-B": the rest of the file.
    auto& ranges = const_cast<httplib::Request&>(req).ranges;
    if (!ranges.empty()) ranges[0].second = -1;
    return false;
  });
  server.start();
  Setup s(server.endpoint());
  TempDir out, partial;
  REQUIRE(s.fetch(out.path(), partial.path()));
  CHECK(testing::read_text(out.path() / "pytorch_model.pt") == testing::pattern_bytes(weights_size, 7));
  CHECK(testing::read_text(out.path() / "assets/weights/joint.pth") == testing::pattern_bytes(joint_size, 9));
  CHECK(testing::files_below(partial.path()).empty());
}

TEST_CASE("ranged fetch: an ETag that changes between ranges sends the file to one stream",
          "[online][fetch][ranged]") {
  TestHub server;
  server.add(testing::unet_on_hub(weights_size, joint_size));
  std::atomic<int> served{0};
  server.intercept([&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("FilePath") == "pytorch_model.pt")
      res.set_header("ETag", ++served == 1 ? "\"v1\"" : "\"v2\"");  // the file changed after the first range
    return false;
  });
  server.start();
  Setup s(server.endpoint());
  TempDir out, partial;
  REQUIRE(s.fetch(out.path(), partial.path()));
  CHECK(testing::read_text(out.path() / "pytorch_model.pt") == testing::pattern_bytes(weights_size, 7));
  const auto ranges = asked(server.server(), "pytorch_model.pt", weights_size);
  CHECK(std::any_of(ranges.begin(), ranges.end(), [](const Range& r) { return r.first == 0 && r.last == weights_size - 1; }));
  CHECK(testing::files_below(partial.path()).empty());
}

TEST_CASE("ranged fetch: a failing range is retried alone, a 404 fails the file with the hub's error",
          "[online][fetch][ranged]") {
  TestHub server;
  server.add(testing::unet_on_hub(weights_size, joint_size));
  std::atomic<int> busy{2};
  std::atomic<bool> gone{false};
  server.intercept([&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("FilePath") != "pytorch_model.pt" || req.get_header_value("Range") == "bytes=0-262143") return false;
    if (!gone && busy-- <= 0) return false;
    testing::ignore_range(req);  // an error answer is whole (cpp-httplib would cut the range from it)
    if (gone) {
      res.status = 404;
      res.set_content(R"({"Code":10010205001,"Message":"file not found","Success":false})", "application/json");
      return true;
    }
    TestHub::envelope_error(res, 503, "busy");
    return true;
  });
  server.start();
  {
    Setup s(server.endpoint());
    TempDir out, partial;
    auto r = s.fetch(out.path(), partial.path());
    INFO((r ? std::string() : r.error().message()));
    REQUIRE(r);
    CHECK(testing::read_text(out.path() / "pytorch_model.pt") == testing::pattern_bytes(weights_size, 7));
    CHECK(s.received == weights_size + joint_size + 32 + 51);  // nothing fetched twice
  }
  {
    gone = true;
    Setup s(server.endpoint());
    TempDir out, partial;
    auto r = s.fetch(out.path(), partial.path());
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::unknown_model);
    CHECK(r.error().detail.find("pytorch_model.pt") != std::string::npos);
    CHECK_FALSE(fs::exists(out.path() / "pytorch_model.pt"));
    // What came stays for the next run: the data and its journal.
    CHECK(fs::exists(partial.path() / "pytorch_model.pt.ranges.incomplete"));
    CHECK(fs::exists(partial.path() / "pytorch_model.pt.ranges.json"));
  }
}

TEST_CASE("ranged fetch: a one-stream partial keeps its prefix, and is fetched no more", "[online][fetch][ranged]") {
  TestHub server;
  server.add(testing::unet_on_hub(weights_size, joint_size));
  server.start();
  Setup s(server.endpoint());
  TempDir out, partial;
  const std::string weights = testing::pattern_bytes(weights_size, 7);
  testing::write_file(partial.path() / "pytorch_model.pt.incomplete", weights.substr(0, 1000000));
  REQUIRE(s.fetch(out.path(), partial.path()));
  CHECK(testing::read_text(out.path() / "pytorch_model.pt") == weights);
  CHECK(s.received == weights_size - 1000000 + joint_size + 32 + 51);
  CHECK(testing::files_below(partial.path()).empty());
}

TEST_CASE("ranged fetch: ranges a journal vouches for that do not hash (a power loss) are fetched again in one stream",
          "[online][fetch][ranged]") {
  TestHub server;
  server.add(testing::unet_on_hub(weights_size, joint_size));
  server.start();
  Setup s(server.endpoint());
  TempDir out, partial;
  // The journal says the first range is written; the disk has zeros there.
  const std::string weights = testing::pattern_bytes(weights_size, 7);
  std::string data = weights;
  std::fill(data.begin(), data.begin() + 786432, '\0');
  testing::write_file(partial.path() / "pytorch_model.pt.ranges.incomplete", data);
  detail::RangeJournal journal(weights_size, testing::sha256_hex(weights), 786432);
  journal.done[0] = 786432;
  testing::write_file(partial.path() / "pytorch_model.pt.ranges.json", journal.text());
  REQUIRE(s.fetch(out.path(), partial.path()));
  CHECK(testing::read_text(out.path() / "pytorch_model.pt") == weights);
  CHECK(testing::files_below(partial.path()).empty());
}

TEST_CASE("ranged fetch: a journal for another file, or torn, is not trusted", "[online][fetch][ranged]") {
  TestHub server;
  server.add(testing::unet_on_hub(weights_size, joint_size));
  server.start();
  const std::string weights = testing::pattern_bytes(weights_size, 7);
  for (const std::string& journal_text :
       {detail::RangeJournal(weights_size, testing::sha256_hex("another file"), 786432).text(),
        std::string("{\"format\":1,\"size\":3000000,\"check\":\"") + testing::sha256_hex(weights) +
            "\",\"range_size\":786432,\"etag\":\"\",\"done\":[786432,0,0"}) {
    Setup s(server.endpoint());
    TempDir out, partial;
    testing::write_file(partial.path() / "pytorch_model.pt.ranges.incomplete", std::string(weights_size, 'x'));
    testing::write_file(partial.path() / "pytorch_model.pt.ranges.json", journal_text);
    REQUIRE(s.fetch(out.path(), partial.path()));
    CHECK(testing::read_text(out.path() / "pytorch_model.pt") == weights);
    CHECK(s.received == weights_size + joint_size + 32 + 51);  // started over, every byte fetched once
  }
}

TEST_CASE("ranged fetch: killed with SIGKILL at any moment, the next run resumes each range and serves the right bytes",
          "[online][fetch][ranged]") {
  // The hub runs in a child of its own, so that this process forks the
  // downloaders while it has one thread.
  int port_pipe[2];
  REQUIRE(::pipe(port_pipe) == 0);
  const pid_t hub = ::fork();
  if (hub == 0) {
    TestHub server;
    server.add(testing::unet_on_hub(weights_size, joint_size));
    const std::string weights = testing::pattern_bytes(weights_size, 7);
    // 8 KiB every 10 ms per connection: a download that takes long enough to be killed midway.
    server.intercept([&](const httplib::Request& req, httplib::Response& res) {
      if (req.get_param_value("FilePath") != "pytorch_model.pt") return false;
      res.set_content_provider(weights.size(), "application/octet-stream",
                               [&](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                                 std::this_thread::sleep_for(std::chrono::milliseconds(10));
                                 sink.write(weights.data() + offset, std::min<std::size_t>(length, 8192));
                                 return true;
                               });
      return true;
    });
    server.start();
    const int port = server.server().port();
    if (::write(port_pipe[1], &port, sizeof port) != sizeof port) ::_exit(1);
    for (;;) ::pause();
  }
  int port = 0;
  REQUIRE(::read(port_pipe[0], &port, sizeof port) == sizeof port);
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(port);
  struct KillHub {
    pid_t pid;
    ~KillHub() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } kill_hub{hub};

  TempDir out, partial;
  const std::string weights = testing::pattern_bytes(weights_size, 7);
  // The killed process's partial files carry its claim in their names.
  const auto claimed = [&](const std::string& suffix) {
    std::error_code ec;  // the downloader renames files while this looks
    for (fs::directory_iterator it(partial.path(), ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string f = it->path().filename().native();
      if (f.rfind("pytorch_model.pt.", 0) == 0 && f.size() > suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
        return it->path();
    }
    return partial.path() / ("pytorch_model.pt" + suffix);
  };
  const auto journaled = [&] {
    detail::RangeJournal j;
    std::string text;
    if (detail::read_file(claimed(".ranges.json").native(), text, 1 << 20) ||
        !detail::RangeJournal::parse(text, weights_size, testing::sha256_hex(weights), j))
      return detail::RangeJournal();
    return j;
  };
  const auto written = [](const detail::RangeJournal& j) {
    std::uint64_t n = 0;
    for (auto d : j.done) n += d;
    return n;
  };
  // Killed at a quarter, a half and three quarters; each time, every byte the
  // journal claims is on disk, and nothing is under the final name.
  for (int quarter = 1; quarter <= 3; ++quarter) {
    INFO("killed at quarter " << quarter);
    const pid_t downloader = ::fork();
    if (downloader == 0) {
      Setup s(endpoint);
      s.only("pytorch_model.pt");
      FetchOptions o = ranged();
      o.durability = Durability::until_restart;
      ::_exit(s.fetch(out.path(), partial.path(), o) ? 0 : 1);
    }
    for (int waited = 0; waited < 30000 && written(journaled()) < quarter * weights_size / 4; ++waited)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ::kill(downloader, SIGKILL);
    int status = 0;
    ::waitpid(downloader, &status, 0);
    CHECK(WIFSIGNALED(status));
    CHECK_FALSE(fs::exists(out.path() / "pytorch_model.pt"));
    const detail::RangeJournal j = journaled();
    REQUIRE(j.done.size() > 1);
    const std::string data = testing::read_text(claimed(".ranges.incomplete"));
    REQUIRE(data.size() == weights_size);
    for (std::size_t i = 0; i < j.done.size(); ++i)
      CHECK(data.compare(j.start(i), j.done[i], weights, j.start(i), j.done[i]) == 0);
  }
  const std::uint64_t before = written(journaled());
  CHECK(before >= 3 * weights_size / 4);
  Setup s(endpoint);
  s.only("pytorch_model.pt");
  REQUIRE(s.fetch(out.path(), partial.path()));
  CHECK(testing::read_text(out.path() / "pytorch_model.pt") == weights);
  CHECK(s.received == weights_size - before);  // each range resumed where its journal ended
  CHECK(testing::files_below(partial.path()).empty());
}

TEST_CASE("ranged fetch: a disk too small for the file is disk_full before any byte is fetched", "[online][fetch][ranged]") {
  if (::geteuid() != 0) {
    WARN("needs root to mount a small tmpfs in a private mount namespace; CI runs as root");
    return;
  }
  TempDir tiny;
  const int code = testing::run_on_128k_disk(tiny.path(), [&] {
    TestHub server;
    server.add(testing::unet_on_hub(weights_size, joint_size));
    server.start();
    Setup s(server.endpoint());
    auto r = s.fetch(tiny.path() / "out", tiny.path() / "partial");
    if (r) return 91;
    if (fs::exists(tiny.path() / "out/pytorch_model.pt") || !testing::files_below(tiny.path() / "partial").empty()) return 92;
    if (asked(server.server(), "pytorch_model.pt", weights_size).size() != 0) return 93;
    return r.error().code.value();
  });
  CHECK(code == static_cast<int>(errc::disk_full));
}

}  // namespace ranged_fetch_test
