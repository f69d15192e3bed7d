// ResolvedModel: what a successful resolve returns. The directory, and exactly
// what is known about it: which model and revision, which cache layout it was
// found in, the files its metadata records, and how far completeness is proven.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace modelres {

enum class Completeness {
  // Every file the metadata records is on disk, and the metadata marks the
  // download as finished.
  verified,
  // Every file the hub's listing cached with the snapshot names is on disk
  // with the listed size (Hugging Face trees/<commit>.json); nothing recorded
  // that the download finished, and no byte hashed.
  listed,
  // Nothing proves the directory holds the whole model: the layout keeps no
  // metadata (ModelScope >= 1.38, a copied directory), the Python client's
  // record exists but it never marked the download finished, or modelres
  // downloaded it with Durability::until_restart and the machine restarted since.
  unknown,
};

inline const char* to_string(Completeness c) noexcept {
  switch (c) {
    case Completeness::verified: return "verified";
    case Completeness::listed: return "listed";
    case Completeness::unknown: return "unknown";
  }
  return "unknown";
}

// Whether the directory was checked against the hub on this resolve.
enum class HubCheck {
  not_asked,    // a policy that never asks the hub (LocalOnly, Path)
  current,      // asked: the directory holds the revision the hub lists, every file verified
  offline,      // an online policy told not to ask (MODELRES_OFFLINE, HF_HUB_OFFLINE)
  unavailable,  // asking failed (hub_check_reason says why): served from the cache, unchecked
};

inline const char* to_string(HubCheck c) noexcept {
  switch (c) {
    case HubCheck::not_asked: return "not_asked";
    case HubCheck::current: return "current";
    case HubCheck::offline: return "offline";
    case HubCheck::unavailable: return "unavailable";
  }
  return "unknown";
}

struct CachedFile {
  std::string path;          // relative to the model directory, '/'-separated
  std::string revision;      // the commit that last changed the file, if recorded
  std::uint64_t size = 0;    // bytes on disk
};

struct ResolvedModel {
  std::filesystem::path directory;
  std::string model_id;      // "owner/name"; empty when resolved from a path
  std::string revision;      // branch or tag as recorded by the cache; empty if unknown
  std::string commit;        // the commit the directory holds, where the cache knows it (Hugging Face)
  std::string layout;        // which on-disk layout it was found in, e.g. "modelscope 1.23-1.37"
  std::vector<CachedFile> files;
  Completeness completeness = Completeness::unknown;
  HubCheck hub_check = HubCheck::not_asked;
  std::string hub_check_reason;  // why not `current`, for offline and unavailable
  std::string endpoint;          // the hub endpoint that answered (OnlinePolicy, `current`); else empty
  // Which root of a LayeredCache served it (caches/layered_cache.hpp), and
  // whether that root is a read-only one; empty and false otherwise.
  std::filesystem::path cache_root;
  bool from_read_only_root = false;

  std::uint64_t total_size() const {
    std::uint64_t sum = 0;
    for (const CachedFile& f : files) sum += f.size;
    return sum;
  }
};

}  // namespace modelres
