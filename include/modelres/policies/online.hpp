// OnlinePolicy<Transport>: ask the ModelScope hub which files a revision has,
// (its cache must be writable: is_writable_cache, docs/traits.md),
// download what the cache lacks (verified, resumable, in parallel), and return
// the directory. Online when it can be, correct when it cannot:
//
// - The hub cannot be asked (unreachable, timing out, refusing, answering
//   garbage): by default the cached model is served, with hub_check
//   `unavailable` and the reason; with `strict`, the hub's error is returned.
// - MODELRES_OFFLINE or HF_HUB_OFFLINE set to 1/true/yes/on, read at each
//   call: no request at all, the cache alone (hub_check `offline`).
// - A current cache costs two requests (revisions, file list) and no download.
//
// Writes go where the Python client of every generation finds them
// (ModelScopeCache::prepare_write), under the client's own lock file.
#pragma once

#include <fnmatch.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../caches/cache_traits.hpp"
#include "../detail/file_lock.hpp"
#include "../detail/fs.hpp"
#include "../detail/sha256.hpp"
#include "../error.hpp"
#include "../fetcher.hpp"
#include "../hubs/modelscope_hub.hpp"
#include "../model_ref.hpp"
#include "../resolve_options.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"

namespace modelres {

struct OnlineOptions {
  bool strict = false;  // true: a hub that cannot be asked is an error, never a fallback
  ModelScopeHubOptions hub;
  FetchOptions fetch;
  std::chrono::milliseconds lock_timeout{60 * 60 * 1000};  // another process downloading the same model
};

namespace detail {

// The offline switch users already set, read at each call.
inline const char* offline_switch() {
  for (const char* name : {"MODELRES_OFFLINE", "HF_HUB_OFFLINE"}) {
    std::string v = environment(name);
    for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (v == "1" || v == "true" || v == "yes" || v == "on") return name;
  }
  return nullptr;
}

// The client's pattern rule (_download_file_lists): fnmatch with '*'
// matching '/', no backslash escapes; "dir/" means "dir/*".
inline bool matches_any(const std::string& path, const std::vector<std::string>& patterns) {
  for (std::string p : patterns) {
    if (!p.empty() && p.back() == '/') p += '*';
    if (::fnmatch(p.c_str(), path.c_str(), FNM_NOESCAPE) == 0) return true;
  }
  return false;
}

inline std::vector<HubFile> select_files(std::vector<HubFile> files, const ResolveOptions& o) {
  if (o.allow_patterns.empty() && o.ignore_patterns.empty()) return files;
  std::vector<HubFile> kept;
  for (auto& f : files)
    if ((o.allow_patterns.empty() || matches_any(f.path, o.allow_patterns)) && !matches_any(f.path, o.ignore_patterns))
      kept.push_back(std::move(f));
  return kept;
}

inline bool sha256_of_file(const std::string& path, std::string& hex) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  Sha256 hash;
  std::string buf(1 << 20, '\0');
  ssize_t n;
  while ((n = ::read(fd, &buf[0], buf.size())) > 0) hash.update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
  ::close(fd);
  if (n < 0) return false;
  hex = hash.hex();
  return true;
}

}  // namespace detail

template <class Transport>
class OnlinePolicy {
 public:
  static constexpr reference_kind accepts = reference_kind::model_id;
  using TransportFactory = std::function<Transport()>;

  explicit OnlinePolicy(OnlineOptions options = {}, TransportFactory make_transport = [] { return Transport(); })
      : options_(std::move(options)), make_transport_(std::move(make_transport)) {}

  OnlineOptions& options() { return options_; }

  template <class Cache>
  result<ResolvedModel> resolve(std::string_view reference, const ResolveOptions& request, Cache& cache) {
    static_assert(check_writable_cache<Cache>());
    MODELRES_TRY(id, ModelId::parse(reference));
    if (const char* name = detail::offline_switch()) {
      auto cached = cache.locate(id, request.revision);
      if (!cached) return cached;
      cached.value().hub_check = HubCheck::offline;
      cached.value().hub_check_reason = std::string(name) + " is set";
      return cached;
    }

    ModelScopeHub<Transport> hub(make_transport_(), options_.hub);
    auto snapshot = hub.snapshot(id, request.revision);
    if (!snapshot) return fall_back(cache, id, request.revision, std::move(snapshot).error());
    HubSnapshot& snap = snapshot.value();
    snap.files = detail::select_files(std::move(snap.files), request);

    // One process at a time per model, as the Python client does; the second
    // finds the first's files in place.
    MODELRES_TRY(where, cache.prepare_write(id));
    auto lock = detail::FileLock::acquire(where.lock_path, options_.lock_timeout, options_.fetch.cancel);
    if (!lock) return std::move(lock).error().with_id(id.str(), snap.revision);
    MODELRES_TRY(target, cache.prepare_write(id));  // again: another process may have filled it meanwhile
    auto plan = cache.plan(target, snap);
    // Files the Python client recorded at this commit: trusted once they hash right.
    for (HubFile& f : plan.to_verify) {
      std::string hex;
      if (detail::sha256_of_file(target.file(f.path), hex) && hex == f.sha256)
        plan.present.push_back(std::move(f));
      else
        plan.to_download.push_back(std::move(f));
    }

    if (!plan.to_download.empty()) {
      MODELRES_TRYV(cache.begin_download(id, target, snap));
      std::vector<FetchItem> items;
      for (const HubFile& f : plan.to_download)
        items.push_back({f.path, f.size, f.sha256, hub.file_request(id, snap.revision, f.path)});
      Fetcher<Transport> fetcher(
          make_transport_,
          [&](const FetchItem& item, const ResponseHead& head, std::string_view body) {
            return hub.file_error(id, snap.revision, item.path, head, body);
          },
          options_.fetch);
      auto fetched = fetcher.fetch(items, target.model_dir, target.partial_dir);
      if (!fetched) {
        Error e = std::move(fetched).error();
        e.detail = e.reference + ": " + e.detail;
        e.reference = id.str();
        e.revision = snap.revision;
        const bool network = e == errc::hub_unreachable || e == errc::timed_out || e == errc::transfer_interrupted;
        if (network) return fall_back(cache, id, request.revision, std::move(e));
        return e;
      }
    }
    // A cache written until_restart is current too, unless the disk is now
    // asked for: then the commit syncs what the kernel may not have written yet.
    const bool needs_sync = target.manifest_unsynced && options_.fetch.durability == Durability::on_disk;
    if (plan.up_to_date && !needs_sync) {
      // A current cache: nothing to write (a commit would cost four fsyncs).
      auto current = cache.locate(id, snap.revision);
      if (current) {
        current.value().hub_check = HubCheck::current;
        return current;
      }
    }
    auto committed = cache.commit(id, target, snap, options_.fetch.durability);
    if (committed) committed.value().hub_check = HubCheck::current;
    return committed;
  }

 private:
  // The hub could not be asked (or stopped answering): the cache, marked
  // unchecked, unless strict. Without a cached model, the hub's error, with
  // every cache path looked at.
  template <class Cache>
  result<ResolvedModel> fall_back(Cache& cache, const ModelId& id, const std::string& revision, Error hub_error) {
    if (options_.strict || hub_error == errc::cancelled) return std::move(hub_error).with_id(id.str(), revision);
    auto cached = cache.locate(id, revision);
    if (cached) {
      cached.value().hub_check = HubCheck::unavailable;
      cached.value().hub_check_reason = hub_error.message();
      return cached;
    }
    Error e = std::move(hub_error).with_id(id.str(), revision);
    e.detail += (e.detail.empty() ? "" : "; ") + std::string("and the cache cannot serve it: ") +
                cached.error().code.message() + (cached.error().detail.empty() ? "" : " (" + cached.error().detail + ")");
    e.looked_at = std::move(cached).error().looked_at;
    return e;
  }

  OnlineOptions options_;
  TransportFactory make_transport_;
};

}  // namespace modelres
