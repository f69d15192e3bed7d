// verify(): cached models re-hashed offline against what is recorded of them,
// in caches filled by modelres (from the loopback hubs) and laid out as the
// Python clients lay them out; and `modelres verify`, exit codes included.
#include <modelres/modelres.hpp>
#include <modelres/hubs/huggingface_hub.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>
#include <modelres/verify.hpp>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/hf_test_hub.hpp"
#include "../support/test_hub.hpp"

using namespace modelres;
using testing::HfTestHub;
using testing::ScopedEnv;
using testing::TempDir;
namespace fs = std::filesystem;

namespace verify_test {

const std::string bert_id = "acme/tiny-bert";
const std::string unet_id = "iic/cv_unet_skin_retouching_torch";
using HfOnline = OnlinePolicy<CurlTransport, HuggingFaceHub<CurlTransport>>;

using Quiet = testing::QuietHubEnvironment;

void hf_download(const fs::path& root) {
  HfTestHub hub;
  hub.add(testing::tiny_bert_on_hub());
  hub.start();
  HfOnline::Options o;
  o.hub.endpoint = hub.endpoint();
  REQUIRE(Resolver<HfOnline, HuggingFaceCache>(HuggingFaceCache(root), HfOnline(o)).resolve(bert_id));
}

const FileVerdict* verdict(const Verification& v, const std::string& path) {
  for (const auto& f : v.files)
    if (f.path == path) return &f;
  return nullptr;
}

// Overwrites a file with other bytes of the same size: only a hash tells.
void flip_a_byte(const fs::path& file) {
  std::string bytes = testing::read_text(file);
  REQUIRE_FALSE(bytes.empty());
  bytes[bytes.size() / 2] ^= 0x20;
  const fs::path real = fs::is_symlink(file) ? fs::canonical(file) : file;
  testing::write_file(real, bytes);
}

TEST_CASE("verify: a cache modelres filled matches its manifest, and a flipped byte is named", "[online][verify]") {
  Quiet quiet;
  TempDir root;
  hf_download(root.path());
  const auto model = testing::tiny_bert_on_hub();
  std::uint64_t last_total = 0, last_done = 0;
  auto v = verify(HuggingFaceCache(root.path()), ModelId::parse(bert_id).value(), {},
                  [&](const VerifyProgress& p) { last_done = p.total_bytes, last_total = p.total_size; });
  REQUIRE(v);
  CHECK(v.value().passed());
  CHECK(v.value().count(FileState::matched) == model.files.size());
  CHECK(last_total == v.value().model.total_size());
  CHECK(last_done == last_total);
  const FileVerdict* weights = verdict(v.value(), "model.safetensors");
  REQUIRE(weights);
  CHECK(weights->check == "sha256");
  CHECK(weights->expected == testing::sha256_hex(model.files[3].content));

  const auto before = testing::tree_state(root.path());
  flip_a_byte(v.value().model.directory / "model.safetensors");
  auto bad = verify(HuggingFaceCache(root.path()), ModelId::parse(bert_id).value());
  REQUIRE(bad);  // still served (sizes match): only hashing finds it
  CHECK_FALSE(bad.value().passed());
  const FileVerdict* flipped = verdict(bad.value(), "model.safetensors");
  REQUIRE(flipped);
  CHECK(flipped->state == FileState::mismatched);
  CHECK(flipped->actual != flipped->expected);
  CHECK(bad.value().count(FileState::matched) == model.files.size() - 1);
  // verify writes nothing: only the file the test changed differs.
  auto after = testing::tree_state(root.path());
  std::size_t changed = 0;
  for (const auto& [path, state] : after) changed += before.at(path) != state;
  CHECK(changed == 1);
}

TEST_CASE("verify: huggingface_hub's cache by its tree, else by its blob names, on a read-only mount too",
          "[online][verify]") {
  Quiet quiet;
  const auto model = testing::tiny_bert_on_hub();
  for (const bool tree : {true, false}) {
    INFO((tree ? "with trees/<commit>.json" : "blob names only"));
    TempDir root;
    testing::lay_out_as_python(root.path(), model, /*symlinks=*/true, tree);
    auto v = verify(HuggingFaceCache(root.path()), ModelId::parse(bert_id).value());
    REQUIRE(v);
    CHECK(v.value().passed());
    CHECK(v.value().count(FileState::matched) == model.files.size());
    const FileVerdict* config = verdict(v.value(), "config.json");
    REQUIRE(config);
    CHECK(config->check == "git blob sha1");
  }
  // The no-symlink layout without a tree records nothing: every file unchecked, and that is not a pass by hashing.
  TempDir plain;
  testing::lay_out_as_python(plain.path(), model, /*symlinks=*/false, /*tree=*/false);
  auto v = verify(HuggingFaceCache(plain.path()), ModelId::parse(bert_id).value());
  REQUIRE(v);
  CHECK(v.value().count(FileState::unchecked) == model.files.size());
  CHECK(v.value().count(FileState::matched) == 0);

  if (::geteuid() != 0) {
    WARN("needs root to bind-mount a directory read-only in a private mount namespace; CI runs as root");
    return;
  }
  TempDir ro;
  testing::lay_out_as_python(ro.path(), model);
  const int code = testing::run_with_read_only(ro.path(), [&] {
    LayeredCache<HuggingFaceCache> cache({HuggingFaceCache(ro.path())}, HuggingFaceCache(ro.path() / "absent"));
    auto r = verify(cache, ModelId::parse(bert_id).value());
    if (!r) return 81;
    return r.value().passed() && r.value().count(FileState::matched) == 4 ? 0 : 82;
  });
  CHECK(code == 0);
}

TEST_CASE("verify: ModelScope by modelres's manifest, and the Python client's copy has no hashes to check", "[online][verify]") {
  Quiet quiet;
  TempDir filled, python;
  {
    testing::TestHub hub;
    hub.add(testing::unet_on_hub());
    hub.start();
    OnlineOptions o;
    o.hub.endpoint = hub.endpoint();
    REQUIRE(Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache>(ModelScopeCache(filled.path()), OnlinePolicy<CurlTransport>(o))
                .resolve(unet_id));
  }
  auto v = verify(ModelScopeCache(filled.path()), ModelId::parse(unet_id).value());
  REQUIRE(v);
  CHECK(v.value().passed());
  CHECK(v.value().count(FileState::matched) == 4);

  testing::lay_out_classic(python.path() / "models" / unet_id);
  auto p = verify(ModelScopeCache(python.path()), ModelId::parse(unet_id).value());
  REQUIRE(p);
  CHECK(p.value().passed());
  CHECK(p.value().count(FileState::unchecked) == 4);

  auto none = verify(ModelScopeCache(python.path()), ModelId::parse("iic/absent").value());
  REQUIRE_FALSE(none);
  CHECK(none.error() == errc::not_cached);
}

#ifdef MODELRES_CLI
TEST_CASE("verify: `modelres verify` reports each model, exit 0 when all match, 12 naming the file when one does not",
          "[online][verify][cli]") {
  Quiet quiet;
  TempDir root;
  hf_download(root.path());
  const std::map<std::string, std::string> env{{"MODELRES_HUB", ""}, {"MODELRES_READ_ONLY_CACHES", ""}};
  auto good = testing::run_command({MODELRES_CLI, "verify", "hf.co/acme/tiny-bert", "--cache-dir", root.str()}, env);
  CHECK(good.status == 0);
  CHECK(good.out.rfind("ok  acme/tiny-bert  4 of 4 files matched", 0) == 0);

  auto all = testing::run_command({MODELRES_CLI, "verify", "--hub", "hf", "--cache-dir", root.str(), "--json"}, env);
  REQUIRE(all.status == 0);
  const auto listed = nlohmann::json::parse(all.out);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["passed"] == true);
  CHECK(listed[0]["matched"] == 4);

  const fs::path snapshot = root.path() / "models--acme--tiny-bert/snapshots" / testing::tiny_bert_on_hub().commit;
  flip_a_byte(snapshot / "tokenizer/vocab.txt");
  auto bad = testing::run_command({MODELRES_CLI, "verify", "hf.co/acme/tiny-bert", "--cache-dir", root.str()}, env);
  CHECK(bad.status == 12);
  CHECK(bad.out.rfind("MISMATCH  acme/tiny-bert  3 of 4 files matched", 0) == 0);
  CHECK(bad.err.find("tokenizer/vocab.txt does not match") != std::string::npos);

  // A directory given by path verifies the same.
  auto by_dir = testing::run_command({MODELRES_CLI, "verify", snapshot.native(), "--hub", "hf", "--json"}, env);
  CHECK(by_dir.status == 12);
  CHECK(nlohmann::json::parse(by_dir.out)[0]["passed"] == false);

  auto missing = testing::run_command({MODELRES_CLI, "verify", "hf.co/acme/absent", "--cache-dir", root.str()}, env);
  CHECK(missing.status == 4);
}
#endif

}  // namespace verify_test
