// LayeredCache<Cache>: read-only cache roots, consulted in order, in front of
// one writable cache, all in one hub's layout (Cache is ModelScopeCache or
// HuggingFaceCache, or a user's cache constructible from a root path).
//
// A fleet keeps models on a shared volume, an image layer or a pre-seeded
// disk that it cannot (or must not) write: each is a read-only root.
//
//   LayeredCache<HuggingFaceCache> cache({HuggingFaceCache("/mnt/models"), HuggingFaceCache("/opt/baked")},
//                                        HuggingFaceCache());   // ~/.cache/huggingface/hub
//   Resolver<LocalOnlyPolicy, LayeredCache<HuggingFaceCache>> resolver(std::move(cache));
//
// Default-constructed, the read-only roots are MODELRES_READ_ONLY_CACHES
// (colon-separated, read at each call). A read-only root is only ever read:
// its locate() is the cache's own, which writes, creates and locks nothing,
// and OnlinePolicy asks it whether it holds the hub's snapshot (reading and
// hashing, never writing) before it turns to the writable cache; downloads,
// locks and metadata go to the writable cache alone. A model a root holds
// incompletely is not served from it: the next root, or the writable cache,
// is asked. ResolvedModel::cache_root says which root served the model.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../detail/fs.hpp"
#include "../error.hpp"
#include "../model_ref.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"
#include "cache_traits.hpp"

namespace modelres {

// The read-only roots MODELRES_READ_ONLY_CACHES names, in order
// (colon-separated, as PATH; empty entries skipped, "~" expanded).
inline std::vector<std::filesystem::path> read_only_roots_from_environment() {
  std::vector<std::filesystem::path> roots;
  const std::string list = detail::environment("MODELRES_READ_ONLY_CACHES");
  for (std::size_t from = 0; from <= list.size();) {
    std::size_t colon = list.find(':', from);
    if (colon == std::string::npos) colon = list.size();
    const std::string_view entry = std::string_view(list).substr(from, colon - from);
    std::string expanded;
    if (!entry.empty()) roots.emplace_back(detail::expand_tilde(entry, expanded) ? expanded : std::string(entry));
    from = colon + 1;
  }
  return roots;
}

template <class Cache>
class LayeredCache {
  static_assert(check_cache<Cache>());

 public:
  // Read-only roots from MODELRES_READ_ONLY_CACHES, in front of `writable`.
  LayeredCache() = default;
  explicit LayeredCache(Cache writable) : writable_(std::move(writable)) {}
  // Exactly these read-only roots (none: the writable cache alone), the environment not read.
  LayeredCache(std::vector<Cache> read_only, Cache writable)
      : read_only_(std::move(read_only)), writable_(std::move(writable)), from_environment_(false) {}

  // The read-only roots in force, in the order they are consulted.
  std::vector<Cache> read_only_caches() const {
    if (!from_environment_) return read_only_;
    std::vector<Cache> caches;
    for (auto& root : read_only_roots_from_environment()) caches.emplace_back(std::move(root));
    return caches;
  }
  const Cache& writable() const { return writable_; }

  // The first root, in order, that serves the model; the writable cache last.
  // Nothing served: the first error that says more than not_cached (an
  // incomplete copy, another revision), else not_cached, with every path
  // every root looked at.
  result<ResolvedModel> locate(const ModelId& id, std::string_view revision) const {
    std::vector<Error> misses;
    for (const Cache& root : read_only_caches()) {
      auto found = root.locate(id, revision);
      if (found) return served(std::move(found).value(), root, true);
      misses.push_back(std::move(found).error());
    }
    auto found = writable_.locate(id, revision);
    if (found) return served(std::move(found).value(), writable_, false);
    if (misses.empty()) return found;
    misses.push_back(std::move(found).error());
    return combined(std::move(misses));
  }

  // A directory given by path is read as the writable cache's layout.
  result<ResolvedModel> inspect(const std::filesystem::path& directory, std::string_view revision) const {
    return writable_.inspect(directory, revision);
  }

  // Every model of every root, read-only roots first.
  template <class C = Cache>
  auto list() const -> decltype(std::declval<const C&>().list()) {
    std::vector<CacheEntry> all;
    for (const Cache& root : read_only_caches()) {
      MODELRES_TRY(entries, root.list());
      for (auto& e : entries) all.push_back(std::move(e));
    }
    MODELRES_TRY(entries, writable_.list());
    for (auto& e : entries) all.push_back(std::move(e));
    return all;
  }

  // The writable cache's root (where downloads go).
  template <class C = Cache>
  auto root() const -> decltype(std::declval<const C&>().root()) {
    return writable_.root();
  }

  // The write side is the writable cache's. OnlinePolicy consults the
  // read-only roots itself first (read_only_caches()), so that it can hash
  // what they hold without this header needing a hash library.
  template <class C = Cache>
  auto prepare_write(const ModelId& id) const -> decltype(std::declval<const C&>().prepare_write(id)) {
    return writable_.prepare_write(id);
  }
  template <class C = Cache>
  auto plan(const WriteTarget& target, const HubSnapshot& snapshot) const
      -> decltype(std::declval<const C&>().plan(target, snapshot)) {
    return writable_.plan(target, snapshot);
  }
  template <class C = Cache>
  auto begin_download(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot) const
      -> decltype(std::declval<const C&>().begin_download(id, target, snapshot)) {
    return writable_.begin_download(id, target, snapshot);
  }
  template <class C = Cache>
  auto commit(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot, Durability durability) const
      -> decltype(std::declval<const C&>().commit(id, target, snapshot, durability)) {
    auto committed = writable_.commit(id, target, snapshot, durability);
    if (committed) mark(committed.value(), writable_, false);
    return committed;
  }

  // What is recorded of a served model's files (verify()): read where the
  // model is, in the layout all roots share.
  template <class C = Cache>
  auto recorded_checks(const ResolvedModel& m) const -> decltype(std::declval<const C&>().recorded_checks(m)) {
    return writable_.recorded_checks(m);
  }

  // A hub's listing of a commit, from whichever root keeps one (a commit's
  // listing is the same wherever it was saved).
  template <class C = Cache>
  auto cached_files(const ModelId& id, HubSnapshot& snapshot) const
      -> decltype(std::declval<const C&>().cached_files(id, snapshot)) {
    for (const Cache& root : read_only_caches())
      if (root.cached_files(id, snapshot)) return true;
    return writable_.cached_files(id, snapshot);
  }

 private:
  static void mark(ResolvedModel& m, const Cache& root, bool read_only) { mark_served_from(m, root, read_only); }
  static result<ResolvedModel> served(ResolvedModel m, const Cache& root, bool read_only) {
    mark(m, root, read_only);
    return m;
  }

  static Error combined(std::vector<Error> misses) {
    std::size_t chosen = 0;
    for (std::size_t i = 0; i < misses.size(); ++i)
      if (misses[i] != errc::not_cached) {
        chosen = i;
        break;
      }
    Error e = misses[chosen];
    e.looked_at.clear();
    for (Error& m : misses)
      for (Probe& p : m.looked_at) e.looked_at.push_back(std::move(p));
    return e;
  }

  std::vector<Cache> read_only_;
  Cache writable_;
  bool from_environment_ = true;
};

}  // namespace modelres
