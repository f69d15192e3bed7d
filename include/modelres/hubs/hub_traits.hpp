// The Hub requirements: one hub's HTTP API (URLs, JSON shapes, status codes,
// credentials) over a Transport, knowing no disk layout and doing no retries
// or threads (the Fetcher does). OnlinePolicy<Transport, Hub> checks them.
//
// A type H models Hub for a Transport T when, for `H h`, `const H ch`,
// `const ModelId id`, `std::string_view rev`, `const HubSnapshot snap`,
// `const HubFile file`, `const ResponseHead head`, `std::string_view body`:
//
//   expression                               type                semantics
//   typename H::Options                      default-constructible  what users set (endpoint, token, ...)
//   H(T, typename H::Options)                                    a hub that sends through this transport
//   h.snapshot(id, rev)                      result<HubSnapshot> what revision `rev` (empty: the hub's
//                                                                default) is, with every file: path
//                                                                (checked safe), size, a content hash
//   ch.file_request(id, snap, file)          HttpRequest         how to fetch one file of that snapshot
//   ch.file_error(id, snap, path, head, body) Error              the typed error for a download answered
//                                                                with another status than 200 or 206
//
// docs/traits.md has the full table.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../error.hpp"
#include "../hub_snapshot.hpp"
#include "../model_ref.hpp"
#include "../result.hpp"
#include "../transports/transport_traits.hpp"

namespace modelres {

template <class H, class = void>
struct hub_has_options : std::false_type {};
template <class H>
struct hub_has_options<H, std::void_t<typename H::Options>> : std::is_default_constructible<typename H::Options> {};

template <class H, class T, class = void>
struct hub_constructible_from : std::false_type {};
template <class H, class T>
struct hub_constructible_from<H, T, std::enable_if_t<hub_has_options<H>::value>>
    : std::is_constructible<H, T, typename H::Options> {};

// Options with a `std::string endpoint` (both hubs'), so OnlinePolicy can ask a list of endpoints in turn.
template <class O, class = void>
struct hub_options_have_endpoint : std::false_type {};
template <class O>
struct hub_options_have_endpoint<O, std::void_t<decltype(std::declval<O&>().endpoint = std::string())>> : std::true_type {};

// Optional: `std::string endpoint() const`, where the hub is asked.
template <class H, class = void>
struct hub_has_endpoint : std::false_type {};
template <class H>
struct hub_has_endpoint<H, std::void_t<decltype(std::string(std::declval<const H&>().endpoint()))>> : std::true_type {};

template <class H, class = void>
struct hub_has_snapshot : std::false_type {};
template <class H>
struct hub_has_snapshot<H, std::void_t<decltype(std::declval<H&>().snapshot(std::declval<const ModelId&>(),
                                                                            std::declval<std::string_view>()))>>
    : std::is_convertible<decltype(std::declval<H&>().snapshot(std::declval<const ModelId&>(),
                                                              std::declval<std::string_view>())),
                          result<HubSnapshot>> {};

template <class H, class = void>
struct hub_has_file_request : std::false_type {};
template <class H>
struct hub_has_file_request<H, std::void_t<decltype(std::declval<const H&>().file_request(
                                   std::declval<const ModelId&>(), std::declval<const HubSnapshot&>(),
                                   std::declval<const HubFile&>()))>>
    : std::is_convertible<decltype(std::declval<const H&>().file_request(std::declval<const ModelId&>(),
                                                                        std::declval<const HubSnapshot&>(),
                                                                        std::declval<const HubFile&>())),
                          HttpRequest> {};

template <class H, class = void>
struct hub_has_file_error : std::false_type {};
template <class H>
struct hub_has_file_error<H, std::void_t<decltype(std::declval<const H&>().file_error(
                                 std::declval<const ModelId&>(), std::declval<const HubSnapshot&>(),
                                 std::declval<const std::string&>(), std::declval<const ResponseHead&>(),
                                 std::declval<std::string_view>()))>>
    : std::is_convertible<decltype(std::declval<const H&>().file_error(
                              std::declval<const ModelId&>(), std::declval<const HubSnapshot&>(),
                              std::declval<const std::string&>(), std::declval<const ResponseHead&>(),
                              std::declval<std::string_view>())),
                          Error> {};

// Optional: a hub whose revisions name commits lists in two steps, so that a
// cache holding the commit's listing (cache_has_cached_files) spares the
// listing request, and a pinned commit spares both:
//   H::is_commit(rev)            bool          `rev` names a commit (immutable)
//   h.revision_info(id, rev)     result<HubSnapshot>  revision and commit, no files
//   h.list_files(id, snap)       result<void>  fills snap.files for snap.commit
template <class H, class = void>
struct hub_lists_by_commit : std::false_type {};
template <class H>
struct hub_lists_by_commit<
    H, std::void_t<decltype(H::is_commit(std::declval<std::string_view>())),
                   decltype(std::declval<H&>().revision_info(std::declval<const ModelId&>(), std::declval<std::string_view>())),
                   decltype(std::declval<H&>().list_files(std::declval<const ModelId&>(), std::declval<HubSnapshot&>()))>>
    : std::true_type {};

// Optional: what a commit records about the revision beyond its file list,
// asked only when something is to be written (so a current cache never pays
// for it):
//   h.revision_details(id, snap) result<void>  fills e.g. snap.created_at (ModelScope's .mv)
template <class H, class = void>
struct hub_has_revision_details : std::false_type {};
template <class H>
struct hub_has_revision_details<
    H, std::void_t<decltype(std::declval<H&>().revision_details(std::declval<const ModelId&>(), std::declval<HubSnapshot&>()))>>
    : std::true_type {};

template <class H, class T>
struct is_hub_for : std::conjunction<hub_has_options<H>, hub_constructible_from<H, T>, hub_has_snapshot<H>,
                                     hub_has_file_request<H>, hub_has_file_error<H>> {};

template <class H, class T>
constexpr bool check_hub() {
  static_assert(hub_has_options<H>::value,
                "modelres: this Hub type has no default-constructible `Options` member type (see docs/traits.md, Hub)");
  static_assert(hub_constructible_from<H, T>::value,
                "modelres: this Hub type cannot be constructed from (Transport, Hub::Options): is it a hub for "
                "another transport? (see docs/traits.md, Hub)");
  static_assert(hub_has_snapshot<H>::value,
                "modelres: this Hub type has no `result<HubSnapshot> snapshot(const ModelId&, std::string_view)` "
                "(see docs/traits.md, Hub)");
  static_assert(hub_has_file_request<H>::value,
                "modelres: this Hub type has no `HttpRequest file_request(const ModelId&, const HubSnapshot&, const "
                "HubFile&) const` (see docs/traits.md, Hub)");
  static_assert(hub_has_file_error<H>::value,
                "modelres: this Hub type has no `Error file_error(const ModelId&, const HubSnapshot&, const "
                "std::string& path, const ResponseHead&, std::string_view body) const` (see docs/traits.md, Hub)");
  return true;
}

}  // namespace modelres
