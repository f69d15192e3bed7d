// What a hub says one revision of a model is: the values a hub protocol
// produces and a cache records. Shared by hubs, caches and policies, so none
// of them depends on another.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace modelres {

// One file of a model as the hub lists it.
struct HubFile {
  std::string path;       // repo-relative, '/'-separated, checked safe
  std::uint64_t size = 0;
  std::string sha256;     // of the content, lower-case hex; empty if the hub gave none
  std::string revision;   // the commit that last changed the file (ModelScope's cache key)
  // The git blob id the hub lists (Hugging Face), lower-case hex: sha1 of
  // "blob <size>\0" + content, checked when there is no sha256. For an LFS
  // file it is the pointer's id, not the content's: sha256 is set then.
  std::string git_oid;
  std::string xet_hash;   // Hugging Face's Xet content hash, recorded for its client; never checked
};

struct HubSnapshot {
  std::string revision;     // branch or tag name, as asked for (or the hub's default)
  std::string commit;       // the commit it is at, for hubs that say (Hugging Face); else empty
  std::int64_t created_at = 0;
  std::string endpoint;     // where it came from
  std::vector<HubFile> files;
  // Listed by the hub but left out by the caller's allow/ignore patterns: not
  // fetched, but a cache that records the hub's whole listing (Hugging Face's
  // trees/<commit>.json) records them too.
  std::vector<HubFile> unselected;
};

}  // namespace modelres
