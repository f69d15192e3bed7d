// Must not compile: the policy does not say which references it accepts.
#include <modelres/modelres.hpp>

struct NoAccepts {
  template <class Cache>
  modelres::result<modelres::ResolvedModel> resolve(std::string_view, const modelres::ResolveOptions&, Cache&) const {
    return modelres::ResolvedModel{};
  }
};

int main() { modelres::Resolver<NoAccepts, modelres::ModelScopeCache> r; }
