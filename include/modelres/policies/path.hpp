// PathPolicy: a reference that names a local directory (absolute, relative,
// "~" or "~user"). Missing, not a directory and unreadable are each their own
// error. If the directory holds a cache's metadata (a ModelScope .msc), the
// recorded files are checked as for a cache hit. Given a lock entry
// (ResolveOptions::locked), the directory must hold that model, matching it.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>

#include "../caches/cache_traits.hpp"
#include "../detail/fs.hpp"
#include "../error.hpp"
#include "../lock_file.hpp"
#include "../model_ref.hpp"
#include "../resolve_options.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"

namespace modelres {

struct PathPolicy {
  static constexpr reference_kind accepts = reference_kind::path;

  template <class Cache>
  result<ResolvedModel> resolve(std::string_view reference, const ResolveOptions& options, Cache& cache) const {
    const std::string ref = detail::printable(reference);
    const auto fail = [&](errc code, std::string why) { return Error(code, ref, std::move(why)).with_revision(options.revision); };
    if (reference.empty()) return fail(errc::path_not_found, "empty path");
    if (reference.find('\0') != std::string_view::npos) return fail(errc::path_not_found, "path contains a NUL byte");
    std::string path;
    if (!detail::expand_tilde(reference, path)) return fail(errc::path_not_found, "unknown user or home directory in " + ref);
    const detail::FileStatus st = detail::status(path);
    if (!st.exists()) {
      if (st.error == std::errc::permission_denied)
        return fail(errc::permission_denied, "a directory on the way to " + path + " cannot be searched").with_cause(st.error);
      if (st.missing()) return fail(errc::path_not_found, path + " does not exist").with_cause(st.error);
      return fail(errc::io_error, "cannot stat " + path).with_cause(st.error);
    }
    if (!st.is_directory) return fail(errc::not_a_directory, path + " is not a directory");
    std::vector<detail::DirEntry> entries;
    if (auto ec = detail::list_directory(path, entries))
      return fail(ec == std::errc::permission_denied ? errc::permission_denied : errc::io_error, path + " cannot be read")
          .with_cause(ec);
    char* real = ::realpath(path.c_str(), nullptr);
    if (!real) return fail(errc::io_error, "cannot resolve " + path).with_cause(detail::last_error());
    const std::string canonical = real;
    std::free(real);
    auto inspected = cache.inspect(canonical, options.revision);
    if (!inspected) return std::move(inspected).error().with_id(ref, options.revision);
    ResolvedModel model = std::move(inspected).value();
    model.directory = canonical;
    if (options.locked) {
      MODELRES_TRYV(check_locked(model, *options.locked, cache));
    }
    return model;
  }

 private:
  // A directory given with a lock entry: it must say it holds that model (our
  // manifest names it), and its files must match the entry.
  template <class Cache>
  static result<void> check_locked(const ResolvedModel& model, const LockedModel& lock, const Cache& cache) {
    if (model.model_id != lock.id)
      return Error(errc::lock_mismatch, model.directory.native(),
                   model.model_id.empty() ? "nothing in the directory says which model it holds; the lock entry is for " + lock.id
                                          : "the directory holds " + model.model_id + ", the lock entry is for " + lock.id);
    std::vector<HubFile> recorded;
    if constexpr (cache_has_recorded_checks<Cache>::value) recorded = cache.recorded_checks(model);
    return detail::check_against_lock(model, recorded, lock);
  }
};

}  // namespace modelres
