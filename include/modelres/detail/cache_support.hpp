// What the caches share when they report: the check of a directory given by
// path (Cache::inspect), and bounded lists of names in error details.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../model_ref.hpp"
#include "../result.hpp"
#include "fs.hpp"

namespace modelres::detail {

// "a, b, c and 7 more": names from disk or metadata, printable.
inline std::string join_limited(const std::vector<std::string>& items, std::size_t limit = 20) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < limit; ++i) out += (i ? ", " : "") + printable(items[i]);
  if (items.size() > limit) out += " and " + std::to_string(items.size() - limit) + " more";
  return out;
}

// A directory given by path exists and is one: else path_not_found,
// not_a_directory, permission_denied or io_error, naming it.
inline result<void> require_directory(const std::filesystem::path& directory) {
  const FileStatus st = status(directory.native());
  if (!st.exists()) {
    const errc code = st.missing() ? errc::path_not_found
                      : st.error == std::errc::permission_denied ? errc::permission_denied
                                                                  : errc::io_error;
    return Error(code, directory.native(), directory.native() + " cannot be found").with_cause(st.error);
  }
  if (!st.is_directory) return Error(errc::not_a_directory, directory.native(), directory.native() + " is not a directory");
  return success();
}

}  // namespace modelres::detail
