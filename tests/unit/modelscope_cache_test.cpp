#include <modelres/caches/modelscope_cache.hpp>

#include <sys/stat.h>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"

using modelres::Completeness;
using modelres::errc;
using modelres::ModelId;
using modelres::ModelScopeCache;
using testing::ClassicOptions;
using testing::TempDir;
namespace fs = std::filesystem;

namespace modelscope_cache_test {

const ModelId unet_id{"iic", "cv_unet_skin_retouching_torch"};
const ModelId qwen_id{"Qwen", "Qwen2.5-0.5B-Instruct"};

std::vector<std::string> probed_paths(const modelres::Error& e) {
  std::vector<std::string> out;
  for (const auto& p : e.looked_at) out.push_back(p.path);
  return out;
}

void check_unet_files(const modelres::ResolvedModel& m) {
  REQUIRE(m.files.size() == 4);
  CHECK(m.files[0].path == "configuration.json");
  CHECK(m.files[0].revision == "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9");
  CHECK(m.files[2].path == "pytorch_model.pt");
  CHECK(m.files[2].size == 4096);
  CHECK(m.total_size() == testing::unet().files[0].second.size() + testing::unet().files[1].second.size() + 4096 + 1024);
}

TEST_CASE("modelscope 1.23-1.37: models/owner/name under an explicit root", "[modelscope]") {
  TempDir root;
  const fs::path dir = testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch");
  auto m = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE(m);
  CHECK(m.value().directory == dir);
  CHECK(m.value().model_id == "iic/cv_unet_skin_retouching_torch");
  CHECK(m.value().revision == "master");
  CHECK(m.value().completeness == Completeness::verified);
  CHECK(m.value().layout.find("1.23-1.37") != std::string::npos);
  check_unet_files(m.value());
}

TEST_CASE("every pickle protocol a client wrote resolves", "[modelscope]") {
  for (int proto : {2, 3, 4, 5}) {
    TempDir root;
    ClassicOptions o;
    o.protocol = proto;
    testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch", o);
    auto m = ModelScopeCache(root.path()).locate(unet_id, "");
    INFO("protocol " << proto);
    REQUIRE(m);
    CHECK(m.value().completeness == Completeness::verified);
    check_unet_files(m.value());
  }
}

TEST_CASE("default roots: each generation's default directory under $HOME", "[modelscope]") {
  struct Case {
    const char* where;
    const char* layout;
  } cases[] = {
      {".cache/modelscope/hub/models/iic/cv_unet_skin_retouching_torch", "1.23-1.37"},  // 1.23-1.37 default
      {".cache/modelscope/hub/iic/cv_unet_skin_retouching_torch", "1.15-1.22"},         // 1.15-1.22 and <= 1.14 default
  };
  for (const auto& c : cases) {
    TempDir home;
    testing::ScopedEnv h("HOME", home.str());
    testing::ScopedEnv env("MODELSCOPE_CACHE", "");
    const fs::path dir = testing::lay_out_classic(home.path() / c.where);
    auto m = ModelScopeCache().locate(unet_id, "");
    INFO(c.where);
    REQUIRE(m);
    CHECK(m.value().directory == dir);
    CHECK(m.value().layout.find(c.layout) != std::string::npos);
  }
}

TEST_CASE("MODELSCOPE_CACHE: each generation's directory below it", "[modelscope]") {
  const char* const wheres[] = {
      "models/iic/cv_unet_skin_retouching_torch",  // 1.23-1.37
      "hub/iic/cv_unet_skin_retouching_torch",     // 1.15-1.22
      "iic/cv_unet_skin_retouching_torch",         // <= 1.14, and cache_dir= for 1.15-1.37
  };
  for (const char* where : wheres) {
    TempDir cache;
    testing::ScopedEnv env("MODELSCOPE_CACHE", cache.str());
    const fs::path dir = testing::lay_out_classic(cache.path() / where);
    auto m = ModelScopeCache().locate(unet_id, "");
    INFO(where);
    REQUIRE(m);
    CHECK(m.value().directory == dir);
  }
}

TEST_CASE("an explicit root overrides MODELSCOPE_CACHE", "[modelscope]") {
  TempDir env_root, explicit_root;
  testing::ScopedEnv env("MODELSCOPE_CACHE", env_root.str());
  testing::lay_out_classic(env_root.path() / "models/iic/cv_unet_skin_retouching_torch");
  auto m = ModelScopeCache(explicit_root.path()).locate(unet_id, "");
  REQUIRE_FALSE(m);
  CHECK(m.error() == errc::not_cached);
  CHECK(ModelScopeCache(explicit_root.path()).root().value() == explicit_root.str());
  CHECK(ModelScopeCache().root().value() == env_root.str());
}

TEST_CASE("modelscope >= 1.38: models/owner--name/snapshots/revision, no metadata", "[modelscope]") {
  TempDir root;
  const fs::path dir = testing::lay_out_snapshot(root.path(), "iic--cv_unet_skin_retouching_torch", "master");
  auto m = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE(m);
  CHECK(m.value().directory == dir);
  CHECK(m.value().revision == "master");
  CHECK(m.value().completeness == Completeness::unknown);
  CHECK(m.value().layout.find(">= 1.38") != std::string::npos);
  CHECK(m.value().files.size() == 4);
  CHECK(m.value().total_size() == m.value().total_size());

  SECTION("a pinned revision picks its snapshot") {
    const fs::path v1 = testing::lay_out_snapshot(root.path(), "iic--cv_unet_skin_retouching_torch", "v1.0.3");
    auto pinned = ModelScopeCache(root.path()).locate(unet_id, "v1.0.3");
    REQUIRE(pinned);
    CHECK(pinned.value().directory == v1);
    CHECK(pinned.value().revision == "v1.0.3");
  }
  SECTION("a revision with no snapshot is not cached") {
    auto missing = ModelScopeCache(root.path()).locate(unet_id, "v9");
    REQUIRE_FALSE(missing);
    CHECK(missing.error() == errc::not_cached);
    CHECK(missing.error().revision == "v9");
    CHECK(probed_paths(missing.error())[0] ==
          root.str() + "/models/iic--cv_unet_skin_retouching_torch/snapshots/v9");
  }
  SECTION("an interrupted download is incomplete") {
    testing::write_file(dir / "model.safetensors.incomplete", "partial");
    auto partial = ModelScopeCache(root.path()).locate(unet_id, "");
    REQUIRE_FALSE(partial);
    CHECK(partial.error() == errc::incomplete);
    CHECK(partial.error().detail.find("model.safetensors.incomplete") != std::string::npos);
  }
}

TEST_CASE("snapshot layout, not pinned: master, else the only snapshot, else ask", "[modelscope]") {
  TempDir root;
  const fs::path v1 = testing::lay_out_snapshot(root.path(), "iic--cv_unet_skin_retouching_torch", "v1.0.3");
  auto only = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE(only);
  CHECK(only.value().directory == v1);
  CHECK(only.value().revision == "v1.0.3");

  testing::lay_out_snapshot(root.path(), "iic--cv_unet_skin_retouching_torch", "v2");
  auto two = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE_FALSE(two);
  CHECK(two.error() == errc::not_cached);
  CHECK(two.error().looked_at[0].verdict.find("pass a revision") != std::string::npos);
}

TEST_CASE("an empty snapshot directory (left by a local-only 1.38 call) is passed over", "[modelscope]") {
  TempDir root;
  fs::create_directories(root.path() / "models/iic--cv_unet_skin_retouching_torch/snapshots/master");
  const fs::path dir = testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch");
  auto m = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE(m);
  CHECK(m.value().directory == dir);
  CHECK(m.value().completeness == Completeness::verified);
}

// The client's escaping is '.' -> "___"; reading it back takes each "___"
// from the left, so a name with underscores next to a dot reads back as Python's does.
TEST_CASE("dotted names: escaping, unescaping and matching .mdl's id", "[modelscope]") {
  namespace ms = modelres::detail::modelscope;
  CHECK(ModelScopeCache::escape_name("Qwen2.5-0.5B") == "Qwen2___5-0___5B");
  CHECK(ModelScopeCache::unescape_name("Qwen2___5-0___5B") == "Qwen2.5-0.5B");
  CHECK(ModelScopeCache::unescape_name("a____b") == "a._b");
  CHECK(ModelScopeCache::unescape_name("______") == "..");
  CHECK(ModelScopeCache::unescape_name("__") == "__");
  CHECK(ModelScopeCache::unescape_name("") == "");
  CHECK(ms::is_escaped_id("Qwen/Qwen2___5-0___5B", "Qwen", "Qwen2.5-0.5B"));
  CHECK(ms::is_escaped_id("o/x___", "o", "x."));
  CHECK_FALSE(ms::is_escaped_id("Qwen/Qwen2.5-0.5B", "Qwen", "Qwen2.5-0.5B"));  // not escaped
  CHECK_FALSE(ms::is_escaped_id("Qwen/Qwen2___5-0___5", "Qwen", "Qwen2.5-0.5B"));  // shorter
  CHECK_FALSE(ms::is_escaped_id("Qwen/Qwen2___5-0___5BB", "Qwen", "Qwen2.5-0.5B"));  // longer
  CHECK_FALSE(ms::is_escaped_id("Qwen2/Qwen2___5-0___5B", "Qwen", "Qwen2.5-0.5B"));
  CHECK_FALSE(ms::is_escaped_id("Qwen", "Qwen", ""));
  CHECK_FALSE(ms::is_escaped_id("Qwen_name", "Qwen", "name"));
}

TEST_CASE("dotted names: the ___ directory, its symlink, and the pre-1.12 dotted directory", "[modelscope]") {
  SECTION("1.23-1.37 with the dotted symlink the client creates") {
    TempDir root;
    const fs::path masked = root.path() / "models/Qwen/Qwen2___5-0___5B-Instruct";
    testing::lay_out_classic(masked);
    testing::write_file(masked / ".mdl", testing::fixture("qwen_mdl_p4.pkl"));
    fs::create_directory_symlink(masked, root.path() / "models/Qwen/Qwen2.5-0.5B-Instruct");
    auto m = ModelScopeCache(root.path()).locate(qwen_id, "");
    REQUIRE(m);
    CHECK(m.value().directory == masked);  // the masked path, as snapshot_download returns it
    CHECK(m.value().model_id == "Qwen/Qwen2.5-0.5B-Instruct");
  }
  SECTION("before 1.12: the name unescaped") {
    TempDir root;
    const fs::path dotted = root.path() / "hub/Qwen/Qwen2.5-0.5B-Instruct";
    testing::lay_out_classic(dotted, ClassicOptions{4, true, "Revision:master,CreatedAt:1", false, {}});
    auto m = ModelScopeCache(root.path()).locate(qwen_id, "");
    REQUIRE(m);
    CHECK(m.value().directory == dotted);
    CHECK(m.value().layout.find("<= 1.11") != std::string::npos);
  }
  SECTION("a miss lists the escaped and the dotted directories, in order") {
    TempDir root;
    auto m = ModelScopeCache(root.path()).locate(qwen_id, "");
    REQUIRE_FALSE(m);
    CHECK(m.error() == errc::not_cached);
    const std::string r = root.str();
    CHECK(probed_paths(m.error()) == std::vector<std::string>{
                                         r + "/models/Qwen--Qwen2.5-0.5B-Instruct/snapshots/master",
                                         r + "/models/Qwen/Qwen2___5-0___5B-Instruct",
                                         r + "/hub/models/Qwen/Qwen2___5-0___5B-Instruct",
                                         r + "/hub/Qwen/Qwen2___5-0___5B-Instruct",
                                         r + "/hub/Qwen/Qwen2.5-0.5B-Instruct",
                                         r + "/Qwen/Qwen2___5-0___5B-Instruct",
                                         r + "/Qwen/Qwen2.5-0.5B-Instruct",
                                     });
    CHECK(m.error().reference == "Qwen/Qwen2.5-0.5B-Instruct");
    for (const auto& p : m.error().looked_at) CHECK(p.verdict == "does not exist");
  }
}

TEST_CASE("newer layouts win over older ones", "[modelscope]") {
  TempDir root;
  const fs::path snap = testing::lay_out_snapshot(root.path(), "iic--cv_unet_skin_retouching_torch", "master");
  testing::lay_out_classic(root.path() / "hub/iic/cv_unet_skin_retouching_torch");
  CHECK(ModelScopeCache(root.path()).locate(unet_id, "").value().directory == snap);
}

TEST_CASE("a half-downloaded model is incomplete, naming what is missing", "[modelscope]") {
  TempDir root;
  ClassicOptions o;
  o.skip_files = {"pytorch_model.pt", "assets/weights/joint.pth"};
  const fs::path dir = testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch", o);
  auto m = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE_FALSE(m);
  CHECK(m.error() == errc::incomplete);
  CHECK(m.error().detail == "missing files recorded in .msc: pytorch_model.pt, assets/weights/joint.pth");
  REQUIRE(m.error().looked_at.size() == 2);
  CHECK(m.error().looked_at[1].path == dir.native());
  CHECK(m.error().looked_at[1].verdict == "2 of 4 recorded files missing");
  CHECK(m.error().reference == "iic/cv_unet_skin_retouching_torch");
}

TEST_CASE("without .mv the download never finished: served, completeness unknown", "[modelscope]") {
  TempDir root;
  ClassicOptions o;
  o.write_mv = false;
  testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch", o);
  auto m = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE(m);
  CHECK(m.value().completeness == Completeness::unknown);
  CHECK(m.value().revision.empty());
}

TEST_CASE("revisions: the one recorded must be the one asked for", "[modelscope]") {
  TempDir root;
  ClassicOptions o;
  o.mv = "Revision:v1.0.3,CreatedAt:1713419382\n";
  testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch", o);
  ModelScopeCache cache(root.path());
  CHECK(cache.locate(unet_id, "v1.0.3").value().revision == "v1.0.3");
  CHECK(cache.locate(unet_id, "").value().revision == "v1.0.3");
  auto other = cache.locate(unet_id, "master");
  REQUIRE_FALSE(other);
  CHECK(other.error() == errc::revision_mismatch);
  CHECK(other.error().revision == "master");
  CHECK(other.error().detail.find("holds revision v1.0.3") != std::string::npos);

  SECTION("no .mv: a pinned revision cannot be confirmed") {
    fs::remove(root.path() / "models/iic/cv_unet_skin_retouching_torch/.mv");
    auto unconfirmed = cache.locate(unet_id, "v1.0.3");
    REQUIRE_FALSE(unconfirmed);
    CHECK(unconfirmed.error() == errc::revision_mismatch);
  }
}

TEST_CASE("a dataset-style .mv holding just the revision", "[modelscope]") {
  TempDir root;
  ClassicOptions o;
  o.mv = "v2.0";
  testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch", o);
  CHECK(ModelScopeCache(root.path()).locate(unet_id, "").value().revision == "v2.0");
}

TEST_CASE("damaged or hostile metadata is a typed error naming the file", "[modelscope]") {
  struct Case {
    std::string msc;
    errc code;
    const char* says;
  } cases[] = {
      {testing::fixture("unet_msc_p4.pkl").substr(0, 40), errc::corrupt_metadata, "truncated"},
      {testing::fixture("exploit_reduce_p4.pkl"), errc::unsafe_metadata, "would import or call code"},
      {testing::fixture("exploit_global_p0.pkl"), errc::unsafe_metadata, "GLOBAL"},
      {testing::fixture("traversal_msc_p4.pkl"), errc::corrupt_metadata, "would leave the model directory"},
      {testing::fixture("absolute_msc_p4.pkl"), errc::corrupt_metadata, "would leave the model directory"},
      {testing::fixture("wrong_shape_dict_p4.pkl"), errc::corrupt_metadata, "expected a list"},
      {testing::fixture("wrong_shape_norecord_p4.pkl"), errc::corrupt_metadata, "no string 'Path'"},
      {"garbage", errc::corrupt_metadata, "unsupported opcode"},
  };
  for (const auto& c : cases) {
    TempDir root;
    const fs::path dir = testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch");
    testing::write_file(dir / ".msc", c.msc);
    auto m = ModelScopeCache(root.path()).locate(unet_id, "");
    INFO(c.says);
    REQUIRE_FALSE(m);
    CHECK(m.error() == c.code);
    CHECK(m.error().detail.find((dir / ".msc").native()) == 0);
    CHECK(m.error().detail.find(c.says) != std::string::npos);
  }
  SECTION("a hostile .mdl too") {
    TempDir root;
    const fs::path dir = testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch");
    testing::write_file(dir / ".mdl", testing::fixture("exploit_reduce_p2.pkl"));
    auto m = ModelScopeCache(root.path()).locate(unet_id, "");
    REQUIRE_FALSE(m);
    CHECK(m.error() == errc::unsafe_metadata);
  }
}

TEST_CASE("a directory whose .mdl names another model is passed over", "[modelscope]") {
  TempDir root;
  const fs::path dir = testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch");
  testing::write_file(dir / ".mdl", testing::fixture("qwen_mdl_p4.pkl"));
  auto m = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE_FALSE(m);
  CHECK(m.error() == errc::not_cached);
  CHECK(m.error().looked_at[1].verdict == "belongs to model Qwen/Qwen2___5-0___5B-Instruct (per .mdl)");
}

TEST_CASE("what a local-only Python call leaves behind is not a cached model", "[modelscope]") {
  TempDir root;
  const fs::path dir = root.path() / "hub/models/iic/cv_unet_skin_retouching_torch";
  testing::write_file(dir / ".mdl", testing::fixture("unet_mdl_p4.pkl"));
  testing::write_file(dir / ".msc", testing::fixture("empty_msc_p4.pkl"));
  auto m = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE_FALSE(m);
  CHECK(m.error() == errc::not_cached);
  CHECK(m.error().looked_at[2].path == dir.native());
  CHECK(m.error().looked_at[2].verdict == "holds only the Python client's bookkeeping, no model files");
}

TEST_CASE("model files beside a .msc that records none are not served, as the Python client serves none", "[modelscope]") {
  TempDir root;
  const fs::path dir = root.path() / "models/iic/cv_unet_skin_retouching_torch";
  for (const auto& [path, content] : testing::unet().files) testing::write_file(dir / path, content);
  testing::write_file(dir / ".msc", testing::fixture("empty_msc_p4.pkl"));
  testing::write_file(dir / ".mv", "Revision:master,CreatedAt:1713419382");
  auto m = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE_FALSE(m);
  CHECK(m.error() == errc::not_cached);
  CHECK(m.error().looked_at[1].path == dir.native());
  CHECK(m.error().looked_at[1].verdict == ".msc records no finished file; the Python client does not serve it either");

  // It is passed over: an older layout further down the probe order that holds the model is served.
  const fs::path older = testing::lay_out_classic(root.path() / "hub/iic/cv_unet_skin_retouching_torch");
  auto found = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE(found);
  CHECK(found.value().directory == older);
  CHECK(found.value().completeness == Completeness::verified);
}

TEST_CASE("a directory of files without metadata (modelscope_hub 0.1.0-0.1.6, a copy)", "[modelscope]") {
  TempDir root;
  const fs::path dir = root.path() / "iic/cv_unet_skin_retouching_torch";
  for (const auto& [path, content] : testing::unet().files) testing::write_file(dir / path, content);
  auto m = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE(m);
  CHECK(m.value().directory == dir);
  CHECK(m.value().completeness == Completeness::unknown);
  CHECK(m.value().files.size() == 4);
  auto pinned = ModelScopeCache(root.path()).locate(unet_id, "master");
  REQUIRE_FALSE(pinned);
  CHECK(pinned.error() == errc::revision_mismatch);
}

// The moment a modelres download creates the directory: its manifest, the
// first thing it writes, is still under a temporary name.
TEST_CASE("a directory whose only modelres manifest is half-written is a download starting: incomplete", "[modelscope]") {
  TempDir root;
  const fs::path dir = root.path() / "models/iic/cv_unet_skin_retouching_torch";
  testing::write_file(dir / ".modelres.tmp5bde98c18ef1-3621-0", "");
  auto starting = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE_FALSE(starting);
  CHECK(starting.error() == errc::incomplete);
  CHECK(starting.error().detail == "a download into " + dir.native() + " is starting");
  SECTION("with files copied in beforehand, the same") {
    for (const auto& [path, content] : testing::unet().files) testing::write_file(dir / path, content);
    CHECK(ModelScopeCache(root.path()).locate(unet_id, "").error() == errc::incomplete);
  }
}

TEST_CASE("a lookup writes, creates, locks and moves nothing", "[modelscope]") {
  TempDir root;
  testing::lay_out_classic(root.path() / "hub/iic/cv_unet_skin_retouching_torch");  // an old layout 1.23 would migrate
  const auto before = testing::tree_state(root.path());
  ModelScopeCache cache(root.path());
  CHECK(cache.locate(unet_id, ""));
  CHECK(cache.locate(qwen_id, "").error() == errc::not_cached);
  CHECK(cache.locate(unet_id, "v9").error() == errc::revision_mismatch);
  CHECK(cache.list());
  CHECK(testing::tree_state(root.path()) == before);
  CHECK_FALSE(fs::exists(root.path() / ".lock"));
  CHECK_FALSE(fs::exists(root.path() / "models"));
}

TEST_CASE("unreadable metadata or directories are permission_denied", "[modelscope][permissions]") {
  TempDir root;
  fs::permissions(root.path(), fs::perms::all, fs::perm_options::add);  // let the unprivileged child in
  const fs::path dir = testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch");
  for (const auto& p : {root.path() / "models", root.path() / "models/iic", dir})
    fs::permissions(p, fs::perms::all, fs::perm_options::add);

  SECTION(".msc unreadable") {
    ::chmod((dir / ".msc").c_str(), 0);
    const int code = testing::run_unprivileged([&] {
      auto m = ModelScopeCache(root.path()).locate(unet_id, "");
      return m ? 0 : static_cast<int>(m.error().code.value());
    });
    CHECK(code == static_cast<int>(errc::permission_denied));
  }
  SECTION("the owner directory cannot be searched") {
    ::chmod((root.path() / "models/iic").c_str(), 0);
    const int code = testing::run_unprivileged([&] {
      auto m = ModelScopeCache(root.path()).locate(unet_id, "");
      return m ? 0 : static_cast<int>(m.error().code.value());
    });
    CHECK(code == static_cast<int>(errc::permission_denied));
  }
}

TEST_CASE("list: every layout, with state", "[modelscope]") {
  TempDir root;
  testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch");
  const fs::path qwen = root.path() / "hub/Qwen/Qwen2___5-0___5B-Instruct";
  testing::lay_out_classic(qwen, ClassicOptions{2, true, "Revision:v1,CreatedAt:1", false, {"pytorch_model.pt"}});
  fs::create_directory_symlink(qwen, root.path() / "hub/Qwen/Qwen2.5-0.5B-Instruct");
  testing::lay_out_snapshot(root.path(), "damo--nlp_model", "master");
  testing::write_file(root.path() / "hub/models/x/leftover/.mdl", testing::fixture("unet_mdl_p4.pkl"));

  auto listed = ModelScopeCache(root.path()).list();
  REQUIRE(listed);
  const auto& entries = listed.value();
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].model_id == "Qwen/Qwen2.5-0.5B-Instruct");
  REQUIRE(entries[0].problem);
  CHECK(*entries[0].problem == errc::incomplete);
  CHECK(entries[1].model_id == "damo/nlp_model");
  REQUIRE(entries[1].model);
  CHECK(entries[1].model->completeness == Completeness::unknown);
  CHECK(entries[2].model_id == "iic/cv_unet_skin_retouching_torch");
  REQUIRE(entries[2].model);
  CHECK(entries[2].model->completeness == Completeness::verified);
  CHECK(entries[2].model->revision == "master");
}

TEST_CASE("inspect: a directory given by path must exist and be a directory", "[modelscope]") {
  TempDir root;
  ModelScopeCache cache(root.path());
  auto missing = cache.inspect(root.path() / "absent", "");
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == errc::path_not_found);
  CHECK(missing.error().reference == (root.path() / "absent").native());
  testing::write_file(root.path() / "file", "x");
  CHECK(cache.inspect(root.path() / "file", "").error() == errc::not_a_directory);
  auto empty = cache.inspect(root.path(), "");
  REQUIRE(empty);
  CHECK(empty.value().files.empty());
  CHECK(empty.value().completeness == Completeness::unknown);
}

TEST_CASE("an owner named like a layout directory does not resolve to another layout's owner directory", "[modelscope]") {
  TempDir root;
  // Owner "foo", model "bar" in the 1.23-1.37 layout: ROOT/models/foo/bar.
  testing::lay_out_classic(root.path() / "models/foo/bar");
  // Model "models/foo" would be ROOT/models/foo in the flat layout: the same directory.
  auto m = ModelScopeCache(root.path()).locate(ModelId{"models", "foo"}, "");
  REQUIRE_FALSE(m);
  CHECK(m.error() == errc::not_cached);
  CHECK(m.error().looked_at.back().path == root.str() + "/models/foo");
  CHECK(m.error().looked_at.back().verdict == "holds other models' directories (bar), not a model");
}

TEST_CASE("records sharing one string object through the pickle memo keep it in each", "[modelscope]") {
  // Two records whose Revision is the same Python object: the second is a BINGET.
  // Written by hand the way pickle writes shared objects (protocol 2).
  const std::string rev = "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9";
  // pickle.dumps([{'Path': 'configuration.json', 'Revision': rev}, {'Path': 'README.md', 'Revision': rev}], protocol=2)
  static const char bytes[] =
      "\x80\x02]q\x00(}q\x01(X\x04\x00\x00\x00Pathq\x02X\x12\x00\x00\x00" "configuration.jsonq\x03"
      "X\x08\x00\x00\x00Revisionq\x04X(\x00\x00\x00" "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9q\x05u}q\x06(h\x02"
      "X\t\x00\x00\x00README.mdq\x07h\x04h\x05ue.";
  const std::string msc(bytes, sizeof bytes - 1);
  TempDir root;
  const fs::path dir = testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch");
  testing::write_file(dir / ".msc", msc);
  auto m = ModelScopeCache(root.path()).locate(unet_id, "");
  REQUIRE(m);
  REQUIRE(m.value().files.size() == 2);
  CHECK(m.value().files[0].revision == rev);
  CHECK(m.value().files[1].path == "README.md");
  CHECK(m.value().files[1].revision == rev);
}

TEST_CASE("list: a model directory symlinked to another disk is listed, an alias is not listed twice", "[modelscope]") {
  TempDir root, other_disk;
  const fs::path real = testing::lay_out_classic(other_disk.path() / "unet");
  fs::create_directories(root.path() / "models/iic");
  fs::create_directory_symlink(real, root.path() / "models/iic/cv_unet_skin_retouching_torch");
  // The dotted-name alias the client creates, beside its target.
  const fs::path qwen = root.path() / "models/Qwen/Qwen2___5-0___5B-Instruct";
  testing::lay_out_classic(qwen);
  testing::write_file(qwen / ".mdl", testing::fixture("qwen_mdl_p4.pkl"));
  fs::create_directory_symlink(qwen, root.path() / "models/Qwen/Qwen2.5-0.5B-Instruct");

  auto listed = ModelScopeCache(root.path()).list();
  REQUIRE(listed);
  REQUIRE(listed.value().size() == 2);
  CHECK(listed.value()[0].model_id == "Qwen/Qwen2.5-0.5B-Instruct");
  CHECK(listed.value()[1].model_id == "iic/cv_unet_skin_retouching_torch");
  CHECK(listed.value()[1].model);
}

TEST_CASE("a relative root is made absolute", "[modelscope]") {
  TempDir work;
  testing::lay_out_classic(work.path() / "cache/models/iic/cv_unet_skin_retouching_torch");
  const fs::path old_cwd = fs::current_path();
  fs::current_path(work.path());
  auto m = ModelScopeCache("cache").locate(unet_id, "");
  fs::current_path(old_cwd);
  REQUIRE(m);
  CHECK(m.value().directory == work.path() / "cache/models/iic/cv_unet_skin_retouching_torch");
}

TEST_CASE("a manifest written until_restart is verified in its boot, unknown after a restart", "[modelscope][durability]") {
  TempDir root;
  const fs::path dir = root.path() / "models/iic/cv_unet_skin_retouching_torch";
  testing::write_file(dir / "configuration.json", "{}");
  const auto manifest = [](const std::string& boot_line) {
    return "modelres-manifest 1\n" + boot_line + "model iic/cv_unet_skin_retouching_torch\nrevision master\n"
           "created_at 1713419382\nendpoint http://127.0.0.1:1\nfile 2 " + std::string(64, 'a') + " - configuration.json\n";
  };
  ModelScopeCache cache(root.path());
  const std::string boot = modelres::detail::current_boot_id();
  REQUIRE(!boot.empty());  // Linux: /proc/sys/kernel/random/boot_id

  testing::write_file(dir / ".modelres", manifest("unsynced_boot " + boot + "\n"));
  auto same = cache.locate(unet_id, {});
  REQUIRE(same);
  CHECK(same.value().completeness == Completeness::verified);

  for (const std::string other : {"unsynced_boot 0b5e0f5c-0000-4000-8000-000000000000\n", "unsynced_boot\n", "unsynced_boot -\n"}) {
    testing::write_file(dir / ".modelres", manifest(other));
    auto after = cache.locate(unet_id, {});
    REQUIRE(after);  // served: the files are there, but nothing proves they reached the disk
    CHECK(after.value().completeness == Completeness::unknown);
  }
  // And the write side does not take that manifest's word for its files.
  auto target = cache.prepare_write(unet_id);
  REQUIRE(target);
  CHECK(target.value().manifest_files.empty());

  testing::write_file(dir / ".modelres", manifest(""));  // synced: no marker
  auto synced = cache.locate(unet_id, {});
  REQUIRE(synced);
  CHECK(synced.value().completeness == Completeness::verified);
  auto synced_target = cache.prepare_write(unet_id);
  REQUIRE(synced_target);
  CHECK(synced_target.value().manifest_files.size() == 1);
  CHECK_FALSE(synced_target.value().manifest_unsynced);
}

}  // namespace modelscope_cache_test
