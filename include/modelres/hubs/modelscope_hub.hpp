// ModelScopeHub<Transport>: the ModelScope hub's HTTP API (/api/v1), as the
// Python client speaks it: which revision a request means, the recursive file
// list with per-file Sha256, and the URL of each file. Knows no disk layout and
// does no retries or threads (the Fetcher does).
//
// Endpoint, read at each call: the constructor's, else $MODELSCOPE_ENDPOINT (a
// URL), else $MODELSCOPE_DOMAIN (a host; https is assumed), else
// https://www.modelscope.cn. Token, read at each call: the constructor's, else
// $MODELSCOPE_API_TOKEN; sent as the client sends it (Authorization: Bearer
// and the m_session_id cookie), marked as a credential so the transport never
// sends it to another host and no error carries it.
#pragma once

#include <nlohmann/json.hpp>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <random>
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

struct ModelScopeHubOptions {
  std::string endpoint;  // empty: from the environment
  std::string token;     // empty: $MODELSCOPE_API_TOKEN
  std::chrono::milliseconds metadata_timeout{60000};
};

template <class Transport>
class ModelScopeHub {
  static_assert(check_transport<Transport>());

 public:
  static constexpr std::string_view default_endpoint = "https://www.modelscope.cn";
  static constexpr std::string_view default_revision = "master";
  using Options = ModelScopeHubOptions;

  explicit ModelScopeHub(Transport transport = Transport{}, ModelScopeHubOptions options = {})
      : transport_(std::move(transport)), options_(std::move(options)) {}

  Transport& transport() { return transport_; }

  std::string endpoint() const {
    std::string ep = options_.endpoint;
    if (ep.empty()) ep = detail::environment("MODELSCOPE_ENDPOINT");
    if (ep.empty()) {
      ep = detail::environment("MODELSCOPE_DOMAIN");
      if (!ep.empty() && ep.find("://") == std::string::npos) ep = "https://" + ep;
    }
    if (ep.empty()) ep = std::string(default_endpoint);
    while (!ep.empty() && ep.back() == '/') ep.pop_back();
    return ep;
  }

  // The revision a request means and its file list, in one request, as the
  // newest client asks: the list names each file's commit, all a check of
  // the cache needs. `revision` empty means master (the client's default
  // since 1.33). A list the hub refuses is explained through /revisions: no
  // such model, or which revisions there are.
  result<HubSnapshot> snapshot(const ModelId& id, std::string_view revision) {
    HubSnapshot snap;
    snap.endpoint = endpoint();
    snap.revision = std::string(revision.empty() ? default_revision : revision);
    auto files = list_files(id, snap.revision);
    if (!files) {
      const Error& e = files.error();
      if (e == errc::unknown_model || e == errc::malformed_response) {
        auto resolved = resolve_revision(id, snap.revision);
        if (!resolved && resolved.error() != errc::unknown_model) return std::move(resolved).error();
      }
      return std::move(files).error();
    }
    snap.files = std::move(files).value();
    return snap;
  }

  // What a commit records beyond the file list: when the revision was made
  // (.mv's CreatedAt), from /revisions. Asked only when something is written.
  // A hub that answers only what the newest client asks (no /revisions: 404)
  // leaves it 0, as the newest client, which writes no .mv, would.
  result<void> revision_details(const ModelId& id, HubSnapshot& snap) {
    auto resolved = resolve_revision(id, snap.revision);
    if (!resolved) {
      if (resolved.error() == errc::unknown_model) return success();
      return std::move(resolved).error();
    }
    snap.created_at = resolved.value().second;
    return success();
  }

  // GET /api/v1/models/{id}/revisions: the branch or tag, and when it was made.
  result<std::pair<std::string, std::int64_t>> resolve_revision(const ModelId& id, std::string_view revision) {
    const std::string wanted(revision.empty() ? default_revision : revision);
    MODELRES_TRY(data, get_json(id, wanted, model_url(id) + "/revisions"));
    const nlohmann::json* map = member(data, "RevisionMap");
    if (!map || !map->is_object()) return malformed(id, wanted, "no Data.RevisionMap in the revisions answer");
    std::vector<std::string> known;
    for (const char* kind : {"Branches", "Tags"}) {
      const nlohmann::json* list = member(*map, kind);
      if (!list || list->is_null()) continue;
      if (!list->is_array()) return malformed(id, wanted, std::string("Data.RevisionMap.") + kind + " is not a list");
      for (const auto& entry : *list) {
        const nlohmann::json* name = member(entry, "Revision");
        if (!name || !name->is_string()) return malformed(id, wanted, "a revision entry has no string Revision");
        const std::string n = name->template get<std::string>();
        if (n == wanted) {
          const nlohmann::json* created = member(entry, "CreatedAt");
          return std::make_pair(n, created && created->is_number_integer() ? created->template get<std::int64_t>() : 0);
        }
        known.push_back(n);
      }
    }
    std::string all;
    for (const auto& k : known) all += (all.empty() ? "" : ", ") + k;
    return Error(errc::unknown_revision, id.str(), "the hub knows " + (all.empty() ? std::string("no revisions") : all))
        .with_revision(wanted);
  }

  // GET /api/v1/models/{id}/repo/files?Revision=..&Recursive=True: every blob.
  result<std::vector<HubFile>> list_files(const ModelId& id, const std::string& revision) {
    MODELRES_TRY(data, get_json(id, revision,
                                model_url(id) + "/repo/files?Revision=" + detail::quote_plus(revision) + "&Recursive=True"));
    const nlohmann::json* files = member(data, "Files");
    if (!files || !files->is_array()) return malformed(id, revision, "no Data.Files list in the file list answer");
    std::vector<HubFile> out;
    for (const auto& f : *files) {
      const nlohmann::json* path = member(f, "Path");
      const nlohmann::json* type = member(f, "Type");
      if (!path || !path->is_string()) return malformed(id, revision, "a file entry has no string Path");
      if (type && type->is_string() && type->template get<std::string>() == "tree") continue;
      HubFile hf;
      hf.path = path->template get<std::string>();
      if (!detail::is_safe_relative_path(hf.path))
        return Error(errc::unsafe_file_list, id.str(),
                     "the hub listed '" + detail::printable(hf.path) + "', which would leave the model directory; nothing was written")
            .with_revision(revision);
      // The client drops these by name (get_model_files).
      const std::string name = hf.path.substr(hf.path.rfind('/') + 1);
      if (name == ".gitignore" || name == ".gitattributes") continue;
      if (const auto* size = member(f, "Size"); size && size->is_number_unsigned())
        hf.size = size->template get<std::uint64_t>();
      // null or "" means no hash listed: the size alone is checked.
      if (const auto* sha = member(f, "Sha256"); sha && sha->is_string() && !sha->template get_ref<const std::string&>().empty()) {
        hf.sha256 = sha->template get<std::string>();
        for (auto& c : hf.sha256) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (!detail::is_lower_hex(hf.sha256, 64))
          return malformed(id, revision, "file " + detail::printable(hf.path) + " has a Sha256 that is not 64 hex digits");
      }
      if (const auto* rev = member(f, "Revision"); rev && rev->is_string()) hf.revision = rev->template get<std::string>();
      out.push_back(std::move(hf));
    }
    return out;
  }

  // The request that fetches one file: the client's URL, with the credentials.
  HttpRequest file_request(const ModelId& id, const HubSnapshot& snapshot, const HubFile& file) const {
    HttpRequest r;
    r.url = model_url(id) + "/repo?Revision=" + detail::quote_plus(snapshot.revision) +
            "&FilePath=" + detail::quote_plus(file.path);
    r.headers = base_headers();
    return r;
  }

  // The typed error for a file download that did not answer 200/206.
  Error file_error(const ModelId& id, const HubSnapshot& snapshot, const std::string& path, const ResponseHead& head,
                   std::string_view body) const {
    Error e = status_error(id, snapshot.revision, head, body);
    e.detail = "downloading " + detail::printable(path) + ": " + e.detail;
    return e;
  }

 private:
  std::string model_url(const ModelId& id) const { return endpoint() + "/api/v1/models/" + id.owner + "/" + id.name; }

  std::vector<HttpHeader> base_headers() const {
    std::vector<HttpHeader> h{{"X-Request-ID", detail::random_hex(32), false}};
    std::string token = options_.token.empty() ? detail::environment("MODELSCOPE_API_TOKEN") : options_.token;
    if (!token.empty()) {
      h.push_back({"Authorization", "Bearer " + token, true});
      h.push_back({"Cookie", "m_session_id=" + token, true});
    }
    return h;
  }

  static const nlohmann::json* member(const nlohmann::json& j, const char* key) {
    if (!j.is_object()) return nullptr;
    const auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
  }

  static Error malformed(const ModelId& id, std::string_view revision, std::string why) {
    return Error(errc::malformed_response, id.str(), std::move(why)).with_revision(std::string(revision));
  }

  // Status and envelope to a typed error; `body` may be the hub's JSON envelope.
  Error status_error(const ModelId& id, std::string_view revision, const ResponseHead& head, std::string_view body) const {
    std::string message, request_id;
    const nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_object()) {
      for (const char* k : {"Message", "message", "msg", "error", "detail"})
        if (const auto* m = member(j, k); m && m->is_string() && message.empty()) message = m->template get<std::string>();
      for (const char* k : {"RequestId", "request_id"})
        if (const auto* r = member(j, k); r && r->is_string() && request_id.empty()) request_id = r->template get<std::string>();
    }
    if (request_id.empty())
      if (const std::string* r = head.header("x-request-id")) request_id = *r;
    std::string detail = "HTTP " + std::to_string(head.status);
    if (!message.empty()) detail += ": " + detail::printable(message);
    if (!request_id.empty()) detail += " (request id " + detail::printable(request_id) + ")";
    errc code = errc::server_error;
    if (head.status == 404) code = errc::unknown_model;
    else if (head.status == 401 || head.status == 403) code = errc::unauthorized;
    else if (head.status == 429) {
      code = errc::rate_limited;
      if (const std::string* after = head.header("retry-after")) detail += "; Retry-After: " + detail::printable(*after);
    } else if (head.status >= 400 && head.status < 500) code = errc::malformed_response;
    Error out = Error(code, id.str(), detail).with_revision(std::string(revision));
    if (head.status == 429) out.retry_after = detail::retry_after_of(head);
    return out;
  }

  // A metadata GET: the envelope's Data, or a typed error.
  result<nlohmann::json> get_json(const ModelId& id, const std::string& revision, const std::string& url) {
    HttpRequest r;
    r.url = url;
    r.headers = base_headers();
    r.timeout = options_.metadata_timeout;
    MODELRES_TRY(answer, detail::get_metadata(transport_, r, id, revision));
    const HttpResponse& head = answer.head;
    const std::string& body = answer.body;
    if (head.status != 200) return status_error(id, revision, head, body);
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return malformed(id, revision, "the answer from " + detail::redact_url(url) + " is not a JSON object");
    const nlohmann::json* code = member(j, "Code");
    const nlohmann::json* ok = member(j, "Success");
    if ((code && code->is_number() && code->template get<long long>() != 200) || (ok && ok->is_boolean() && !ok->template get<bool>())) {
      ResponseHead failed = head;
      failed.status = code && code->is_number_integer() && code->template get<long long>() >= 400 &&
                              code->template get<long long>() < 600
                          ? static_cast<int>(code->template get<long long>())
                          : 500;
      return status_error(id, revision, failed, body);
    }
    nlohmann::json* data = nullptr;
    if (auto it = j.find("Data"); it != j.end()) data = &*it;
    return data ? std::move(*data) : std::move(j);
  }

  Transport transport_;
  ModelScopeHubOptions options_;
};

}  // namespace modelres
