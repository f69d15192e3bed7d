// Everything offline in one include: references, errors, results, the
// ModelScope and Hugging Face caches (alone or behind read-only roots:
// LayeredCache), and the Path, LocalOnly and FirstOf policies. Includes no
// network code.
#pragma once

#include "caches/cache_traits.hpp"
#include "caches/huggingface_cache.hpp"
#include "caches/layered_cache.hpp"
#include "caches/modelscope_cache.hpp"
#include "caches/plain_directory_cache.hpp"
#include "error.hpp"
#include "hub_router.hpp"
#include "lock_file.hpp"
#include "model_ref.hpp"
#include "policies/first_of.hpp"
#include "policies/local_only.hpp"
#include "policies/path.hpp"
#include "policies/policy_traits.hpp"
#include "resolve_options.hpp"
#include "resolved_model.hpp"
#include "resolver.hpp"
#include "result.hpp"
#include "version.hpp"

namespace modelres {

// The default composition: "./dir", "/dir", "~/dir" are directories, "owner/name" is looked up in the cache.
using DefaultOfflinePolicy = FirstOf<PathPolicy, LocalOnlyPolicy>;

}  // namespace modelres
