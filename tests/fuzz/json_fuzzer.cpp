// libFuzzer target for the strict JSON reader (tools/dev.sh test runs it).
// Every input must give a document or corrupt_metadata; anything else, or a
// sanitizer report, is a bug.
#include <modelres/detail/json_reader.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  auto doc = modelres::detail::json::read(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!doc && doc.error() != modelres::errc::corrupt_metadata) std::abort();
  if (doc) {
    // Every child link points forward inside the document, each parent's
    // count matches its chain, and only an object's members carry keys.
    const auto& d = doc.value();
    for (std::size_t at = 0; at < d.nodes.size(); ++at) {
      const auto& node = d.nodes[at];
      std::size_t children = 0;
      for (std::uint32_t c = node.first; c; c = d.nodes[c].next) {
        if (c <= at || c >= d.nodes.size() || ++children > d.nodes.size()) std::abort();
        if (node.type != modelres::detail::json::kind::object && !d.nodes[c].key.empty()) std::abort();
      }
      if (children != node.size) std::abort();
      // Views stay inside the document's copy of the input, never the caller's.
      for (std::string_view v : {node.text, node.key})
        if (!v.empty() && v.data() >= reinterpret_cast<const char*>(data) &&
            v.data() < reinterpret_cast<const char*>(data) + size)
          std::abort();
    }
  }
  return 0;
}
