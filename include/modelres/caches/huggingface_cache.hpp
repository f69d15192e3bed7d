// HuggingFaceCache: the cache huggingface_hub (and @huggingface/hub) write,
// read exactly as they lay it out, without writing, locking or moving anything:
//
//   ROOT/models--owner--name/refs/<revision>          the commit a branch, tag or refs/pr/N points at
//   ROOT/models--owner--name/snapshots/<commit>/...   the files: relative symlinks into blobs/, or
//                                                     plain files (no-symlink layout)
//   ROOT/models--owner--name/trees/<commit>.json      the hub's listing of the commit, when cached
//
// ROOT, read at each call: the constructor's argument, else $HF_HUB_CACHE,
// $HUGGINGFACE_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub,
// ~/.cache/huggingface/hub (docs/cache-layouts.md).
//
// Completeness: `listed` when a cached tree names every file of the snapshot
// and each is on disk with the listed size; `unknown` without a usable tree. A
// snapshot the tree shows to lack files is errc::incomplete naming them, as
// huggingface_hub's IncompleteSnapshotError does.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cache_traits.hpp"
#include "../detail/cache_support.hpp"
#include "../detail/fs.hpp"
#include "../detail/json_reader.hpp"
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
    return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
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

 private:
  std::filesystem::path explicit_root_;

  struct Listed {
    std::string path;
    std::uint64_t size = 0;
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
    std::string why_ignored;
    const std::string tree_path = repo + "/trees/" + commit + ".json";
    MODELRES_TRY(has_tree, read_tree(tree_path, listed, why_ignored));
    if (!why_ignored.empty()) probes.push_back({tree_path, "ignored: " + why_ignored});

    if (has_tree) {
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
        if (!missing.empty()) why = "missing files listed in trees/" + commit + ".json: " + detail::join_limited(missing);
        if (!wrong_size.empty())
          why += (why.empty() ? "" : "; ") + std::string("files of another size than listed: ") + detail::join_limited(wrong_size);
        return Error(errc::incomplete, {}, std::move(why));
      }
      probes.push_back({snapshot, "found, every file the cached tree lists"});
      m.completeness = Completeness::listed;
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
      Listed entry{file, 0};
      if (!size || !detail::json::Document::as_uint(*size, entry.size)) {
        why_ignored = "\"" + detail::printable(file, 200) + "\" has no size";
        out.clear();
        return false;
      }
      if (!detail::is_safe_relative_path(file))
        return Error(errc::unsafe_metadata, {}, path + " lists an unsafe path: " + detail::printable(file, 200));
      out.push_back(std::move(entry));
    }
    return true;
  }
};

}  // namespace modelres
