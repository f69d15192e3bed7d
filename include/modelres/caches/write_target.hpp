// WriteTarget and WritePlan: what a writable cache tells OnlinePolicy about
// where one model goes and what must be fetched to bring it to a snapshot.
#pragma once

#include <string>
#include <vector>

#include "../hub_snapshot.hpp"
#include "../resolved_model.hpp"

namespace modelres {

// Where an online resolve writes one model, and what is already there.
struct WriteTarget {
  // How the fetched bytes are named in store_dir: by the file's path in the
  // model (ModelScope), or by its content hash, sha256 else git blob id
  // (Hugging Face's blobs/<etag>, linked from the snapshot by commit()).
  enum class Naming { by_path, by_content };

  std::string model_dir;               // the model's files appear here (ModelScope: store_dir too)
  std::string store_dir;               // the fetched bytes go here, named by `naming`
  Naming naming = Naming::by_path;
  std::string partial_dir;             // partial downloads (NAME.incomplete)
  std::string lock_path;               // the lock for this model (the Python client's, where it has one)
  std::string file_lock_dir;           // if set, DIR/NAME.lock is held while NAME is fetched (the Python client's per-file lock)
  std::vector<HubFile> manifest_files; // what our manifest proves (path, size, sha256)
  std::string manifest_revision;       // the revision our manifest records
  bool manifest_unsynced = false;      // its files were written until_restart (in this boot) and never synced
  std::vector<CachedFile> recorded;    // the Python client's .msc records (path, commit)
  std::string layout;                  // which layout model_dir is in (ResolvedModel::layout)

  std::string file(const std::string& relative) const { return model_dir + "/" + relative; }
  // The name a file's bytes have in store_dir; empty if it cannot have one
  // (named by content, but the hub listed no hash).
  std::string stored_name(const HubFile& f) const {
    if (naming == Naming::by_path) return f.path;
    return f.sha256.empty() ? f.git_oid : f.sha256;
  }
  std::string stored(const HubFile& f) const { return store_dir + "/" + stored_name(f); }
};

// A file already on disk that no manifest of ours vouches for (the Python
// client put it there): trusted once the bytes at `path` pass its check.
struct FileToVerify {
  HubFile file;
  std::string path;
};

// What must happen to bring a model directory to a snapshot.
struct WritePlan {
  std::vector<HubFile> present;        // proven present by our manifest: size and content hash match
  std::vector<FileToVerify> to_verify; // on disk, put there by someone else: hash before trusting
  std::vector<HubFile> to_download;    // everything else
  bool up_to_date = false;             // our manifest already records exactly this snapshot: nothing to write
  bool unsynced = false;               // what is present was written until_restart, in this boot, and never synced
  // When up_to_date: the model as the plan found it (directory, revision,
  // files, completeness verified), so a current cache is answered without a
  // second look. Left empty (no directory), OnlinePolicy asks Cache::locate.
  ResolvedModel current;
};

}  // namespace modelres
