// libFuzzer target for the strict pickle reader (tools/dev.sh test runs it).
// Every input must give a document or a corrupt/unsafe error; anything else,
// or a sanitizer report, is a bug.
#include <modelres/detail/pickle.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  auto doc = modelres::detail::pickle::read(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!doc && doc.error() != modelres::errc::corrupt_metadata && doc.error() != modelres::errc::unsafe_metadata)
    std::abort();
  if (doc) {
    // Walk the tree: every index must be in range.
    const auto& d = doc.value();
    for (const auto& node : d.nodes)
      for (auto i : node.items)
        if (i >= d.nodes.size()) std::abort();
  }
  return 0;
}
