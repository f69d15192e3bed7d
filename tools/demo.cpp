// The demo: lays out a sample ModelScope cache in a temporary directory, the
// way the Python client writes it, then resolves from it with each policy,
// a typed miss included. Exits non-zero if any outcome is not the expected one.
#include <modelres/modelres.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace modelres;

namespace {

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

// modelscope 1.23-1.37: models/owner/name with the client's .msc, .mdl and .mv.
fs::path lay_out_classic(const fs::path& root) {
  const fs::path dir = root / "models/iic/cv_unet_skin_retouching_torch";
  const std::vector<std::pair<std::string, std::string>> files = {
      {"configuration.json", R"({"framework": "pytorch", "task": "skin-retouching"})"},
      {"README.md", "# cv_unet_skin_retouching_torch\n"},
      {"pytorch_model.pt", std::string(64 * 1024, '\x2a')},
  };
  std::vector<detail::pickle::StringDict> records;
  for (const auto& [path, content] : files) {
    write(dir / path, content);
    records.push_back({{"Path", path}, {"Revision", "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9"}});
  }
  write(dir / ".msc", detail::pickle::Writer::list_of_dicts(records));
  write(dir / ".mdl", detail::pickle::Writer::dict_only({{"id", "iic/cv_unet_skin_retouching_torch"}}));
  write(dir / ".mv", "Revision:master,CreatedAt:1713419382");
  return dir;
}

// modelscope >= 1.38: models/owner--name/snapshots/revision, files only.
fs::path lay_out_snapshot(const fs::path& root) {
  const fs::path dir = root / "models/Qwen--Qwen2.5-0.5B-Instruct/snapshots/master";
  write(dir / "config.json", R"({"model_type": "qwen2"})");
  write(dir / "model.safetensors", std::string(32 * 1024, '\x01'));
  return dir;
}

int failures = 0;

void show(const char* title, const result<ResolvedModel>& r, bool expect_ok, errc expected = errc::not_cached) {
  std::printf("\n== %s\n", title);
  if (r) {
    const ResolvedModel& m = r.value();
    std::printf("   directory    %s\n   model        %s\n   revision     %s\n   layout       %s\n"
                "   files        %zu (%llu bytes)\n   completeness %s\n",
                m.directory.c_str(), m.model_id.empty() ? "-" : m.model_id.c_str(),
                m.revision.empty() ? "-" : m.revision.c_str(), m.layout.c_str(), m.files.size(),
                static_cast<unsigned long long>(m.total_size()), to_string(m.completeness));
  } else {
    std::printf("   error %s (%d)\n   %s\n", to_string(static_cast<errc>(r.error().code.value())),
                r.error().code.value(), r.error().message().c_str());
  }
  const bool as_expected = expect_ok ? bool(r) : (!r && r.error() == expected);
  if (!as_expected) {
    ++failures;
    std::printf("   ^ UNEXPECTED\n");
  }
}

}  // namespace

int main() {
  std::string tmpl = (fs::temp_directory_path() / "modelres-demo-XXXXXX").native();
  if (!::mkdtemp(tmpl.data())) return 1;
  const fs::path root = tmpl;
  const fs::path classic = lay_out_classic(root);
  const fs::path snapshot = lay_out_snapshot(root);
  std::printf("A sample ModelScope cache at %s:\n  %s  (modelscope 1.23-1.37)\n  %s  (modelscope >= 1.38)\n",
              root.c_str(), classic.c_str(), snapshot.c_str());

  ModelScopeCache cache(root);
  Resolver<LocalOnlyPolicy, ModelScopeCache> local_only{cache};
  Resolver<PathPolicy, ModelScopeCache> by_path{cache};
  Resolver<DefaultOfflinePolicy, ModelScopeCache> either{cache};

  show("LocalOnlyPolicy: iic/cv_unet_skin_retouching_torch", local_only.resolve("iic/cv_unet_skin_retouching_torch"), true);
  show("LocalOnlyPolicy: Qwen/Qwen2.5-0.5B-Instruct (newest layout)", local_only.resolve("Qwen/Qwen2.5-0.5B-Instruct"), true);
  show("PathPolicy: the directory itself", by_path.resolve(classic.native()), true);
  show("FirstOf<PathPolicy, LocalOnlyPolicy>: an id", either.resolve("iic/cv_unet_skin_retouching_torch"), true);
  show("FirstOf<PathPolicy, LocalOnlyPolicy>: a path", either.resolve(snapshot.native()), true);

  ResolveOptions v103;
  v103.revision = "v1.0.3";
  show("LocalOnlyPolicy, pinned to a revision the cache does not hold",
       local_only.resolve("iic/cv_unet_skin_retouching_torch", v103), false, errc::revision_mismatch);
  show("LocalOnlyPolicy: a model never downloaded (the typed miss)", local_only.resolve("damo/not_downloaded"), false,
       errc::not_cached);
  show("LocalOnlyPolicy: an id that tries to leave the cache", local_only.resolve("../../etc/passwd"), false,
       errc::invalid_model_id);
  fs::remove(classic / "pytorch_model.pt");
  show("LocalOnlyPolicy: after a weight file went missing", local_only.resolve("iic/cv_unet_skin_retouching_torch"),
       false, errc::incomplete);

  std::error_code ec;
  fs::remove_all(root, ec);
  std::printf("\n%s\n", failures == 0 ? "demo: every outcome as expected" : "demo: UNEXPECTED OUTCOMES");
  return failures == 0 ? 0 : 1;
}
