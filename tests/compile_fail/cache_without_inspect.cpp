// Must not compile: the cache has locate() but no inspect().
#include <modelres/modelres.hpp>

struct HalfCache {
  modelres::result<modelres::ResolvedModel> locate(const modelres::ModelId&, std::string_view) const {
    return modelres::ResolvedModel{};
  }
};

int main() { modelres::Resolver<modelres::LocalOnlyPolicy, HalfCache> r; }
