// ResolveOptions: what a caller may say about one resolve besides the reference.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lock_file.hpp"

namespace modelres {

struct ResolveOptions {
  // Branch or tag. Empty: not pinned, whatever the cache holds is served
  // (for the snapshot layout: "master", else its only snapshot).
  std::string revision;
  // Online downloads only: which of the model's files to fetch, as the Python
  // client's allow_patterns / ignore_patterns (fnmatch, where '*' matches '/'
  // too; "dir/" means "dir/*"). Empty allow: every file. A cache lookup
  // ignores them.
  std::vector<std::string> allow_patterns;
  std::vector<std::string> ignore_patterns;
  // A lock file's entry for this model (LockFile::find): serve only a copy
  // whose files match it, and online fetch exactly those files, at its commit,
  // or fail with errc::lock_mismatch. It replaces `revision` and the patterns.
  std::optional<LockedModel> locked;
};

}  // namespace modelres
