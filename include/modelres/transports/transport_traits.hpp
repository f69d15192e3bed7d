// The Transport requirements: moving bytes over HTTP, knowing nothing of hubs
// or JSON. Requests and responses are plain values; the body is streamed to a
// sink, so memory stays flat in file size.
//
// A type T models Transport when, for `T t`, `const HttpRequest req` and
// `const BodySink sink`:
//
//   expression           type                   semantics
//   t.send(req, sink)    result<HttpResponse>   one request, redirects followed (never from https
//                                               to http; credential headers dropped when the host
//                                               changes); the final response's body goes to `sink`
//                                               chunk by chunk, whatever its status; a sink that
//                                               returns false cancels (errc::cancelled); a
//                                               request with resume_from or range_length asks
//                                               for that byte range (Range: bytes=N- or N-M)
//
// Errors: hub_unreachable (name resolution, connect, TLS), timed_out (request,
// first-byte or stall timeout), transfer_interrupted (the connection
// broke mid-body), cancelled, redirect_refused. An HTTP error status is not an
// error here: it is in HttpResponse::status for the hub protocol to interpret.
// docs/traits.md has the full table.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../result.hpp"

namespace modelres {

struct HttpHeader {
  std::string name;
  std::string value;
  // A credential (Authorization, a session cookie): never logged, never put in
  // an error, and not sent on after a redirect to another host.
  bool credential = false;
};

struct HttpRequest {
  enum class Method { get, head };
  Method method = Method::get;
  std::string url;
  std::vector<HttpHeader> headers;
  std::uint64_t resume_from = 0;                  // > 0: ask for bytes resume_from.. (Range: bytes=N-)
  std::uint64_t range_length = 0;                 // > 0: only this many from resume_from (Range: bytes=N-M)
  std::chrono::milliseconds timeout{0};             // whole request (metadata calls); 0: none
  std::chrono::milliseconds first_byte_timeout{0};  // no body byte this long after the start: timed_out;
                                                    // long for a cold pull-through mirror; 0: none
  std::chrono::milliseconds stall_timeout{0};       // no byte for this long once the body flows; 0: none
  const std::atomic<bool>* cancel = nullptr;      // set to true from anywhere: errc::cancelled
};

struct ResponseHead {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string url;                                           // the URL that answered, after redirects

  // The last value of a header, or nullptr.
  const std::string* header(std::string_view lower_name) const {
    const std::string* found = nullptr;
    for (const auto& h : headers)
      if (h.first == lower_name) found = &h.second;
    return found;
  }
};

struct HttpResponse : ResponseHead {
  std::vector<std::string> redirects;  // each hop's target, in order
};

// Receives the final response's body. Return false to cancel.
using BodySink = std::function<bool(const ResponseHead&, std::string_view chunk)>;

namespace detail {

// scheme://host[:port]/path of a URL, without query or fragment: safe for
// errors and logs (pre-signed URLs carry secrets in the query).
inline std::string redact_url(std::string_view url) {
  const std::size_t cut = url.find_first_of("?#");
  std::string out(url.substr(0, cut));
  if (cut != std::string_view::npos) out += "?...";
  return out;
}

}  // namespace detail

template <class T, class = void>
struct transport_has_send : std::false_type {};
template <class T>
struct transport_has_send<T, std::void_t<decltype(std::declval<T&>().send(std::declval<const HttpRequest&>(),
                                                                          std::declval<const BodySink&>()))>>
    : std::is_convertible<decltype(std::declval<T&>().send(std::declval<const HttpRequest&>(),
                                                          std::declval<const BodySink&>())),
                          result<HttpResponse>> {};

template <class T>
struct is_transport : transport_has_send<T> {};

template <class T>
constexpr bool check_transport() {
  static_assert(transport_has_send<T>::value,
                "modelres: this Transport type has no `result<HttpResponse> send(const HttpRequest&, const "
                "BodySink&)` (see docs/traits.md, Transport)");
  return true;
}

}  // namespace modelres
