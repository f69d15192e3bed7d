// OnlinePolicy<Transport, Hub>: ask a hub (ModelScope unless told otherwise;
// hubs/hub_traits.hpp) which files a revision has, download what the cache
// lacks (verified, resumable, in parallel) into it (it must be writable:
// is_writable_cache, docs/traits.md), and return the directory. Online when it
// can be, correct when it cannot:
//
// - The hub cannot be asked (unreachable, timing out, refusing, answering
//   garbage): by default the cached model is served, with hub_check
//   `unavailable` and the reason; with `strict`, the hub's error is returned.
// - MODELRES_OFFLINE or HF_HUB_OFFLINE set to 1/true/yes/on, read at each
//   call: no request at all, the cache alone (hub_check `offline`).
// - A current cache costs one request (a pinned, verified Hugging Face commit:
//   none), takes no lock and writes nothing.
//
// Writes go where the cache says (prepare_write), under its lock file: where
// the Python client finds them, under the client's own lock.
#pragma once

#include <fnmatch.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../caches/cache_traits.hpp"
#include "../detail/file_lock.hpp"
#include "../detail/fs.hpp"
#include "../detail/digest.hpp"
#include "../error.hpp"
#include "../fetcher.hpp"
#include "../hubs/hub_traits.hpp"
#include "../hubs/modelscope_hub.hpp"
#include "../lock_file.hpp"
#include "../model_ref.hpp"
#include "../resolve_options.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"

namespace modelres {

// What OnlinePolicy<Transport, Hub> is told; HubOptions is Hub::Options.
template <class HubOptions>
struct BasicOnlineOptions {
  bool strict = false;  // true: a hub that cannot be asked is an error, never a fallback
  HubOptions hub;
  // Endpoints to ask, in order (mirrors first, say): the next is asked when
  // one cannot be (unreachable, timed out, 5xx); an answer, even "no such
  // model", is final. Empty: hub.endpoint if set, else $MODELRES_ENDPOINTS
  // (comma-separated), else the hub's own default. The one that answered
  // serves the downloads and is ResolvedModel::endpoint.
  std::vector<std::string> endpoints;
  FetchOptions fetch;
};
using OnlineOptions = BasicOnlineOptions<ModelScopeHubOptions>;

namespace detail {

// The client's pattern rule (_download_file_lists): fnmatch with '*'
// matching '/', no backslash escapes; "dir/" means "dir/*".
inline bool matches_any(const std::string& path, const std::vector<std::string>& patterns) {
  for (std::string p : patterns) {
    if (!p.empty() && p.back() == '/') p += '*';
    if (::fnmatch(p.c_str(), path.c_str(), FNM_NOESCAPE) == 0) return true;
  }
  return false;
}

// Keeps the files the patterns choose; the others move to `unselected`.
inline void select_files(HubSnapshot& snap, const ResolveOptions& o) {
  if (o.allow_patterns.empty() && o.ignore_patterns.empty()) return;
  std::vector<HubFile> kept;
  for (auto& f : snap.files) {
    if ((o.allow_patterns.empty() || matches_any(f.path, o.allow_patterns)) && !matches_any(f.path, o.ignore_patterns))
      kept.push_back(std::move(f));
    else
      snap.unselected.push_back(std::move(f));
  }
  snap.files = std::move(kept);
}

}  // namespace detail

template <class Transport, class Hub = ModelScopeHub<Transport>>
class OnlinePolicy {
  static_assert(check_hub<Hub, Transport>());

 public:
  static constexpr reference_kind accepts = reference_kind::model_id;
  using TransportFactory = std::function<Transport()>;
  using Options = BasicOnlineOptions<typename Hub::Options>;

  explicit OnlinePolicy(Options options = {}, TransportFactory make_transport = [] { return Transport(); })
      : options_(std::move(options)), make_transport_(std::move(make_transport)) {}

  Options& options() { return options_; }

  // What the hub says `revision` (empty: its default) of a model is, asked
  // as resolve() asks it (the endpoints in order), without any cache.
  result<HubSnapshot> snapshot(const ModelId& id, std::string_view revision) {
    std::optional<Hub> hub;
    return ask_in_order(hub, id, [&](Hub& h) { return h.snapshot(id, revision); });
  }

  template <class Cache>
  result<ResolvedModel> resolve(std::string_view reference, const ResolveOptions& request, Cache& cache) {
    static_assert(check_writable_cache<Cache>());
    MODELRES_TRY(id, ModelId::parse(reference));
    std::optional<result<ResolvedModel>> held;  // the copy matching the lock, when there is one
    if (request.locked) {
      // A verified copy that matches the lock is the locked model: nothing to ask.
      held = detail::locate_locked(cache, id, *request.locked);
      if (!*held && held->error() == errc::not_in_lock) return std::move(*held);
      if (*held && held->value().completeness == Completeness::verified) {
        held->value().hub_check_reason = "the verified copy matches the lock";
        return std::move(*held);
      }
    }
    const std::string& revision = asked_revision(request);
    if (const char* name = detail::offline_switch()) {
      auto cached = held ? std::move(*held) : locate(cache, id, request);
      if (!cached) return cached;
      cached.value().hub_check = HubCheck::offline;
      cached.value().hub_check_reason = std::string(name) + " is set";
      return cached;
    }

    std::optional<Hub> answered;
    auto snapshot = ask_in_order(answered, id, [&](Hub& h) { return ask(h, cache, id, revision); });
    if (!snapshot) return fall_back(cache, id, request, std::move(snapshot).error());
    Hub& hub = *answered;
    HubSnapshot& snap = snapshot.value();
    if constexpr (hub_has_endpoint<Hub>::value)
      if (snap.endpoint.empty()) snap.endpoint = hub.endpoint();  // a pinned commit listed from the cache asked nobody
    // Every hub checks its list; a user's hub that forgets must not write outside the cache either.
    for (const HubFile& f : snap.files)
      if (!detail::is_safe_relative_path(f.path))
        return Error(errc::unsafe_file_list, id.str(),
                     "the hub listed '" + detail::printable(f.path) + "', which would leave the model directory; nothing was written")
            .with_revision(snap.revision);
    if (request.locked) {
      MODELRES_TRYV(detail::apply_lock(snap, *request.locked));
    } else {
      detail::select_files(snap, request);
    }

    // Read-only roots first, in order: one that holds the snapshot serves it, nothing written anywhere.
    if constexpr (cache_has_read_only_caches<Cache>::value) {
      for (const auto& root : cache.read_only_caches())
        if (auto m = held_by(root, id, snap)) return m;
    }

    // A current cache is answered from one look, without the lock: nothing is written.
    MODELRES_TRY(seen, cache.prepare_write(id));
    auto plan = cache.plan(seen, snap);
    if (is_current(plan))
      if (auto m = current(cache, id, snap, plan)) return m;

    // One process at a time per model, as the Python client does; the second
    // finds the first's files in place.
    auto lock = detail::FileLock::acquire(seen.lock_path, options_.fetch.lock_timeout, options_.fetch.cancel);
    if (!lock) return std::move(lock).error().with_id(id.str(), snap.revision);
    MODELRES_TRY(target, cache.prepare_write(id));  // again: another process may have filled it meanwhile
    plan = cache.plan(target, snap);
    // Files the Python client recorded at this commit: trusted once they hash right.
    for (FileToVerify& v : plan.to_verify) {
      if (detail::file_passes(v.path, v.file.sha256, v.file.git_oid, v.file.size))
        plan.present.push_back(std::move(v.file));
      else
        plan.to_download.push_back(std::move(v.file));
    }
    plan.to_verify.clear();
    if (is_current(plan))
      if (auto m = current(cache, id, snap, plan)) return m;

    // Something will be written: what the commit records beyond the file list.
    if constexpr (hub_has_revision_details<Hub>::value) {
      auto details = retrying(id, false, [&] { return hub.revision_details(id, snap); });
      if (!details) return unless_network(cache, id, request, std::move(details).error().with_id(id.str(), snap.revision));
    }
    if (!plan.to_download.empty()) {
      MODELRES_TRYV(cache.begin_download(id, target, snap));
      std::vector<FetchItem> items;
      for (const HubFile& f : plan.to_download) {
        FetchItem item{f.path, f.size, f.sha256, hub.file_request(id, snap, f), f.git_oid, target.stored_name(f), {}};
        if (!target.file_lock_dir.empty()) item.lock_path = target.file_lock_dir + "/" + item.destination + ".lock";
        items.push_back(std::move(item));
      }
      Fetcher<Transport> fetcher(
          make_transport_,
          [&](const FetchItem& item, const ResponseHead& head, std::string_view body) {
            return hub.file_error(id, snap, item.path, head, body);
          },
          options_.fetch);
      auto fetched = fetcher.fetch(items, target.store_dir, target.partial_dir);
      if (!fetched) {
        Error e = std::move(fetched).error();
        e.detail = e.reference + ": " + e.detail;
        e.reference = id.str();
        e.revision = snap.revision;
        return unless_network(cache, id, request, std::move(e));
      }
    }
    record_arrived_sizes(snap, target);
    auto committed = cache.commit(id, target, snap, options_.fetch.durability);
    if (committed) {
      committed.value().hub_check = HubCheck::current;
      committed.value().endpoint = snap.endpoint;
    }
    return committed;
  }

 private:
  // Before a commit: each file the hub listed with size 0 (unknown, on
  // ModelScope) gets the size it has in the store, so the manifest can tell a
  // shortened copy later.
  static void record_arrived_sizes(HubSnapshot& snapshot, const WriteTarget& target) {
    for (HubFile& f : snapshot.files)
      if (f.size == 0) {
        const detail::FileStatus st = detail::status(target.stored(f));
        if (st.exists() && st.is_regular) f.size = st.size;
      }
  }

  // Nothing to write: every file proven present, and, if the cache was
  // written until_restart, the disk not asked for now (else the commit syncs).
  bool is_current(const WritePlan& plan) const {
    return plan.up_to_date && plan.to_verify.empty() && !(plan.unsynced && options_.fetch.durability == Durability::on_disk);
  }

  // The current model: as the plan saw it (taken from plan.current; the rest
  // of the plan stays usable), else as the cache finds it (an error there
  // sends the resolve on to write the model again).
  template <class Cache>
  result<ResolvedModel> current(Cache& cache, const ModelId& id, const HubSnapshot& snap, WritePlan& plan) {
    result<ResolvedModel> m = plan.current.directory.empty() ? cache.locate(id, snap.revision)
                                                             : result<ResolvedModel>(std::move(plan.current));
    if (!m) return m;
    if (m.value().model_id.empty()) m.value().model_id = id.str();
    m.value().hub_check = HubCheck::current;
    m.value().endpoint = snap.endpoint;
    return m;
  }

  // The snapshot as a read-only cache holds it: every file listed present,
  // vouched for by our manifest or hashed now (it cannot be given a manifest),
  // served as that cache's own lookup of the commit serves it. Anything less:
  // not_cached, and the next root is asked.
  template <class ReadOnlyCache>
  result<ResolvedModel> held_by(const ReadOnlyCache& root, const ModelId& id, const HubSnapshot& snap) {
    auto target = root.prepare_write(id);
    if (!target) return std::move(target).error();
    WritePlan plan = root.plan(target.value(), snap);
    if (!plan.to_download.empty()) return Error(errc::not_cached, id.str());
    for (const FileToVerify& v : plan.to_verify)
      if (!detail::file_passes(v.path, v.file.sha256, v.file.git_oid, v.file.size)) return Error(errc::not_cached, id.str());
    // Pinned to the commit where the hub names one: the root's refs may name another.
    auto m = root.locate(id, snap.commit.empty() ? snap.revision : snap.commit);
    if (!m) return m;
    if (m.value().model_id.empty()) m.value().model_id = id.str();
    m.value().revision = snap.revision;
    m.value().hub_check = HubCheck::current;
    m.value().endpoint = snap.endpoint;
    mark_served_from(m.value(), root, true);
    return m;
  }

  // The revision a resolve asks for: the lock's commit (else revision), or the one requested.
  static const std::string& asked_revision(const ResolveOptions& request) {
    return request.locked ? request.locked->pinned_revision() : request.revision;
  }

  // The copy the cache serves as asked: at the revision, or matching the lock.
  template <class Cache>
  static result<ResolvedModel> locate(const Cache& cache, const ModelId& id, const ResolveOptions& request) {
    if (request.locked) return detail::locate_locked(cache, id, *request.locked);
    return cache.locate(id, request.revision);
  }

  // A failure of the network mid-way falls back to the cache like a hub that
  // cannot be asked; any other error is the answer.
  template <class Cache>
  result<ResolvedModel> unless_network(Cache& cache, const ModelId& id, const ResolveOptions& request, Error e) {
    const bool network = e == errc::hub_unreachable || e == errc::timed_out || e == errc::transfer_interrupted;
    if (network) return fall_back(cache, id, request, std::move(e));
    return e;
  }

  // The endpoints to ask, in order; one empty string: the hub's own choice.
  std::vector<std::string> endpoint_list() const {
    if (!options_.endpoints.empty()) return options_.endpoints;
    if constexpr (hub_options_have_endpoint<typename Hub::Options>::value)
      if (!options_.hub.endpoint.empty()) return {options_.hub.endpoint};
    std::vector<std::string> out;
    const std::string env = detail::environment("MODELRES_ENDPOINTS");
    for (std::size_t from = 0; from <= env.size();) {
      const std::size_t comma = std::min(env.find(',', from), env.size());
      std::string e = env.substr(from, comma - from);
      while (!e.empty() && (e.back() == ' ' || e.back() == '/')) e.pop_back();
      while (!e.empty() && e.front() == ' ') e.erase(0, 1);
      if (!e.empty()) out.push_back(std::move(e));
      from = comma + 1;
    }
    if (out.empty()) out.emplace_back();
    return out;
  }

  // Asks each endpoint in turn, with `ask(hub)`, until one answers; `hub` is
  // left talking to it. When none can be asked, the last one's error, naming what each said.
  template <class Ask>
  result<HubSnapshot> ask_in_order(std::optional<Hub>& hub, const ModelId& id, Ask&& ask) {
    const std::vector<std::string> endpoints = endpoint_list();
    std::string tried;
    for (std::size_t i = 0; i < endpoints.size(); ++i) {
      typename Hub::Options o = options_.hub;
      if constexpr (hub_options_have_endpoint<typename Hub::Options>::value)
        if (!endpoints[i].empty()) o.endpoint = endpoints[i];
      hub.emplace(make_transport_(), o);
      const bool others_left = i + 1 < endpoints.size();
      result<HubSnapshot> snap = retrying(id, others_left, [&] { return ask(*hub); });
      const bool try_next = !snap && others_left && cannot_be_asked(snap.error());
      if (!try_next) {
        if (!snap && !tried.empty()) snap.error().detail = tried + "; then " + endpoints[i] + ": " + snap.error().detail;
        return snap;
      }
      tried += (tried.empty() ? "" : "; ") + endpoints[i] + ": " + snap.error().code.message() +
               (snap.error().detail.empty() ? "" : " (" + snap.error().detail + ")");
    }
    return Error(errc::hub_unreachable, id.str(), "no endpoint to ask");  // not reached: endpoint_list() is never empty
  }

  // A metadata request, `call()`, made again while the endpoint refuses for
  // now (429: a fleet restarting at once) or fails on its side (5xx) with no
  // other endpoint left to ask: after a jittered wait, up to max_attempts, as downloads are.
  template <class Call>
  auto retrying(const ModelId& id, bool others_left, Call&& call) -> decltype(call()) {
    auto r = call();
    for (unsigned attempt = 1; !r && attempt < options_.fetch.max_attempts; ++attempt) {
      const Error& e = r.error();
      if (!(e == errc::rate_limited || (e == errc::server_error && !others_left))) break;
      if (e.retry_after > options_.fetch.max_retry_after) break;
      if (!detail::sleep_unless_cancelled(detail::retry_wait(attempt, e.retry_after, options_.fetch), options_.fetch.cancel))
        return Error(errc::cancelled, id.str(), "cancelled");
      r = call();
    }
    return r;
  }

  // An endpoint that gave no answer: the network failed, or it (a mirror, say) failed on its side.
  static bool cannot_be_asked(const Error& e) {
    return e == errc::hub_unreachable || e == errc::timed_out || e == errc::transfer_interrupted || e == errc::server_error;
  }

  // What the hub says the revision is. A hub that lists by commit, over a
  // cache that keeps listings, is asked only what the cache cannot say: a
  // current cache costs the revision request alone, a pinned commit nothing.
  template <class Cache>
  result<HubSnapshot> ask(Hub& hub, const Cache& cache, const ModelId& id, const std::string& revision) {
    if constexpr (hub_lists_by_commit<Hub>::value && cache_has_cached_files<Cache>::value) {
      HubSnapshot snap;
      if (Hub::is_commit(revision)) {
        snap.revision = snap.commit = revision;
      } else {
        MODELRES_TRY(info, hub.revision_info(id, revision));
        snap = std::move(info);
      }
      if (!cache.cached_files(id, snap)) {
        MODELRES_TRYV(hub.list_files(id, snap));
      }
      return snap;
    } else {
      return hub.snapshot(id, revision);
    }
  }

  // The hub could not be asked (or stopped answering): the cache, marked
  // unchecked, unless strict. Without a cached model, the hub's error, with
  // every cache path looked at.
  template <class Cache>
  result<ResolvedModel> fall_back(Cache& cache, const ModelId& id, const ResolveOptions& request, Error hub_error) {
    const std::string& revision = asked_revision(request);
    if (options_.strict || hub_error == errc::cancelled) return std::move(hub_error).with_id(id.str(), revision);
    auto cached = locate(cache, id, request);
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

  Options options_;
  TransportFactory make_transport_;
};

}  // namespace modelres
