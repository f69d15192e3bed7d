// Error codes and the error value every modelres operation returns on failure.
//
// `errc` is registered with std::error_code in its own category, so callers can
// compare against it (`err == errc::not_cached`) or pass it anywhere a
// std::error_code is taken. `Error` carries the code plus the context a person
// needs to fix the problem: the reference asked for, the revision, every place
// looked at and why it did not qualify, and the underlying system error.
// docs/errors.md has a page per code: what happened and what to do.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace modelres {

// Values are stable: they are part of the CLI's --json output.
enum class errc {
  invalid_model_id = 1,       // the text is not a valid owner/name id
  invalid_revision = 2,       // the revision is not a valid branch or tag name
  unsupported_reference = 3,  // no policy in the composition takes this kind of reference
  path_not_found = 4,         // a path reference that does not exist
  not_a_directory = 5,        // a path reference that exists but is not a directory
  permission_denied = 6,      // a path or cache directory that cannot be read
  not_cached = 7,             // no cache layout holds the model
  incomplete = 8,             // the cache records files that are not on disk, or a download was interrupted
  revision_mismatch = 9,      // the cache holds another revision than the one asked for
  corrupt_metadata = 10,      // cache metadata (.msc, .mdl, .mv) is unreadable or malformed
  unsafe_metadata = 11,       // a pickle holds code-executing opcodes (GLOBAL, REDUCE, ...)
  io_error = 12,              // any other system error; Error::cause says which
  // Talking to a hub.
  hub_unreachable = 13,       // name resolution, connection or TLS handshake failed
  timed_out = 14,             // the hub stopped answering (request or stall timeout)
  transfer_interrupted = 15,  // the connection broke in the middle of a response
  cancelled = 16,             // the caller asked to stop
  redirect_refused = 17,      // a redirect to plain http from https, or too many redirects
  // What a hub answered.
  unknown_model = 18,         // the hub has no such model (or hides it)
  unknown_revision = 19,      // the model has no such branch or tag
  unauthorized = 20,          // 401/403: a token is missing, invalid, or lacks access
  rate_limited = 21,          // 429; Error::detail has Retry-After
  server_error = 22,          // 5xx, or an envelope that reports failure; status and request id in detail
  malformed_response = 23,    // not the JSON the protocol promises
  unsafe_file_list = 24,      // the hub listed a path that would leave the model directory or overwrite its metadata
  // Downloading.
  checksum_mismatch = 25,     // the bytes received do not hash to the Sha256 (or size) the hub listed
  disk_full = 26,             // no space (or quota) left where the cache is written
  gated = 27,                 // the model's terms must be accepted on the hub, by the account whose token is sent
  // Lock files (lock_file.hpp).
  not_in_lock = 28,           // the lock file has no entry for this model
  lock_mismatch = 29,         // the copy, or the hub's revision, holds other files than the lock records
};

class error_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "modelres"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::invalid_model_id: return "invalid model id";
      case errc::invalid_revision: return "invalid revision";
      case errc::unsupported_reference: return "no policy accepts this kind of reference";
      case errc::path_not_found: return "path not found";
      case errc::not_a_directory: return "not a directory";
      case errc::permission_denied: return "permission denied";
      case errc::not_cached: return "model not cached";
      case errc::incomplete: return "cached model is incomplete";
      case errc::revision_mismatch: return "cached revision differs from the one asked for";
      case errc::corrupt_metadata: return "corrupt cache metadata";
      case errc::unsafe_metadata: return "cache metadata contains executable pickle opcodes";
      case errc::io_error: return "I/O error";
      case errc::hub_unreachable: return "hub unreachable";
      case errc::timed_out: return "hub timed out";
      case errc::transfer_interrupted: return "transfer interrupted";
      case errc::cancelled: return "cancelled";
      case errc::redirect_refused: return "redirect refused";
      case errc::unknown_model: return "unknown model";
      case errc::unknown_revision: return "unknown revision";
      case errc::unauthorized: return "unauthorized";
      case errc::rate_limited: return "rate limited";
      case errc::server_error: return "hub server error";
      case errc::malformed_response: return "malformed hub response";
      case errc::unsafe_file_list: return "hub listed an unsafe file path";
      case errc::checksum_mismatch: return "downloaded file does not match its checksum";
      case errc::disk_full: return "disk full";
      case errc::gated: return "gated model: its terms must be accepted on the hub";
      case errc::not_in_lock: return "model not in the lock file";
      case errc::lock_mismatch: return "files differ from the lock file";
    }
    return "unknown modelres error";
  }
};

inline const std::error_category& error_category() noexcept {
  static const error_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

// The code's enumerator name ("not_cached"), for scripts and logs.
inline const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::invalid_model_id: return "invalid_model_id";
    case errc::invalid_revision: return "invalid_revision";
    case errc::unsupported_reference: return "unsupported_reference";
    case errc::path_not_found: return "path_not_found";
    case errc::not_a_directory: return "not_a_directory";
    case errc::permission_denied: return "permission_denied";
    case errc::not_cached: return "not_cached";
    case errc::incomplete: return "incomplete";
    case errc::revision_mismatch: return "revision_mismatch";
    case errc::corrupt_metadata: return "corrupt_metadata";
    case errc::unsafe_metadata: return "unsafe_metadata";
    case errc::io_error: return "io_error";
    case errc::hub_unreachable: return "hub_unreachable";
    case errc::timed_out: return "timed_out";
    case errc::transfer_interrupted: return "transfer_interrupted";
    case errc::cancelled: return "cancelled";
    case errc::redirect_refused: return "redirect_refused";
    case errc::unknown_model: return "unknown_model";
    case errc::unknown_revision: return "unknown_revision";
    case errc::unauthorized: return "unauthorized";
    case errc::rate_limited: return "rate_limited";
    case errc::server_error: return "server_error";
    case errc::malformed_response: return "malformed_response";
    case errc::unsafe_file_list: return "unsafe_file_list";
    case errc::checksum_mismatch: return "checksum_mismatch";
    case errc::disk_full: return "disk_full";
    case errc::gated: return "gated";
    case errc::not_in_lock: return "not_in_lock";
    case errc::lock_mismatch: return "lock_mismatch";
  }
  return "unknown";
}

}  // namespace modelres

namespace std {
template <>
struct is_error_code_enum<modelres::errc> : true_type {};
}  // namespace std

namespace modelres {

// One place a resolver looked, and why it did not serve the model from there.
struct Probe {
  std::string path;
  std::string verdict;
};

// The error value. Default-constructible because Boost 1.74's Outcome requires it.
struct Error {
  std::error_code code;
  std::string reference;          // the model id or path as given
  std::string revision;           // the revision asked for, empty if none
  std::vector<Probe> looked_at;   // every place looked at, in order
  std::string detail;             // what exactly was wrong (missing files, bad opcode, ...)
  std::error_code cause;          // the underlying system error, if any
  // rate_limited: how long the hub asked to wait (Retry-After, or its
  // RateLimit header's reset); zero if it did not say.
  std::chrono::milliseconds retry_after{0};

  Error() = default;
  Error(errc c, std::string ref, std::string why = {})
      : code(c), reference(std::move(ref)), detail(std::move(why)) {}

  Error&& with_revision(std::string rev) && {
    revision = std::move(rev);
    return std::move(*this);
  }
  Error&& with_cause(std::error_code ec) && {
    cause = ec;
    return std::move(*this);
  }
  // Fills in the model and revision where a lower layer left them empty.
  Error&& with_id(std::string ref, std::string_view rev) && {
    if (reference.empty()) reference = std::move(ref);
    if (revision.empty()) revision = std::string(rev);
    return std::move(*this);
  }
  // Names the file a detail is about ("/x/.msc: pickle byte 7: ...").
  Error&& in_file(const std::string& path) && {
    detail = detail.empty() ? path : path + ": " + detail;
    return std::move(*this);
  }
  Error&& with_probes(std::vector<Probe> probes) && {
    looked_at = std::move(probes);
    return std::move(*this);
  }

  // The whole error in plain words, one fact per line: what a person reads.
  std::string message() const {
    std::string out = code.message();
    if (!reference.empty()) out += ": " + reference;
    if (!revision.empty()) out += " (revision " + revision + ")";
    if (!detail.empty()) out += "\n  " + detail;
    if (cause) out += "\n  cause: " + cause.message();
    for (const Probe& p : looked_at) out += "\n  looked at " + p.path + ": " + p.verdict;
    return out;
  }
};

// Outcome finds the error_code of an Error through this ADL hook.
inline const std::error_code& make_error_code(const Error& e) noexcept { return e.code; }

inline bool operator==(const Error& e, errc c) noexcept { return e.code == c; }
inline bool operator!=(const Error& e, errc c) noexcept { return !(e == c); }

}  // namespace modelres
