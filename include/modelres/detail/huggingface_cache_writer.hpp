// How modelres writes a snapshot into a huggingface_hub cache so that the
// Python and JavaScript clients find it offline: relative links from
// snapshots/<commit>/ into blobs/ (or the blobs themselves, where links are
// disabled or fail), trees/<commit>.json as the client writes it, and the
// checks that keep a planted link from redirecting a write.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "../error.hpp"
#include "../hub_snapshot.hpp"
#include "../model_ref.hpp"
#include "../result.hpp"
#include "../caches/write_target.hpp"
#include "cache_writing.hpp"
#include "fs.hpp"
#include "huggingface_cache_reader.hpp"
#include "json_writer.hpp"

namespace modelres::detail::huggingface {

inline constexpr const char* cachedir_tag =
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by huggingface_hub.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n";

// What a hub and the layout must agree on before anything is written.
inline result<void> check_writable(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot) {
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
inline result<void> check_no_links_below(const ModelId& id, const std::string& snapshot_dir, const std::string& relative) {
  const std::string linked = linked_directory_on_the_way(snapshot_dir, relative);
  if (!linked.empty()) return Error(errc::unsafe_metadata, id.str(), linked + " is a link; nothing is written through it");
  return success();
}

// Names the links built aside apart, between threads of one process.
inline std::atomic<unsigned>& temp_counter() {
  static std::atomic<unsigned> counter{0};
  return counter;
}

// Makes snapshots/<commit>/<path> the file: a relative link to its blob
// (atomically replacing what was there), or in the no-symlink layout a copy
// of the blob (moved at its last use). A plain file of the right size with
// no blob beside it was hashed by the plan: kept.
inline result<void> place(const ModelId& id, const WriteTarget& target, const std::string& snapshot_dir, const HubFile& f,
                          bool use_links, bool last_use) {
  MODELRES_TRYV(check_no_links_below(id, snapshot_dir, f.path));
  const std::string pointer = snapshot_dir + "/" + f.path;
  const std::string blob = target.stored(f);
  const std::string link_target = link_target_of(f.path, target.stored_name(f));
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
  const std::string tmp = target.model_dir + "/" + manifest_dir + "/link." + detail::process_tag() + "." +
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

// Places every file of the snapshot, each blob moving (no-symlink layout) at
// its last use, as huggingface_hub moves a new blob. `files` and
// `directories` get what the commit must sync.
inline result<void> place_all(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot,
                              const std::string& snapshot_dir, std::vector<std::string>& files,
                              std::vector<std::string>& directories) {
  const bool use_links = !environment_flag("HF_HUB_DISABLE_SYMLINKS");
  std::unordered_map<std::string, std::size_t> last_use_of;  // blob name -> index of the last file using it
  for (std::size_t i = 0; i < snapshot.files.size(); ++i) last_use_of[target.stored_name(snapshot.files[i])] = i;
  std::unordered_set<std::string> dirs{target.store_dir};
  for (std::size_t i = 0; i < snapshot.files.size(); ++i) {
    const HubFile& f = snapshot.files[i];
    MODELRES_TRYV(place(id, target, snapshot_dir, f, use_links, last_use_of[target.stored_name(f)] == i));
    std::string pointer = snapshot_dir + "/" + f.path;
    dirs.insert(pointer.substr(0, pointer.rfind('/')));
    files.push_back(std::move(pointer));
  }
  directories.assign(dirs.begin(), dirs.end());
  return success();
}

// trees/<commit>.json as huggingface_hub's write_tree_cache writes it
// (json.dump, indent 1, keys sorted), listing every file the hub listed,
// fetched or not. False if a path cannot be written as JSON.
inline bool tree_json(const HubSnapshot& snapshot, std::string& out) {
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

}  // namespace modelres::detail::huggingface
