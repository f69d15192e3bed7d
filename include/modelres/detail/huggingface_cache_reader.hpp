// How modelres reads a huggingface_hub cache (caches/huggingface_cache.hpp
// shows the layout): refs, snapshots whose entries are links into blobs/ or
// plain files, the cached trees/<commit>.json, and our own manifest of a
// commit. Read-only: nothing here writes, locks or moves anything.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../hub_snapshot.hpp"
#include "../model_ref.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"
#include "cache_support.hpp"
#include "cache_writing.hpp"
#include "fs.hpp"
#include "json_reader.hpp"
#include "manifest.hpp"

namespace modelres::detail::huggingface {

inline constexpr std::string_view default_revision = "main";
inline constexpr const char* layout = "huggingface_hub (models--owner--name/snapshots/commit)";
// A tree listing of 100,000 files is about 20 MB.
inline constexpr std::size_t max_metadata_bytes = 64u << 20;
// Our manifests, one per commit: models--owner--name/.modelres/<commit>.
inline constexpr const char* manifest_dir = ".modelres";

// models--owner--name, as huggingface_hub's repo_folder_name() builds it.
inline std::string repo_folder(const ModelId& id) { return detail::concat({"models--", id.owner, "--", id.name}); }

// A full commit id, as the cache names snapshots (40 lower-case hex).
inline bool is_commit_hash(std::string_view s) { return detail::is_lower_hex(s, 40); }

// A file a listing names (a cached tree, or our manifest), with what it says of it.
struct Listed {
  std::string path;
  std::uint64_t size = 0;
  std::string blob_id, lfs_sha256, xet_hash;  // from a tree, where it has them (lower-case hex)
};

// The commit refs/<revision> names, white space trimmed: huggingface_hub
// writes none and reads without stripping; the JS and Rust clients strip.
inline std::error_code read_ref(const std::string& repo, const std::string& revision, std::string& commit) {
  std::string bytes;
  if (auto ec = detail::read_file(detail::concat({repo, "/refs/", revision}), bytes, 4096)) return ec;
  const auto space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  std::size_t start = 0, end = bytes.size();
  while (start < end && space(bytes[start])) ++start;
  while (end > start && space(bytes[end - 1])) --end;
  commit = bytes.substr(start, end - start);
  return {};
}

inline std::vector<std::string> cached_commits(const std::string& repo) {
  std::vector<detail::DirEntry> entries;
  std::vector<std::string> commits;
  if (detail::list_directory(repo + "/snapshots", entries)) return commits;
  for (const auto& e : entries)
    if (e.is_directory && is_commit_hash(e.name)) commits.push_back(e.name);
  std::sort(commits.begin(), commits.end());
  return commits;
}

// models--owner--name/.modelres/<commit>: the commit's manifest.
inline std::string manifest_path(const std::string& repo, const std::string& commit) {
  return detail::concat({repo, "/", manifest_dir, "/", commit});
}

// Our manifest of one commit, if it is there, readable, of this model folder and this commit.
inline bool read_commit_manifest(const std::string& repo, const std::string& commit, Manifest& out) {
  Manifest m;
  if (!is_commit_hash(commit) || !read_manifest_file(manifest_path(repo, commit), m)) return false;
  auto id = ModelId::parse(m.model);
  if (!id || repo_folder(id.value()) != repo.substr(repo.rfind('/') + 1) || m.snapshot.commit != commit) return false;
  out = std::move(m);
  return true;
}

// What a snapshot entry links to: its blob, relative, as huggingface_hub
// writes it ("../../blobs/<name>", one "../" more per directory in `path`).
inline std::string link_target_of(const std::string& path, const std::string& blob_name) {
  std::string up = "../../";
  for (char c : path) up += c == '/' ? "../" : "";
  return up + "blobs/" + blob_name;
}

// The first directory from the snapshot down to `path`'s parent that is a
// link, or empty if none is. `checked`, if given, holds directories already
// found not to be links (each is then looked at once over many paths).
inline std::string linked_directory_on_the_way(const std::string& snapshot_dir, const std::string& path,
                                               std::unordered_set<std::string>* checked = nullptr) {
  std::size_t slash = 0;  // 0: the snapshot directory itself
  do {
    std::string dir = slash == 0 ? snapshot_dir : snapshot_dir + "/" + path.substr(0, slash);
    if (!checked || !checked->count(dir)) {
      if (is_symlink(dir)) return dir;
      if (checked) checked->insert(std::move(dir));
    }
    slash = path.find('/', slash + 1);
  } while (slash != std::string::npos);
  return {};
}

// Whether snapshots/<commit>/<path> is what a commit leaves there, with the
// size listed: the relative link to its blob, or (no-symlink layout) a plain
// file; and no directory on the way is a link. A readlink and a stat per
// file; each directory once (`checked_dirs`, over a whole plan).
inline bool entry_holds(const std::string& snapshot_dir, const std::string& path, const std::string& blob_path,
                        const std::string& blob_name, std::uint64_t size, std::unordered_set<std::string>& checked_dirs) {
  if (!linked_directory_on_the_way(snapshot_dir, path, &checked_dirs).empty()) return false;
  const std::string entry = snapshot_dir + "/" + path;
  char target[4096];
  const ssize_t n = ::readlink(entry.c_str(), target, sizeof target);
  FileStatus st;
  if (n >= 0) {
    if (std::string_view(target, static_cast<std::size_t>(n)) != link_target_of(path, blob_name)) return false;
    st = status(blob_path);
  } else {
    if (errno != EINVAL) return false;  // EINVAL: there, and not a link
    st = status(entry);
  }
  return st.exists() && st.is_regular && st.size == size;
}

// Whether refs/<revision> already names the snapshot's commit (or needs no ref: a commit).
inline bool ref_names(const std::string& repo, const HubSnapshot& snapshot) {
  if (snapshot.revision == snapshot.commit) return true;
  std::string commit;
  return !read_ref(repo, snapshot.revision, commit) && commit == snapshot.commit;
}

// A snapshot entry is a plain file or a link that stays inside the model's
// folder (relative into blobs/, or absolute where relpath failed). A link
// anywhere else is not served: a cache is shared, and a file planted there
// must not reach outside it.
// `inside` is the model's folder, normalised, with a trailing '/'.
// The common case, decided by counting alone: `path` spelled as `inside`
// followed by plain names, and a relative `link` that never climbs above
// `inside` and ends strictly below it (huggingface_hub's ../../blobs/<etag>).
// False means "not shown here", never "outside".
inline bool stays_inside_by_counting(std::string_view inside, std::string_view path, std::string_view link) {
  if (link.empty() || link.front() == '/' || path.compare(0, inside.size(), inside) != 0) return false;
  long depth = 0;  // directories below `inside`
  const auto walk = [&depth](std::string_view spelled, bool is_link) {
    for (std::size_t start = 0; start <= spelled.size();) {
      std::size_t end = spelled.find('/', start);
      if (end == std::string_view::npos) end = spelled.size();
      const std::string_view part = spelled.substr(start, end - start);
      if (part == "..") {
        if (!is_link || --depth < 0) return false;
      } else if (part.empty() || part == ".") {
        if (!is_link) return false;
      } else {
        ++depth;
      }
      start = end + 1;
    }
    return true;
  };
  const std::string_view from = path.substr(inside.size(), path.rfind('/') - inside.size() + 1);  // the link's directory
  return walk(from.substr(0, from.size() - 1), false) && walk(link, true) && depth >= 1;
}

inline result<void> check_link(const std::string& inside, const std::string& path, std::vector<Probe>& probes) {
  char target[4096];
  const ssize_t n = ::readlink(path.c_str(), target, sizeof target);
  if (n < 0) return success();  // not a link
  const std::string_view link(target, static_cast<std::size_t>(n));
  if (stays_inside_by_counting(inside, path, link)) return success();
  std::string joined;
  if (link.empty() || link.front() != '/') {
    const std::size_t dir_end = path.rfind('/') + 1;
    joined.reserve(dir_end + link.size());
    joined.append(path, 0, dir_end);
  }
  joined.append(link);
  const std::string resolved = detail::lexically_normal_absolute(joined);
  if (resolved.rfind(inside, 0) == 0) return success();
  probes.push_back({path, "links outside the model's folder, to " + resolved});
  return Error(errc::unsafe_metadata, {}, path + " links to " + resolved + ", outside " + inside.substr(0, inside.size() - 1));
}

// Every file below a snapshot, and a check of every link met on the way
// (linked directories are checked, not entered).
inline result<void> walk(const std::string& inside, const std::string& snapshot, const std::string& prefix,
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

// What read_tree keeps of each listed file: a hit needs paths and sizes only.
enum class TreeDetail { sizes, sizes_and_hashes };

// trees/<commit>.json (format_version 1). Absent: false. Unreadable JSON or
// another format version: false, with why (huggingface_hub ignores such a
// file too). A listed path that would leave the snapshot: unsafe_metadata.
inline result<bool> read_tree(const std::string& path, std::vector<Listed>& out, std::string& why_ignored,
                              TreeDetail detail = TreeDetail::sizes_and_hashes) {
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
  out.reserve(out.size() + files->size);
  for (const detail::json::Node& listed : d.children(*files)) {
    const std::string_view file = listed.key;
    const detail::json::Node* size = d.member(listed, "size");
    Listed entry{std::string(file), 0, {}, {}, {}};
    if (!size || !detail::json::Document::as_uint(*size, entry.size)) {
      why_ignored = "\"" + detail::printable(file, 200) + "\" has no size";
      out.clear();
      return false;
    }
    if (!detail::is_safe_relative_path(file))
      return Error(errc::unsafe_metadata, {}, path + " lists an unsafe path: " + detail::printable(file, 200));
    const auto hex_member = [&](const char* key, std::size_t length) {
      const detail::json::Node* v = d.member(listed, key);
      return v && v->type == detail::json::kind::string && detail::is_lower_hex(v->text, length) ? std::string(v->text)
                                                                                                 : std::string();
    };
    if (detail == TreeDetail::sizes_and_hashes) {
      entry.blob_id = hex_member("blob_id", 40);
      entry.lfs_sha256 = hex_member("lfs_sha256", 64);
      entry.xet_hash = hex_member("xet_hash", 64);
    }
    out.push_back(std::move(entry));
  }
  return true;
}

// The snapshot's files and how complete they are proven to be.
inline result<ResolvedModel> probe_snapshot(const std::string& repo, const std::string& snapshot, const std::string& commit,
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
  const bool has_manifest = read_commit_manifest(repo, commit, manifest);
  if (has_manifest && manifest.downloading) {
    const std::string manifest_file = manifest_path(repo, commit);
    probes.push_back({manifest_file, "a modelres download into this snapshot has not finished"});
    return Error(errc::incomplete, {}, "a download into " + snapshot + " did not finish (" + manifest_file +
                                           " says so); resolve it online again to complete it");
  }
  if (has_manifest)
    for (const HubFile& f : manifest.snapshot.files) listed.push_back({f.path, f.size, {}, {}, {}});
  bool has_tree = false;
  const std::string tree_path = detail::concat({repo, "/trees/", commit, ".json"});
  if (!has_manifest) {
    std::string why_ignored;
    MODELRES_TRY(tree_found, read_tree(tree_path, listed, why_ignored, TreeDetail::sizes));
    has_tree = tree_found;
    if (!why_ignored.empty()) probes.push_back({tree_path, "ignored: " + why_ignored});
  }

  if (has_manifest || has_tree) {
    std::vector<std::string> missing, wrong_size;
    std::unordered_set<std::string> checked_dirs;  // each subdirectory's own link check, once
    std::string previous_dirs;  // the last file's directories, all checked: trees list a directory's files together
    std::string path = snapshot + "/";  // one buffer for every file's path
    const std::size_t snapshot_length = path.size();
    m.files.reserve(listed.size());
    for (Listed& f : listed) {
      path.resize(snapshot_length);
      path += f.path;
      const std::string_view dirs = std::string_view(f.path).substr(0, std::min(f.path.rfind('/'), f.path.size()));
      if (!dirs.empty() && dirs != previous_dirs) {
        for (std::size_t slash = f.path.find('/'); slash != std::string::npos; slash = f.path.find('/', slash + 1)) {
          std::string dir = path.substr(0, snapshot_length + slash);
          if (checked_dirs.count(dir)) continue;
          MODELRES_TRYV(check_link(inside, dir, probes));
          checked_dirs.insert(std::move(dir));
        }
        previous_dirs.assign(dirs);
      }
      MODELRES_TRYV(check_link(inside, path, probes));
      const detail::FileStatus fs = detail::status(path);  // follows the link into blobs/
      if (!fs.exists() || !fs.is_regular) {
        missing.push_back(f.path);
        continue;
      }
      if (fs.size != f.size) wrong_size.push_back(f.path + " (" + std::to_string(fs.size) + " bytes, listed " + std::to_string(f.size) + ")");
      m.files.push_back({std::move(f.path), {}, fs.size});
    }
    if (!missing.empty() || !wrong_size.empty()) {
      probes.push_back({snapshot, std::to_string(missing.size() + wrong_size.size()) + " of " +
                                      std::to_string(listed.size()) + " listed files missing or of another size"});
      std::string why;
      const std::string source = has_manifest ? manifest_dir + std::string("/") + commit : "trees/" + commit + ".json";
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

}  // namespace modelres::detail::huggingface
