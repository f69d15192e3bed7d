// FirstOf<P...>: a composition that hands each reference to the first policy
// that accepts its kind. The kind is decided by spelling alone
// (classify_reference: "/x", "./x", "~/x" are paths, "owner/name" is an id),
// never by what happens to exist on disk, so "Qwen/Qwen2.5-0.5B" means the same
// model in every working directory. The chosen policy's answer is final: a miss
// is not retried with the next one.
//
//   using Default = FirstOf<PathPolicy, LocalOnlyPolicy>;
#pragma once

#include <string_view>
#include <tuple>
#include <utility>

#include "../error.hpp"
#include "../model_ref.hpp"
#include "../resolve_options.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"
#include "policy_traits.hpp"

namespace modelres {

template <class... Policies>
class FirstOf {
  static_assert(sizeof...(Policies) > 0, "modelres: FirstOf needs at least one policy");

 public:
  static constexpr reference_kind accepts = reference_kind::any;

  FirstOf() = default;
  explicit FirstOf(Policies... policies) : policies_(std::move(policies)...) {}

  template <class Cache>
  result<ResolvedModel> resolve(std::string_view reference, const ResolveOptions& options, Cache& cache) {
    static_assert((check_policy<Policies, Cache>() && ...));
    return try_from<0>(classify_reference(reference), reference, options, cache);
  }

  template <std::size_t I>
  auto& get() { return std::get<I>(policies_); }

 private:
  template <std::size_t I, class Cache>
  result<ResolvedModel> try_from(reference_kind kind, std::string_view reference, const ResolveOptions& options,
                                 Cache& cache) {
    if constexpr (I == sizeof...(Policies)) {
      return Error(errc::unsupported_reference, detail::printable(reference),
                   std::string("this reads as a ") + (kind == reference_kind::path ? "path" : "model id") +
                       ", and no policy in this composition takes one" +
                       (kind == reference_kind::model_id ? "; write a relative directory as ./dir" : ""))
          .with_revision(options.revision);
    } else {
      using P = std::tuple_element_t<I, std::tuple<Policies...>>;
      if (P::accepts == reference_kind::any || P::accepts == kind)
        return std::get<I>(policies_).resolve(reference, options, cache);
      return try_from<I + 1>(kind, reference, options, cache);
    }
  }

  std::tuple<Policies...> policies_;
};

}  // namespace modelres
