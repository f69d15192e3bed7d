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

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cache_traits.hpp"
#include "../detail/cache_support.hpp"
#include "../detail/fs.hpp"
#include "../detail/json_reader.hpp"
#include "../detail/json_writer.hpp"
#include "../detail/manifest.hpp"
#include "../durability.hpp"
#include "../hub_snapshot.hpp"
#include "../error.hpp"
#include "../model_ref.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"

namespace modelres {

class HuggingFaceCache {
 public:
  static constexpr std::string_view ecosystem = "huggingface";
  static constexpr std::string_view default_revision = "main";
  static constexpr const char* layout = "huggingface_hub (models--owner--name/snapshots/commit)";
  // A tree listing of 100,000 files is about 20 MB.
  static constexpr std::size_t max_metadata_bytes = 64u << 20;

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
  static std::string repo_folder(const ModelId& id) { return "models--" + id.owner + "--" + id.name; }

  static bool is_commit_hash(std::string_view s) {
    return detail::is_lower_hex(s, 40);
  }

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
    const std::string repo = root_dir.value() + "/" + repo_folder(id);

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
      const std::string ref_path = repo + "/refs/" + rev;
      if (const std::error_code ec = read_ref(repo, rev, commit)) {
        if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
          probes.push_back({ref_path, "does not exist"});
          const std::vector<std::string> cached = cached_commits(repo);
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
      probes.push_back({ref_path, "names commit " + commit});
    }

    const std::string snapshot = repo + "/snapshots/" + commit;
    auto found = probe_snapshot(repo, snapshot, commit, probes);
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
        if (!read_ref(repo_dir, rev, commit)) named.push_back(std::move(commit));
      }
      for (const std::string& c : cached_commits(repo_dir))
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
    if (!is_snapshot) {
      if (!revision.empty())
        return Error(errc::revision_mismatch, {}, directory.native() + " is not a huggingface_hub snapshot: it records no revision");
      ResolvedModel m;
      m.directory = directory;
      m.layout = "directory";
      return m;
    }
    if (!revision.empty() && revision != commit) {
      std::string named;
      if (read_ref(repo.native(), std::string(revision), named) || named != commit)
        return Error(errc::revision_mismatch, {}, directory.native() + " is commit " + commit + ", not '" +
                                                      std::string(revision) + "'")
            .with_revision(std::string(revision));
    }
    auto found = probe_snapshot(repo.native(), dir.native(), commit, probes);
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
    std::vector<Listed> listed;
    std::string why_ignored;
    auto found = read_tree(r.value() + "/" + repo_folder(id) + "/trees/" + snapshot.commit + ".json", listed, why_ignored);
    if (!found || !found.value()) return false;
    std::vector<HubFile> files;
    for (Listed& l : listed) {
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
    return t;
  }

  // What the snapshot of `snapshot.commit` lacks: our manifest vouches for a
  // file on disk with its size; a file someone else put there (a blob, or a
  // plain file in the no-symlink layout) is hashed before it is trusted.
  WritePlan plan(const WriteTarget& target, const HubSnapshot& snapshot) const {
    WritePlan p;
    const std::string snapshot_dir = target.model_dir + "/snapshots/" + snapshot.commit;
    detail::Manifest m;
    const bool vouched = !snapshot.commit.empty() && read_manifest(target.model_dir, snapshot.commit, m) && !m.downloading &&
                         (m.unsynced_boot.empty() || detail::same_boot(m.unsynced_boot));
    std::unordered_map<std::string, const HubFile*> vouched_for;  // by path: one lookup per file, not a scan
    if (vouched)
      for (const HubFile& v : m.snapshot.files) vouched_for.emplace(v.path, &v);
    std::size_t in_manifest = 0;
    for (const HubFile& f : snapshot.files) {
      const std::string name = target.stored_name(f);
      const std::string pointer_path = snapshot_dir + "/" + f.path;
      const detail::FileStatus pointer = detail::status(pointer_path);
      const bool pointer_ok = pointer.exists() && pointer.is_regular && pointer.size == f.size;
      const auto v = vouched_for.find(f.path);
      const bool listed = v != vouched_for.end() && v->second->size == f.size && !name.empty() &&
                          (v->second->sha256.empty() ? v->second->git_oid : v->second->sha256) == name;
      const std::string blob_path = target.stored(f);
      if (name.empty()) {
        p.to_download.push_back(f);  // begin_download refuses it, with why
      } else if (pointer_ok && listed) {
        ++in_manifest;
        p.present.push_back(f);
      } else if (const detail::FileStatus blob = detail::status(blob_path); blob.exists() && blob.is_regular && blob.size == f.size) {
        p.to_verify.push_back({f, blob_path});
      } else if (pointer_ok) {
        p.to_verify.push_back({f, pointer_path});
      } else {
        p.to_download.push_back(f);
      }
    }
    // The manifest is per commit: any ref naming it (main, a tag, refs/pr/1) is current once refs/ says so.
    p.up_to_date = vouched && in_manifest == snapshot.files.size() && m.snapshot.files.size() == snapshot.files.size() &&
                   ref_names(target.model_dir, snapshot);
    p.unsynced = vouched && !m.unsynced_boot.empty();
    return p;
  }

  // Before the first blob moves in: the snapshot's manifest says a download
  // runs, so lookups report it incomplete until commit().
  result<void> begin_download(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot) const {
    MODELRES_TRYV(check_writable(id, target, snapshot));
    const std::string dir = target.model_dir + "/" + manifest_dir;
    if (auto ec = detail::make_directories(dir)) return write_error(id, dir, ec, "cannot create");
    const std::string path = dir + "/" + snapshot.commit;
    if (auto ec = detail::write_file_atomically(path, detail::write_manifest(id.str(), snapshot, /*downloading=*/true)))
      return write_error(id, path, ec, "cannot write");
    return success();
  }

  // Every file of the snapshot is in blobs/ (or, no-symlink layout, already in
  // the snapshot): link each into snapshots/<commit>/ as huggingface_hub does,
  // sync, then write trees/<commit>.json, refs/<revision>, CACHEDIR.TAG, and
  // our manifest last. until_restart skips every sync and says so in the manifest.
  result<ResolvedModel> commit(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot,
                               Durability durability) const {
    MODELRES_TRYV(check_writable(id, target, snapshot));
    const bool sync = durability == Durability::on_disk;
    const std::string snapshot_dir = target.model_dir + "/snapshots/" + snapshot.commit;
    const bool use_links = !detail::environment_flag("HF_HUB_DISABLE_SYMLINKS");
    // In the no-symlink layout a blob moves into the snapshot at its last use (as huggingface_hub moves a new blob).
    std::unordered_map<std::string, std::size_t> last_use_of;  // blob name -> index of the last file using it
    for (std::size_t i = 0; i < snapshot.files.size(); ++i) last_use_of[target.stored_name(snapshot.files[i])] = i;
    std::unordered_set<std::string> synced_dirs;
    for (std::size_t i = 0; i < snapshot.files.size(); ++i) {
      const HubFile& f = snapshot.files[i];
      MODELRES_TRYV(place(id, target, snapshot_dir, f, use_links, last_use_of[target.stored_name(f)] == i));
      const std::string pointer = snapshot_dir + "/" + f.path;
      synced_dirs.insert(pointer.substr(0, pointer.rfind('/')));
    }
    if (sync) {
      // Every byte on disk before anything says the snapshot is complete.
      for (const HubFile& f : snapshot.files)
        if (auto ec = detail::sync_to_disk(snapshot_dir + "/" + f.path)) return write_error(id, snapshot_dir + "/" + f.path, ec, "cannot sync");
      synced_dirs.insert(target.store_dir);
      for (const std::string& d : synced_dirs)
        if (detail::status(d).exists())
          if (auto ec = detail::sync_to_disk(d)) return write_error(id, d, ec, "cannot sync");
    }
    const auto write = [&](const std::string& path, const std::string& bytes) -> result<void> {
      if (auto ec = detail::make_directories(path.substr(0, path.rfind('/')))) return write_error(id, path, ec, "cannot create the directory of");
      if (auto ec = detail::write_file_atomically(path, bytes, sync)) return write_error(id, path, ec, "cannot write");
      return success();
    };
    std::string tree;
    if (tree_json(snapshot, tree)) {
      MODELRES_TRYV(write(target.model_dir + "/trees/" + snapshot.commit + ".json", tree));
    }
    if (!ref_names(target.model_dir, snapshot)) {
      MODELRES_TRYV(write(target.model_dir + "/refs/" + snapshot.revision, snapshot.commit));
    }
    const std::string root_dir = target.model_dir.substr(0, target.model_dir.rfind('/'));
    if (!detail::status(root_dir + "/CACHEDIR.TAG").exists()) {
      MODELRES_TRYV(write(root_dir + "/CACHEDIR.TAG", cachedir_tag));
    }
    const std::string boot = detail::current_boot_id();
    MODELRES_TRYV(write(target.model_dir + "/" + manifest_dir + "/" + snapshot.commit,
                        detail::write_manifest(id.str(), snapshot, false, sync ? std::string() : boot.empty() ? "-" : boot)));
    ResolvedModel m;
    m.directory = snapshot_dir;
    m.model_id = id.str();
    m.revision = snapshot.revision;
    m.commit = snapshot.commit;
    m.layout = layout;
    m.completeness = Completeness::verified;
    for (const HubFile& f : snapshot.files) m.files.push_back({f.path, snapshot.commit, f.size});
    return m;
  }

 private:
  std::filesystem::path explicit_root_;

  static constexpr const char* manifest_dir = ".modelres";

  static constexpr const char* cachedir_tag =
      "Signature: 8a477f597d28d172789f06886806bc55\n"
      "# This file is a cache directory tag created by huggingface_hub.\n"
      "# For information about cache directory tags, see:\n"
      "#\thttps://bford.info/cachedir/\n";

  static Error write_error(const ModelId& id, const std::string& path, std::error_code ec, const char* doing) {
    return Error(detail::is_out_of_space(ec)                   ? errc::disk_full
                 : ec == std::errc::permission_denied ? errc::permission_denied
                                                      : errc::io_error,
                 id.str(), std::string(doing) + " " + path)
        .with_cause(ec);
  }

  // Our manifest of one commit, if it is there, readable and of this model.
  static bool read_manifest(const std::string& repo, const std::string& commit, detail::Manifest& out) {
    std::string bytes;
    const std::string path = repo + "/" + manifest_dir + "/" + commit;
    if (detail::read_file(path, bytes, max_metadata_bytes)) return false;
    auto m = detail::read_manifest(bytes, path);
    if (!m) return false;
    const std::string folder = repo.substr(repo.rfind('/') + 1);
    auto id = ModelId::parse(m.value().model);
    if (!id || repo_folder(id.value()) != folder || m.value().snapshot.commit != commit) return false;
    out = std::move(m).value();
    return true;
  }

  // Whether refs/<revision> already names the snapshot's commit (or needs no ref: a commit).
  static bool ref_names(const std::string& repo, const HubSnapshot& snapshot) {
    if (snapshot.revision == snapshot.commit) return true;
    std::string commit;
    return !read_ref(repo, snapshot.revision, commit) && commit == snapshot.commit;
  }

  // What a hub and the layout must agree on before anything is written.
  static result<void> check_writable(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot) {
    if (!is_commit_hash(snapshot.commit))
      return Error(errc::malformed_response, id.str(),
                   "the hub did not say which commit the revision is at; the Hugging Face cache is keyed by commit")
          .with_revision(snapshot.revision);
    if (auto valid = parse_revision(snapshot.revision); !valid) return std::move(valid).error().with_id(id.str(), snapshot.revision);
    for (const HubFile& f : snapshot.files) {
      const std::string name = target.stored_name(f);
      if (!detail::is_lower_hex(name, 64) && !detail::is_lower_hex(name, 40))
        return Error(errc::malformed_response, id.str(),
                     "the hub lists no sha256 or git blob id for " + detail::printable(f.path) +
                         "; the Hugging Face cache names its blobs by them")
            .with_revision(snapshot.revision);
    }
    return success();
  }

  // No directory on the way from the snapshot to `path` may be a link: a
  // link planted in a shared cache must not redirect our writes.
  static result<void> check_no_links_below(const ModelId& id, const std::string& snapshot_dir, const std::string& relative) {
    std::string dir = snapshot_dir;
    if (detail::is_symlink(dir)) return Error(errc::unsafe_metadata, id.str(), dir + " is a link; nothing is written through it");
    for (std::size_t slash = relative.find('/'); slash != std::string::npos; slash = relative.find('/', slash + 1)) {
      dir = snapshot_dir + "/" + relative.substr(0, slash);
      if (detail::is_symlink(dir))
        return Error(errc::unsafe_metadata, id.str(), dir + " is a link; nothing is written through it");
    }
    return success();
  }

  // Makes snapshots/<commit>/<path> the file: a relative link to its blob
  // (atomically replacing what was there), or in the no-symlink layout a copy
  // of the blob (moved at its last use). A plain file of the right size with
  // no blob beside it was hashed by the plan: kept.
  result<void> place(const ModelId& id, const WriteTarget& target, const std::string& snapshot_dir, const HubFile& f,
                     bool use_links, bool last_use) const {
    MODELRES_TRYV(check_no_links_below(id, snapshot_dir, f.path));
    const std::string pointer = snapshot_dir + "/" + f.path;
    const std::string blob = target.stored(f);
    std::string up = "../../";
    for (char c : f.path) up += c == '/' ? "../" : "";
    const std::string link_target = up + "blobs/" + target.stored_name(f);
    const detail::FileStatus blob_st = detail::status(blob);
    const bool have_blob = blob_st.exists() && blob_st.is_regular;
    if (!have_blob) {
      const detail::FileStatus st = detail::status(pointer);
      if (st.exists() && st.is_regular && st.size == f.size && !detail::is_symlink(pointer)) return success();
      return Error(errc::incomplete, id.str(), "neither " + blob + " nor " + pointer + " holds " + detail::printable(f.path));
    }
    if (auto ec = detail::make_directories(pointer.substr(0, pointer.rfind('/'))))
      return write_error(id, pointer, ec, "cannot create the directory of");
    char existing[4096];
    const ssize_t n = ::readlink(pointer.c_str(), existing, sizeof existing);
    if (use_links && n >= 0 && std::string_view(existing, static_cast<std::size_t>(n)) == link_target) return success();
    // Built aside, then renamed over whatever was there: readers see the old entry or the new.
    const std::string tmp = target.model_dir + "/" + manifest_dir + "/link." + std::to_string(::getpid()) + "." +
                            std::to_string(temp_counter()++);
    if (auto ec = detail::make_directories(target.model_dir + "/" + manifest_dir)) return write_error(id, tmp, ec, "cannot create the directory of");
    bool linked = false;
    if (use_links) {
      if (::symlink(link_target.c_str(), tmp.c_str()) == 0) {
        linked = true;
      } else if (errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS) {
        return write_error(id, tmp, detail::last_error(), "cannot create the link");
      }
    }
    if (!linked) {
      // No links here (HF_HUB_DISABLE_SYMLINKS, or a filesystem without them): the bytes themselves.
      if (last_use) {
        if (::rename(blob.c_str(), pointer.c_str()) != 0) return write_error(id, pointer, detail::last_error(), "cannot move the blob to");
        return success();
      }
      if (auto ec = copy_file(blob, tmp)) return write_error(id, tmp, ec, "cannot copy the blob to");
    }
    if (::rename(tmp.c_str(), pointer.c_str()) != 0) {
      const std::error_code ec = detail::last_error();
      ::unlink(tmp.c_str());
      return write_error(id, pointer, ec, "cannot put in place");
    }
    return success();
  }

  static std::atomic<unsigned>& temp_counter() {
    static std::atomic<unsigned> counter{0};
    return counter;
  }

  static std::error_code copy_file(const std::string& from, const std::string& to) {
    const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return detail::last_error();
    const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (out < 0) {
      const auto ec = detail::last_error();
      ::close(in);
      return ec;
    }
    std::error_code ec;
    std::string buf(1 << 20, '\0');
    for (;;) {
      const ssize_t got = ::read(in, &buf[0], buf.size());
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) ec = detail::last_error();
      if (got <= 0) break;
      for (ssize_t off = 0; off < got;) {
        const ssize_t put = ::write(out, buf.data() + off, static_cast<std::size_t>(got - off));
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) {
          ec = detail::last_error();
          break;
        }
        off += put;
      }
      if (ec) break;
    }
    ::close(in);
    ::close(out);
    if (ec) ::unlink(to.c_str());
    return ec;
  }

  // trees/<commit>.json as huggingface_hub's write_tree_cache writes it
  // (json.dump, indent 1, keys sorted), listing every file the hub listed,
  // fetched or not. False if a path cannot be written as JSON.
  static bool tree_json(const HubSnapshot& snapshot, std::string& out) {
    std::vector<const HubFile*> all;
    for (const auto* list : {&snapshot.files, &snapshot.unselected})
      for (const HubFile& f : *list) all.push_back(&f);
    std::sort(all.begin(), all.end(), [](const HubFile* a, const HubFile* b) { return a->path < b->path; });
    out = "{\n \"format_version\": 1,\n \"files\": {";
    for (std::size_t i = 0; i < all.size(); ++i) {
      const HubFile& f = *all[i];
      if (f.git_oid.empty()) return false;
      out += i == 0 ? "\n  " : ",\n  ";
      if (!detail::json::append_string(out, f.path)) return false;
      out += ": {\n   \"size\": " + std::to_string(f.size) + ",\n   \"blob_id\": \"" + f.git_oid + "\"";
      if (!f.sha256.empty()) out += ",\n   \"lfs_sha256\": \"" + f.sha256 + "\",\n   \"lfs_size\": " + std::to_string(f.size);
      if (!f.xet_hash.empty()) out += ",\n   \"xet_hash\": \"" + f.xet_hash + "\"";
      out += "\n  }";
    }
    out += all.empty() ? "}\n}" : "\n }\n}";
    return true;
  }

  struct Listed {
    std::string path;
    std::uint64_t size = 0;
    std::string blob_id, lfs_sha256, xet_hash;  // from a tree, where it has them (lower-case hex)
  };

  // The commit refs/<revision> names, white space trimmed: huggingface_hub
  // writes none and reads without stripping; the JS and Rust clients strip.
  static std::error_code read_ref(const std::string& repo, const std::string& revision, std::string& commit) {
    std::string bytes;
    if (auto ec = detail::read_file(repo + "/refs/" + revision, bytes, 4096)) return ec;
    const auto space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
    std::size_t start = 0, end = bytes.size();
    while (start < end && space(bytes[start])) ++start;
    while (end > start && space(bytes[end - 1])) --end;
    commit = bytes.substr(start, end - start);
    return {};
  }

  static std::vector<std::string> cached_commits(const std::string& repo) {
    std::vector<detail::DirEntry> entries;
    std::vector<std::string> commits;
    if (detail::list_directory(repo + "/snapshots", entries)) return commits;
    for (const auto& e : entries)
      if (e.is_directory && is_commit_hash(e.name)) commits.push_back(e.name);
    std::sort(commits.begin(), commits.end());
    return commits;
  }

  // The snapshot's files and how complete they are proven to be.
  static result<ResolvedModel> probe_snapshot(const std::string& repo, const std::string& snapshot, const std::string& commit,
                                              std::vector<Probe>& probes) {
    const detail::FileStatus st = detail::status(snapshot);
    if (!st.exists() || !st.is_directory) {
      probes.push_back({snapshot, st.exists() ? "not a directory" : st.missing() ? "does not exist" : st.error.message()});
      if (st.error == std::errc::permission_denied)
        return Error(errc::permission_denied, {}, "cannot read " + snapshot).with_cause(st.error);
      return Error(errc::not_cached, {}, "the cache holds no snapshot of commit " + commit);
    }
    ResolvedModel m;
    m.directory = snapshot;
    m.commit = commit;
    m.layout = layout;
    const std::string inside = detail::lexically_normal_absolute(repo) + "/";

    std::vector<Listed> listed;
    // Our manifest first: what modelres verified (it may be fewer files than
    // the tree, when patterns chose them).
    detail::Manifest manifest;
    const std::string manifest_path = repo + "/" + manifest_dir + "/" + commit;
    const bool has_manifest = read_manifest(repo, commit, manifest);
    if (has_manifest && manifest.downloading) {
      probes.push_back({manifest_path, "a modelres download into this snapshot has not finished"});
      return Error(errc::incomplete, {}, "a download into " + snapshot + " did not finish (" + manifest_path +
                                             " says so); resolve it online again to complete it");
    }
    if (has_manifest)
      for (const HubFile& f : manifest.snapshot.files) listed.push_back({f.path, f.size, {}, {}, {}});
    bool has_tree = false;
    const std::string tree_path = repo + "/trees/" + commit + ".json";
    if (!has_manifest) {
      std::string why_ignored;
      MODELRES_TRY(tree_found, read_tree(tree_path, listed, why_ignored));
      has_tree = tree_found;
      if (!why_ignored.empty()) probes.push_back({tree_path, "ignored: " + why_ignored});
    }

    if (has_manifest || has_tree) {
      const std::string source = has_manifest ? manifest_dir + std::string("/") + commit : "trees/" + commit + ".json";
      std::vector<std::string> missing, wrong_size;
      std::unordered_set<std::string> checked_dirs;  // each subdirectory's own link check, once
      for (const Listed& f : listed) {
        const std::string path = snapshot + "/" + f.path;
        for (std::size_t slash = f.path.find('/'); slash != std::string::npos; slash = f.path.find('/', slash + 1)) {
          std::string dir = snapshot + "/" + f.path.substr(0, slash);
          if (checked_dirs.count(dir)) continue;
          MODELRES_TRYV(check_link(inside, dir, probes));
          checked_dirs.insert(std::move(dir));
        }
        MODELRES_TRYV(check_link(inside, path, probes));
        const detail::FileStatus fs = detail::status(path);  // follows the link into blobs/
        if (!fs.exists() || !fs.is_regular) {
          missing.push_back(f.path);
          continue;
        }
        if (fs.size != f.size) wrong_size.push_back(f.path + " (" + std::to_string(fs.size) + " bytes, listed " + std::to_string(f.size) + ")");
        m.files.push_back({f.path, {}, fs.size});
      }
      if (!missing.empty() || !wrong_size.empty()) {
        probes.push_back({snapshot, std::to_string(missing.size() + wrong_size.size()) + " of " +
                                        std::to_string(listed.size()) + " listed files missing or of another size"});
        std::string why;
        if (!missing.empty()) why = "missing files listed in " + source + ": " + detail::join_limited(missing);
        if (!wrong_size.empty())
          why += (why.empty() ? "" : "; ") + std::string("files of another size than listed: ") + detail::join_limited(wrong_size);
        return Error(errc::incomplete, {}, std::move(why));
      }
      if (has_tree) {
        probes.push_back({snapshot, "found, every file the cached tree lists"});
        m.completeness = Completeness::listed;
      } else if (!manifest.unsynced_boot.empty() && !detail::same_boot(manifest.unsynced_boot)) {
        // Written without waiting for the disk, and the machine restarted since.
        probes.push_back({snapshot, "found, but written without syncing before a restart: not verified"});
        m.completeness = Completeness::unknown;
      } else {
        probes.push_back({snapshot, "found, every file modelres verified"});
        m.completeness = Completeness::verified;
      }
      return m;
    }

    // No tree: the files that are there, as huggingface_hub serves them.
    MODELRES_TRYV(walk(inside, snapshot, {}, m.files, probes));
    probes.push_back({snapshot, "found, without a cached tree to check it against"});
    m.completeness = Completeness::unknown;
    return m;
  }

  // Every file below a snapshot, and a check of every link met on the way
  // (linked directories are checked, not entered).
  static result<void> walk(const std::string& inside, const std::string& snapshot, const std::string& prefix,
                           std::vector<CachedFile>& files, std::vector<Probe>& probes) {
    const std::string dir = prefix.empty() ? snapshot : snapshot + "/" + prefix;
    std::vector<detail::DirEntry> entries;
    if (auto ec = detail::list_directory(dir, entries)) {
      probes.push_back({dir, "cannot be read: " + ec.message()});
      return Error(ec == std::errc::permission_denied ? errc::permission_denied : errc::io_error, {}, "cannot list " + dir)
          .with_cause(ec);
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const detail::DirEntry& e : entries) {
      const std::string rel = prefix.empty() ? e.name : prefix + "/" + e.name;
      if (e.is_symlink) {
        MODELRES_TRYV(check_link(inside, dir + "/" + e.name, probes));
      }
      if (e.is_directory) {
        if (!e.is_symlink) {
          MODELRES_TRYV(walk(inside, snapshot, rel, files, probes));
        }
        continue;
      }
      const detail::FileStatus st = detail::status(dir + "/" + e.name);
      if (st.exists() && st.is_regular) files.push_back({rel, {}, st.size});
    }
    return success();
  }

  // A snapshot entry is a plain file or a link that stays inside the model's
  // folder (relative into blobs/, or absolute where relpath failed). A link
  // anywhere else is not served: a cache is shared, and a file planted there
  // must not reach outside it.
  // `inside` is the model's folder, normalised, with a trailing '/'.
  static result<void> check_link(const std::string& inside, const std::string& path, std::vector<Probe>& probes) {
    char target[4096];
    const ssize_t n = ::readlink(path.c_str(), target, sizeof target);
    if (n < 0) return success();  // not a link
    const std::string_view link(target, static_cast<std::size_t>(n));
    const std::string resolved = detail::lexically_normal_absolute(
        !link.empty() && link.front() == '/' ? std::string(link) : path.substr(0, path.rfind('/') + 1) + std::string(link));
    if (resolved.rfind(inside, 0) == 0) return success();
    probes.push_back({path, "links outside the model's folder, to " + resolved});
    return Error(errc::unsafe_metadata, {}, path + " links to " + resolved + ", outside " + inside.substr(0, inside.size() - 1));
  }

  // trees/<commit>.json (format_version 1). Absent: false. Unreadable JSON or
  // another format version: false, with why (huggingface_hub ignores such a
  // file too). A listed path that would leave the snapshot: unsafe_metadata.
  static result<bool> read_tree(const std::string& path, std::vector<Listed>& out, std::string& why_ignored) {
    std::string bytes;
    if (const std::error_code ec = detail::read_file(path, bytes, max_metadata_bytes)) {
      if (ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory) why_ignored = ec.message();
      return false;
    }
    auto doc = detail::json::read(bytes);
    if (!doc) {
      why_ignored = doc.error().detail;
      return false;
    }
    const detail::json::Document& d = doc.value();
    const detail::json::Node* version = d.member(d.root(), "format_version");
    std::uint64_t v = 0;
    if (!version || !detail::json::Document::as_uint(*version, v) || v != 1) {
      why_ignored = "format_version is not 1";
      return false;
    }
    const detail::json::Node* files = d.member(d.root(), "files");
    if (!files || files->type != detail::json::kind::object) {
      why_ignored = "no \"files\" object";
      return false;
    }
    for (std::size_t i = 0; i < files->keys.size(); ++i) {
      const std::string& file = files->keys[i];
      const detail::json::Node* size = d.member(d.nodes[files->items[i]], "size");
      Listed entry{file, 0, {}, {}, {}};
      if (!size || !detail::json::Document::as_uint(*size, entry.size)) {
        why_ignored = "\"" + detail::printable(file, 200) + "\" has no size";
        out.clear();
        return false;
      }
      if (!detail::is_safe_relative_path(file))
        return Error(errc::unsafe_metadata, {}, path + " lists an unsafe path: " + detail::printable(file, 200));
      const auto hex_member = [&](const char* key, std::size_t length) {
        const detail::json::Node* v = d.member(d.nodes[files->items[i]], key);
        return v && v->type == detail::json::kind::string && detail::is_lower_hex(v->text, length) ? v->text : std::string();
      };
      entry.blob_id = hex_member("blob_id", 40);
      entry.lfs_sha256 = hex_member("lfs_sha256", 64);
      entry.xet_hash = hex_member("xet_hash", 64);
      out.push_back(std::move(entry));
    }
    return true;
  }
};

}  // namespace modelres
