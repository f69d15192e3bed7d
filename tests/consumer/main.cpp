// Resolves a path and an id (a typed miss) through the installed package.
#include <modelres/modelres.hpp>

#include <cstdio>

int main() {
  modelres::Resolver<modelres::DefaultOfflinePolicy, modelres::ModelScopeCache> resolver{
      modelres::ModelScopeCache("/nonexistent-modelres-root")};
  auto dir = resolver.resolve("/");
  auto miss = resolver.resolve("iic/cv_unet_skin_retouching_torch");
  if (!dir || miss || miss.error() != modelres::errc::not_cached) return 1;
  std::printf("modelres %s: ok\n", MODELRES_VERSION_STRING);
  return 0;
}
