// The Cache requirements, and detection traits that check them.
//
// A type C models Cache if, for `const C c`, `ModelId id`, `std::string_view rev`
// and `std::filesystem::path dir`:
//
//   expression            type                    semantics
//   c.locate(id, rev)     result<ResolvedModel>   the cached model, read-only; errc::not_cached
//                                                 with every path looked at if it is not there
//   c.inspect(dir, rev)   result<ResolvedModel>   what the metadata in `dir` (a directory given by
//                                                 path) says about it; never fails for lack of metadata;
//                                                 path_not_found / not_a_directory if `dir` is neither
//
// docs/traits.md has the full table. Resolvers static_assert these where they
// use a cache, each with a message naming the missing piece.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../durability.hpp"
#include "../hub_snapshot.hpp"
#include "write_target.hpp"
#include "../model_ref.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"

namespace modelres {

// One model a cache holds, as its list() reports it (modelres ls).
struct CacheEntry {
  std::string model_id;
  std::filesystem::path directory;
  std::string layout;
  std::optional<ResolvedModel> model;  // set when the model would be served
  std::optional<Error> problem;        // otherwise, why not
};

template <class C, class = void>
struct cache_has_locate : std::false_type {};
template <class C>
struct cache_has_locate<C, std::void_t<decltype(std::declval<const C&>().locate(std::declval<const ModelId&>(),
                                                                                 std::declval<std::string_view>()))>>
    : std::is_convertible<decltype(std::declval<const C&>().locate(std::declval<const ModelId&>(),
                                                                    std::declval<std::string_view>())),
                          result<ResolvedModel>> {};

template <class C, class = void>
struct cache_has_inspect : std::false_type {};
template <class C>
struct cache_has_inspect<C, std::void_t<decltype(std::declval<const C&>().inspect(
                                std::declval<const std::filesystem::path&>(), std::declval<std::string_view>()))>>
    : std::is_convertible<decltype(std::declval<const C&>().inspect(std::declval<const std::filesystem::path&>(),
                                                                     std::declval<std::string_view>())),
                          result<ResolvedModel>> {};

template <class C>
struct is_cache : std::conjunction<cache_has_locate<C>, cache_has_inspect<C>> {};

// What OnlinePolicy needs besides: a write side (docs/traits.md, Writable cache).
template <class C, class = void>
struct cache_has_prepare_write : std::false_type {};
template <class C>
struct cache_has_prepare_write<C, std::void_t<decltype(std::declval<const C&>().prepare_write(std::declval<const ModelId&>()))>>
    : std::true_type {};

template <class C, class = void>
struct cache_has_commit : std::false_type {};
template <class C>
struct cache_has_commit<
    C, std::void_t<decltype(std::declval<const C&>().plan(std::declval<const WriteTarget&>(), std::declval<const HubSnapshot&>())),
                   decltype(std::declval<const C&>().begin_download(std::declval<const ModelId&>(), std::declval<const WriteTarget&>(),
                                                                    std::declval<const HubSnapshot&>())),
                   decltype(std::declval<const C&>().commit(std::declval<const ModelId&>(), std::declval<const WriteTarget&>(),
                                                            std::declval<const HubSnapshot&>(), Durability::on_disk))>>
    : std::true_type {};

// Optional: a cache that keeps a hub's listing of a commit
// (`bool cached_files(const ModelId&, HubSnapshot&) const`, filling the files
// of snapshot.commit), used with a hub_lists_by_commit hub.
template <class C, class = void>
struct cache_has_cached_files : std::false_type {};
template <class C>
struct cache_has_cached_files<C, std::void_t<decltype(std::declval<const C&>().cached_files(std::declval<const ModelId&>(),
                                                                                             std::declval<HubSnapshot&>()))>>
    : std::true_type {};

// Optional: read-only caches to consult before this one's write side
// (`read_only_caches()`, a range of caches; LayeredCache). OnlinePolicy
// serves the hub's snapshot from the first that holds it, writing nothing.
template <class C, class = void>
struct cache_has_read_only_caches : std::false_type {};
template <class C>
struct cache_has_read_only_caches<C, std::void_t<decltype(std::declval<const C&>().read_only_caches())>> : std::true_type {};

template <class C, class = void>
struct cache_has_root : std::false_type {};
template <class C>
struct cache_has_root<C, std::void_t<decltype(std::declval<const C&>().root())>> : std::true_type {};

// Records in `m` the root of `cache` (where the cache can say) and whether it is a read-only one.
template <class C>
void mark_served_from(ResolvedModel& m, const C& cache, bool read_only) {
  m.from_read_only_root = read_only;
  if constexpr (cache_has_root<C>::value) {
    auto r = cache.root();
    if (r) m.cache_root = std::move(r).value();
  }
}

template <class C>
struct is_writable_cache : std::conjunction<is_cache<C>, cache_has_prepare_write<C>, cache_has_commit<C>> {};

template <class C>
constexpr bool check_writable_cache() {
  static_assert(cache_has_prepare_write<C>::value,
                "modelres: OnlinePolicy needs a cache it can write: this Cache type has no `result<WriteTarget> "
                "prepare_write(const ModelId&) const` (see docs/traits.md, Writable cache)");
  static_assert(cache_has_commit<C>::value,
                "modelres: OnlinePolicy needs a cache it can write: this Cache type lacks plan(), begin_download() or "
                "commit() (see docs/traits.md, Writable cache)");
  return true;
}

template <class C>
constexpr bool check_cache() {
  static_assert(cache_has_locate<C>::value,
                "modelres: this Cache type has no `result<ResolvedModel> locate(const ModelId&, std::string_view) "
                "const` (see docs/traits.md, Cache)");
  static_assert(cache_has_inspect<C>::value,
                "modelres: this Cache type has no `result<ResolvedModel> inspect(const std::filesystem::path&, "
                "std::string_view) const` (see docs/traits.md, Cache)");
  return true;
}

// Optional: what the cache records of each file of a model it served
// (sha256, git blob id), for verify() and lock files:
// `std::vector<HubFile> recorded_checks(const ResolvedModel&) const`.
template <class C, class = void>
struct cache_has_recorded_checks : std::false_type {};
template <class C>
struct cache_has_recorded_checks<C, std::void_t<decltype(std::declval<const C&>().recorded_checks(std::declval<const ResolvedModel&>()))>>
    : std::true_type {};

}  // namespace modelres
