// ModelScopeCache: the on-disk cache of the Python `modelscope` client, in every
// layout it has written since 2022, read without writing, locking or moving
// anything (the Python client does all four even for local-only calls).
//
// Root: the constructor argument (meaning the same as MODELSCOPE_CACHE), else
// $MODELSCOPE_CACHE, else ~/.cache/modelscope. For model "owner/name" (name___
// is the name with each '.' written "___") the directories probed, in order:
//
//   1. ROOT/models/owner--name/snapshots/REV   modelscope >= 1.38 (REV: the revision, default master)
//   2. ROOT/models/owner/name___               modelscope 1.23-1.37
//   3. ROOT/hub/models/owner/name___           modelscope 1.23-1.37, default root
//   4. ROOT/hub/owner/name___                  modelscope 1.15-1.22, default root or MODELSCOPE_CACHE
//   5. ROOT/hub/owner/name                     modelscope <= 1.11 (before dots were escaped)
//   6. ROOT/owner/name___                      modelscope <= 1.14 with MODELSCOPE_CACHE, or an explicit cache_dir
//   7. ROOT/owner/name                         modelscope <= 1.11, modelscope_hub 0.1.0-0.1.6
//
// The first directory that holds anything decides: it is served, or its
// problem (incomplete, revision mismatch, corrupt metadata) is the error.
// docs/cache-layouts.md explains each layout and what is verified in it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache_traits.hpp"
#include "write_target.hpp"
#include "../detail/cache_support.hpp"
#include "../detail/cache_writing.hpp"
#include "../detail/fs.hpp"
#include "../detail/manifest.hpp"
#include "../detail/modelscope_cache_reader.hpp"
#include "../detail/pickle.hpp"
#include "../durability.hpp"
#include "../error.hpp"
#include "../hub_snapshot.hpp"
#include "../model_ref.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"

namespace modelres {

class ModelScopeCache {
  // The layouts and how each is read (detail/modelscope_cache_reader.hpp).
  using ClassicLayout = detail::modelscope::ClassicLayout;
  using ProbeNotes = detail::modelscope::ProbeNotes;

 public:
  static constexpr std::string_view ecosystem = "modelscope";
  static constexpr std::string_view default_revision = detail::modelscope::default_revision;
  static constexpr std::size_t max_metadata_bytes = detail::modelscope::max_metadata_bytes;

  ModelScopeCache() = default;
  explicit ModelScopeCache(std::filesystem::path root) : explicit_root_(std::move(root)) {}

  // The root in force: explicit, else $MODELSCOPE_CACHE, else ~/.cache/modelscope.
  // Read at each call, so a changed environment is seen.
  result<std::string> root() const {
    std::string r;
    if (!explicit_root_.empty()) {
      if (!detail::expand_tilde(explicit_root_.native(), r))
        return Error(errc::not_cached, {}, "cannot expand the cache root " + explicit_root_.native());
    } else if (const std::string env = detail::environment("MODELSCOPE_CACHE"); !env.empty()) {
      if (!detail::expand_tilde(env, r)) return Error(errc::not_cached, {}, "cannot expand MODELSCOPE_CACHE=" + env);
    } else {
      const std::string home = detail::home_directory();
      if (home.empty())
        return Error(errc::not_cached, {}, "no cache root: MODELSCOPE_CACHE is unset and the home directory is unknown");
      r = home + "/.cache/modelscope";
    }
    if (auto ec = detail::absolute_root(r))
      return Error(errc::io_error, {}, "cannot make the cache root " + r + " absolute").with_cause(ec);
    return r;
  }

  // The root the classic (<= 1.37) client writes below and locks in:
  // ROOT/hub for the default root, ROOT itself for an explicit root or
  // MODELSCOPE_CACHE (see docs/cache-layouts.md).
  result<std::string> classic_root() const {
    MODELRES_TRY(r, root());
    const bool is_default = explicit_root_.empty() && detail::environment("MODELSCOPE_CACHE").empty();
    return is_default ? r + "/hub" : std::string(r);
  }

  // Where an online resolve writes the model: the classic directory that
  // already holds it (any generation), else CLASSIC_ROOT/models/owner/name___,
  // where the Python client of every generation finds it too.
  result<WriteTarget> prepare_write(const ModelId& id) const {
    MODELRES_TRY(r, root());
    MODELRES_TRY(cr, classic_root());
    const std::string escaped = escape_name(id.name);
    WriteTarget t;
    detail::Manifest m;
    bool has_manifest = false;
    std::string candidate;
    for (const ClassicLayout& c : detail::modelscope::classic_layouts) {
      if (!detail::modelscope::classic_dir(c, r, id, escaped, candidate)) continue;
      // A directory that belongs to another model is not ours to write into.
      // Ours says whose it is (and is read this once); else Python's .mdl does.
      if (detail::read_manifest_file(candidate + "/" + detail::manifest_name, m)) {
        if (m.model != id.str()) continue;
        has_manifest = true;
      } else {
        const detail::FileStatus st = detail::status(candidate);
        if (!st.exists() || !st.is_directory) continue;
        std::vector<Probe> ignored;
        ProbeNotes notes;
        (void)detail::modelscope::probe_classic(candidate, "", &id, {}, ignored, notes, /*list_unrecorded=*/false);
        if (notes.foreign) continue;
      }
      t.model_dir = candidate;
      t.layout = c.layout;
      break;
    }
    if (t.model_dir.empty()) {
      t.model_dir = cr + "/models/" + id.owner + "/" + escaped;
      t.layout = detail::modelscope::layout_models;
    }
    t.store_dir = t.model_dir;
    const std::string grandparent = t.model_dir.substr(0, t.model_dir.rfind('/', t.model_dir.rfind('/') - 1));
    t.partial_dir = grandparent + "/._____temp/" + id.owner + "/" + id.name;
    t.lock_path = cr + "/.lock/" + id.owner + "___" + id.name;

    // Without a vouching manifest the files are hashed again, through the .msc records written beside it.
    if (has_manifest) detail::take_vouching_manifest(t, m);
    std::string bytes;
    if (!detail::read_file(t.model_dir + "/.msc", bytes, max_metadata_bytes)) {
      auto doc = detail::pickle::read(bytes);
      if (doc) {
        auto files = detail::modelscope::parse_msc(doc.value(), t.model_dir + "/.msc");
        if (files) t.recorded = std::move(files).value();
      }
    }
    return t;
  }

  // Compares what `target` holds with `snapshot`, with a stat per file: a
  // file our manifest vouches for is present; one the Python client recorded
  // at this commit is hashed before it is trusted; the rest is downloaded.
  WritePlan plan(const WriteTarget& target, const HubSnapshot& snapshot) const {
    WritePlan p;
    const detail::ManifestIndex manifest(target.manifest_files);
    std::unordered_multimap<std::string_view, const CachedFile*> msc;  // by path, as the manifest
    for (const CachedFile& c : target.recorded) msc.emplace(c.path, &c);
    for (const HubFile& f : snapshot.files) {
      const detail::FileStatus st = detail::status(target.file(f.path));
      const bool on_disk = detail::on_disk_at_listed_size(st, f);
      // The client's cache key: same path, commit ids that prefix-match.
      const auto [c_first, c_last] = msc.equal_range(f.path);
      const bool in_msc = std::any_of(c_first, c_last, [&](const auto& c) {
        const std::string& r = c.second->revision;
        return !r.empty() && !f.revision.empty() && (r.rfind(f.revision, 0) == 0 || f.revision.rfind(r, 0) == 0);
      });
      if (const HubFile* known = manifest.proves_present(f, st)) {
        p.present.push_back(f);
        p.present.back().size = known->size;  // the size that arrived, where the hub listed 0
      } else if (on_disk && in_msc && !f.sha256.empty())
        p.to_verify.push_back({f, target.file(f.path)});
      else
        p.to_download.push_back(f);
    }
    p.up_to_date = detail::is_up_to_date(p, target, snapshot);
    p.unsynced = target.manifest_unsynced;
    if (p.up_to_date) p.current = as_committed(target, snapshot, p.present);  // at the sizes recorded
    return p;
  }

  // Marks target.model_dir as being downloaded into, before the first file
  // moves in: until commit(), lookups report it incomplete.
  result<void> begin_download(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot) const {
    MODELRES_TRYV(refuse_bookkeeping_names(id, snapshot));
    return detail::mark_downloading(id, target.model_dir + "/" + detail::manifest_name, snapshot);
  }

  // Records a snapshot whose every file is in target.model_dir, verified, in
  // the commit order every cache keeps (detail::commit_in_order): the files
  // synced, then the Python client's .msc, .mdl and .mv (so it sees the model
  // as cached), then our manifest, last.
  result<ResolvedModel> commit(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot,
                               Durability durability) const {
    MODELRES_TRYV(refuse_bookkeeping_names(id, snapshot));
    std::vector<detail::pickle::StringDict> records;
    std::vector<std::string> files;
    for (const HubFile& f : snapshot.files) {
      records.push_back({{"Path", f.path}, {"Revision", f.revision}});
      files.push_back(target.file(f.path));
    }
    const std::string& dir = target.model_dir;
    MODELRES_TRYV(detail::commit_in_order(
        id, snapshot, durability, files, {dir},
        {{dir + "/.msc", detail::pickle::Writer::list_of_dicts(records)},
         {dir + "/.mdl", detail::pickle::Writer::dict_only({{"id", id.owner + "/" + escape_name(id.name)}})},
         {dir + "/.mv", "Revision:" + snapshot.revision + ",CreatedAt:" + std::to_string(snapshot.created_at)}},
        dir + "/" + detail::manifest_name));
    ResolvedModel m = as_committed(target, snapshot, snapshot.files);
    m.model_id = id.str();
    return m;
  }

  // The model's directory, read-only. `revision` empty means not pinned.
  result<ResolvedModel> locate(const ModelId& id, std::string_view revision) const {
    auto root_dir = root();
    if (!root_dir) return std::move(root_dir).error().with_id(id.str(), revision);
    const std::string& r = root_dir.value();
    const std::string escaped = escape_name(id.name);

    std::vector<Probe> probes;
    ProbeNotes notes;
    const auto finish = [&](Error e) { return std::move(e).with_id(id.str(), revision).with_probes(std::move(probes)); };

    // A layout below a missing directory is not probed, but is still listed as looked at.
    detail::modelscope::LayoutGates gates(r);
    const auto ruled_out = [&](std::string dir) {
      probes.push_back({std::move(dir), "does not exist"});
    };

    // 1. modelscope >= 1.38
    const std::string snapshots = r + "/models/" + id.owner + "--" + id.name + "/snapshots";
    if (!gates.may_hold("/models/")) {
      ruled_out(snapshots + "/" + std::string(revision.empty() ? detail::modelscope::default_revision : revision));
    } else {
      auto found = detail::modelscope::probe_snapshot(snapshots, revision, probes, notes);
      if (found) {
        found.value().model_id = id.str();
        return found;
      }
      if (found.error().code != errc::not_cached) return finish(std::move(found).error());
    }
    // 2-7: the classic layouts, each path built only when it is probed.
    std::string dir;
    for (const ClassicLayout& c : detail::modelscope::classic_layouts) {
      if (!detail::modelscope::classic_dir(c, r, id, escaped, dir)) continue;
      if (!gates.may_hold(c.middle)) {
        ruled_out(dir);
        continue;
      }
      auto found = detail::modelscope::probe_classic(dir, c.layout, &id, revision, probes, notes);
      if (found) {
        found.value().model_id = id.str();
        return found;
      }
      if (found.error().code != errc::not_cached) return finish(std::move(found).error());
    }
    if (notes.permission_problem)
      return finish(Error(errc::permission_denied, {}, "a cache directory that may hold the model cannot be read"));
    return finish(Error(errc::not_cached, {}, "no ModelScope cache layout under " + r + " holds this model"));
  }

  // Reads the metadata of a directory given by path (a classic cache directory
  // or a copy of one). No metadata: served with completeness unknown. A missing
  // path is path_not_found, a file not_a_directory.
  // `revision`, if not empty, must be the one the metadata records.
  result<ResolvedModel> inspect(const std::filesystem::path& directory, std::string_view revision) const {
    MODELRES_TRYV(detail::require_directory(directory));
    std::vector<Probe> probes;
    ProbeNotes notes;
    auto found = detail::modelscope::probe_classic(directory.native(), "directory", nullptr, revision, probes, notes,
                               /*list_unrecorded=*/false);
    if (found) return found;
    if (found.error().code != errc::not_cached) return std::move(found).error().with_probes(std::move(probes));
    // An empty directory, or one with only Python's bookkeeping: still the path asked for.
    if (!revision.empty())
      return Error(errc::revision_mismatch, {}, directory.native() + " records no revision").with_probes(std::move(probes));
    ResolvedModel m;
    m.directory = directory;
    m.layout = "directory";
    return m;
  }

  // Every model the cache holds, in every layout, with its state. A directory
  // reached twice (the dotted-name links point at the ___ directory) is listed once.
  result<std::vector<CacheEntry>> list() const {
    MODELRES_TRY(root_dir, root());
    const std::string r = root_dir;
    std::vector<CacheEntry> out;
    std::set<std::string> seen;  // real paths of symlinked model directories already listed
    std::vector<detail::DirEntry> owners, names, revisions;

    // modelscope >= 1.38
    if (!detail::list_directory(r + "/models", names)) {
      for (const auto& repo : names) {
        const std::size_t sep = repo.name.find("--");
        if (!repo.is_directory || repo.is_symlink || sep == std::string::npos) continue;
        const std::string snapshots = r + "/models/" + repo.name + "/snapshots";
        if (detail::list_directory(snapshots, revisions)) continue;
        for (const auto& rev : revisions) {
          if (!rev.is_directory) continue;
          std::vector<Probe> probes;
          ProbeNotes notes;
          CacheEntry e;
          e.model_id = repo.name.substr(0, sep) + "/" + repo.name.substr(sep + 2);
          e.directory = snapshots + "/" + rev.name;
          e.layout = detail::modelscope::layout_snapshots;
          auto state = detail::modelscope::probe_snapshot(snapshots, rev.name, probes, notes);
          if (!state && state.error().code == errc::not_cached) continue;  // empty snapshot directory
          record(e, std::move(state));
          out.push_back(std::move(e));
        }
      }
    }
    // Classic layouts: owner/name directories holding Python's metadata.
    const std::pair<std::string, const char*> trees[] = {
        {r + "/models", detail::modelscope::layout_models}, {r + "/hub/models", detail::modelscope::layout_models}, {r + "/hub", detail::modelscope::layout_hub}, {r, detail::modelscope::layout_flat}};
    for (const auto& [tree, layout] : trees) {
      if (detail::list_directory(tree, owners)) continue;
      for (const auto& owner : owners) {
        if (!owner.is_directory || owner.is_symlink || owner.name.front() == '.') continue;
        if (detail::list_directory(tree + "/" + owner.name, names)) continue;
        for (const auto& name : names) {
          if (!name.is_directory) continue;
          const std::string dir = tree + "/" + owner.name + "/" + name.name;
          if (name.is_symlink && !seen.insert(real_path(dir)).second) continue;
          if (!detail::status(dir + "/.msc").exists() && !detail::status(dir + "/.mdl").exists() &&
              !detail::status(dir + "/" + detail::manifest_name).exists())
            continue;
          CacheEntry e;
          e.model_id = owner.name + "/" + unescape_name(name.name);
          e.directory = dir;
          e.layout = layout;
          std::vector<Probe> probes;
          ProbeNotes notes;
          auto state = detail::modelscope::probe_classic(dir, layout, nullptr, {}, probes, notes);
          if (!state && state.error().code == errc::not_cached) continue;  // only Python's .mdl
          if (state && !state.value().model_id.empty()) e.model_id = state.value().model_id;
          record(e, std::move(state));
          out.push_back(std::move(e));
        }
      }
    }
    // A symlink listed before its target: drop the later duplicate.
    std::vector<CacheEntry> unique;
    std::set<std::string> reached;
    for (auto& e : out)
      if (reached.insert(real_path(e.directory.native())).second) unique.push_back(std::move(e));
    out = std::move(unique);
    std::sort(out.begin(), out.end(), [](const CacheEntry& a, const CacheEntry& b) {
      return a.model_id != b.model_id ? a.model_id < b.model_id : a.directory < b.directory;
    });
    return out;
  }

  // The ModelScope client's directory-name escaping: every '.' becomes "___".
  // What is recorded of each file of `m` (a directory this cache served), for
  // verify(): our manifest's sha256 per file. The Python client records none.
  std::vector<HubFile> recorded_checks(const ResolvedModel& m) const {
    detail::Manifest manifest;
    if (detail::read_manifest_file(detail::concat({m.directory.native(), "/", detail::manifest_name}), manifest))
      return std::move(manifest.snapshot.files);
    return {};
  }

  static std::string escape_name(std::string_view name) { return detail::modelscope::escape_name(name); }
  static std::string unescape_name(std::string_view name) { return detail::modelscope::unescape_name(name); }

 private:
  // The model as a commit leaves it (what commit() returns, and plan() when
  // the cache is already current): every file of the snapshot, verified.
  static ResolvedModel as_committed(const WriteTarget& target, const HubSnapshot& snapshot, const std::vector<HubFile>& files) {
    ResolvedModel m;
    m.directory = target.model_dir;
    m.revision = snapshot.revision;
    m.layout = target.layout;
    m.completeness = Completeness::verified;
    for (const HubFile& f : files) m.files.push_back({f.path, f.revision, f.size});
    return m;
  }

  // A hub file named like the bookkeeping would overwrite it: a hostile .msc
  // is a pickle the Python client would load. Refused before anything is written.
  static result<void> refuse_bookkeeping_names(const ModelId& id, const HubSnapshot& snapshot) {
    for (const HubFile& f : snapshot.files) {
      const std::string_view top = std::string_view(f.path).substr(0, f.path.find('/'));
      if (detail::modelscope::is_bookkeeping(top))
        return Error(errc::unsafe_file_list, id.str(),
                     "the hub listed '" + detail::printable(f.path) + "', a name the cache keeps for its own metadata; "
                     "nothing was written").with_revision(snapshot.revision);
    }
    return success();
  }

  static std::string real_path(const std::string& path) {
    char* real = ::realpath(path.c_str(), nullptr);
    if (!real) return path;
    std::string out = real;
    std::free(real);
    return out;
  }

  static void record(CacheEntry& e, result<ResolvedModel> state) {
    if (state)
      e.model = std::move(state).value();
    else
      e.problem = std::move(state).error();
  }

  std::filesystem::path explicit_root_;
};

}  // namespace modelres
