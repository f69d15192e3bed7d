// PlainDirectoryCache: one model as a plain directory, its files at their own
// paths plus modelres's manifest (.modelres), and no hub's cache layout: what
// `modelres download MODEL --to DIR` writes for a container image, a
// Kubernetes image volume, or a tool such as dfget or KitOps to carry.
//
//   Resolver<OnlinePolicy<CurlTransport, HuggingFaceHub<CurlTransport>>, PlainDirectoryCache>
//       baker(PlainDirectoryCache("/build/rootfs/models/gemma"));
//   baker.resolve("google/gemma-2b");   // files verified, then the manifest, last
//
// Either cache's PathPolicy resolve of the directory reads the manifest back
// (completeness verified when every file it lists is there with its size,
// unknown without one), and verify() re-hashes it against the manifest's
// hashes. Writes follow every cache's commit order (detail/cache_writing.hpp);
// the lock is DIR/.modelres.lock, partial downloads go to DIR/.modelres-partial/
// (removed once empty).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../detail/cache_support.hpp"
#include "../detail/cache_writing.hpp"
#include "../detail/fs.hpp"
#include "../detail/manifest.hpp"
#include "../detail/modelscope_cache_reader.hpp"
#include "../durability.hpp"
#include "../error.hpp"
#include "../hub_snapshot.hpp"
#include "../model_ref.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"
#include "cache_traits.hpp"
#include "write_target.hpp"

namespace modelres {

class PlainDirectoryCache {
 public:
  static constexpr const char* layout = "plain directory (modelres download --to)";

  explicit PlainDirectoryCache(std::filesystem::path directory) : directory_(std::move(directory)) {}

  // The directory, "~" expanded and absolute.
  result<std::string> root() const {
    std::string dir;
    if (!detail::expand_tilde(directory_.native(), dir)) return Error(errc::not_cached, {}, "cannot expand " + directory_.native());
    if (auto ec = detail::absolute_root(dir)) return Error(errc::io_error, {}, "cannot make " + dir + " absolute").with_cause(ec);
    return dir;
  }

  // The model, if the directory's manifest says it holds it (and every file it lists is there).
  result<ResolvedModel> locate(const ModelId& id, std::string_view revision) const {
    MODELRES_TRY(dir, root());
    std::vector<Probe> probes;
    auto m = read(dir, &id, revision, probes);
    if (!m) return std::move(m).error().with_id(id.str(), revision).with_probes(std::move(probes));
    return m;
  }

  // What the directory's manifest says of it; without one, its files, completeness unknown.
  result<ResolvedModel> inspect(const std::filesystem::path& directory, std::string_view revision) const {
    MODELRES_TRYV(detail::require_directory(directory));
    std::vector<Probe> probes;
    auto m = read(directory.native(), nullptr, revision, probes);
    if (m || m.error() != errc::not_cached) return m;
    if (!revision.empty())
      return Error(errc::revision_mismatch, {}, directory.native() + " has no manifest: it records no revision");
    ResolvedModel plain;
    plain.directory = directory;
    plain.layout = "directory";
    return plain;
  }

  // What verify() checks each file against: the manifest's hashes.
  std::vector<HubFile> recorded_checks(const ResolvedModel& m) const {
    detail::Manifest manifest;
    if (detail::read_manifest_file(detail::concat({m.directory.native(), "/", detail::manifest_name}), manifest))
      return std::move(manifest.snapshot.files);
    return {};
  }

  // --- Writing (OnlinePolicy; docs/traits.md, Writable cache) ---

  result<WriteTarget> prepare_write(const ModelId& id) const {
    MODELRES_TRY(dir, root());
    WriteTarget t;
    t.model_dir = dir;
    t.store_dir = dir;
    t.naming = WriteTarget::Naming::by_path;
    t.partial_dir = dir + "/" + partial_name;
    t.lock_path = dir + "/" + lock_name;
    t.layout = layout;
    detail::Manifest m;
    if (detail::read_manifest_file(dir + "/" + detail::manifest_name, m) && m.model == id.str())
      detail::take_vouching_manifest(t, m);
    return t;
  }

  // A file the manifest vouches for, there at the size it recorded, is present; the rest is downloaded.
  WritePlan plan(const WriteTarget& target, const HubSnapshot& snapshot) const {
    WritePlan p;
    const detail::ManifestIndex manifest(target.manifest_files);
    for (const HubFile& f : snapshot.files) {
      if (const HubFile* known = manifest.proves_present(f, detail::status(target.file(f.path)))) {
        p.present.push_back(f);
        p.present.back().size = known->size;  // the size that arrived, where the hub listed 0
      } else
        p.to_download.push_back(f);
    }
    p.up_to_date = detail::is_up_to_date(p, target, snapshot);
    p.unsynced = target.manifest_unsynced;
    if (p.up_to_date) p.current = as_committed(target, snapshot, p.present);  // at the sizes recorded
    return p;
  }

  result<void> begin_download(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot) const {
    MODELRES_TRYV(refuse_own_names(id, snapshot));
    return detail::mark_downloading(id, target.model_dir + "/" + detail::manifest_name, snapshot);
  }

  // The files synced, then the manifest, last; the emptied partial directory removed.
  result<ResolvedModel> commit(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot,
                               Durability durability) const {
    MODELRES_TRYV(refuse_own_names(id, snapshot));
    std::vector<std::string> files;
    for (const HubFile& f : snapshot.files) files.push_back(target.file(f.path));
    MODELRES_TRYV(detail::commit_in_order(id, snapshot, durability, files, {target.model_dir}, {},
                                          target.model_dir + "/" + detail::manifest_name));
    ::rmdir(target.partial_dir.c_str());  // only if empty: a concurrent download's partial files stay
    ResolvedModel m = as_committed(target, snapshot, snapshot.files);
    m.model_id = id.str();
    return m;
  }

 private:
  static constexpr const char* partial_name = ".modelres-partial";
  static constexpr const char* lock_name = ".modelres.lock";

  static result<ResolvedModel> read(const std::string& dir, const ModelId* id, std::string_view revision,
                                    std::vector<Probe>& probes) {
    const std::string path = dir + "/" + detail::manifest_name;
    std::string bytes;
    if (const std::error_code ec = detail::read_file(path, bytes, detail::modelscope::max_metadata_bytes)) {
      probes.push_back({path, ec == std::errc::no_such_file_or_directory ? "does not exist" : "cannot be read: " + ec.message()});
      if (ec == std::errc::permission_denied) return Error(errc::permission_denied, {}, "cannot read " + path).with_cause(ec);
      return Error(errc::not_cached, {}, "no modelres manifest in " + dir);
    }
    detail::modelscope::ProbeNotes notes;
    return detail::modelscope::probe_manifest(dir, path, bytes, layout, id, revision, probes, notes);
  }

  static ResolvedModel as_committed(const WriteTarget& target, const HubSnapshot& snapshot, const std::vector<HubFile>& files) {
    ResolvedModel m;
    m.directory = target.model_dir;
    m.revision = snapshot.revision;
    m.commit = snapshot.commit;
    m.layout = target.layout;
    m.completeness = Completeness::verified;
    for (const HubFile& f : files) m.files.push_back({f.path, f.revision, f.size});
    return m;
  }

  // The hub may not list a file where the manifest, the lock or partial downloads live.
  static result<void> refuse_own_names(const ModelId& id, const HubSnapshot& snapshot) {
    for (const HubFile& f : snapshot.files) {
      const std::string_view first = std::string_view(f.path).substr(0, f.path.find('/'));
      if (first == detail::manifest_name || first == lock_name || first == partial_name)
        return Error(errc::unsafe_file_list, id.str(),
                     "the hub lists '" + detail::printable(f.path) + "', where modelres keeps its own records; nothing was written");
    }
    return success();
  }

  std::filesystem::path directory_;
};

}  // namespace modelres
