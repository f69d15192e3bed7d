// LocalOnlyPolicy: a model id resolved from the cache alone. No network code is
// compiled in: this header includes no transport, and nothing it calls writes,
// creates, locks or moves anything in the cache. Given a lock entry
// (ResolveOptions::locked), it serves only a copy whose files match it.
#pragma once

#include <string_view>

#include "../lock_file.hpp"
#include "../model_ref.hpp"
#include "../resolve_options.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"

namespace modelres {

struct LocalOnlyPolicy {
  static constexpr reference_kind accepts = reference_kind::model_id;

  template <class Cache>
  result<ResolvedModel> resolve(std::string_view reference, const ResolveOptions& options, Cache& cache) const {
    MODELRES_TRY(id, ModelId::parse(reference));
    if (options.locked) return detail::locate_locked(cache, id, *options.locked);
    return cache.locate(id, options.revision);
  }
};

}  // namespace modelres
