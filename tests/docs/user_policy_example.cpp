#include <modelres/modelres.hpp>

#include <cstdio>

// Models are provisioned by operations into a read-only tree, one directory per
// model: /srv/models/owner/name. Ids resolve there, and nowhere else.
struct ProvisionedTreePolicy {
  static constexpr modelres::reference_kind accepts = modelres::reference_kind::model_id;
  std::string tree = "/srv/models";

  template <class Cache>
  modelres::result<modelres::ResolvedModel> resolve(std::string_view reference,
                                                    const modelres::ResolveOptions& options, Cache& cache) const {
    MODELRES_TRY(id, modelres::ModelId::parse(reference));  // a valid id cannot leave the tree
    auto model = cache.inspect(tree + "/" + id.owner + "/" + id.name, options.revision);
    if (!model) return std::move(model).error().with_id(id.str(), options.revision);
    model.value().model_id = id.str();
    return model;
  }
};

// Paths as paths, ids from the provisioned tree.
using FactoryPolicy = modelres::FirstOf<modelres::PathPolicy, ProvisionedTreePolicy>;

int main() {
  modelres::Resolver<FactoryPolicy, modelres::ModelScopeCache> resolver;
  auto model = resolver.resolve("iic/cv_unet_skin_retouching_torch");
  if (!model) std::fprintf(stderr, "%s\n", model.error().message().c_str());
  return model ? 0 : 1;
}
