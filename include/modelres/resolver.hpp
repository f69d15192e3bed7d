// Resolver<Policy, Cache>: turns a model reference into a local directory, the
// way the compile-time Policy says, from the given Cache.
//
//   modelres::Resolver<modelres::FirstOf<modelres::PathPolicy, modelres::LocalOnlyPolicy>,
//                      modelres::ModelScopeCache> resolver;
//   auto model = resolver.resolve("iic/cv_unet_skin_retouching_torch");
//   if (!model) std::cerr << model.error().message() << "\n";
//   else        load(model.value().directory);
//
// Both parameters are checked where they are used, with a static_assert that
// names the missing piece.
#pragma once

#include <string_view>
#include <utility>

#include "caches/cache_traits.hpp"
#include "model_ref.hpp"
#include "policies/policy_traits.hpp"
#include "resolve_options.hpp"
#include "resolved_model.hpp"
#include "result.hpp"

namespace modelres {

template <class Policy, class Cache>
class Resolver {
  static_assert(check_cache<Cache>());
  static_assert(check_policy<Policy, Cache>());

 public:
  Resolver() = default;
  explicit Resolver(Cache cache, Policy policy = Policy{}) : cache_(std::move(cache)), policy_(std::move(policy)) {}

  result<ResolvedModel> resolve(std::string_view reference, const ResolveOptions& options = {}) {
    auto revision = parse_revision(options.revision);
    if (!revision) return std::move(revision).error().with_id(detail::printable(reference), {});
    return policy_.resolve(reference, options, cache_);
  }

  Cache& cache() { return cache_; }
  Policy& policy() { return policy_; }

 private:
  Cache cache_;
  Policy policy_;
};

// One resolve with a default-constructed cache and policy.
template <class Policy, class Cache>
result<ResolvedModel> resolve(std::string_view reference, const ResolveOptions& options = {}, Cache cache = Cache{}) {
  return Resolver<Policy, Cache>(std::move(cache)).resolve(reference, options);
}

}  // namespace modelres
