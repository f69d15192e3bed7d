// HuggingFaceCache: the cache huggingface_hub (and @huggingface/hub) write,
// read exactly as they lay it out (lookups write, lock and move nothing), and
// written by OnlinePolicy so that they find everything in it offline:
//
//   ROOT/models--owner--name/refs/<revision>          the commit a branch, tag or refs/pr/N points at
//   ROOT/models--owner--name/snapshots/<commit>/...   the files: relative symlinks into blobs/, or
//                                                     plain files (no-symlink layout)
//   ROOT/models--owner--name/blobs/<etag>             the bytes, named by sha256 (LFS) or git blob id
//   ROOT/models--owner--name/trees/<commit>.json      the hub's listing of the commit, when cached
//   ROOT/models--owner--name/.modelres/<commit>       our manifest: what modelres verified (not a
//                                                     Python path: its scans never look there)
//   ROOT/.locks/models--owner--name/<etag>.lock       the Python client's per-file lock, which we take too
//
// ROOT, read at each call: the constructor's argument, else $HF_HUB_CACHE,
// $HUGGINGFACE_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub,
// ~/.cache/huggingface/hub (docs/cache-layouts.md).
//
// Completeness: `verified` when our manifest lists the snapshot's files and
// each is on disk with its size; else `listed` when a cached tree names every
// file and each is on disk with the listed size; `unknown` without either. A
// snapshot the manifest or tree shows to lack files is errc::incomplete naming
// them, as huggingface_hub's IncompleteSnapshotError does.
#pragma once

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cache_traits.hpp"
#include "plain_directory_cache.hpp"
#include "write_target.hpp"
#include "../detail/cache_support.hpp"
#include "../detail/cache_writing.hpp"
#include "../detail/fs.hpp"
#include "../detail/huggingface_cache_reader.hpp"
#include "../detail/huggingface_cache_writer.hpp"
#include "../detail/manifest.hpp"
#include "../durability.hpp"
#include "../error.hpp"
#include "../hub_snapshot.hpp"
#include "../model_ref.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"

namespace modelres {

class HuggingFaceCache {
 public:
  static constexpr std::string_view ecosystem = "huggingface";
  static constexpr std::string_view default_revision = detail::huggingface::default_revision;
  static constexpr const char* layout = detail::huggingface::layout;
  static constexpr std::size_t max_metadata_bytes = detail::huggingface::max_metadata_bytes;

  HuggingFaceCache() = default;
  explicit HuggingFaceCache(std::filesystem::path root) : explicit_root_(std::move(root)) {}

  // The root in force, absolute. The argument has "~" expanded; the variables
  // have "~" and $VAR expanded, as huggingface_hub expands them.
  result<std::string> root() const {
    std::string r;
    const auto from_env = [&r](const std::string& value) {
      return detail::expand_tilde(value, r) ? (r = detail::expand_variables(r), true) : false;
    };
    bool ok = true;
    std::string source;
    if (!explicit_root_.empty()) {
      source = explicit_root_.native();
      ok = detail::expand_tilde(source, r);
    } else if (std::string v = detail::environment("HF_HUB_CACHE"); !v.empty()) {
      source = "HF_HUB_CACHE=" + v;
      ok = from_env(v);
    } else if (std::string legacy = detail::environment("HUGGINGFACE_HUB_CACHE"); !legacy.empty()) {
      source = "HUGGINGFACE_HUB_CACHE=" + legacy;
      ok = from_env(legacy);
    } else if (std::string home = detail::environment("HF_HOME"); !home.empty()) {
      source = "HF_HOME=" + home;
      ok = from_env(home + "/hub");
    } else if (std::string xdg = detail::environment("XDG_CACHE_HOME"); !xdg.empty()) {
      source = "XDG_CACHE_HOME=" + xdg;
      ok = from_env(xdg + "/huggingface/hub");
    } else {
      const std::string home_dir = detail::home_directory();
      if (home_dir.empty())
        return Error(errc::not_cached, {}, "no cache root: HF_HUB_CACHE and HF_HOME are unset and the home directory is unknown");
      r = home_dir + "/.cache/huggingface/hub";
    }
    if (!ok) return Error(errc::not_cached, {}, "cannot expand the cache root " + source);
    if (auto ec = detail::absolute_root(r))
      return Error(errc::io_error, {}, "cannot make the cache root " + r + " absolute").with_cause(ec);
    return r;
  }


  // models--owner--name, as huggingface_hub's repo_folder_name() builds it.
  static std::string repo_folder(const ModelId& id) { return detail::huggingface::repo_folder(id); }
  static bool is_commit_hash(std::string_view s) { return detail::huggingface::is_commit_hash(s); }

  // The snapshot `revision` names (empty: main): a 40-hex commit directly, a
  // branch, tag or refs/pr/N through refs/. Read-only.
  result<ResolvedModel> locate(const ModelId& id, std::string_view revision) const {
    const std::string rev(revision.empty() ? default_revision : revision);
    std::vector<Probe> probes;
    const auto finish = [&](Error e) { return std::move(e).with_id(id.str(), revision).with_probes(std::move(probes)); };
    // The revision becomes a path below refs/: only ref names git allows (no "..").
    if (auto valid = parse_revision(rev); !valid) return finish(std::move(valid).error());
    auto root_dir = root();
    if (!root_dir) return finish(std::move(root_dir).error());
    const std::string repo = detail::concat({root_dir.value(), "/models--", id.owner, "--", id.name});

    const detail::FileStatus st = detail::status(repo);
    if (!st.exists() || !st.is_directory) {
      probes.push_back({repo, st.exists() ? "not a directory" : st.missing() ? "does not exist" : st.error.message()});
      if (st.error == std::errc::permission_denied)
        return finish(Error(errc::permission_denied, {}, "cannot read " + repo).with_cause(st.error));
      return finish(Error(errc::not_cached, {}, "no huggingface_hub cache entry under " + root_dir.value() + " holds this model"));
    }

    std::string commit;
    if (is_commit_hash(rev)) {
      commit = rev;
    } else {
      const std::string ref_path = detail::concat({repo, "/refs/", rev});
      if (const std::error_code ec = detail::huggingface::read_ref(repo, rev, commit)) {
        if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
          probes.push_back({ref_path, "does not exist"});
          const std::vector<std::string> cached = detail::huggingface::cached_commits(repo);
          if (cached.empty())
            return finish(Error(errc::not_cached, {}, "the cache holds no snapshot of this model"));
          return finish(Error(errc::revision_mismatch, {},
                              "the cache does not know which commit '" + rev + "' is (no refs/" + rev +
                                  "); it holds the commits " + detail::join_limited(cached)));
        }
        probes.push_back({ref_path, "cannot be read: " + ec.message()});
        const errc code = ec == std::errc::permission_denied ? errc::permission_denied : errc::corrupt_metadata;
        return finish(Error(code, {}, "cannot read " + ref_path).with_cause(ec));
      }
      if (!is_commit_hash(commit)) {
        probes.push_back({ref_path, "not a commit hash"});
        return finish(Error(errc::corrupt_metadata, {}, ref_path + " holds '" + detail::printable(commit, 80) +
                                                             "', not a 40-hex commit"));
      }
      probes.push_back({ref_path, detail::concat({"names commit ", commit})});
    }

    const std::string snapshot = detail::concat({repo, "/snapshots/", commit});
    auto found = detail::huggingface::probe_snapshot(repo, snapshot, commit, probes);
    if (!found) return finish(std::move(found).error());
    ResolvedModel& m = found.value();
    m.model_id = id.str();
    m.revision = rev;
    return found;
  }

  // Every model the cache holds (models--owner--name): one entry per ref
  // (branch, tag, refs/pr/N) and per snapshot no ref names, each as locate()
  // finds it, or why it would not be served.
  result<std::vector<CacheEntry>> list() const {
    MODELRES_TRY(r, root());
    std::vector<CacheEntry> out;
    std::vector<detail::DirEntry> repos;
    if (detail::list_directory(r, repos)) return out;  // no cache yet: nothing cached
    for (const detail::DirEntry& repo : repos) {
      // scan_cache_dir's parse: "models--" then the id with "--" for "/".
      if (!repo.is_directory || repo.name.rfind("models--", 0) != 0) continue;
      const std::string rest = repo.name.substr(8);
      const std::size_t sep = rest.find("--");
      if (sep == std::string::npos) continue;  // an id without owner: not an owner/name id
      auto id = ModelId::parse(rest.substr(0, sep) + "/" + rest.substr(sep + 2));
      if (!id) continue;
      const std::string repo_dir = r + "/" + repo.name;
      std::vector<std::string> revisions;
      std::vector<detail::WalkedFile> refs;
      if (!detail::walk_files(repo_dir + "/refs", refs))
        for (auto& ref : refs)
          if (ref.path.size() < 4 || ref.path.compare(ref.path.size() - 4, 4, ".tmp") != 0)  // a ref being replaced
            revisions.push_back(std::move(ref.path));
      std::sort(revisions.begin(), revisions.end());
      std::vector<std::string> named;
      for (const std::string& rev : revisions) {
        std::string commit;
        if (!detail::huggingface::read_ref(repo_dir, rev, commit)) named.push_back(std::move(commit));
      }
      for (const std::string& c : detail::huggingface::cached_commits(repo_dir))
        if (std::find(named.begin(), named.end(), c) == named.end()) revisions.push_back(c);
      if (revisions.empty()) revisions.push_back(std::string(default_revision));  // reports why nothing is served
      for (const std::string& rev : revisions) {
        CacheEntry e;
        e.model_id = id.value().str();
        e.directory = repo_dir;
        e.layout = layout;
        auto state = locate(id.value(), rev);
        if (state) {
          e.directory = state.value().directory;
          e.model = std::move(state).value();
        } else {
          e.problem = std::move(state).error();
        }
        out.push_back(std::move(e));
      }
    }
    std::stable_sort(out.begin(), out.end(), [](const CacheEntry& a, const CacheEntry& b) { return a.model_id < b.model_id; });
    return out;
  }

  // A directory given by path. A snapshot of a cache (.../models--o--n/snapshots/<commit>)
  // is read as locate() reads it; any other directory is served with completeness
  // unknown. `revision`, if not empty, must name the snapshot's commit (directly or through refs/).
  result<ResolvedModel> inspect(const std::filesystem::path& directory, std::string_view revision) const {
    MODELRES_TRYV(detail::require_directory(directory));
    std::error_code ec;
    const std::filesystem::path dir = std::filesystem::absolute(directory, ec).lexically_normal();
    if (ec) return Error(errc::io_error, directory.native(), "cannot make " + directory.native() + " absolute").with_cause(ec);
    const std::string commit = dir.filename().native();
    const std::filesystem::path repo = dir.parent_path().parent_path();
    const bool is_snapshot = is_commit_hash(commit) && dir.parent_path().filename() == "snapshots" &&
                             repo.filename().native().rfind("models--", 0) == 0;
    std::vector<Probe> probes;
    // Not a snapshot: a plain directory, which modelres's manifest may vouch for (download --to).
    if (!is_snapshot) return PlainDirectoryCache(directory).inspect(directory, revision);
    if (!revision.empty() && revision != commit) {
      std::string named;
      if (detail::huggingface::read_ref(repo.native(), std::string(revision), named) || named != commit)
        return Error(errc::revision_mismatch, {}, directory.native() + " is commit " + commit + ", not '" +
                                                      std::string(revision) + "'")
            .with_revision(std::string(revision));
    }
    auto found = detail::huggingface::probe_snapshot(repo.native(), dir.native(), commit, probes);
    if (!found) return std::move(found).error().with_revision(std::string(revision)).with_probes(std::move(probes));
    found.value().revision = revision.empty() ? commit : std::string(revision);
    return found;
  }

  // The hub's listing of snapshot.commit, as trees/<commit>.json cached it
  // (huggingface_hub writes it too, and a commit never changes): the files
  // with size and content check, so a current cache needs no tree request.
  // False if there is none with a blob id for every file.
  bool cached_files(const ModelId& id, HubSnapshot& snapshot) const {
    if (!is_commit_hash(snapshot.commit)) return false;
    auto r = root();
    if (!r) return false;
    std::vector<detail::huggingface::Listed> listed;
    std::string why_ignored;
    auto found = detail::huggingface::read_tree(r.value() + "/" + repo_folder(id) + "/trees/" + snapshot.commit + ".json", listed, why_ignored);
    if (!found || !found.value()) return false;
    std::vector<HubFile> files;
    for (detail::huggingface::Listed& l : listed) {
      if (l.blob_id.empty()) return false;
      HubFile f;
      f.path = std::move(l.path);
      f.size = l.size;
      f.git_oid = std::move(l.blob_id);
      f.sha256 = std::move(l.lfs_sha256);
      f.xet_hash = std::move(l.xet_hash);
      files.push_back(std::move(f));
    }
    snapshot.files = std::move(files);
    return true;
  }

  // What is recorded of each file of `m` (a snapshot this cache served), for
  // verify(): our manifest's hashes, else the cached tree's (lfs_sha256, git
  // blob id), else the name of the blob a link points to, which
  // huggingface_hub gives by content (sha256 for LFS files, git blob id else).
  std::vector<HubFile> recorded_checks(const ResolvedModel& m) const {
    const std::string snapshot = m.directory.native();
    const std::string repo = m.directory.parent_path().parent_path().native();
    detail::Manifest manifest;
    if (detail::read_manifest_file(detail::concat({snapshot, "/", detail::manifest_name}), manifest))
      return std::move(manifest.snapshot.files);  // a plain directory (download --to)
    if (is_commit_hash(m.commit) && detail::huggingface::read_commit_manifest(repo, m.commit, manifest))
      return std::move(manifest.snapshot.files);
    std::vector<HubFile> out;
    std::vector<detail::huggingface::Listed> listed;
    std::string why_ignored;
    auto tree = detail::huggingface::read_tree(detail::concat({repo, "/trees/", m.commit, ".json"}), listed, why_ignored);
    if (tree && tree.value())
      for (detail::huggingface::Listed& l : listed) {
        HubFile f;
        f.path = std::move(l.path);
        f.size = l.size;
        f.sha256 = std::move(l.lfs_sha256);
        f.git_oid = std::move(l.blob_id);
        out.push_back(std::move(f));
      }
    if (!out.empty()) return out;
    for (const CachedFile& c : m.files) {
      char target[4096];
      const ssize_t n = ::readlink(detail::concat({snapshot, "/", c.path}).c_str(), target, sizeof target);
      if (n <= 0) continue;
      const std::string_view link(target, static_cast<std::size_t>(n));
      const std::string_view name = link.substr(link.rfind('/') + 1);
      HubFile f;
      f.path = c.path;
      f.size = c.size;
      if (detail::is_lower_hex(name, 64)) f.sha256 = std::string(name);
      else if (detail::is_lower_hex(name, 40)) f.git_oid = std::string(name);
      else continue;
      out.push_back(std::move(f));
    }
    return out;
  }

  // --- Writing (OnlinePolicy; docs/traits.md, Writable cache) ---

  // The model's folder; the bytes go to blobs/ named by content (the etag
  // huggingface_hub would get from the hub), partial ones to
  // blobs/<etag>.incomplete (the name huggingface_hub <= 1.17 resumed from),
  // each under the Python client's per-file lock.
  result<WriteTarget> prepare_write(const ModelId& id) const {
    MODELRES_TRY(r, root());
    WriteTarget t;
    t.model_dir = r + "/" + repo_folder(id);
    t.store_dir = t.model_dir + "/blobs";
    t.naming = WriteTarget::Naming::by_content;
    t.partial_dir = t.store_dir;
    t.file_lock_dir = r + "/.locks/" + repo_folder(id);
    t.lock_path = t.file_lock_dir + "/.modelres.lock";
    t.layout = layout;
    return t;
  }

  // What the snapshot of `snapshot.commit` lacks: our manifest vouches for a
  // file on disk with its size; a file someone else put there (a blob, or a
  // plain file in the no-symlink layout) is hashed before it is trusted.
  WritePlan plan(const WriteTarget& target, const HubSnapshot& snapshot) const {
    WritePlan p;
    const std::string snapshot_dir = target.model_dir + "/snapshots/" + snapshot.commit;
    detail::Manifest m;
    const bool vouched = detail::huggingface::read_commit_manifest(target.model_dir, snapshot.commit, m) && detail::manifest_vouches(m);
    if (!vouched) m.snapshot.files.clear();
    const detail::ManifestIndex manifest(m.snapshot.files);
    std::size_t in_manifest = 0;
    std::unordered_set<std::string> checked_dirs;
    for (const HubFile& f : snapshot.files) {
      const std::string name = target.stored_name(f);
      const std::string blob_path = target.stored(f);
      if (name.empty()) {
        p.to_download.push_back(f);  // begin_download refuses it, with why
        continue;
      }
      // Vouched for, and the entry is the one a commit leaves: no hashing, no writing.
      if (manifest.vouches_for(f) &&
          detail::huggingface::entry_holds(snapshot_dir, f.path, blob_path, name, f.size, checked_dirs)) {
        ++in_manifest;
        p.present.push_back(f);
        continue;
      }
      const std::string pointer_path = snapshot_dir + "/" + f.path;
      if (const detail::FileStatus blob = detail::status(blob_path); blob.exists() && blob.is_regular && blob.size == f.size) {
        p.to_verify.push_back({f, blob_path});
      } else if (const detail::FileStatus pointer = detail::status(pointer_path);
                 pointer.exists() && pointer.is_regular && pointer.size == f.size) {
        p.to_verify.push_back({f, pointer_path});
      } else {
        p.to_download.push_back(f);
      }
    }
    // The manifest is per commit: any ref naming it (main, a tag, refs/pr/1) is current once refs/ says so.
    p.up_to_date = vouched && in_manifest == snapshot.files.size() && m.snapshot.files.size() == snapshot.files.size() &&
                   detail::huggingface::ref_names(target.model_dir, snapshot);
    p.unsynced = vouched && !m.unsynced_boot.empty();
    if (p.up_to_date) p.current = as_committed(snapshot_dir, snapshot);
    return p;
  }

  // Before the first blob moves in: the snapshot's manifest says a download
  // runs, so lookups report it incomplete until commit().
  result<void> begin_download(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot) const {
    MODELRES_TRYV(detail::huggingface::check_writable(id, target, snapshot));
    return detail::mark_downloading(id, detail::huggingface::manifest_path(target.model_dir, snapshot.commit), snapshot);
  }

  // Every file of the snapshot is in blobs/ (or, no-symlink layout, already in
  // the snapshot): link each into snapshots/<commit>/ as huggingface_hub does,
  // then, in the commit order every cache keeps (detail::commit_in_order),
  // sync, write trees/<commit>.json, refs/<revision>, CACHEDIR.TAG, and our
  // manifest last.
  result<ResolvedModel> commit(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot,
                               Durability durability) const {
    MODELRES_TRYV(detail::huggingface::check_writable(id, target, snapshot));
    const std::string snapshot_dir = target.model_dir + "/snapshots/" + snapshot.commit;
    std::vector<std::string> files, directories;
    MODELRES_TRYV(detail::huggingface::place_all(id, target, snapshot, snapshot_dir, files, directories));
    std::vector<detail::MetadataFile> metadata;
    std::string tree;
    if (detail::huggingface::tree_json(snapshot, tree))
      metadata.push_back({target.model_dir + "/trees/" + snapshot.commit + ".json", std::move(tree)});
    if (!detail::huggingface::ref_names(target.model_dir, snapshot))
      metadata.push_back({target.model_dir + "/refs/" + snapshot.revision, snapshot.commit});
    const std::string tag = target.model_dir.substr(0, target.model_dir.rfind('/')) + "/CACHEDIR.TAG";
    if (!detail::status(tag).exists()) metadata.push_back({tag, detail::huggingface::cachedir_tag});
    MODELRES_TRYV(detail::commit_in_order(id, snapshot, durability, files, directories, metadata,
                                          detail::huggingface::manifest_path(target.model_dir, snapshot.commit)));
    ResolvedModel m = as_committed(snapshot_dir, snapshot);
    m.model_id = id.str();
    return m;
  }

 private:
  // The snapshot as a commit leaves it (what commit() returns, and plan()
  // when the cache is already current): every file, verified.
  static ResolvedModel as_committed(const std::string& snapshot_dir, const HubSnapshot& snapshot) {
    ResolvedModel m;
    m.directory = snapshot_dir;
    m.revision = snapshot.revision;
    m.commit = snapshot.commit;
    m.layout = layout;
    m.completeness = Completeness::verified;
    for (const HubFile& f : snapshot.files) m.files.push_back({f.path, snapshot.commit, f.size});
    return m;
  }

  std::filesystem::path explicit_root_;
};

}  // namespace modelres
