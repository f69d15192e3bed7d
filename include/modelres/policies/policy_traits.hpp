// The Policy requirements, and detection traits that check them.
//
// A policy decides the control flow of a resolve, nothing else. A type P models
// Policy for a Cache C if, for `P p`, `std::string_view ref`,
// `const ResolveOptions opts` and `C& cache`:
//
//   expression                        type                    semantics
//   P::accepts                        reference_kind          which references the policy takes
//                                                             inside a composition (FirstOf)
//   p.resolve(ref, opts, cache)       result<ResolvedModel>   the model, or a typed error
//
// Used alone, a policy interprets every reference its own way (PathPolicy as a
// path, LocalOnlyPolicy as a model id). docs/traits.md has the full table and
// a user-written policy.
#pragma once

#include <string_view>
#include <type_traits>

#include "../model_ref.hpp"
#include "../resolve_options.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"

namespace modelres {

template <class P, class = void>
struct policy_has_accepts : std::false_type {};
template <class P>
struct policy_has_accepts<P, std::void_t<decltype(P::accepts)>>
    : std::is_same<std::remove_cv_t<decltype(P::accepts)>, reference_kind> {};

template <class P, class C, class = void>
struct policy_has_resolve : std::false_type {};
template <class P, class C>
struct policy_has_resolve<P, C,
                          std::void_t<decltype(std::declval<P&>().resolve(std::declval<std::string_view>(),
                                                                          std::declval<const ResolveOptions&>(),
                                                                          std::declval<C&>()))>>
    : std::is_convertible<decltype(std::declval<P&>().resolve(std::declval<std::string_view>(),
                                                              std::declval<const ResolveOptions&>(),
                                                              std::declval<C&>())),
                          result<ResolvedModel>> {};

template <class P, class C>
struct is_policy_for : std::conjunction<policy_has_accepts<P>, policy_has_resolve<P, C>> {};

template <class P, class C>
constexpr bool check_policy() {
  static_assert(policy_has_accepts<P>::value,
                "modelres: this Policy type has no `static constexpr reference_kind accepts` (see docs/traits.md, "
                "Policy)");
  static_assert(policy_has_resolve<P, C>::value,
                "modelres: this Policy type has no `result<ResolvedModel> resolve(std::string_view, const "
                "ResolveOptions&, Cache&)` for this Cache (see docs/traits.md, Policy)");
  return true;
}

}  // namespace modelres
