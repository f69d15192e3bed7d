// What every hub protocol needs besides its own URLs and JSON: percent
// encoding as the Python clients do it, request ids, and a metadata GET that
// collects a bounded body and names the model in a transport error.
#pragma once

#include <chrono>
#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <utility>

#include "../error.hpp"
#include "../model_ref.hpp"
#include "../result.hpp"
#include "../transports/transport_traits.hpp"

namespace modelres::detail {

// Python's urllib.parse.quote(s, safe=SAFE): what huggingface_hub does to
// revisions (safe "") and file paths (safe "/").
inline std::string quote(std::string_view s, std::string_view safe) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
        c == '-' || c == '~' || safe.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// Python's urllib.parse.quote_plus: what the ModelScope client does to Revision and FilePath.
inline std::string quote_plus(std::string_view s) {
  std::string out;
  for (const char c : quote(s, " "))
    out += c == ' ' ? '+' : c;
  return out;
}

inline std::string random_hex(std::size_t n) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char hex[] = "0123456789abcdef";
  std::string out(n, '0');
  for (auto& c : out) c = hex[rng() & 15];
  return out;
}

// A metadata answer: its head and its body (at most max_body bytes).
struct MetadataAnswer {
  HttpResponse head;
  std::string body;
};

// Sends a metadata request. A transport failure names the model and revision
// (the redacted URL goes to the detail); a body over max_body is malformed.
template <class Transport>
result<MetadataAnswer> get_metadata(Transport& transport, const HttpRequest& request, const ModelId& id,
                                    const std::string& revision, std::size_t max_body = 256u << 20) {
  MetadataAnswer answer;
  bool too_big = false;
  auto response = transport.send(request, [&](const ResponseHead&, std::string_view chunk) {
    if (answer.body.size() + chunk.size() > max_body) return !(too_big = true);
    answer.body.append(chunk);
    return true;
  });
  if (!response) {
    if (too_big)
      return Error(errc::malformed_response, id.str(), "the answer from " + redact_url(request.url) + " is larger than " +
                                                            std::to_string(max_body >> 20) + " MiB")
          .with_revision(revision);
    Error e = std::move(response).error();
    e.detail = e.reference + ": " + e.detail;
    e.reference = id.str();
    return std::move(e).with_revision(revision);
  }
  answer.head = std::move(response).value();
  return answer;
}

// Retry-After in seconds; else the IETF RateLimit header's reset, `t=N`
// (the Hugging Face hub sends `"api";r=0;t=55`), plus a second, as huggingface_hub waits.
inline std::chrono::milliseconds retry_after_of(const ResponseHead& head) {
  const auto seconds = [](std::string_view v) -> long long {
    if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string_view::npos) return -1;
    return std::stoll(std::string(v));
  };
  if (const std::string* v = head.header("retry-after")) {
    const long long s = seconds(*v);
    return s < 0 ? std::chrono::milliseconds(0) : std::chrono::seconds(s);
  }
  if (const std::string* limit = head.header("ratelimit")) {
    const std::size_t t = limit->find("t=");
    if (t != std::string::npos && (t == 0 || (*limit)[t - 1] == ';' || (*limit)[t - 1] == ' ')) {
      const std::string_view rest = std::string_view(*limit).substr(t + 2);
      const long long s = seconds(rest.substr(0, rest.find_first_of(";, ")));
      if (s >= 0) return std::chrono::seconds(s + 1);
    }
  }
  return {};
}

}  // namespace modelres::detail
