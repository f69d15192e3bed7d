#include <modelres/modelres.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  // "owner/name" is looked up in the ModelScope cache; "./dir", "/dir", "~/dir" are directories.
  modelres::Resolver<modelres::DefaultOfflinePolicy, modelres::ModelScopeCache> resolver;
  auto model = resolver.resolve(argc > 1 ? argv[1] : "iic/cv_unet_skin_retouching_torch");
  if (!model) {
    std::fprintf(stderr, "%s\n", model.error().message().c_str());  // what failed, and every path looked at
    return model.error() == modelres::errc::not_cached ? 2 : 1;
  }
  std::printf("%s\n", model.value().directory.c_str());
}
