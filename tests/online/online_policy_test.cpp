// OnlinePolicy end to end: the test hub, CurlTransport, the real cache layout.
#include <modelres/modelres.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <sys/wait.h>

#include <map>
#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/http_server.hpp"
#include "../support/test_hub.hpp"

using namespace modelres;
using testing::TempDir;
using testing::TestHub;
namespace fs = std::filesystem;

namespace online_policy_test {

const std::string unet_id = "iic/cv_unet_skin_retouching_torch";

using Online = Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache>;

Online online(const TestHub& hub, const TempDir& root, bool strict = false, Durability durability = Durability::on_disk) {
  OnlineOptions o;
  o.strict = strict;
  o.hub.endpoint = hub.endpoint();
  o.fetch.backoff = std::chrono::milliseconds(10);
  o.fetch.max_attempts = 2;
  o.fetch.durability = durability;
  return Online(ModelScopeCache(root.path()), OnlinePolicy<CurlTransport>(o));
}

// What the cache alone says of the model afterwards.
result<ResolvedModel> cached(const TempDir& root) {
  return Resolver<LocalOnlyPolicy, ModelScopeCache>(ModelScopeCache(root.path())).resolve(unet_id);
}

std::size_t file_requests(TestHub& hub) {
  std::size_t n = 0;
  for (const auto& r : hub.server().requests()) n += r.params.count("FilePath");
  return n;
}

TEST_CASE("online: a cold cache is filled, verified, and readable by the Python client's layout", "[online][policy]") {
  TestHub hub;
  hub.add(testing::unet_on_hub());
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto r = online(hub, root).resolve(unet_id);
  REQUIRE(r);
  const fs::path dir = root.path() / "models/iic/cv_unet_skin_retouching_torch";
  CHECK(r.value().directory == dir);
  CHECK(r.value().revision == "master");
  CHECK(r.value().completeness == Completeness::verified);
  CHECK(r.value().hub_check == HubCheck::current);
  for (const auto& f : testing::unet_on_hub().files) CHECK(testing::read_text(dir / f.path) == f.content);
  // The client's metadata, as it writes it: .msc records with per-file commits, .mdl, .mv.
  auto msc = detail::pickle::read(testing::read_text(dir / ".msc"));
  REQUIRE(msc);
  CHECK(msc.value().root_node().items.size() == 4);
  CHECK(testing::read_text(dir / ".mv") == "Revision:master,CreatedAt:1713419382");
  CHECK(testing::read_text(dir / ".mdl") == detail::pickle::Writer::dict_only({{"id", unet_id}}));
  CHECK(fs::exists(dir / ".modelres"));
  CHECK(fs::exists(root.path() / ".lock/iic___cv_unet_skin_retouching_torch"));
  // Offline afterwards, completeness is proven by the manifest.
  auto offline = cached(root);
  REQUIRE(offline);
  CHECK(offline.value().completeness == Completeness::verified);
  CHECK(offline.value().files.size() == 4);
}

TEST_CASE("online: a current cache costs one request, takes no lock and writes nothing", "[online][policy]") {
  TestHub hub;
  hub.add(testing::unet_on_hub());
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  REQUIRE(online(hub, root).resolve(unet_id));
  const fs::path dir = root.path() / "models/iic/cv_unet_skin_retouching_torch";
  std::map<std::string, fs::file_time_type> written;
  for (const char* name : {".msc", ".mdl", ".mv", ".modelres"}) written[name] = fs::last_write_time(dir / name);
  // Another process holds the model's lock (downloading something else): a check need not wait for it.
  const int held = ::open((root.path() / ".lock/iic___cv_unet_skin_retouching_torch").c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(held >= 0);
  REQUIRE(::flock(held, LOCK_EX | LOCK_NB) == 0);
  OnlineOptions o;
  o.hub.endpoint = hub.endpoint();
  o.fetch.lock_timeout = std::chrono::milliseconds(100);
  Online impatient(ModelScopeCache(root.path()), OnlinePolicy<CurlTransport>(o));
  const std::size_t before = hub.server().requests().size();
  auto again = impatient.resolve(unet_id);
  ::close(held);
  REQUIRE(again);
  CHECK(again.value().hub_check == HubCheck::current);
  CHECK(again.value().completeness == Completeness::verified);
  CHECK(again.value().directory == dir);
  CHECK(again.value().model_id == unet_id);
  CHECK(again.value().files.size() == 4);
  CHECK(hub.server().requests().size() - before == 1);
  CHECK(hub.paths().back() == "/api/v1/models/iic/cv_unet_skin_retouching_torch/repo/files");
  for (const auto& [name, time] : written) CHECK(fs::last_write_time(dir / name) == time);
}

TEST_CASE("online: one changed file on the hub is the only download", "[online][policy]") {
  TestHub hub;
  auto model = testing::unet_on_hub();
  hub.add(model);
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto resolver = online(hub, root);
  REQUIRE(resolver.resolve(unet_id));
  model.files[1].content = "# updated README\n";
  model.files[1].revision = "ffffffffffffffffffffffffffffffffffffffff";
  hub.add(model);
  const std::size_t before = file_requests(hub);
  auto r = resolver.resolve(unet_id);
  REQUIRE(r);
  CHECK(file_requests(hub) - before == 1);
  CHECK(testing::read_text(r.value().directory / "README.md") == "# updated README\n");
}

TEST_CASE("online: files the Python client downloaded are verified by hash, not fetched again", "[online][policy]") {
  TestHub hub;
  auto model = testing::unet_on_hub();
  hub.add(model);
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  // A classic cache with the hub's bytes, recorded in .msc at the hub's commits.
  const fs::path dir = root.path() / "models/iic/cv_unet_skin_retouching_torch";
  std::vector<detail::pickle::StringDict> records;
  for (const auto& f : model.files) {
    testing::write_file(dir / f.path, f.content);
    records.push_back({{"Path", f.path}, {"Revision", f.revision}});
  }
  testing::write_file(dir / "pytorch_model.pt", "tampered");  // one file does not match
  testing::write_file(dir / ".msc", detail::pickle::Writer::list_of_dicts(records));
  // The client writes .msc through mkstemp: 0600. Rewriting it keeps that mode.
  const auto owner_only = fs::perms::owner_read | fs::perms::owner_write;
  fs::permissions(dir / ".msc", owner_only);
  auto r = online(hub, root).resolve(unet_id);
  REQUIRE(r);
  CHECK(r.value().directory == dir);
  CHECK(file_requests(hub) == 1);
  CHECK(testing::read_text(dir / "pytorch_model.pt") == model.files[2].content);
  CHECK((fs::status(dir / ".msc").permissions() & fs::perms::all) == owner_only);
  CHECK(testing::read_text(dir / ".msc") == detail::pickle::Writer::list_of_dicts(records));
}

TEST_CASE("online: an empty file listed by size and hash is created without a request", "[online][policy]") {
  TestHub hub;
  auto model = testing::unet_on_hub();
  model.files.push_back({"__init__.py", "", "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9", nullptr});
  hub.add(model);
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto r = online(hub, root).resolve(unet_id);
  REQUIRE(r);
  CHECK(fs::is_regular_file(r.value().directory / "__init__.py"));
  CHECK(fs::file_size(r.value().directory / "__init__.py") == 0);
  CHECK(file_requests(hub) == model.files.size() - 1);
  std::size_t asked_for_empty = 0;
  for (const auto& req : hub.server().requests())
    for (auto [it, end] = req.params.equal_range("FilePath"); it != end; ++it) asked_for_empty += it->second == "__init__.py";
  CHECK(asked_for_empty == 0);
  auto offline = cached(root);
  REQUIRE(offline);
  CHECK(offline.value().completeness == Completeness::verified);
  CHECK(offline.value().files.size() == model.files.size());
}

// The manifest with its unsynced_boot line replaced: what a restart looks like to it.
void pretend_restarted(const fs::path& manifest) {
  std::string text = testing::read_text(manifest);
  const std::size_t at = text.find("unsynced_boot ");
  REQUIRE(at != std::string::npos);
  text.replace(at, text.find('\n', at) - at, "unsynced_boot 0b5e0f5c-0000-4000-8000-000000000000");
  testing::write_file(manifest, text);
}

TEST_CASE("online: until_restart skips the disk, after a restart its files are hashed before they are trusted",
          "[online][policy][durability]") {
  TestHub hub;
  auto model = testing::unet_on_hub();
  hub.add(model);
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto r = online(hub, root, false, Durability::until_restart).resolve(unet_id);
  REQUIRE(r);
  CHECK(r.value().completeness == Completeness::verified);
  const fs::path dir = r.value().directory;
  CHECK(testing::read_text(dir / ".modelres").find("unsynced_boot " + detail::current_boot_id() + "\n") != std::string::npos);
  REQUIRE(cached(root));
  CHECK(cached(root).value().completeness == Completeness::verified);  // this boot: the page cache holds what was verified

  // A crash took the tail of one file (right size, zeros: what XFS can show) and the machine restarted.
  testing::write_file(dir / "pytorch_model.pt", std::string(model.files[2].content.size(), '\0'));
  pretend_restarted(dir / ".modelres");
  REQUIRE(cached(root));
  CHECK(cached(root).value().completeness == Completeness::unknown);

  // The next online resolve (on_disk, the default) hashes every file, fetches the damaged one alone, and syncs.
  const std::size_t before = file_requests(hub);
  auto again = online(hub, root).resolve(unet_id);
  REQUIRE(again);
  CHECK(file_requests(hub) - before == 1);
  CHECK(testing::read_text(dir / "pytorch_model.pt") == model.files[2].content);
  CHECK(testing::read_text(dir / ".modelres").find("unsynced_boot") == std::string::npos);
  CHECK(cached(root).value().completeness == Completeness::verified);
}

TEST_CASE("online: a current until_restart cache, asked for on_disk, is synced without a download", "[online][policy][durability]") {
  TestHub hub;
  hub.add(testing::unet_on_hub());
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto fast = online(hub, root, false, Durability::until_restart);
  REQUIRE(fast.resolve(unet_id));
  const fs::path manifest = root.path() / "models/iic/cv_unet_skin_retouching_torch/.modelres";
  const std::size_t files_before = file_requests(hub), before = hub.server().requests().size();
  auto still_fast = fast.resolve(unet_id);  // current, and until_restart is what was asked: nothing to write
  REQUIRE(still_fast);
  CHECK(testing::read_text(manifest).find("unsynced_boot") != std::string::npos);
  auto durable = online(hub, root).resolve(unet_id);
  REQUIRE(durable);
  CHECK(durable.value().hub_check == HubCheck::current);
  CHECK(file_requests(hub) == files_before);
  // A check of one request, then one that commits: the list, and /revisions for .mv's CreatedAt.
  CHECK(hub.server().requests().size() - before == 3);
  CHECK(testing::read_text(manifest).find("unsynced_boot") == std::string::npos);
}

TEST_CASE("online: the hub gone, the cached model is served and marked unchecked", "[online][policy]") {
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  {
    TestHub hub;
    hub.add(testing::unet_on_hub());
    hub.start();
    REQUIRE(online(hub, root).resolve(unet_id));
  }
  TestHub gone;  // never started: nothing listens on its port
  OnlineOptions o;
  o.hub.endpoint = "http://127.0.0.1:1";
  Online resolver(ModelScopeCache(root.path()), OnlinePolicy<CurlTransport>(o));
  auto r = resolver.resolve(unet_id);
  REQUIRE(r);
  CHECK(r.value().hub_check == HubCheck::unavailable);
  CHECK(r.value().hub_check_reason.find("hub unreachable") == 0);
  CHECK(r.value().completeness == Completeness::verified);

  o.strict = true;
  Online strict(ModelScopeCache(root.path()), OnlinePolicy<CurlTransport>(o));
  auto s = strict.resolve(unet_id);
  REQUIRE_FALSE(s);
  CHECK(s.error() == errc::hub_unreachable);
  CHECK(s.error().reference == unet_id);

  auto missing = resolver.resolve("iic/never_downloaded");
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == errc::hub_unreachable);
  CHECK(missing.error().looked_at.size() == 5);
  CHECK(missing.error().detail.find("and the cache cannot serve it: model not cached") != std::string::npos);
}

TEST_CASE("online: MODELRES_OFFLINE and HF_HUB_OFFLINE, read at each call, make no request", "[online][policy]") {
  TestHub hub;
  hub.add(testing::unet_on_hub());
  hub.start();
  TempDir root;
  testing::ScopedEnv clear1("MODELRES_OFFLINE", "");
  testing::ScopedEnv clear2("HF_HUB_OFFLINE", "");
  auto resolver = online(hub, root);
  REQUIRE(resolver.resolve(unet_id));
  const std::size_t before = hub.server().requests().size();
  for (const char* name : {"MODELRES_OFFLINE", "HF_HUB_OFFLINE"}) {
    testing::ScopedEnv on(name, "1");
    auto r = resolver.resolve(unet_id);
    REQUIRE(r);
    CHECK(r.value().hub_check == HubCheck::offline);
    CHECK(r.value().hub_check_reason == std::string(name) + " is set");
    CHECK(resolver.resolve("iic/absent").error() == errc::not_cached);
  }
  CHECK(hub.server().requests().size() == before);
}

TEST_CASE("online: a hostile file list writes nothing anywhere", "[online][policy]") {
  TestHub hub;
  auto model = testing::unet_on_hub();
  model.extra_entries.push_back({{"Path", "../../../../escape.txt"}, {"Type", "blob"}, {"Size", 1},
                                 {"Sha256", testing::sha256_hex("x")}, {"Revision", "r"}});
  hub.add(model);
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto r = online(hub, root, /*strict=*/true).resolve(unet_id);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::unsafe_file_list);
  CHECK(testing::tree_state(root.path()).empty());
  CHECK(file_requests(hub) == 0);
}

TEST_CASE("online: a hub file named like the cache's metadata is refused before anything is written", "[online][policy]") {
  TestHub hub;
  auto model = testing::unet_on_hub();
  hub.add(model);
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto resolver = online(hub, root);
  auto first = resolver.resolve(unet_id);
  REQUIRE(first);
  const fs::path dir = first.value().directory;
  const std::string msc = testing::read_text(dir / ".msc"), manifest = testing::read_text(dir / ".modelres");
  for (const std::string name : {".msc", ".mv", ".modelres", "._____temp/x"}) {
    INFO(name);
    auto hostile = model;
    hostile.files[1].content = "# changed, so that there is something to download\n" + name;
    hostile.files.push_back({name, "cos\nsystem\n(S'echo owned'\ntR.", "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9", nullptr});
    hub.add(hostile);
    auto r = resolver.resolve(unet_id);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::unsafe_file_list);
    CHECK(testing::read_text(dir / ".msc") == msc);
    CHECK(testing::read_text(dir / ".modelres") == manifest);
    CHECK(testing::read_text(dir / "README.md") == model.files[1].content);
    CHECK_FALSE(fs::exists(dir / "._____temp"));
  }
  auto offline = cached(root);
  REQUIRE(offline);
  CHECK(offline.value().completeness == Completeness::verified);
}

TEST_CASE("online: a wrong checksum is an error and the model is not served", "[online][policy]") {
  TestHub hub;
  auto model = testing::unet_on_hub();
  model.files[2].sha256 = testing::sha256_hex("not these bytes");
  hub.add(model);
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto r = online(hub, root).resolve(unet_id);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::checksum_mismatch);
  CHECK(r.error().reference == unet_id);
  CHECK_FALSE(fs::exists(root.path() / "models/iic/cv_unet_skin_retouching_torch/pytorch_model.pt"));
  CHECK_FALSE(cached(root));
}

TEST_CASE("online: two processes resolving one model both succeed and fetch each file once", "[online][policy]") {
  TestHub hub;
  auto model = testing::unet_on_hub();
  hub.add(model);
  // Slow files, so that the two processes overlap.
  hub.intercept([](const httplib::Request& req, httplib::Response&) {
    if (req.has_param("FilePath")) std::this_thread::sleep_for(std::chrono::milliseconds(150));
    return false;
  });
  hub.start();
  TempDir root, capture;
  // Separate programs (the modelres CLI), not forks of this one: the hub's
  // threads run here, and a fork that goes on running C++ can inherit a lock
  // one of them held (ASan's allocator did, and hung).
  const std::map<std::string, std::string> env{{"MODELRES_OFFLINE", ""}, {"HF_HUB_OFFLINE", ""}};
  const std::vector<std::string> download{MODELRES_CLI, "download", unet_id, "--endpoint", hub.endpoint(), "--cache-dir", root.str()};
  std::vector<std::pair<pid_t, std::string>> children;
  for (int i = 0; i < 2; ++i) {
    const std::string out = (capture.path() / ("out" + std::to_string(i))).native();
    children.emplace_back(testing::start_command(download, env, out, out + ".err"), out);
  }
  const fs::path dir = root.path() / "models/iic/cv_unet_skin_retouching_torch";
  for (const auto& [pid, out] : children) {
    const auto r = testing::finish_command(pid, out, out + ".err");
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == dir.native() + "\n");
  }
  CHECK(file_requests(hub) == model.files.size());
  for (const auto& f : model.files) CHECK(testing::read_text(dir / f.path) == f.content);
  auto offline = cached(root);
  REQUIRE(offline);
  CHECK(offline.value().completeness == Completeness::verified);
}

TEST_CASE("online: a download that dies half-way leaves a directory that is not served", "[online][policy]") {
  TestHub hub;
  auto model = testing::unet_on_hub();
  hub.add(model);
  hub.intercept([](const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("FilePath") != "pytorch_model.pt") return false;
    TestHub::envelope_error(res, 403, "forbidden");  // a hard failure after other files landed
    return true;
  });
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  auto r = online(hub, root, /*strict=*/true).resolve(unet_id);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::unauthorized);
  const fs::path dir = root.path() / "models/iic/cv_unet_skin_retouching_torch";
  CHECK(fs::exists(dir / "configuration.json"));  // verified files stay for the next run
  auto offline = cached(root);
  REQUIRE_FALSE(offline);
  CHECK(offline.error() == errc::incomplete);
  CHECK(offline.error().detail.find("has not finished") != std::string::npos);
}

TEST_CASE("online: allow and ignore patterns choose the files, as the client's do", "[online][policy]") {
  TestHub hub;
  hub.add(testing::unet_on_hub());
  hub.start();
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  const auto files_of = [](const ResolvedModel& m) {
    std::vector<std::string> out;
    for (const auto& f : m.files) out.push_back(f.path);
    return out;
  };
  {
    TempDir root;
    ResolveOptions o;
    o.ignore_patterns = {"*.pt"};
    auto r = online(hub, root).resolve(unet_id, o);
    REQUIRE(r);
    CHECK(files_of(r.value()) == std::vector<std::string>{"configuration.json", "README.md", "assets/weights/joint.pth"});
    CHECK_FALSE(fs::exists(r.value().directory / "pytorch_model.pt"));
  }
  {
    TempDir root;
    ResolveOptions o;
    o.allow_patterns = {"*.json", "assets/"};  // "assets/" is "assets/*", and '*' crosses '/'
    auto r = online(hub, root).resolve(unet_id, o);
    REQUIRE(r);
    CHECK(files_of(r.value()) == std::vector<std::string>{"configuration.json", "assets/weights/joint.pth"});
    // Asking again for everything fetches only what is missing.
    const std::size_t before = file_requests(hub);
    auto all = online(hub, root).resolve(unet_id);
    REQUIRE(all);
    CHECK(all.value().files.size() == 4);
    CHECK(file_requests(hub) - before == 2);
  }
}

// A hub's CDN, or a mirror's redirect to a host outside it: the same path.
TEST_CASE("online: files redirected to another host (a CDN, outside a mirror) arrive verified, and the token stays with the hub",
          "[online][policy][mirror]") {
  const auto model = testing::unet_on_hub();
  testing::HttpServer cdn("127.0.0.2");
  cdn.routes().Get(R"(/blobs/(\d+))", [&](const httplib::Request& req, httplib::Response& res) {
    testing::serve_with_ranges(req, res, model.files.at(std::stoul(req.matches[1].str())).content);
  });
  cdn.start();
  TestHub hub;
  hub.add(model);
  hub.intercept([&](const httplib::Request& req, httplib::Response& res) {
    if (!req.has_param("FilePath")) return false;
    for (std::size_t i = 0; i < model.files.size(); ++i)
      if (model.files[i].path == req.get_param_value("FilePath")) {
        res.set_redirect(cdn.url("/blobs/" + std::to_string(i) + "?Expires=1&Signature=s"));
        return true;
      }
    return false;
  });
  hub.start();
  TempDir root;
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  testing::ScopedEnv token("MODELSCOPE_API_TOKEN", "ms-SECRET-TOKEN");
  auto r = online(hub, root).resolve(unet_id);
  REQUIRE(r);
  for (const auto& f : model.files) CHECK(testing::read_text(r.value().directory / f.path) == f.content);
  const auto at_cdn = cdn.requests();
  REQUIRE(at_cdn.size() == model.files.size());
  for (const auto& req : at_cdn) {
    CHECK_FALSE(req.has_header("authorization"));
    CHECK_FALSE(req.has_header("cookie"));
  }
  for (const auto& req : hub.server().requests()) CHECK(req.header("authorization") == "Bearer ms-SECRET-TOKEN");
}

TEST_CASE("online: a full disk is disk_full, and the half-written model is never served", "[online][policy][disk]") {
  if (::geteuid() != 0) {
    WARN("needs root to mount a small tmpfs in a private mount namespace; CI runs as root");
    return;
  }
  testing::ScopedEnv off("MODELRES_OFFLINE", "");
  TempDir tiny;
  // The hub starts in the child (forking while its threads run could leave
  // the child a lock one of them held). 128 KiB holds the small files, not the 300 kB weights.
  const int code = testing::run_on_128k_disk(tiny.path(), [&] {
    TestHub hub;
    hub.add(testing::unet_on_hub());
    hub.start();
    auto r = online(hub, tiny).resolve(unet_id);
    if (r) return 91;
    // Not served offline: the manifest still says a download runs.
    auto later = cached(tiny);
    if (later) return 92;
    if (later.error() != errc::incomplete) return 93;
    if (fs::exists(tiny.path() / "models/iic/cv_unet_skin_retouching_torch/pytorch_model.pt")) return 94;
    return r.error().code.value();
  });
  CHECK(code == static_cast<int>(errc::disk_full));
}

}  // namespace online_policy_test
