// Test support: a ModelScope hub on 127.0.0.1 speaking the protocol subset the
// client uses (/api/v1/models/{id}/revisions, /repo/files, /repo), serving
// models held in memory. Tests inject faults with `intercept`: it sees every
// request first and may answer it instead.
#pragma once

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "http_server.hpp"

namespace testing {

// Lower-case hex of a one-shot digest (computed here independently of the library's own).
inline std::string digest_hex(const std::string& data, const EVP_MD* algorithm) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, algorithm, nullptr);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

inline std::string sha256_hex(const std::string& data) { return digest_hex(data, EVP_sha256()); }

struct HubFileSpec {
  std::string path;
  std::string content;
  std::string revision = "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9";  // the file's last commit
  nlohmann::json sha256;  // null: computed from content when added; a string: served as is (a wrong one, say)
};

struct HubModelSpec {
  std::string id;
  std::vector<std::string> branches{"master"};
  std::vector<std::string> tags;
  std::vector<HubFileSpec> files;
  std::vector<nlohmann::json> extra_entries;  // raw entries appended to the file list (hostile ones)
};

class TestHub {
 public:
  using Interceptor = std::function<bool(const httplib::Request&, httplib::Response&)>;

  explicit TestHub(std::string host = "127.0.0.1") : server_(std::move(host)) {
    auto& r = server_.routes();
    r.Get(R"(/api/v1/models/([^/]+)/([^/]+)/revisions)", [this](const httplib::Request& req, httplib::Response& res) {
      if (intercepted(req, res)) return;
      const HubModelSpec* m = find(req);
      if (!m) return not_found(res);
      nlohmann::json branches = nlohmann::json::array(), tags = nlohmann::json::array();
      for (const auto& b : m->branches) branches.push_back({{"Revision", b}, {"CreatedAt", 1713419382}});
      for (const auto& t : m->tags) tags.push_back({{"Revision", t}, {"CreatedAt", 1713419000}});
      ok(res, {{"RevisionMap", {{"Branches", branches}, {"Tags", tags}}}});
    });
    r.Get(R"(/api/v1/models/([^/]+)/([^/]+)/repo/files)", [this](const httplib::Request& req, httplib::Response& res) {
      if (intercepted(req, res)) return;
      const HubModelSpec* m = find(req);
      if (!m) return not_found(res);
      // A revision that is no branch or tag has no file list.
      const std::string rev = req.has_param("Revision") ? req.get_param_value("Revision") : "master";
      if (std::find(m->branches.begin(), m->branches.end(), rev) == m->branches.end() &&
          std::find(m->tags.begin(), m->tags.end(), rev) == m->tags.end())
        return envelope_error(res, 404, "revision " + rev + " not found");
      nlohmann::json files = nlohmann::json::array();
      for (const auto& f : m->files) {
        const std::string name = f.path.substr(f.path.rfind('/') + 1);
        files.push_back({{"CommitMessage", "update"}, {"CommittedDate", 1667548386}, {"InCheck", false},
                         {"IsLFS", f.content.size() > 1024}, {"Mode", "33188"}, {"Name", name}, {"Path", f.path},
                         {"Revision", f.revision}, {"Sha256", f.sha256},
                         {"Size", listed_size(f)}, {"Type", "blob"}});
      }
      files.push_back({{"Name", "assets"}, {"Path", "assets"}, {"Type", "tree"}, {"Size", 0}, {"Revision", "x"}});
      for (const auto& e : m->extra_entries) files.push_back(e);
      ok(res, {{"Files", files}});
    });
    r.Get(R"(/api/v1/models/([^/]+)/([^/]+)/repo)", [this](const httplib::Request& req, httplib::Response& res) {
      if (intercepted(req, res)) return;
      const HubModelSpec* m = find(req);
      if (!m) return not_found(res);
      const std::string path = req.get_param_value("FilePath");
      for (const auto& f : m->files)
        if (f.path == path) return serve_with_ranges(req, res, f.content);
      res.status = 404;
      res.set_content(R"({"Code":10010205001,"Message":"file not found","Success":false})", "application/json");
    });
  }

  // The server stops first: a handler still running (an interceptor that
  // sleeps past its client's timeout) must not outlive the models it reads.
  ~TestHub() { server_.stop(); }
  TestHub(const TestHub&) = delete;
  TestHub& operator=(const TestHub&) = delete;

  void add(HubModelSpec m) {
    // Hashed once here, not on every listing (a real hub stores it).
    for (auto& f : m.files)
      if (f.sha256.is_null()) f.sha256 = sha256_hex(f.content);
    std::lock_guard<std::mutex> lock(mutex_);
    models_[m.id] = std::move(m);
  }
  // The file list gives `size` for every file at `path` instead of its content's (0 means unknown to ModelScope).
  void list_size(const std::string& path, std::size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    listed_sizes_[path] = size;
  }
  void intercept(Interceptor i) {
    std::lock_guard<std::mutex> lock(mutex_);
    interceptor_ = std::move(i);
  }
  void start() { server_.start(); }
  std::string endpoint() const { return server_.url(); }
  HttpServer& server() { return server_; }

  // The API paths requested, in order ("/api/v1/models/iic/x/revisions", ...).
  std::vector<std::string> paths() {
    std::vector<std::string> out;
    for (const auto& r : server_.requests()) out.push_back(r.path);
    return out;
  }

  static void envelope_error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_header("X-Request-ID", "req-7f3a");
    res.set_content(nlohmann::json({{"Code", status}, {"Message", message}, {"RequestId", "req-7f3a"}, {"Success", false}}).dump(),
                    "application/json");
  }

 private:
  bool intercepted(const httplib::Request& req, httplib::Response& res) {
    Interceptor i;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      i = interceptor_;
    }
    return i && i(req, res);
  }
  std::size_t listed_size(const HubFileSpec& f) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = listed_sizes_.find(f.path);
    return it == listed_sizes_.end() ? f.content.size() : it->second;
  }
  const HubModelSpec* find(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = models_.find(req.matches[1].str() + "/" + req.matches[2].str());
    return it == models_.end() ? nullptr : &it->second;
  }
  static void ok(httplib::Response& res, nlohmann::json data) {
    res.set_content(nlohmann::json({{"Code", 200}, {"Data", std::move(data)}, {"Message", "success"},
                                    {"RequestId", "8c2a8249-ce50-49f4-85ea-36debf918714"}, {"Success", true}})
                        .dump(),
                    "application/json");
  }
  static void not_found(httplib::Response& res) { envelope_error(res, 404, "模型不存在"); }

  HttpServer server_;
  std::mutex mutex_;
  std::map<std::string, HubModelSpec> models_;
  std::map<std::string, std::size_t> listed_sizes_;
  Interceptor interceptor_;
};

// The fixture model on the hub; the weight sizes are the demo's to choose.
inline HubModelSpec unet_on_hub(std::size_t weights_size = 300000, std::size_t joint_size = 5000) {
  return {"iic/cv_unet_skin_retouching_torch",
          {"master"},
          {"v1.0.3"},
          {{"configuration.json", R"({"framework": "pytorch", "task": "skin-retouching"})",
            "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9", nullptr},
           {"README.md", "# cv_unet_skin_retouching_torch\n", "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9", nullptr},
           {"pytorch_model.pt", pattern_bytes(weights_size, 7), "7a1c2b3d4e5f60718293a4b5c6d7e8f901234567", nullptr},
           {"assets/weights/joint.pth", pattern_bytes(joint_size, 9), "7a1c2b3d4e5f60718293a4b5c6d7e8f901234567", nullptr}},
          {}};
}

}  // namespace testing
