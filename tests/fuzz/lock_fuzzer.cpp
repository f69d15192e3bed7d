// libFuzzer target for the lock file reader (tools/dev.sh test runs it): a
// lock file comes from a repository, so it is input like any other. Every
// input must give a lock or corrupt_metadata, and a lock written back must
// read back the same; anything else, or a sanitizer report, is a bug.
#include <modelres/lock_file.hpp>

#include <cstdlib>

namespace {

bool same(const modelres::HubFile& a, const modelres::HubFile& b) {
  return a.path == b.path && a.size == b.size && a.sha256 == b.sha256 && a.git_oid == b.git_oid && a.revision == b.revision;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  auto lock = modelres::parse_lock_file(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.lock");
  if (!lock) {
    if (lock.error() != modelres::errc::corrupt_metadata) std::abort();
    return 0;
  }
  auto again = modelres::parse_lock_file(modelres::write_lock_file(lock.value()), "written.lock");
  if (!again) std::abort();
  const auto& a = lock.value().models;
  const auto& b = again.value().models;
  if (a.size() != b.size()) std::abort();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].hub != b[i].hub || a[i].id != b[i].id || a[i].revision != b[i].revision || a[i].commit != b[i].commit ||
        a[i].files.size() != b[i].files.size())
      std::abort();
    for (std::size_t j = 0; j < a[i].files.size(); ++j)
      if (!same(a[i].files[j], b[i].files[j])) std::abort();
  }
  return 0;
}
