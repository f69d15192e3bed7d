#include <modelres/modelres.hpp>

#include <cstdio>

// The read-only roots come from MODELRES_READ_ONLY_CACHES (say /mnt/models:/opt/baked), in front of
// the writable ~/.cache/huggingface/hub: a shared volume is read, never written.
int main() {
  using Cache = modelres::LayeredCache<modelres::HuggingFaceCache>;
  modelres::Resolver<modelres::LocalOnlyPolicy, Cache> resolver;
  auto model = resolver.resolve("google/gemma-2b");
  if (!model) {
    std::printf("%s\n", model.error().message().c_str());
    return 1;
  }
  std::printf("%s (cache root %s%s)\n", model.value().directory.c_str(), model.value().cache_root.c_str(),
              model.value().from_read_only_root ? ", read-only" : "");
}
