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
  std::string sha256;     // lower-case hex; empty if the hub gave none
  std::string revision;   // the commit that last changed the file (the client's cache key)
};

struct HubSnapshot {
  std::string revision;     // branch or tag name
  std::int64_t created_at = 0;
  std::string endpoint;     // where it came from
  std::vector<HubFile> files;
};

}  // namespace modelres
