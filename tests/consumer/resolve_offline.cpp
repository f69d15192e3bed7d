// resolve_offline: prints the local directory of a model from the ModelScope
// cache ($MODELSCOPE_CACHE, else ~/.cache/modelscope), or of a path, and never
// touches the network. Links modelres::modelres alone.
#include <modelres/modelres.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s owner/name | /path/to/model\n", argv[0]);
    return 2;
  }
  modelres::Resolver<modelres::DefaultOfflinePolicy, modelres::ModelScopeCache> resolver;
  auto model = resolver.resolve(argv[1]);
  if (!model) {
    std::fprintf(stderr, "%s\n", model.error().message().c_str());  // the code, and every path looked at
    return 1;
  }
  std::printf("%s\n", model.value().directory.c_str());
  return 0;
}
