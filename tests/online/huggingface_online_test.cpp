// OnlinePolicy over the Hugging Face hub and cache, end to end: the test hub
// (127.0.0.1, CDN on 127.0.0.2), CurlTransport, and the cache as
// huggingface_hub lays it out, byte for byte.
#include <modelres/modelres.hpp>
#include <modelres/hubs/huggingface_hub.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <sys/file.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/hf_test_hub.hpp"

using namespace modelres;
using testing::HfTestHub;
using testing::ScopedEnv;
using testing::TempDir;
namespace fs = std::filesystem;

namespace huggingface_online_test {

using HfOnline = OnlinePolicy<CurlTransport, HuggingFaceHub<CurlTransport>>;
const std::string bert_id = "acme/tiny-bert";

using Quiet = testing::QuietHubEnvironment;

Resolver<HfOnline, HuggingFaceCache> online(const HfTestHub& hub, const TempDir& root, bool strict = false,
                                            std::string token = {}) {
  HfOnline::Options o;
  o.strict = strict;
  o.hub.endpoint = hub.endpoint();
  o.hub.token = std::move(token);
  o.fetch.backoff = std::chrono::milliseconds(5);
  o.fetch.max_attempts = 2;
  return Resolver<HfOnline, HuggingFaceCache>(HuggingFaceCache(root.path()), HfOnline(o));
}

result<ResolvedModel> cached(const TempDir& root, const std::string& revision = {}) {
  ResolveOptions o;
  o.revision = revision;
  return Resolver<LocalOnlyPolicy, HuggingFaceCache>(HuggingFaceCache(root.path())).resolve(bert_id, o);
}

std::size_t count(testing::HttpServer& s, const std::string& part) {
  std::size_t n = 0;
  for (const auto& r : s.requests()) n += r.path.find(part) != std::string::npos;
  return n;
}

TEST_CASE("hf online: a cold cache is laid out byte for byte as huggingface_hub lays it out", "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir root;
  auto r = online(hub, root).resolve(bert_id);
  REQUIRE(r);
  const fs::path repo = root.path() / "models--acme--tiny-bert";
  const fs::path snapshot = repo / "snapshots" / model.commit;
  CHECK(r.value().directory == snapshot);
  CHECK(r.value().commit == model.commit);
  CHECK(r.value().revision == "main");
  CHECK(r.value().completeness == Completeness::verified);
  CHECK(r.value().hub_check == HubCheck::current);

  for (const auto& f : model.files) {
    const std::string etag = testing::hf_etag(f);
    CHECK(testing::read_text(repo / "blobs" / etag) == f.content);
    std::string up = "../../";
    for (char c : f.path) up += c == '/' ? "../" : "";
    REQUIRE(fs::is_symlink(snapshot / f.path));
    CHECK(fs::read_symlink(snapshot / f.path) == up + "blobs/" + etag);
    CHECK(testing::read_text(snapshot / f.path) == f.content);
    CHECK(fs::exists(root.path() / ".locks/models--acme--tiny-bert" / (etag + ".lock")));
    CHECK_FALSE(fs::exists(repo / "blobs" / (etag + ".incomplete")));
  }
  CHECK(testing::read_text(repo / "refs/main") == model.commit);
  CHECK(testing::read_text(repo / "trees" / (model.commit + ".json")) == testing::python_tree_json(model));
  CHECK(testing::read_text(root.path() / "CACHEDIR.TAG").rfind("Signature: 8a477f597d28d172789f06886806bc55\n", 0) == 0);
  // The weights came from the CDN, which never saw a token header.
  REQUIRE(hub.cdn().requests().size() == 1);
  CHECK_FALSE(hub.cdn().requests()[0].has_header("authorization"));

  auto again = cached(root);
  REQUIRE(again);
  CHECK(again.value().completeness == Completeness::verified);
  CHECK(again.value().directory == snapshot);
}

TEST_CASE("hf online: a current cache costs one request, a pinned verified commit none", "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir root;
  REQUIRE(online(hub, root).resolve(bert_id));

  const std::size_t before = hub.hub().requests().size(), cdn_before = hub.cdn().requests().size();
  const fs::path manifest = root.path() / "models--acme--tiny-bert/.modelres" / model.commit;
  const auto manifest_written = fs::last_write_time(manifest);
  // Another process holds the model's lock: a check, which writes nothing, does not wait for it.
  const int held = ::open((root.path() / ".locks/models--acme--tiny-bert/.modelres.lock").c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(held >= 0);
  REQUIRE(::flock(held, LOCK_EX | LOCK_NB) == 0);
  HfOnline::Options impatient;
  impatient.hub.endpoint = hub.endpoint();
  impatient.fetch.lock_timeout = std::chrono::milliseconds(100);
  auto current = Resolver<HfOnline, HuggingFaceCache>(HuggingFaceCache(root.path()), HfOnline(impatient)).resolve(bert_id);
  ::close(held);
  REQUIRE(current);
  CHECK(current.value().directory == root.path() / "models--acme--tiny-bert/snapshots" / model.commit);
  CHECK(current.value().commit == model.commit);
  CHECK(current.value().model_id == bert_id);
  CHECK(current.value().files.size() == model.files.size());
  CHECK(fs::last_write_time(manifest) == manifest_written);
  CHECK(current.value().hub_check == HubCheck::current);
  CHECK(current.value().completeness == Completeness::verified);
  REQUIRE(hub.hub().requests().size() - before == 1);
  CHECK(hub.hub().requests().back().path == "/api/models/acme/tiny-bert/revision/main");
  CHECK(hub.cdn().requests().size() == cdn_before);

  ResolveOptions pinned;
  pinned.revision = model.commit;
  const std::size_t before_pinned = hub.hub().requests().size();
  auto by_commit = online(hub, root).resolve(bert_id, pinned);
  REQUIRE(by_commit);
  CHECK(by_commit.value().completeness == Completeness::verified);
  CHECK(by_commit.value().directory == root.path() / "models--acme--tiny-bert/snapshots" / model.commit);
  CHECK(hub.hub().requests().size() == before_pinned);
}

TEST_CASE("hf online: a tag, and refs/pr/1, are recorded under refs/ and share the blobs", "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir root;
  ResolveOptions pr;
  pr.revision = "refs/pr/1";
  auto r = online(hub, root).resolve(bert_id, pr);
  REQUIRE(r);
  CHECK(r.value().revision == "refs/pr/1");
  const fs::path repo = root.path() / "models--acme--tiny-bert";
  CHECK(testing::read_text(repo / "refs/refs/pr/1") == model.commit);
  const std::size_t cdn_before = hub.cdn().requests().size();
  ResolveOptions tag;
  tag.revision = "v1.0";
  auto t = online(hub, root).resolve(bert_id, tag);
  REQUIRE(t);
  CHECK(testing::read_text(repo / "refs/v1.0") == model.commit);
  CHECK(hub.cdn().requests().size() == cdn_before);  // same commit: nothing downloaded again
  CHECK(cached(root, "v1.0").value().completeness == Completeness::verified);
}

TEST_CASE("hf online: a cache huggingface_hub wrote is adopted by hashing, without downloading", "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  for (const bool symlinks : {true, false}) {
    TempDir root;
    testing::lay_out_as_python(root.path(), model, symlinks, /*tree=*/symlinks);
    const std::size_t resolves_before = count(hub.hub(), "/resolve/"), cdn_before = hub.cdn().requests().size();
    auto r = online(hub, root).resolve(bert_id);
    REQUIRE(r);
    CHECK(r.value().completeness == Completeness::verified);
    CHECK(count(hub.hub(), "/resolve/") == resolves_before);
    CHECK(hub.cdn().requests().size() == cdn_before);
    // The no-symlink layout stays as it was: plain files in the snapshot.
    for (const auto& f : model.files) CHECK(fs::is_symlink(r.value().directory / f.path) == symlinks);
    CHECK(cached(root).value().completeness == Completeness::verified);
  }
}

TEST_CASE("hf online: without symlinks the files are in the snapshot, as huggingface_hub's fallback leaves them",
          "[online][hf_online]") {
  Quiet quiet;
  ScopedEnv no_links("HF_HUB_DISABLE_SYMLINKS", "1");
  HfTestHub hub;
  auto model = testing::tiny_bert_on_hub();
  model.files.push_back({"copy_of_config.json", model.files[1].content, false, "", "", false});  // one blob, two paths
  hub.add(model);
  hub.start();
  TempDir root;
  auto r = online(hub, root).resolve(bert_id);
  REQUIRE(r);
  for (const auto& f : model.files) {
    CHECK_FALSE(fs::is_symlink(r.value().directory / f.path));
    CHECK(testing::read_text(r.value().directory / f.path) == f.content);
  }
  const fs::path blobs = root.path() / "models--acme--tiny-bert/blobs";
  CHECK((!fs::exists(blobs) || fs::is_empty(blobs)));  // moved into the snapshot, as huggingface_hub moves a new blob
  const std::size_t before = hub.hub().requests().size();
  auto again = online(hub, root).resolve(bert_id);
  REQUIRE(again);
  CHECK(hub.hub().requests().size() - before == 1);
  CHECK(again.value().completeness == Completeness::verified);
}

TEST_CASE("hf online: bytes that do not hash to the listed sha256 or git blob id are never served", "[online][hf_online]") {
  Quiet quiet;
  for (const bool lfs : {true, false}) {
    HfTestHub hub;
    auto model = testing::tiny_bert_on_hub();
    if (lfs)
      model.files[3].listed_sha256 = std::string(64, 'e');
    else
      model.files[1].listed_oid = std::string(40, 'e');
    hub.add(model);
    hub.start();
    TempDir root;
    auto r = online(hub, root, /*strict=*/true).resolve(bert_id);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::checksum_mismatch);
    CHECK(r.error().detail.find(lfs ? "sha256" : "git blob sha1") != std::string::npos);
    // Nothing under a final name, and a lookup says why it does not serve the snapshot.
    CHECK_FALSE(fs::exists(root.path() / "models--acme--tiny-bert/blobs" / std::string(lfs ? 64 : 40, 'e')));
    CHECK_FALSE(fs::exists(root.path() / "models--acme--tiny-bert/snapshots" / model.commit / model.files[lfs ? 3 : 1].path));
    auto later = cached(root);
    REQUIRE_FALSE(later);
    CHECK((later.error() == errc::not_cached || later.error() == errc::incomplete));
  }
}

TEST_CASE("hf online: an interrupted download resumes from blobs/<etag>.incomplete in the next run", "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub(300000);
  hub.add(model);
  hub.start();
  TempDir root;
  const std::string sha = testing::sha256_hex(model.files[3].content);
  const fs::path partial = root.path() / "models--acme--tiny-bert/blobs" / (sha + ".incomplete");
  testing::write_file(partial, model.files[3].content.substr(0, 120000));
  auto r = online(hub, root).resolve(bert_id);
  REQUIRE(r);
  CHECK(testing::read_text(r.value().directory / "model.safetensors") == model.files[3].content);
  REQUIRE(hub.cdn().requests().size() == 1);
  CHECK(hub.cdn().requests()[0].header("range") == "bytes=120000-");
  CHECK_FALSE(fs::exists(partial));
}

TEST_CASE("hf online: a blob another process is fetching is waited for under its lock, then taken", "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir root;
  const std::string sha = testing::sha256_hex(model.files[3].content);
  const fs::path lock = root.path() / ".locks/models--acme--tiny-bert" / (sha + ".lock");
  fs::create_directories(lock.parent_path());
  // A child holds huggingface_hub's lock on the weights, writes the blob, and
  // lets go (system calls only: the parent has threads).
  const fs::path blobs = root.path() / "models--acme--tiny-bert/blobs";
  fs::create_directories(blobs);
  const std::string blob = (blobs / sha).string(), tmp = blob + ".tmp";
  const std::string& bytes = model.files[3].content;
  const pid_t child = ::fork();
  if (child == 0) {
    const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0664);
    ::flock(fd, LOCK_EX);
    ::usleep(300000);
    const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const bool written = ::write(out, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
    ::close(out);
    ::_exit(written && ::rename(tmp.c_str(), blob.c_str()) == 0 ? 0 : 1);
  }
  ::usleep(100000);
  auto r = online(hub, root).resolve(bert_id);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WEXITSTATUS(status) == 0);
  REQUIRE(r);
  CHECK(testing::read_text(r.value().directory / "model.safetensors") == model.files[3].content);
  CHECK(hub.cdn().requests().empty());  // taken from the other process, not downloaded again
}

TEST_CASE("hf online: the hub out of reach serves the cache marked unavailable, or its error with strict",
          "[online][hf_online]") {
  Quiet quiet;
  TempDir root;
  const auto model = testing::tiny_bert_on_hub();
  testing::lay_out_as_python(root.path(), model);
  HfOnline::Options o;
  o.hub.endpoint = "http://127.0.0.1:1";  // nothing listens there
  Resolver<HfOnline, HuggingFaceCache> lenient(HuggingFaceCache(root.path()), HfOnline(o));
  auto r = lenient.resolve(bert_id);
  REQUIRE(r);
  CHECK(r.value().hub_check == HubCheck::unavailable);
  CHECK(r.value().completeness == Completeness::listed);
  o.strict = true;
  Resolver<HfOnline, HuggingFaceCache> strict(HuggingFaceCache(root.path()), HfOnline(o));
  auto s = strict.resolve(bert_id);
  REQUIRE_FALSE(s);
  CHECK(s.error() == errc::hub_unreachable);

  ScopedEnv offline("HF_HUB_OFFLINE", "1");
  auto off = strict.resolve(bert_id);
  REQUIRE(off);
  CHECK(off.value().hub_check == HubCheck::offline);
}

TEST_CASE("hf online: allow patterns fetch a part, and the tree still lists the whole commit", "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir root;
  ResolveOptions only_json;
  only_json.allow_patterns = {"*.json"};
  auto r = online(hub, root).resolve(bert_id, only_json);
  REQUIRE(r);
  CHECK(r.value().files.size() == 1);
  CHECK(hub.cdn().requests().empty());
  const fs::path repo = root.path() / "models--acme--tiny-bert";
  // huggingface_hub reading this tree without patterns sees the snapshot is partial, as it is.
  CHECK(testing::read_text(repo / "trees" / (model.commit + ".json")) == testing::python_tree_json(model));
  CHECK_FALSE(fs::exists(r.value().directory / "model.safetensors"));
  // The rest later, only what is missing.
  auto all = online(hub, root).resolve(bert_id);
  REQUIRE(all);
  CHECK(all.value().files.size() == 4);
  CHECK(count(hub.hub(), "/resolve/" + model.commit + "/config.json") == 1);
}

TEST_CASE("hf online: a gated model is errc::gated, naming where to accept its terms", "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  auto model = testing::tiny_bert_on_hub();
  model.gated = true;
  model.token = "hf_accepted";
  hub.add(model);
  hub.start();
  TempDir root;
  auto r = online(hub, root, true, "hf_other").resolve(bert_id);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::gated);
  CHECK(r.error().message().find(hub.endpoint() + "/acme/tiny-bert") != std::string::npos);
  CHECK(r.error().message().find("hf_other") == std::string::npos);
  auto ok = online(hub, root, true, "hf_accepted").resolve(bert_id);
  REQUIRE(ok);
  CHECK(ok.value().completeness == Completeness::verified);
}

TEST_CASE("hf online: the CDN dropping the connection, or answering 503, is resumed and retried", "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub(300000);
  hub.add(model);
  const std::string& weights = model.files[3].content;
  std::atomic<int> faults{2};
  hub.intercept_cdn([&](const httplib::Request& req, httplib::Response& res) {
    const int fault = faults--;
    if (fault == 2) {  // the first answer breaks off after 100,000 bytes
      res.set_content_provider(weights.size(), "application/octet-stream",
                               [&](std::size_t offset, std::size_t, httplib::DataSink& sink) {
                                 if (offset >= 100000) return false;
                                 sink.write(weights.data() + offset, 50000);
                                 return true;
                               });
      return true;
    }
    if (fault == 1) {  // the retry meets an overloaded CDN
      testing::ignore_range(req);  // a 503, not cpp-httplib's 416 for a range beyond its short body
      res.status = 503;
      res.set_content("<Error><Code>SlowDown</Code></Error>", "application/xml");
      return true;
    }
    return false;
  });
  hub.start();
  TempDir root;
  HfOnline::Options o;
  o.strict = true;
  o.hub.endpoint = hub.endpoint();
  o.fetch.backoff = std::chrono::milliseconds(5);
  o.fetch.max_attempts = 3;
  auto r = Resolver<HfOnline, HuggingFaceCache>(HuggingFaceCache(root.path()), HfOnline(o)).resolve(bert_id);
  REQUIRE(r);
  CHECK(testing::read_text(r.value().directory / "model.safetensors") == weights);
  const auto cdn = hub.cdn().requests();
  REQUIRE(cdn.size() == 3);
  CHECK(cdn[1].header("range") == "bytes=100000-");
  CHECK(cdn[2].header("range") == "bytes=100000-");
}

TEST_CASE("hf online: --no-sync (until_restart) is recorded in the manifest and served as verified in this boot",
          "[online][hf_online][durability]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir root;
  HfOnline::Options o;
  o.hub.endpoint = hub.endpoint();
  o.fetch.durability = Durability::until_restart;
  Resolver<HfOnline, HuggingFaceCache> fast(HuggingFaceCache(root.path()), HfOnline(o));
  auto r = fast.resolve(bert_id);
  REQUIRE(r);
  const fs::path manifest = root.path() / "models--acme--tiny-bert/.modelres" / model.commit;
  CHECK(testing::read_text(manifest).find("unsynced_boot " + detail::current_boot_id() + "\n") != std::string::npos);
  CHECK(cached(root).value().completeness == Completeness::verified);
  // Written in another boot: not verified, and the next online resolve hashes before trusting.
  std::string text = testing::read_text(manifest);
  const std::size_t at = text.find("unsynced_boot ") + 14;
  text.replace(at, text.find('\n', at) - at, "00000000-0000-0000-0000-000000000000");
  testing::write_file(manifest, text);
  CHECK(cached(root).value().completeness == Completeness::unknown);
  const std::size_t cdn_before = hub.cdn().requests().size();
  auto again = online(hub, root).resolve(bert_id);
  REQUIRE(again);
  CHECK(again.value().completeness == Completeness::verified);
  CHECK(hub.cdn().requests().size() == cdn_before);  // hashed, not downloaded
  CHECK(testing::read_text(manifest).find("unsynced_boot") == std::string::npos);
}

TEST_CASE("hf online: a snapshot directory planted as a link elsewhere is not written through", "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir root, elsewhere;
  const fs::path snapshots = root.path() / "models--acme--tiny-bert/snapshots";
  fs::create_directories(snapshots);
  fs::create_directory_symlink(elsewhere.path(), snapshots / model.commit);
  auto r = online(hub, root, true).resolve(bert_id);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::unsafe_metadata);
  CHECK(fs::is_empty(elsewhere.path()));
}

TEST_CASE("hf online: a 429 whose RateLimit header resets beyond the limit fails at once as rate_limited",
          "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  hub.add(testing::tiny_bert_on_hub());
  hub.intercept_cdn([](const httplib::Request& req, httplib::Response& res) {
    testing::ignore_range(req);
    HfTestHub::error(res, 429, "", "You have been rate-limited");
    res.set_header("RateLimit", "\"api\";r=0;t=3600");  // no Retry-After: the hub's own header says when
    return true;
  });
  hub.start();
  TempDir root;
  auto r = online(hub, root, true).resolve(bert_id);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::rate_limited);
  CHECK(r.error().detail.find("RateLimit: \"api\";r=0;t=3600") != std::string::npos);
  CHECK(hub.cdn().requests().size() == 1);
}

TEST_CASE("hf online: a full disk is disk_full, and the half-written snapshot is never served", "[online][hf][disk]") {
  if (::geteuid() != 0) {
    WARN("needs root to mount a small tmpfs in a private mount namespace; CI runs as root");
    return;
  }
  Quiet quiet;
  TempDir tiny;
  // The hub starts in the child: forking while its threads run could leave
  // the child a lock one of them held. 128 KiB holds the metadata, not the 200 kB weights.
  const int code = testing::run_on_128k_disk(tiny.path(), [&] {
    HfTestHub hub;
    hub.add(testing::tiny_bert_on_hub());
    hub.start();
    auto r = online(hub, tiny).resolve(bert_id);
    if (r) return 91;
    // Not served offline: refs/main and the snapshot are written only by a commit.
    auto later = Resolver<LocalOnlyPolicy, HuggingFaceCache>(HuggingFaceCache(tiny.path())).resolve(bert_id);
    if (later) return 92;
    if (later.error() != errc::not_cached) return 93;
    if (fs::exists(tiny.path() / ("models--acme--tiny-bert/snapshots/" + testing::tiny_bert_on_hub().commit + "/model.safetensors")))
      return 94;
    return r.error().code.value();
  });
  CHECK(code == static_cast<int>(errc::disk_full));
}

TEST_CASE("hf online: a vouched-for entry replaced by a link elsewhere is not current: it is put back", "[online][hf_online]") {
  Quiet quiet;
  HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir root, elsewhere;
  REQUIRE(online(hub, root).resolve(bert_id));
  const fs::path entry = root.path() / "models--acme--tiny-bert/snapshots" / model.commit / "config.json";
  const std::string config = testing::read_text(entry);
  testing::write_file(elsewhere.path() / "config.json", config);  // same bytes, same size
  fs::remove(entry);
  fs::create_symlink(elsewhere.path() / "config.json", entry);
  auto r = online(hub, root).resolve(bert_id);
  REQUIRE(r);
  CHECK(r.value().completeness == Completeness::verified);
  REQUIRE(fs::is_symlink(entry));
  CHECK(fs::read_symlink(entry) == fs::path("../../blobs") / testing::git_blob_oid(config));
  CHECK(testing::read_text(elsewhere.path() / "config.json") == config);
}

}  // namespace huggingface_online_test
