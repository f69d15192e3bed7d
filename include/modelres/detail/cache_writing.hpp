// What every writable cache does the same way when OnlinePolicy writes a
// model into it, whatever its layout: which of our manifests still vouches for
// files, the plan's test of a file against it, marking a download as running,
// the order a commit makes things durable in, and the typed error for a
// failed write. Each layout adds only where things go and what the Python
// client reads (caches/modelscope_cache.hpp, caches/huggingface_cache.hpp).
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../durability.hpp"
#include "../error.hpp"
#include "../hub_snapshot.hpp"
#include "../model_ref.hpp"
#include "../result.hpp"
#include "../caches/write_target.hpp"
#include "fs.hpp"
#include "manifest.hpp"

namespace modelres::detail {

// A manifest over 64 MiB is not ours (100,000 files make about 15 MB).
inline constexpr std::size_t max_manifest_bytes = 64u << 20;

// disk_full for want of space or quota, permission_denied, else io_error; naming the path.
inline Error write_error(const ModelId& id, const std::string& path, std::error_code ec, std::string_view doing) {
  const errc code = is_out_of_space(ec) ? errc::disk_full : ec == std::errc::permission_denied ? errc::permission_denied : errc::io_error;
  return Error(code, id.str(), std::string(doing) + " " + path).with_cause(ec);
}

// The manifest at `path`, parsed; false if it is absent, unreadable or damaged
// (then it proves nothing, and the files are checked as if it were absent).
inline bool read_manifest_file(const std::string& path, Manifest& out) {
  std::string bytes;
  if (read_file(path, bytes, max_manifest_bytes)) return false;
  auto m = read_manifest(bytes, path);
  if (!m) return false;
  out = std::move(m).value();
  return true;
}

// Whether a manifest still vouches for its files: the download finished, and
// they were synced, or written until_restart in this very boot.
inline bool manifest_vouches(const Manifest& m) {
  return !m.downloading && (m.unsynced_boot.empty() || same_boot(m.unsynced_boot));
}

// Takes what `m`, our manifest in a target's directory, says into `t`, for
// plan() to compare the hub's snapshot with. One that no longer vouches
// (damaged, mid-download, or written until_restart in an earlier boot)
// proves nothing and is left out.
inline void take_vouching_manifest(WriteTarget& t, Manifest& m) {
  if (!manifest_vouches(m)) return;
  t.manifest_unsynced = !m.unsynced_boot.empty();
  t.manifest_revision = m.snapshot.revision;
  t.manifest_files = std::move(m.snapshot.files);
}

// The hash a file is checked and (Hugging Face) named by: sha256, else its git blob id.
inline const std::string& content_id(const HubFile& f) { return f.sha256.empty() ? f.git_oid : f.sha256; }

// A vouching manifest's files by path, so the plan costs one lookup per file
// (a scan per file is quadratic in a large repository).
class ManifestIndex {
 public:
  ManifestIndex() = default;
  explicit ManifestIndex(const std::vector<HubFile>& files) {
    for (const HubFile& f : files) by_path_.emplace(f.path, &f);
  }
  // The manifest's entry for this path with the same content hash and the
  // same size, any size where the hub listed 0 (unknown: the manifest then
  // records the size that arrived); null if there is none.
  const HubFile* entry_for(const HubFile& f) const {
    const std::string& wanted = content_id(f);
    if (wanted.empty()) return nullptr;
    const auto [first, last] = by_path_.equal_range(f.path);
    for (auto it = first; it != last; ++it)
      if ((f.size == 0 || it->second->size == f.size) && content_id(*it->second) == wanted) return it->second;
    return nullptr;
  }
  bool vouches_for(const HubFile& f) const { return entry_for(f) != nullptr; }
  // The manifest's entry for `f` if the file on disk (`st`) is a regular file at the size it records; else null.
  const HubFile* proves_present(const HubFile& f, const FileStatus& st) const {
    const HubFile* known = entry_for(f);
    return known && st.exists() && st.is_regular && st.size == known->size ? known : nullptr;
  }

 private:
  std::unordered_multimap<std::string_view, const HubFile*> by_path_;
};

// A file is on disk when it is a regular file at the listed size. ModelScope
// lists some files with size 0, meaning unknown (the fetcher then takes
// whatever length arrives), so any length passes for those.
inline bool on_disk_at_listed_size(const FileStatus& st, const HubFile& f) {
  return st.exists() && st.is_regular && (f.size == 0 || st.size == f.size);
}

// Nothing to do: every listed file present, and the manifest at this revision lists exactly these.
inline bool is_up_to_date(const WritePlan& p, const WriteTarget& target, const HubSnapshot& snapshot) {
  return p.present.size() == snapshot.files.size() && target.manifest_files.size() == snapshot.files.size() &&
         target.manifest_revision == snapshot.revision;
}

// Before the first file moves in: the manifest says a download runs, so
// lookups report the model incomplete until the commit replaces it.
inline result<void> mark_downloading(const ModelId& id, const std::string& manifest_path, const HubSnapshot& snapshot) {
  const std::string dir = manifest_path.substr(0, manifest_path.rfind('/'));
  if (auto ec = make_directories(dir)) return write_error(id, dir, ec, "cannot create");
  if (auto ec = write_file_atomically(manifest_path, write_manifest(id.str(), snapshot, /*downloading=*/true)))
    return write_error(id, manifest_path, ec, "cannot write");
  return success();
}

struct MetadataFile {
  std::string path;
  std::string bytes;
};

// The commit, in the one order that is safe after a crash: every file of the
// model synced, then the directories that name them, then the layout's own
// metadata (what the Python client reads), then our manifest, last, so it
// never vouches for data that did not reach the disk. Each metadata file is
// written under a temporary name and renamed. until_restart skips every sync
// and says so in the manifest, with the boot.
inline result<void> commit_in_order(const ModelId& id, const HubSnapshot& snapshot, Durability durability,
                                    const std::vector<std::string>& files, const std::vector<std::string>& directories,
                                    const std::vector<MetadataFile>& metadata, const std::string& manifest_path) {
  const bool sync = durability == Durability::on_disk;
  if (sync) {
    for (const std::string& f : files)
      if (auto ec = sync_to_disk(f)) return write_error(id, f, ec, "cannot sync");
    for (const std::string& d : directories)
      if (status(d).exists())
        if (auto ec = sync_to_disk(d)) return write_error(id, d, ec, "cannot sync");
  }
  const auto write = [&](const std::string& path, const std::string& bytes) -> result<void> {
    if (auto ec = make_directories(path.substr(0, path.rfind('/')))) return write_error(id, path, ec, "cannot create the directory of");
    if (auto ec = write_file_atomically(path, bytes, sync)) return write_error(id, path, ec, "cannot write");
    return success();
  };
  for (const MetadataFile& m : metadata) {
    MODELRES_TRYV(write(m.path, m.bytes));
  }
  std::string unsynced_boot;  // empty: synced; "-" when the boot cannot be told, which no later boot matches
  if (!sync) {
    unsynced_boot = current_boot_id();
    if (unsynced_boot.empty()) unsynced_boot = "-";
  }
  return write(manifest_path, write_manifest(id.str(), snapshot, false, unsynced_boot));
}

}  // namespace modelres::detail
