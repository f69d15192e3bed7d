// libFuzzer target for the strict JSON reader (tools/dev.sh test runs it).
// Every input must give a document or corrupt_metadata; anything else, or a
// sanitizer report, is a bug.
#include <modelres/detail/json_reader.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  auto doc = modelres::detail::json::read(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!doc && doc.error() != modelres::errc::corrupt_metadata) std::abort();
  if (doc) {
    const auto& d = doc.value();
    for (const auto& node : d.nodes) {
      if (node.type == modelres::detail::json::kind::object && node.keys.size() != node.items.size()) std::abort();
      for (auto i : node.items)
        if (i == 0 || i >= d.nodes.size()) std::abort();
    }
  }
  return 0;
}
