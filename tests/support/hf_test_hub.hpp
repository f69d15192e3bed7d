// Test support: a Hugging Face hub on 127.0.0.1 speaking the routes
// huggingface_hub's snapshot_download uses (/api/models/{id}/revision/{rev},
// /api/models/{id}/tree/{commit} paged by Link rel="next", /{id}/resolve/...),
// with LFS files redirected to a CDN on a second host, 127.0.0.2, under a
// pre-signed-looking URL, as the real hub does. Errors carry X-Error-Code.
// Tests inject faults with `intercept` (hub) and `intercept_cdn`.
#pragma once

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "http_server.hpp"
#include "test_hub.hpp"

namespace testing {

inline std::string git_blob_oid(const std::string& content) {
  return digest_hex("blob " + std::to_string(content.size()) + std::string(1, '\0') + content, EVP_sha1());
}

struct HfHubFile {
  std::string path;
  std::string content;
  bool lfs = false;             // served through the CDN redirect, listed with lfs.oid = sha256
  std::string listed_sha256;    // empty: the right one (LFS only)
  std::string listed_oid;       // empty: the right git blob id
  bool xet = false;             // listed with a xetHash as well
};

struct HfHubModel {
  std::string id;
  std::string commit;                                   // what main (and every ref below) is at
  std::vector<std::string> refs{"main"};                // branches, tags, refs/pr/N that name `commit`
  std::vector<HfHubFile> files;
  std::vector<nlohmann::json> extra_entries;            // raw tree entries (hostile ones)
  bool gated = false;                                   // resolve answers 403 GatedRepo without `token`
  std::string token;                                    // if set, the API answers 401 RepoNotFound without it
};

inline std::string lfs_pointer(const std::string& content) {
  return "version https://git-lfs.github.com/spec/v1\noid sha256:" + sha256_hex(content) + "\nsize " +
         std::to_string(content.size()) + "\n";
}

class HfTestHub {
 public:
  using Interceptor = std::function<bool(const httplib::Request&, httplib::Response&)>;

  HfTestHub() : hub_("127.0.0.1"), cdn_("127.0.0.2") {
    auto& r = hub_.routes();
    r.Get(R"(/api/models/([^/]+)/([^/]+)/revision/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (intercepted(req, res)) return;
      const HfHubModel* m = find(req, res);
      if (!m) return;
      const std::string rev = req.matches[3].str();
      m = at_revision(m, rev);
      if (!m) return error(res, 404, "RevisionNotFound", "Invalid rev id: " + rev);
      nlohmann::json siblings = nlohmann::json::array();
      for (const auto& f : m->files) siblings.push_back({{"rfilename", f.path}});
      res.set_content(nlohmann::json({{"_id", "66a1"}, {"id", m->id}, {"sha", m->commit}, {"private", false},
                                      {"gated", m->gated ? nlohmann::json("manual") : nlohmann::json(false)},
                                      {"siblings", siblings}})
                          .dump(),
                      "application/json");
    });
    r.Get(R"(/api/models/([^/]+)/([^/]+)/tree/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (intercepted(req, res)) return;
      const HfHubModel* m = find(req, res);
      if (!m) return;
      m = at_revision(m, req.matches[3].str());
      if (!m || req.matches[3].str() != m->commit) return error(res, 404, "RevisionNotFound", "Invalid rev id");
      std::vector<nlohmann::json> entries = tree_entries(*m);
      const std::size_t start = req.has_param("cursor") ? std::stoul(req.get_param_value("cursor")) : 0;
      const std::size_t end = std::min(entries.size(), start + page_size);
      nlohmann::json page = nlohmann::json::array();
      for (std::size_t i = start; i < end; ++i) page.push_back(entries[i]);
      if (end < entries.size())
        res.set_header("Link", "<" + hub_.url(req.path) + "?recursive=true&expand=false&cursor=" + std::to_string(end) +
                                   ">; rel=\"next\"");
      res.set_content(page.dump(), "application/json");
    });
    r.Get(R"(/([^/]+)/([^/]+)/resolve/([^/]+)/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (intercepted(req, res)) return;
      const HfHubModel* m = find(req, res);
      if (!m) return;
      if (m->gated && req.get_header_value("Authorization") != "Bearer " + m->token)
        return error(res, m->token.empty() || !req.has_header("Authorization") ? 401 : 403, "GatedRepo",
                     "Access to model " + m->id + " is restricted. You must have access to it and be authenticated to access it. Please log in.");
      const std::string rev = req.matches[3].str();
      m = at_revision(m, rev);
      if (!m) return error(res, 404, "RevisionNotFound", "Invalid rev id: " + rev);
      res.set_header("X-Repo-Commit", m->commit);
      for (const auto& f : m->files) {
        if (f.path != req.matches[4].str()) continue;
        if (f.lfs) {
          const std::string sha = sha_of(m->commit, f.path);
          res.status = 302;
          res.set_header("Location", cdn_.url("/repos/7c/" + sha + "?X-Amz-Signature=s3cr3t&response-content-disposition=x"));
          res.set_header("X-Linked-Etag", "\"" + sha + "\"");
          res.set_header("X-Linked-Size", std::to_string(f.content.size()));
          return;
        }
        res.set_header("ETag", "\"" + git_blob_oid(f.content) + "\"");
        return serve_with_ranges(req, res, f.content);
      }
      error(res, 404, "EntryNotFound", "Entry not found");
    });
    cdn_.routes().Get(R"(/repos/7c/([0-9a-f]{64}))", [this](const httplib::Request& req, httplib::Response& res) {
      Interceptor i;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        i = cdn_interceptor_;
      }
      if (i && i(req, res)) return;
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = lfs_by_sha_.find(req.matches[1].str());
      if (it != lfs_by_sha_.end()) return serve_with_ranges(req, res, *it->second);
      res.status = 403;
      res.set_content("<Error><Code>AccessDenied</Code></Error>", "application/xml");
    });
  }

  // The servers stop first: a handler still running must not outlive the models it reads.
  ~HfTestHub() {
    hub_.stop();
    cdn_.stop();
  }
  HfTestHub(const HfTestHub&) = delete;
  HfTestHub& operator=(const HfTestHub&) = delete;

  // Adding a model again moves its refs to the new commit (a push); the old
  // commit stays served by its id, as the hub keeps history.
  void add(HfHubModel m) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string id = m.id;
    const auto old = models_.find(id);
    if (old != models_.end()) superseded_.push_back(std::move(old->second));  // moved vectors keep their buffers: lfs_by_sha_ stays valid
    HfHubModel& stored = models_[id] = std::move(m);
    // Hashed once here, not per request (a real hub stores them).
    for (const auto& f : stored.files) {
      const std::string sha = sha256_hex(f.content);
      sha_[stored.commit + "/" + f.path] = sha;
      if (f.lfs) lfs_by_sha_[sha] = &f.content;
    }
  }
  void intercept(Interceptor i) {
    std::lock_guard<std::mutex> lock(mutex_);
    interceptor_ = std::move(i);
  }
  void intercept_cdn(Interceptor i) {
    std::lock_guard<std::mutex> lock(mutex_);
    cdn_interceptor_ = std::move(i);
  }
  void start() {
    hub_.start();
    cdn_.start();
  }
  std::string endpoint() const { return hub_.url(); }
  HttpServer& hub() { return hub_; }
  HttpServer& cdn() { return cdn_; }

  std::size_t page_size = 1000;  // tree entries per page, as the real hub

  static void error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
    res.status = status;
    res.set_header("X-Error-Code", code);
    res.set_header("X-Error-Message", message);
    res.set_header("X-Request-Id", "Root=1-6a2f-hf");
    res.set_content(nlohmann::json({{"error", message}}).dump(), "application/json");
  }

 private:
  std::vector<nlohmann::json> tree_entries(const HfHubModel& m) {
    std::vector<nlohmann::json> out;
    std::vector<std::string> dirs;
    for (const auto& f : m.files) {
      for (std::size_t s = f.path.find('/'); s != std::string::npos; s = f.path.find('/', s + 1))
        if (std::find(dirs.begin(), dirs.end(), f.path.substr(0, s)) == dirs.end()) dirs.push_back(f.path.substr(0, s));
      const std::string sha = sha_of(m.commit, f.path);
      const std::string pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:" + sha + "\nsize " +
                                  std::to_string(f.content.size()) + "\n";  // lfs_pointer(), from the stored hash
      nlohmann::json e = {{"type", "file"}, {"oid", f.listed_oid.empty() ? git_blob_oid(f.lfs ? pointer : f.content) : f.listed_oid},
                          {"size", f.content.size()}, {"path", f.path}};
      if (f.lfs)
        e["lfs"] = {{"oid", f.listed_sha256.empty() ? sha : f.listed_sha256},
                    {"size", f.content.size()}, {"pointerSize", pointer.size()}};
      if (f.xet) e["xetHash"] = sha256_hex("xet:" + f.content);
      out.push_back(std::move(e));
    }
    for (const auto& d : dirs) out.push_back({{"type", "directory"}, {"oid", git_blob_oid(d)}, {"size", 0}, {"path", d}});
    for (const auto& e : m.extra_entries) out.push_back(e);
    return out;
  }
  bool intercepted(const httplib::Request& req, httplib::Response& res) {
    Interceptor i;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      i = interceptor_;
    }
    return i && i(req, res);
  }
  // The model, or an answer already given (401 RepoNotFound, as the hub answers for missing and private repos).
  const HfHubModel* find(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = models_.find(req.matches[1].str() + "/" + req.matches[2].str());
    const bool authorized = it != models_.end() && (it->second.token.empty() || it->second.gated ||
                                                    req.get_header_value("Authorization") == "Bearer " + it->second.token);
    if (authorized) return &it->second;
    if (req.has_header("Authorization") && it != models_.end()) {
      error(res, 401, "", "Invalid credentials in Authorization header");
      return nullptr;
    }
    error(res, 401, "RepoNotFound", "Repository not found");
    return nullptr;
  }

  std::string sha_of(const std::string& commit, const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    return sha_[commit + "/" + path];
  }

  // `m` (the newest) if `rev` is its commit or one of its refs, else the superseded version at commit `rev`, else null.
  const HfHubModel* at_revision(const HfHubModel* m, const std::string& rev) {
    if (rev == m->commit || std::find(m->refs.begin(), m->refs.end(), rev) != m->refs.end()) return m;
    std::lock_guard<std::mutex> lock(mutex_);
    for (const HfHubModel& old : superseded_)
      if (old.id == m->id && old.commit == rev) return &old;
    return nullptr;
  }

  HttpServer hub_, cdn_;
  std::mutex mutex_;
  std::map<std::string, HfHubModel> models_;
  std::list<HfHubModel> superseded_;                        // earlier commits of models added again
  std::map<std::string, std::string> sha_;                  // "commit/path" -> sha256
  std::map<std::string, const std::string*> lfs_by_sha_;    // what the CDN serves
  Interceptor interceptor_, cdn_interceptor_;
};

// A small model as the hub holds it: config and tokenizer in git, weights in LFS.
inline HfHubModel tiny_bert_on_hub(std::size_t weights_size = 200000) {
  HfHubModel m;
  m.id = "acme/tiny-bert";
  m.commit = "5f0a3c8e2b1d4f6a7c9e0b2d4f6a8c0e2b4d6f8a";
  m.refs = {"main", "v1.0", "refs/pr/1"};
  m.files = {{".gitattributes", "*.safetensors filter=lfs diff=lfs merge=lfs -text\n", false, "", "", false},
             {"config.json", R"({"architectures": ["BertModel"], "hidden_size": 64})", false, "", "", false},
             {"tokenizer/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n", false, "", "", false},
             {"model.safetensors", pattern_bytes(weights_size, 11), true, "", "", true}};
  return m;
}

// The etag huggingface_hub names a file's blob by: sha256 for LFS, git blob id otherwise.
inline std::string hf_etag(const HfHubFile& f) { return f.lfs ? sha256_hex(f.content) : git_blob_oid(f.content); }

// trees/<commit>.json exactly as huggingface_hub's write_tree_cache writes it
// for this model (json.dump, indent 1, keys sorted, no trailing newline).
inline std::string python_tree_json(const HfHubModel& m) {
  std::vector<const HfHubFile*> files;
  for (const auto& f : m.files) files.push_back(&f);
  std::sort(files.begin(), files.end(), [](auto* a, auto* b) { return a->path < b->path; });
  std::string out = "{\n \"format_version\": 1,\n \"files\": {";
  for (std::size_t i = 0; i < files.size(); ++i) {
    const HfHubFile& f = *files[i];
    const std::string stored = f.lfs ? lfs_pointer(f.content) : f.content;
    out += std::string(i ? "," : "") + "\n  \"" + f.path + "\": {\n   \"size\": " + std::to_string(f.content.size()) +
           ",\n   \"blob_id\": \"" + git_blob_oid(stored) + "\"";
    if (f.lfs)
      out += ",\n   \"lfs_sha256\": \"" + sha256_hex(f.content) + "\",\n   \"lfs_size\": " + std::to_string(f.content.size());
    if (f.xet) out += ",\n   \"xet_hash\": \"" + sha256_hex("xet:" + f.content) + "\"";
    out += "\n  }";
  }
  return out + "\n }\n}";
}

// The model as huggingface_hub's snapshot_download leaves it under `root`:
// blobs by etag with relative links (or, without symlinks, the files in the
// snapshot and no blobs), refs/main, and, if `tree`, trees/<commit>.json.
inline std::filesystem::path lay_out_as_python(const std::filesystem::path& root, const HfHubModel& m, bool symlinks = true,
                                               bool tree = true) {
  const auto write_file = [](const std::filesystem::path& path, const std::string& bytes) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
  };
  std::string folder = "models--" + m.id;
  folder.replace(folder.find('/'), 1, "--");
  const std::filesystem::path repo = root / folder;
  const std::filesystem::path snapshot = repo / "snapshots" / m.commit;
  for (const auto& f : m.files) {
    const std::filesystem::path entry = snapshot / f.path;
    if (!symlinks) {
      write_file(entry, f.content);
      continue;
    }
    write_file(repo / "blobs" / hf_etag(f), f.content);
    std::filesystem::create_directories(entry.parent_path());
    std::string up = "../../";
    for (char c : f.path) up += c == '/' ? "../" : "";
    std::filesystem::create_symlink(up + "blobs/" + hf_etag(f), entry);
  }
  write_file(repo / "refs" / "main", m.commit);
  if (tree) write_file(repo / "trees" / (m.commit + ".json"), python_tree_json(m));
  return snapshot;
}

}  // namespace testing
