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
  std::string model_dir;               // the files go here (a classic layout directory)
  std::string partial_dir;             // partial downloads
  std::string lock_path;               // the Python client's lock file for this model
  std::vector<HubFile> manifest_files; // what our manifest proves (path, size, sha256)
  std::string manifest_revision;       // the revision our manifest records
  bool manifest_unsynced = false;      // its files were written until_restart (in this boot) and never synced
  std::vector<CachedFile> recorded;    // the Python client's .msc records (path, commit)

  std::string file(const std::string& relative) const { return model_dir + "/" + relative; }
};

// What must happen to bring a model directory to a snapshot.
struct WritePlan {
  std::vector<HubFile> present;      // proven present by our manifest: size and sha256 match
  std::vector<HubFile> to_verify;    // on disk and recorded by the Python client at this commit: hash before trusting
  std::vector<HubFile> to_download;  // everything else
  bool up_to_date = false;           // our manifest already records exactly this snapshot: nothing to write
};

}  // namespace modelres
