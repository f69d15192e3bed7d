// CurlTransport: the default Transport, on libcurl. Link modelres::curl.
//
// - TLS verification is on. Extra CAs: CurlOptions::ca_bundle, else the
//   SSL_CERT_FILE / SSL_CERT_DIR environment. Turning verification off takes
//   CurlOptions::insecure_skip_tls_verify, and says so on stderr at each request.
// - Proxies: HTTP_PROXY / http_proxy, HTTPS_PROXY / https_proxy, ALL_PROXY,
//   NO_PROXY / no_proxy (libcurl's reading, plus the upper-case HTTP_PROXY it skips).
// - Redirects are followed here, not by libcurl, so that one place enforces:
//   never from https to http, at most `max_redirects`, and credential headers
//   only while the host (scheme, name, port) is the one first asked.
// - One handle per transport: connections are reused across requests. Not
//   thread-safe; give each thread its own.
// - Errors carry the URL without its query (pre-signed URLs put secrets there)
//   and never a header value.
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include "../error.hpp"
#include "../result.hpp"
#include "../version.hpp"
#include "../detail/fs.hpp"
#include "transport_traits.hpp"

namespace modelres {

struct CurlOptions {
  std::chrono::milliseconds connect_timeout{10000};
  std::string ca_bundle;                 // a PEM file of extra trusted CAs
  bool insecure_skip_tls_verify = false; // accept any certificate: only for a known MITM proxy
  int max_redirects = 10;
  std::string user_agent = std::string("modelres/") + MODELRES_VERSION_STRING;
};

namespace detail {

struct UrlParts {
  std::string scheme, host, port, full;
};

// Resolves `target` (absolute or relative) against `base` with libcurl's URL parser.
inline bool resolve_url(const std::string& base, const std::string& target, UrlParts& out) {
  CURLU* u = curl_url();
  if (!u) return false;
  bool ok = curl_url_set(u, CURLUPART_URL, base.c_str(), 0) == CURLUE_OK &&
            (target.empty() || curl_url_set(u, CURLUPART_URL, target.c_str(), 0) == CURLUE_OK);
  const auto get = [&](CURLUPart part, std::string& into, unsigned flags) {
    char* v = nullptr;
    if (curl_url_get(u, part, &v, flags) != CURLUE_OK) return false;
    into = v;
    curl_free(v);
    return true;
  };
  ok = ok && get(CURLUPART_URL, out.full, 0) && get(CURLUPART_SCHEME, out.scheme, 0) &&
       get(CURLUPART_HOST, out.host, 0) && get(CURLUPART_PORT, out.port, CURLU_DEFAULT_PORT);
  curl_url_cleanup(u);
  for (auto& c : out.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto& c : out.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ok;
}

inline void curl_global_once() {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  (void)initialised;
}

}  // namespace detail

class CurlTransport {
 public:
  explicit CurlTransport(CurlOptions options = {}) : options_(std::move(options)) {
    detail::curl_global_once();
    handle_ = curl_easy_init();
  }
  ~CurlTransport() {
    if (handle_) curl_easy_cleanup(handle_);
  }
  CurlTransport(CurlTransport&& other) noexcept : options_(std::move(other.options_)), handle_(other.handle_) {
    other.handle_ = nullptr;
  }
  CurlTransport& operator=(CurlTransport&& other) noexcept {
    std::swap(options_, other.options_);
    std::swap(handle_, other.handle_);
    return *this;
  }
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  const CurlOptions& options() const { return options_; }

  result<HttpResponse> send(const HttpRequest& request, const BodySink& sink) {
    if (!handle_) return Error(errc::io_error, detail::redact_url(request.url), "curl_easy_init failed");
    detail::UrlParts origin;
    if (!detail::resolve_url(request.url, {}, origin) || (origin.scheme != "http" && origin.scheme != "https"))
      return Error(errc::hub_unreachable, detail::redact_url(request.url), "not an http or https URL");

    HttpResponse response;
    std::string url = origin.full;
    for (int hop = 0;; ++hop) {
      detail::UrlParts here;
      detail::resolve_url(url, {}, here);
      const bool same_host = here.scheme == origin.scheme && here.host == origin.host && here.port == origin.port;
      Exchange ex;
      MODELRES_TRYV(perform(request, url, here.scheme, same_host, sink, ex));
      response.status = ex.head.status;
      response.headers = std::move(ex.head.headers);
      response.url = url;
      const bool redirect = ex.head.status == 301 || ex.head.status == 302 || ex.head.status == 303 ||
                            ex.head.status == 307 || ex.head.status == 308;
      if (!redirect || ex.location.empty()) return response;

      detail::UrlParts next;
      if (!detail::resolve_url(url, ex.location, next))
        return Error(errc::redirect_refused, detail::redact_url(request.url),
                     "unparsable redirect target from " + detail::redact_url(url));
      if (next.scheme != "http" && next.scheme != "https")
        return Error(errc::redirect_refused, detail::redact_url(request.url),
                     "redirect to a " + next.scheme + " URL from " + detail::redact_url(url));
      if (here.scheme == "https" && next.scheme == "http")
        return Error(errc::redirect_refused, detail::redact_url(request.url),
                     "redirect from https to plain http (" + detail::redact_url(next.full) + ") refused");
      if (hop + 1 > options_.max_redirects)
        return Error(errc::redirect_refused, detail::redact_url(request.url),
                     "more than " + std::to_string(options_.max_redirects) + " redirects");
      response.redirects.push_back(next.full);
      url = next.full;
    }
  }

 private:
  struct Exchange {
    ResponseHead head;
    std::string location;
    const BodySink* sink = nullptr;
    const HttpRequest* request = nullptr;
    CURL* handle = nullptr;
    bool head_known = false;
    bool cancelled = false;
    bool stalled = false;
    bool is_redirect = false;
    curl_off_t received = 0;
    std::chrono::steady_clock::time_point start, last_byte;
  };

  static size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto& ex = *static_cast<Exchange*>(user);
    std::string_view line(data, size * n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.substr(0, 5) == "HTTP/") {  // a new response (after 100 Continue, or a proxy's CONNECT)
      ex.head.headers.clear();
      ex.location.clear();
      return size * n;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return size * n;
    std::string name(line.substr(0, colon));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    if (name == "location") ex.location = std::string(value);
    ex.head.headers.emplace_back(std::move(name), std::string(value));
    return size * n;
  }

  static void learn_status(Exchange& ex) {
    if (ex.head_known) return;
    long status = 0;
    curl_easy_getinfo(ex.handle, CURLINFO_RESPONSE_CODE, &status);
    ex.head.status = static_cast<int>(status);
    ex.is_redirect = !ex.location.empty() && status >= 300 && status < 400;
    ex.head_known = true;
  }

  static size_t on_body(char* data, size_t size, size_t n, void* user) {
    auto& ex = *static_cast<Exchange*>(user);
    learn_status(ex);
    if (ex.is_redirect) return size * n;  // a redirect's body is not the answer
    if (!(*ex.sink)(ex.head, std::string_view(data, size * n))) {
      ex.cancelled = true;
      return 0;
    }
    return size * n;
  }

  // Called by libcurl at least once a second: cancellation, and the first-byte
  // and stall timeouts measured from the last byte seen (libcurl's low-speed
  // average would let a stall go unnoticed for seconds).
  static int on_progress(void* user, curl_off_t, curl_off_t downloaded, curl_off_t, curl_off_t) {
    auto& ex = *static_cast<Exchange*>(user);
    const HttpRequest& r = *ex.request;
    if (r.cancel && r.cancel->load(std::memory_order_relaxed)) {
      ex.cancelled = true;
      return 1;
    }
    const auto now = std::chrono::steady_clock::now();
    if (downloaded > ex.received) {
      ex.received = downloaded;
      ex.last_byte = now;
      return 0;
    }
    const bool before_body = ex.received == 0;
    const auto limit = before_body ? r.first_byte_timeout : r.stall_timeout;
    if (limit.count() > 0 && now - (before_body ? ex.start : ex.last_byte) > limit) {
      ex.stalled = true;
      return 1;
    }
    return 0;
  }

  result<void> perform(const HttpRequest& request, const std::string& url, const std::string& scheme,
                       bool send_credentials, const BodySink& sink, Exchange& ex) {
    CURL* h = handle_;
    curl_easy_reset(h);  // options only: live connections are kept for reuse
    ex.sink = &sink;
    ex.request = &request;
    ex.handle = h;
    char error_text[CURL_ERROR_SIZE] = {0};

    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_text);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    if (request.timeout.count() > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    if (request.method == HttpRequest::Method::head) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    std::string range;
    if (request.resume_from > 0 || request.range_length > 0) {
      range = std::to_string(request.resume_from) + "-";
      if (request.range_length > 0) range += std::to_string(request.resume_from + request.range_length - 1);
      curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
    }

    // TLS: verification on unless turned off by name.
    if (options_.insecure_skip_tls_verify) {
      std::fprintf(stderr, "modelres: WARNING: TLS certificate verification is OFF for %s\n",
                   detail::redact_url(url).c_str());
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    const std::string cert_file = !options_.ca_bundle.empty() ? options_.ca_bundle : detail::environment("SSL_CERT_FILE");
    const std::string cert_dir = detail::environment("SSL_CERT_DIR");
    if (!cert_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, cert_file.c_str());
    if (!cert_dir.empty()) curl_easy_setopt(h, CURLOPT_CAPATH, cert_dir.c_str());

    // libcurl reads only lower-case http_proxy (the "httpoxy" rule, for CGI);
    // users set HTTP_PROXY too, and a library is no CGI script.
    if (scheme == "http" && detail::environment("http_proxy").empty()) {
      const std::string upper = detail::environment("HTTP_PROXY");
      if (!upper.empty()) curl_easy_setopt(h, CURLOPT_PROXY, upper.c_str());
    }
    curl_slist* headers = nullptr;
    for (const HttpHeader& hd : request.headers) {
      if (hd.credential && !send_credentials) continue;
      headers = curl_slist_append(headers, (hd.name + ": " + hd.value).c_str());
    }
    if (headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

    // Larger reads: fewer callbacks and writes for multi-GB files (libcurl's default is 16 KiB).
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &CurlTransport::on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &ex);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &CurlTransport::on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ex);
    ex.start = ex.last_byte = std::chrono::steady_clock::now();
    if (request.cancel || request.first_byte_timeout.count() > 0 || request.stall_timeout.count() > 0) {
      curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &CurlTransport::on_progress);
      curl_easy_setopt(h, CURLOPT_XFERINFODATA, &ex);
    }

    const CURLcode rc = curl_easy_perform(h);
    learn_status(ex);
    curl_slist_free_all(headers);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    if (rc == CURLE_OK) return success();

    const std::string where = detail::redact_url(url);
    std::string why = error_text[0] ? error_text : curl_easy_strerror(rc);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    long connected = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &connected);
    switch (rc) {
      case CURLE_ABORTED_BY_CALLBACK:
      case CURLE_WRITE_ERROR:
        if (ex.stalled)
          return Error(errc::timed_out, where,
                       ex.received == 0 ? "no response within the first-byte timeout"
                                        : "no data for the stall timeout after " + std::to_string(ex.received) + " bytes");
        if (ex.cancelled) return Error(errc::cancelled, where, "cancelled");
        return Error(errc::io_error, where, why);
      case CURLE_OPERATION_TIMEDOUT:
        // Before any response: the connection never came up.
        if (connected == 0 && !ex.head_known) return Error(errc::hub_unreachable, where, why);
        return Error(errc::timed_out, where, why);
      case CURLE_PARTIAL_FILE:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
        return Error(errc::transfer_interrupted, where, why);
      default:
        return Error(errc::hub_unreachable, where, why);
    }
  }

  CurlOptions options_;
  CURL* handle_ = nullptr;
};

}  // namespace modelres
