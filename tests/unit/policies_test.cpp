#include <modelres/modelres.hpp>

#include <sys/stat.h>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"

using namespace modelres;
using testing::TempDir;
namespace fs = std::filesystem;

namespace policies_test {

// A user-written policy, as docs/traits.md shows it: a fleet keeps a shared,
// read-only cache (an NFS export) that is searched after the local cache.
// It never looks at a path and never touches the network.
struct SharedCacheFallbackPolicy {
  static constexpr reference_kind accepts = reference_kind::model_id;
  ModelScopeCache shared;

  template <class Cache>
  result<ResolvedModel> resolve(std::string_view reference, const ResolveOptions& options, Cache& local) const {
    MODELRES_TRY(id, ModelId::parse(reference));
    auto found = local.locate(id, options.revision);
    if (found || found.error() != errc::not_cached) return found;
    auto from_shared = shared.locate(id, options.revision);
    if (!from_shared && from_shared.error() == errc::not_cached) {
      // Report every place looked at, local and shared.
      Error e = std::move(from_shared).error();
      auto local_probes = std::move(found).error().looked_at;
      local_probes.insert(local_probes.end(), e.looked_at.begin(), e.looked_at.end());
      e.looked_at = std::move(local_probes);
      return e;
    }
    return from_shared;
  }
};

using Offline = Resolver<DefaultOfflinePolicy, ModelScopeCache>;

struct NotACache {};
struct NoAccepts {
  template <class C>
  result<ResolvedModel> resolve(std::string_view, const ResolveOptions&, C&) const { return ResolvedModel{}; }
};

TEST_CASE("PathPolicy: a directory, absolute, relative or under ~", "[policies][path]") {
  TempDir home;
  const fs::path dir = home.path() / "models/unet";
  testing::write_file(dir / "configuration.json", "{}");
  testing::ScopedEnv h("HOME", home.str());
  Resolver<PathPolicy, ModelScopeCache> resolver;

  auto abs = resolver.resolve(dir.native());
  REQUIRE(abs);
  CHECK(abs.value().directory == dir);
  CHECK(abs.value().model_id.empty());
  CHECK(abs.value().completeness == Completeness::unknown);

  auto tilde = resolver.resolve("~/models/unet");
  REQUIRE(tilde);
  CHECK(tilde.value().directory == dir);

  const fs::path old_cwd = fs::current_path();
  fs::current_path(home.path());
  // Used alone, PathPolicy takes every reference as a path, "models/unet" too.
  auto relative = resolver.resolve("models/unet");
  auto dotted = resolver.resolve("./models/../models/unet");
  fs::current_path(old_cwd);
  REQUIRE(relative);
  CHECK(relative.value().directory == dir);
  REQUIRE(dotted);
  CHECK(dotted.value().directory == dir);
}

TEST_CASE("PathPolicy: missing, not a directory, unreadable are each their own error", "[policies][path]") {
  TempDir tmp;
  Resolver<PathPolicy, ModelScopeCache> resolver;

  auto missing = resolver.resolve((tmp.path() / "nope").native());
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == errc::path_not_found);
  CHECK(missing.error().reference == (tmp.path() / "nope").native());

  testing::write_file(tmp.path() / "file.bin", "x");
  auto file = resolver.resolve((tmp.path() / "file.bin").native());
  REQUIRE_FALSE(file);
  CHECK(file.error() == errc::not_a_directory);

  CHECK(resolver.resolve("").error() == errc::path_not_found);
  CHECK(resolver.resolve("~no_such_user_modelres/x").error() == errc::path_not_found);

  fs::permissions(tmp.path(), fs::perms::all, fs::perm_options::add);
  const fs::path locked = tmp.path() / "locked";
  fs::create_directories(locked / "inner");
  ::chmod(locked.c_str(), 0);
  const int unreadable = testing::run_unprivileged([&] {
    auto r = Resolver<PathPolicy, ModelScopeCache>().resolve(locked.native());
    return r ? 0 : r.error().code.value();
  });
  CHECK(unreadable == static_cast<int>(errc::permission_denied));
  const int unsearchable = testing::run_unprivileged([&] {
    auto r = Resolver<PathPolicy, ModelScopeCache>().resolve((locked / "inner").native());
    return r ? 0 : r.error().code.value();
  });
  CHECK(unsearchable == static_cast<int>(errc::permission_denied));
}

TEST_CASE("PathPolicy: a path to a Python cache directory is checked like a cache hit", "[policies][path]") {
  TempDir root;
  const fs::path dir = testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch");
  Resolver<PathPolicy, ModelScopeCache> resolver;
  auto ok = resolver.resolve(dir.native());
  REQUIRE(ok);
  CHECK(ok.value().completeness == Completeness::verified);
  CHECK(ok.value().model_id == "iic/cv_unet_skin_retouching_torch");
  CHECK(ok.value().files.size() == 4);

  ResolveOptions pinned;
  pinned.revision = "v2";
  CHECK(resolver.resolve(dir.native(), pinned).error() == errc::revision_mismatch);

  fs::remove(dir / "pytorch_model.pt");
  auto broken = resolver.resolve(dir.native());
  REQUIRE_FALSE(broken);
  CHECK(broken.error() == errc::incomplete);
  CHECK(broken.error().reference == dir.native());
}

TEST_CASE("FirstOf<Path, LocalOnly>: spelling decides, not what exists", "[policies][first_of]") {
  TempDir root, work;
  const fs::path cached = testing::lay_out_classic(root.path() / "models/iic/cv_unet_skin_retouching_torch");
  // A directory in the working directory spelled exactly like the id.
  testing::write_file(work.path() / "iic/cv_unet_skin_retouching_torch/configuration.json", "{}");
  Offline resolver{ModelScopeCache(root.path())};

  const fs::path old_cwd = fs::current_path();
  fs::current_path(work.path());
  auto as_id = resolver.resolve("iic/cv_unet_skin_retouching_torch");
  auto as_path = resolver.resolve("./iic/cv_unet_skin_retouching_torch");
  fs::current_path(old_cwd);

  REQUIRE(as_id);
  CHECK(as_id.value().directory == cached);
  REQUIRE(as_path);
  CHECK(as_path.value().directory == work.path() / "iic/cv_unet_skin_retouching_torch");

  auto miss = resolver.resolve("iic/not_here");
  REQUIRE_FALSE(miss);
  CHECK(miss.error() == errc::not_cached);
  CHECK(miss.error().looked_at.size() == 5);

  CHECK(resolver.resolve("/definitely/not/here").error() == errc::path_not_found);
  CHECK(resolver.resolve("bad id with spaces").error() == errc::invalid_model_id);
}

TEST_CASE("FirstOf without a policy for the kind: unsupported_reference", "[policies][first_of]") {
  Resolver<FirstOf<LocalOnlyPolicy>, ModelScopeCache> ids_only;
  auto r = ids_only.resolve("/models/unet");
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::unsupported_reference);
  CHECK(r.error().reference == "/models/unet");

  Resolver<FirstOf<PathPolicy>, ModelScopeCache> paths_only;
  auto p = paths_only.resolve("models/unet");
  REQUIRE_FALSE(p);
  CHECK(p.error() == errc::unsupported_reference);
  CHECK(p.error().detail.find("./dir") != std::string::npos);
}

TEST_CASE("LocalOnlyPolicy: an id that names no path outside the cache", "[policies][local_only]") {
  TempDir root;
  Resolver<LocalOnlyPolicy, ModelScopeCache> resolver{ModelScopeCache(root.path())};
  for (const char* evil : {"../../etc/passwd", "/etc/passwd", "a/../../b", "..\\..\\x/y", "a/b/../../../c"}) {
    INFO(evil);
    CHECK(resolver.resolve(evil).error() == errc::invalid_model_id);
  }
}

TEST_CASE("the resolver validates the revision before any policy runs", "[policies]") {
  TempDir root;
  Offline resolver{ModelScopeCache(root.path())};
  ResolveOptions o;
  o.revision = "../../etc";
  auto r = resolver.resolve("iic/x", o);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::invalid_revision);
  CHECK(r.error().reference == "iic/x");
  CHECK(r.error().revision == "../../etc");
}

TEST_CASE("a user-written policy plugs in: shared read-only cache after the local one", "[policies][user]") {
  TempDir local, shared;
  const fs::path in_shared = testing::lay_out_classic(shared.path() / "models/iic/cv_unet_skin_retouching_torch");
  SharedCacheFallbackPolicy policy{ModelScopeCache(shared.path())};
  Resolver<FirstOf<PathPolicy, SharedCacheFallbackPolicy>, ModelScopeCache> resolver{
      ModelScopeCache(local.path()), FirstOf<PathPolicy, SharedCacheFallbackPolicy>(PathPolicy{}, policy)};

  auto r = resolver.resolve("iic/cv_unet_skin_retouching_torch");
  REQUIRE(r);
  CHECK(r.value().directory == in_shared);

  const fs::path in_local = testing::lay_out_classic(local.path() / "models/iic/cv_unet_skin_retouching_torch");
  CHECK(resolver.resolve("iic/cv_unet_skin_retouching_torch").value().directory == in_local);

  auto miss = resolver.resolve("iic/other");
  REQUIRE_FALSE(miss);
  CHECK(miss.error() == errc::not_cached);
  CHECK(miss.error().looked_at.size() == 10);  // five places in each cache
  static_assert(is_policy_for<SharedCacheFallbackPolicy, ModelScopeCache>::value);
}

TEST_CASE("detection traits", "[policies][traits]") {
  static_assert(is_cache<ModelScopeCache>::value);
  static_assert(!is_cache<NotACache>::value);
  static_assert(is_policy_for<PathPolicy, ModelScopeCache>::value);
  static_assert(is_policy_for<LocalOnlyPolicy, ModelScopeCache>::value);
  static_assert(is_policy_for<DefaultOfflinePolicy, ModelScopeCache>::value);
  static_assert(!is_policy_for<NoAccepts, ModelScopeCache>::value);
  static_assert(!policy_has_accepts<NoAccepts>::value);
  SUCCEED("checked at compile time");
}

TEST_CASE("errors: category, names and messages", "[errors]") {
  const std::error_code ec = errc::not_cached;
  CHECK(ec.category().name() == std::string("modelres"));
  CHECK(ec.message() == "model not cached");
  CHECK(std::string(to_string(errc::unsafe_metadata)) == "unsafe_metadata");
  for (int v = 1; v <= 26; ++v) {
    CHECK(std::string(to_string(static_cast<errc>(v))) != "unknown");
    CHECK(std::error_code(static_cast<errc>(v)).message() != "unknown modelres error");
  }
  Error e(errc::incomplete, "a/b", "missing x");
  e.looked_at.push_back({"/c/a/b", "1 of 2 recorded files missing"});
  CHECK(e.message() == "cached model is incomplete: a/b\n  missing x\n  looked at /c/a/b: 1 of 2 recorded files missing");
}

TEST_CASE("PathPolicy: any other system error is io_error with its cause", "[policies][path]") {
  TempDir tmp;
  // A symlink loop: stat fails with ELOOP, neither missing nor a permission problem.
  fs::create_symlink(tmp.path() / "b", tmp.path() / "a");
  fs::create_symlink(tmp.path() / "a", tmp.path() / "b");
  auto r = Resolver<PathPolicy, ModelScopeCache>().resolve((tmp.path() / "a").native());
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::io_error);
  CHECK(r.error().cause == std::errc::too_many_symbolic_link_levels);
  CHECK(r.error().message().find("cause: ") != std::string::npos);
}

}  // namespace policies_test
