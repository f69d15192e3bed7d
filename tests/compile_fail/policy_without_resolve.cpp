// Must not compile: the policy has no resolve().
#include <modelres/modelres.hpp>

struct NoResolve {
  static constexpr modelres::reference_kind accepts = modelres::reference_kind::model_id;
};

int main() { modelres::Resolver<NoResolve, modelres::ModelScopeCache> r; }
