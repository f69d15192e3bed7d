// libFuzzer target for what HuggingFaceHub parses from the hub (tools/dev.sh
// test runs it): the revision answer, a tree page and a Link header. Every
// input must give a result whose every file is safe and carries a well-formed
// check, or a typed error; anything else, or a sanitizer report, is a bug.
#include <modelres/hubs/huggingface_hub.hpp>

#include <cstdlib>

namespace {
bool lower_hex(const std::string& s, std::size_t n) { return modelres::detail::is_lower_hex(s, n); }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  namespace d = modelres::detail;
  using modelres::errc;

  auto commit = d::parse_revision_info(text);
  if (commit ? !lower_hex(commit.value(), 40) : commit.error() != errc::malformed_response) std::abort();

  std::vector<modelres::HubFile> files;
  auto page = d::parse_tree_page(text, files);
  if (!page && page.error() != errc::malformed_response && page.error() != errc::unsafe_file_list) std::abort();
  for (const auto& f : files) {
    if (!d::is_safe_relative_path(f.path) || !lower_hex(f.git_oid, 40)) std::abort();
    if (!f.sha256.empty() && !lower_hex(f.sha256, 64)) std::abort();
  }

  const std::string next = d::next_link(text);
  if (next.size() > size) std::abort();
  (void)d::origin_of(text);
  return 0;
}
