// ResolveOptions: what a caller may say about one resolve besides the reference.
#pragma once

#include <string>

namespace modelres {

struct ResolveOptions {
  // Branch or tag. Empty: not pinned, whatever the cache holds is served
  // (for the snapshot layout: "master", else its only snapshot).
  std::string revision;
};

}  // namespace modelres
