// result<T>: a value or an Error, on Boost.Outcome's std_result.
//
// Misuse (asking a failed result for its value) prints the error and aborts,
// in every build: no exception ever crosses the API, and the same result type
// is instantiated with and without -fno-exceptions, so there is no ODR split.
// Check `if (!r)` first; `r.error()` then holds the Error.
#pragma once

#include <boost/outcome/std_result.hpp>
#include <boost/outcome/try.hpp>
#include <boost/version.hpp>

#include <cstdio>
#include <cstdlib>

#include "error.hpp"

namespace modelres {

namespace outcome = BOOST_OUTCOME_V2_NAMESPACE;

// Outcome's NoValuePolicy: report then abort, never throw.
struct abort_on_bad_access : outcome::policy::base {
  template <class Impl>
  static constexpr void wide_value_check(Impl&& self) {
    if (!base::_has_value(static_cast<Impl&&>(self))) {
      if (base::_has_error(static_cast<Impl&&>(self))) {
        const Error& e = base::_error(static_cast<Impl&&>(self));
        std::fprintf(stderr, "modelres: value() of a failed result: %s\n", e.message().c_str());
      }
      std::abort();
    }
  }
  template <class Impl>
  static constexpr void wide_error_check(Impl&& self) {
    if (!base::_has_error(static_cast<Impl&&>(self))) {
      std::fputs("modelres: error() of a successful result\n", stderr);
      std::abort();
    }
  }
  template <class Impl>
  static constexpr void wide_exception_check(Impl&& self) {
    if (!base::_has_exception(static_cast<Impl&&>(self))) std::abort();
  }
};

template <class T>
using result = outcome::std_result<T, Error, abort_on_bad_access>;

inline auto success() { return outcome::success(); }

}  // namespace modelres

// MODELRES_TRY(name, expr): bind `name` to the value of a result or return its
// error. Spelled for both Outcome v2.1 (Boost <= 1.75) and v2.2 (Boost >= 1.76).
#if BOOST_VERSION >= 107600
#define MODELRES_TRY(name, ...) BOOST_OUTCOME_TRY(auto&& name, __VA_ARGS__)
#else
#define MODELRES_TRY(name, ...) BOOST_OUTCOME_TRY(name, __VA_ARGS__)
#endif
#define MODELRES_TRYV(...) BOOST_OUTCOME_TRYV(__VA_ARGS__)
