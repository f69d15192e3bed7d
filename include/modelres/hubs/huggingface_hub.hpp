// HuggingFaceHub<Transport>: the Hugging Face Hub's HTTP API as
// huggingface_hub's snapshot_download speaks it: which commit a revision is
// at (/api/models/{id}/revision/{rev}), the recursive tree of that commit
// (/api/models/{id}/tree/{commit}?recursive=true, paged by Link rel="next"),
// and each file at /{id}/resolve/{commit}/{path}, which the hub redirects to
// its CDN for LFS and Xet files. Knows no disk layout and does no retries or
// threads (the Fetcher does).
//
// Every file is listed with a content check stricter than any client's: LFS
// and Xet files by their sha256, regular git files by their git blob id.
//
// Endpoint, read at each call: the constructor's, else $HF_ENDPOINT, else
// https://huggingface.co. Token, read at each call: the constructor's, else
// $HF_TOKEN, $HUGGING_FACE_HUB_TOKEN, the file $HF_TOKEN_PATH, the file
// $HF_HOME/token (HF_HOME: else $XDG_CACHE_HOME/huggingface, else
// ~/.cache/huggingface); none if HF_HUB_DISABLE_IMPLICIT_TOKEN is set. Sent as
// Authorization: Bearer, marked as a credential: the transport never sends it
// to another host (the CDN) and no error carries it.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../detail/fs.hpp"
#include "../detail/hub_support.hpp"
#include "../error.hpp"
#include "../hub_snapshot.hpp"
#include "../model_ref.hpp"
#include "../result.hpp"
#include "../transports/transport_traits.hpp"

namespace modelres {

struct HuggingFaceHubOptions {
  std::string endpoint;  // empty: $HF_ENDPOINT, else https://huggingface.co
  std::string token;     // empty: from the environment or the token file
  std::chrono::milliseconds metadata_timeout{60000};
  std::size_t max_tree_pages = 10000;  // a hub that pages forever is refused (1,000 files a page on the real hub)
};

namespace detail {

// The target of the rel="next" link in an RFC 8288 Link header, or empty.
// `<https://hub/api/...&cursor=x>; rel="next", <...>; rel="prev"`
inline std::string next_link(std::string_view header) {
  std::size_t pos = 0;
  while (pos < header.size()) {
    const std::size_t open = header.find('<', pos);
    if (open == std::string_view::npos) return {};
    const std::size_t close = header.find('>', open);
    if (close == std::string_view::npos) return {};
    std::size_t end = header.find(",", close);  // the next link-value (a URL cannot hold a bare '<' after '>')
    if (end == std::string_view::npos) end = header.size();
    std::string params(header.substr(close + 1, end - close - 1));
    for (auto& c : params) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    params.erase(std::remove_if(params.begin(), params.end(), [](char c) { return c == ' ' || c == '\t' || c == '"'; }),
                 params.end());
    // rel may hold several space-separated types; "next" is what matters.
    for (std::size_t r = params.find("rel="); r != std::string::npos; r = params.find("rel=", r + 4)) {
      const std::size_t value_end = params.find(';', r);
      const std::string value = params.substr(r + 4, value_end == std::string::npos ? std::string::npos : value_end - r - 4);
      if (value == "next") return std::string(header.substr(open + 1, close - open - 1));
    }
    pos = end + 1;
  }
  return {};
}

// scheme://host[:port] of a URL, lower-cased, for same-origin checks.
inline std::string origin_of(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  const std::size_t host_end = url.find_first_of("/?#", scheme_end + 3);
  std::string out(url.substr(0, host_end));
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The commit in a /api/models/{id}/revision/{rev} answer ("sha").
inline result<std::string> parse_revision_info(std::string_view body) {
  const nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_object()) return Error(errc::malformed_response, {}, "the revision answer is not a JSON object");
  const auto sha = j.find("sha");
  if (sha == j.end() || !sha->is_string() || !is_lower_hex(sha->get_ref<const std::string&>(), 40))
    return Error(errc::malformed_response, {}, "the revision answer has no 40-hex \"sha\"");
  return sha->get<std::string>();
}

// One page of a /tree answer: its files appended to `files`. Directories are
// skipped; a path that would leave the snapshot refuses the whole list.
inline result<void> parse_tree_page(std::string_view body, std::vector<HubFile>& files) {
  const nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_array()) return Error(errc::malformed_response, {}, "the tree answer is not a JSON list");
  const auto string_of = [](const nlohmann::json& o, const char* key) -> const std::string* {
    const auto it = o.find(key);
    return it != o.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
  };
  for (const nlohmann::json& entry : j) {
    if (!entry.is_object()) return Error(errc::malformed_response, {}, "a tree entry is not a JSON object");
    const std::string* type = string_of(entry, "type");
    const std::string* path = string_of(entry, "path");
    if (!type || !path) return Error(errc::malformed_response, {}, "a tree entry has no string type and path");
    if (!is_safe_relative_path(*path))
      return Error(errc::unsafe_file_list, {}, "the hub listed '" + printable(*path) + "', which would leave the snapshot; nothing was written");
    if (*type == "directory") continue;
    if (*type != "file") return Error(errc::malformed_response, {}, "tree entry " + printable(*path) + " has type " + printable(*type));
    HubFile f;
    f.path = *path;
    const auto size = entry.find("size");
    if (size == entry.end() || !size->is_number_unsigned())
      return Error(errc::malformed_response, {}, "tree entry " + printable(f.path) + " has no size");
    f.size = size->get<std::uint64_t>();
    const std::string* oid = string_of(entry, "oid");
    if (!oid || !is_lower_hex(*oid, 40))
      return Error(errc::malformed_response, {}, "tree entry " + printable(f.path) + " has no 40-hex oid");
    f.git_oid = *oid;
    if (const auto lfs = entry.find("lfs"); lfs != entry.end() && !lfs->is_null()) {
      const std::string* sha = lfs->is_object() ? string_of(*lfs, "oid") : nullptr;
      if (!sha || !is_lower_hex(*sha, 64))
        return Error(errc::malformed_response, {}, "tree entry " + printable(f.path) + " has an lfs entry without a 64-hex oid");
      f.sha256 = *sha;
      if (const auto lfs_size = lfs->find("size"); lfs_size != lfs->end() && lfs_size->is_number_unsigned() &&
                                                    lfs_size->get<std::uint64_t>() != f.size)
        return Error(errc::malformed_response, {}, "tree entry " + printable(f.path) + " lists two sizes");
    }
    if (const std::string* xet = string_of(entry, "xetHash"); xet && is_lower_hex(*xet, 64)) f.xet_hash = *xet;
    files.push_back(std::move(f));
  }
  return success();
}

}  // namespace detail

template <class Transport>
class HuggingFaceHub {
  static_assert(check_transport<Transport>());

 public:
  static constexpr std::string_view default_endpoint = "https://huggingface.co";
  static constexpr std::string_view default_revision = "main";
  using Options = HuggingFaceHubOptions;

  explicit HuggingFaceHub(Transport transport = Transport{}, Options options = {})
      : transport_(std::move(transport)), options_(std::move(options)) {}

  Transport& transport() { return transport_; }

  std::string endpoint() const {
    std::string ep = options_.endpoint.empty() ? detail::environment("HF_ENDPOINT") : options_.endpoint;
    if (ep.empty()) ep = std::string(default_endpoint);
    while (!ep.empty() && ep.back() == '/') ep.pop_back();
    return ep;
  }

  // The token in force, as huggingface_hub's get_token() finds it; empty if none.
  std::string token() const {
    if (!options_.token.empty()) return clean(options_.token);
    if (detail::environment_flag("HF_HUB_DISABLE_IMPLICIT_TOKEN")) return {};
    for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})
      if (std::string t = clean(detail::environment(name)); !t.empty()) return t;
    std::string path = detail::environment("HF_TOKEN_PATH");
    if (path.empty()) {
      std::string home = detail::environment("HF_HOME");
      if (home.empty()) {
        const std::string xdg = detail::environment("XDG_CACHE_HOME");
        home = xdg.empty() ? detail::home_directory() + "/.cache/huggingface" : xdg + "/huggingface";
      }
      path = home + "/token";
    }
    std::string expanded, bytes;
    if (!detail::expand_tilde(path, expanded) || detail::read_file(detail::expand_variables(expanded), bytes, 4096)) return {};
    return clean(bytes);
  }

  // The commit `revision` is at (empty: main), then its every file: two
  // requests, and one more per 1,000 files.
  result<HubSnapshot> snapshot(const ModelId& id, std::string_view revision) {
    MODELRES_TRY(snap, revision_info(id, revision));
    MODELRES_TRYV(list_files(id, snap));
    return snap;
  }

  // A commit names itself for good: a snapshot of it needs no revision request.
  static bool is_commit(std::string_view revision) { return detail::is_lower_hex(revision, 40); }

  // GET /api/models/{id}/revision/{rev}: the commit `revision` (empty: main)
  // is at, without files. One request.
  result<HubSnapshot> revision_info(const ModelId& id, std::string_view revision) {
    HubSnapshot snap;
    snap.endpoint = endpoint();
    snap.revision = std::string(revision.empty() ? default_revision : revision);
    MODELRES_TRY(info, get(id, snap.revision,
                           snap.endpoint + "/api/models/" + id.str() + "/revision/" + detail::quote(snap.revision, "")));
    auto commit = detail::parse_revision_info(info);
    if (!commit) return std::move(commit).error().with_id(id.str(), snap.revision);
    snap.commit = std::move(commit).value();
    return snap;
  }

  // GET /api/models/{id}/tree/{commit}?recursive=true, page by page: every
  // file of snapshot.commit into snapshot.files.
  result<void> list_files(const ModelId& id, HubSnapshot& snap) {
    if (snap.endpoint.empty()) snap.endpoint = endpoint();
    std::vector<HubFile> files;
    std::string url = snap.endpoint + "/api/models/" + id.str() + "/tree/" + snap.commit + "?recursive=true&expand=false";
    const std::string origin = detail::origin_of(snap.endpoint);
    for (std::size_t page = 0; !url.empty(); ++page) {
      if (page == options_.max_tree_pages)
        return Error(errc::malformed_response, id.str(), "the tree listing did not end after " + std::to_string(page) + " pages")
            .with_revision(snap.revision);
      std::string next;
      MODELRES_TRY(body, get(id, snap.revision, url, &next));
      auto parsed = detail::parse_tree_page(body, files);
      if (!parsed) return std::move(parsed).error().with_id(id.str(), snap.revision);
      if (!next.empty() && next.front() == '/') next = origin + next;
      // The token goes with each page: a next page elsewhere would take it there.
      if (!next.empty() && detail::origin_of(next) != origin)
        return Error(errc::malformed_response, id.str(), "the tree listing's next page is on another host, " +
                                                             detail::redact_url(detail::origin_of(next)) + "; not followed")
            .with_revision(snap.revision);
      url = std::move(next);
    }
    snap.files = std::move(files);
    return success();
  }

  // GET /{id}/resolve/{commit}/{path}: the hub redirects LFS and Xet files to
  // its CDN, where the transport sends no token.
  HttpRequest file_request(const ModelId& id, const HubSnapshot& snapshot, const HubFile& file) const {
    HttpRequest r;
    const std::string& at = snapshot.commit.empty() ? snapshot.revision : snapshot.commit;
    r.url = endpoint() + "/" + id.str() + "/resolve/" + detail::quote(at, "") + "/" + detail::quote(file.path, "/");
    r.headers = headers();
    return r;
  }

  Error file_error(const ModelId& id, const HubSnapshot& snapshot, const std::string& path, const ResponseHead& head,
                   std::string_view body) const {
    Error e = status_error(id, snapshot.revision, head, body);
    e.detail = "downloading " + detail::printable(path) + ": " + e.detail;
    return e;
  }

  // The hub's answer to a typed error: X-Error-Code first (RepoNotFound,
  // RevisionNotFound, EntryNotFound, GatedRepo), then the status, as
  // huggingface_hub's hf_raise_for_status reads them.
  Error status_error(const ModelId& id, const std::string& revision, const ResponseHead& head, std::string_view body) const {
    const std::string* code_header = head.header("x-error-code");
    const std::string code = code_header ? *code_header : std::string();
    std::string message;
    if (const std::string* m = head.header("x-error-message")) message = *m;
    const nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
    if (message.empty() && j.is_object())
      if (const auto it = j.find("error"); it != j.end() && it->is_string()) message = it->get<std::string>();
    std::string detail = "HTTP " + std::to_string(head.status);
    if (!code.empty()) detail += " " + detail::printable(code, 40);
    if (!message.empty()) detail += ": " + detail::printable(message);
    if (const std::string* rid = head.header("x-request-id")) detail += " (request id " + detail::printable(*rid, 80) + ")";

    errc e = errc::malformed_response;
    if (code == "GatedRepo") {
      e = errc::gated;
      detail += "; accept its terms at " + endpoint() + "/" + id.str() + " with the account whose token modelres sends (HF_TOKEN)";
    } else if (code == "RepoNotFound" || (head.status == 401 && message != "Invalid credentials in Authorization header")) {
      e = errc::unknown_model;
      detail += token().empty() ? "; if the model is private, set HF_TOKEN" : "; or the token has no access to it";
    } else if (code == "RevisionNotFound") {
      e = errc::unknown_revision;
    } else if (code == "EntryNotFound" || head.status == 404) {
      e = errc::unknown_model;
    } else if (head.status == 401 || head.status == 403) {
      e = errc::unauthorized;
    } else if (head.status == 429) {
      e = errc::rate_limited;
      if (const std::string* after = head.header("retry-after")) detail += "; Retry-After: " + detail::printable(*after, 40);
      if (const std::string* limit = head.header("ratelimit")) detail += "; RateLimit: " + detail::printable(*limit, 80);
    } else if (head.status >= 500) {
      e = errc::server_error;
    }
    Error out = Error(e, id.str(), std::move(detail)).with_revision(revision);
    if (head.status == 429) out.retry_after = detail::retry_after_of(head);
    return out;
  }

 private:
  // huggingface_hub's _clean_token: surrounding white space and newlines go.
  static std::string clean(std::string t) {
    t.erase(std::remove_if(t.begin(), t.end(), [](char c) { return c == '\n' || c == '\r'; }), t.end());
    const std::size_t start = t.find_first_not_of(" \t");
    if (start == std::string::npos) return {};
    return t.substr(start, t.find_last_not_of(" \t") - start + 1);
  }

  std::vector<HttpHeader> headers() const {
    std::vector<HttpHeader> h{{"X-Amzn-Trace-Id", detail::random_hex(32), false}};
    if (std::string t = token(); !t.empty()) h.push_back({"Authorization", "Bearer " + t, true});
    return h;
  }

  // A metadata GET: the body of a 200, or the typed error. `next`, if given,
  // receives the Link header's rel="next" target.
  result<std::string> get(const ModelId& id, const std::string& revision, const std::string& url, std::string* next = nullptr) {
    HttpRequest r;
    r.url = url;
    r.headers = headers();
    r.timeout = options_.metadata_timeout;
    MODELRES_TRY(answer, detail::get_metadata(transport_, r, id, revision));
    if (answer.head.status != 200) return status_error(id, revision, answer.head, answer.body);
    if (next)
      if (const std::string* link = answer.head.header("link")) *next = detail::next_link(*link);
    return std::move(answer.body);
  }

  Transport transport_;
  Options options_;
};

}  // namespace modelres
