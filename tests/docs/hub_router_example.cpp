#include <modelres/modelres.hpp>

#include <cstdio>

int main() {
  using ModelScopeSide = modelres::Resolver<modelres::DefaultOfflinePolicy, modelres::ModelScopeCache>;
  using HuggingFaceSide = modelres::Resolver<modelres::DefaultOfflinePolicy, modelres::HuggingFaceCache>;
  modelres::HubRouter<ModelScopeSide, HuggingFaceSide> router;
  auto gemma = router.resolve("hf.co/google/gemma-2b");             // huggingface_hub's cache
  auto unet = router.resolve("iic/cv_unet_skin_retouching_torch");  // the default hub: ModelScope
  for (const auto* model : {&gemma, &unet})
    std::printf("%s\n", *model ? model->value().directory.c_str() : model->error().message().c_str());
}
