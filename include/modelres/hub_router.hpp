// HubRouter: one resolve() for references to either hub, each sent to the
// resolver (policy + cache) of its hub. A reference names its hub the way
// ollama does ("hf.co/owner/name", "huggingface.co/owner/name",
// "modelscope.cn/owner/name"); a bare "owner/name" and a path go to the default
// hub: the one given, else $MODELRES_HUB (read at each call), else ModelScope.
//
//   using ModelScopeSide = Resolver<DefaultOfflinePolicy, ModelScopeCache>;
//   using HuggingFaceSide = Resolver<DefaultOfflinePolicy, HuggingFaceCache>;
//   HubRouter<ModelScopeSide, HuggingFaceSide> router;
//   auto model = router.resolve("hf.co/google/gemma-2b");
//
// It is a composition like any other: each side is an ordinary Resolver that
// can be used, or replaced, on its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "detail/fs.hpp"
#include "error.hpp"
#include "lock_file.hpp"
#include "model_ref.hpp"
#include "resolve_options.hpp"
#include "resolved_model.hpp"
#include "result.hpp"

namespace modelres {

template <class ModelScopeSide, class HuggingFaceSide>
class HubRouter {
 public:
  HubRouter() = default;
  explicit HubRouter(ModelScopeSide modelscope, HuggingFaceSide huggingface, std::optional<Hub> default_hub = std::nullopt)
      : modelscope_(std::move(modelscope)), huggingface_(std::move(huggingface)), default_hub_(default_hub) {}

  // The hub a bare id or a path goes to.
  result<Hub> default_hub() const {
    if (default_hub_) return *default_hub_;
    const std::string env = detail::environment("MODELRES_HUB");
    if (env.empty()) return Hub::modelscope;
    Hub hub;
    if (!parse_hub_name(env, hub))
      return Error(errc::unsupported_reference, {}, "MODELRES_HUB=" + detail::printable(env, 40) +
                                                        ": expected huggingface (hf) or modelscope (ms)");
    return hub;
  }

  // The hub a reference goes to, and the reference as that hub's resolver takes it.
  result<std::pair<Hub, std::string_view>> route(std::string_view reference) const {
    const HubPrefixed prefixed = split_hub_prefix(reference);
    if (prefixed.named) return std::make_pair(prefixed.hub, prefixed.id);
    auto hub = default_hub();
    if (!hub) return std::move(hub).error().with_id(detail::printable(reference), {});
    return std::make_pair(hub.value(), prefixed.id);
  }

  result<ResolvedModel> resolve(std::string_view reference, const ResolveOptions& options = {}) {
    MODELRES_TRY(routed, route(reference));
    return routed.first == Hub::huggingface ? huggingface_.resolve(routed.second, options)
                                            : modelscope_.resolve(routed.second, options);
  }

  // As resolve(), at the lock's entry for the reference's hub and id
  // (not_in_lock if it has none). A directory is looked up by the model its
  // manifest names, then checked against that entry.
  result<ResolvedModel> resolve(std::string_view reference, const LockFile& lock, ResolveOptions options = {}) {
    MODELRES_TRY(routed, route(reference));
    std::string_view id = routed.second;
    std::string found;
    if (classify_reference(reference) == reference_kind::path) {
      MODELRES_TRY(unlocked, resolve(reference, options));
      found = std::move(unlocked.model_id);
      id = found;
    }
    if (id.empty())
      return Error(errc::not_in_lock, detail::printable(reference), "nothing in the directory says which model it holds");
    MODELRES_TRY(entry, lock.entry(routed.first, id));
    options.locked = std::move(entry);
    return resolve(reference, options);
  }

  ModelScopeSide& modelscope() { return modelscope_; }
  HuggingFaceSide& huggingface() { return huggingface_; }

 private:
  ModelScopeSide modelscope_;
  HuggingFaceSide huggingface_;
  std::optional<Hub> default_hub_;
};

}  // namespace modelres
