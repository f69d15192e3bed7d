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
#include "../detail/cache_support.hpp"
#include "../detail/fs.hpp"
#include "../detail/manifest.hpp"
#include "../detail/pickle.hpp"
#include "../durability.hpp"
#include "../error.hpp"
#include "../hub_snapshot.hpp"
#include "write_target.hpp"
#include "../model_ref.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"

namespace modelres {

class ModelScopeCache {
 public:
  static constexpr std::string_view ecosystem = "modelscope";
  static constexpr std::string_view default_revision = "master";
  // Metadata files larger than this are refused (a 100,000-file .msc is ~10 MB).
  static constexpr std::size_t max_metadata_bytes = 64u << 20;

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
    std::string candidate;
    for (const ClassicLayout& c : classic_layouts) {
      if (!classic_dir(c, r, id, escaped, candidate)) continue;
      const detail::FileStatus st = detail::status(candidate);
      if (!st.exists() || !st.is_directory) continue;
      // A directory that belongs to another model is not ours to write into.
      std::vector<Probe> ignored;
      ProbeNotes notes;
      (void)probe_classic(candidate, "", &id, {}, ignored, notes, /*list_unrecorded=*/false);
      if (notes.foreign) continue;
      t.model_dir = candidate;
      break;
    }
    if (t.model_dir.empty()) t.model_dir = cr + "/models/" + id.owner + "/" + escaped;
    t.store_dir = t.model_dir;
    const std::string grandparent = t.model_dir.substr(0, t.model_dir.rfind('/', t.model_dir.rfind('/') - 1));
    t.partial_dir = grandparent + "/._____temp/" + id.owner + "/" + id.name;
    t.lock_path = cr + "/.lock/" + id.owner + "___" + id.name;

    std::string bytes;
    const std::string manifest_path = t.model_dir + "/" + detail::manifest_name;
    if (!detail::read_file(manifest_path, bytes, max_metadata_bytes)) {
      auto m = detail::read_manifest(bytes, manifest_path);
      // A damaged manifest proves nothing; the files are checked as if it were absent.
      // So does one written until_restart in an earlier boot: its files are
      // then hashed again, through the .msc records written beside it.
      if (m && m.value().model == id.str() && !m.value().downloading &&
          (m.value().unsynced_boot.empty() || detail::same_boot(m.value().unsynced_boot))) {
        t.manifest_unsynced = !m.value().unsynced_boot.empty();
        t.manifest_revision = m.value().snapshot.revision;
        t.manifest_files = std::move(m).value().snapshot.files;
      }
    }
    if (!detail::read_file(t.model_dir + "/.msc", bytes, max_metadata_bytes)) {
      auto doc = detail::pickle::read(bytes);
      if (doc) {
        auto files = parse_msc(doc.value(), t.model_dir + "/.msc");
        if (files) t.recorded = std::move(files).value();
      }
    }
    return t;
  }

  // Compares what `target` holds with `snapshot`, with a stat per file.
  WritePlan plan(const WriteTarget& target, const HubSnapshot& snapshot) const {
    WritePlan p;
    // By path: one lookup per file, not a scan of every record (quadratic in a large model).
    std::unordered_multimap<std::string_view, const HubFile*> manifest;
    for (const HubFile& m : target.manifest_files) manifest.emplace(m.path, &m);
    std::unordered_multimap<std::string_view, const CachedFile*> msc;
    for (const CachedFile& c : target.recorded) msc.emplace(c.path, &c);
    for (const HubFile& f : snapshot.files) {
      const detail::FileStatus st = detail::status(target.file(f.path));
      const bool on_disk = st.exists() && st.is_regular && (f.size == 0 || st.size == f.size);
      const auto [m_first, m_last] = manifest.equal_range(f.path);
      const bool in_manifest = std::any_of(m_first, m_last, [&](const auto& m) {
        return m.second->size == f.size && !f.sha256.empty() && m.second->sha256 == f.sha256;
      });
      // The client's cache key: same path, commit ids that prefix-match.
      const auto [c_first, c_last] = msc.equal_range(f.path);
      const bool in_msc = std::any_of(c_first, c_last, [&](const auto& c) {
        const std::string& r = c.second->revision;
        return !r.empty() && !f.revision.empty() && (r.rfind(f.revision, 0) == 0 || f.revision.rfind(r, 0) == 0);
      });
      if (on_disk && in_manifest)
        p.present.push_back(f);
      else if (on_disk && in_msc && !f.sha256.empty())
        p.to_verify.push_back({f, target.file(f.path)});
      else
        p.to_download.push_back(f);
    }
    p.up_to_date = p.present.size() == snapshot.files.size() && target.manifest_files.size() == snapshot.files.size() &&
                   target.manifest_revision == snapshot.revision;
    p.unsynced = target.manifest_unsynced;
    return p;
  }

  // Marks target.model_dir as being downloaded into, before the first file
  // moves in: until commit(), lookups report it incomplete.
  result<void> begin_download(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot) const {
    MODELRES_TRYV(refuse_bookkeeping_names(id, snapshot));
    if (auto ec = detail::make_directories(target.model_dir))
      return Error(ec == std::errc::no_space_on_device ? errc::disk_full : errc::io_error, id.str(),
                   "cannot create " + target.model_dir).with_cause(ec);
    const std::string path = target.model_dir + "/" + detail::manifest_name;
    if (auto ec = detail::write_file_atomically(path, detail::write_manifest(id.str(), snapshot, /*downloading=*/true)))
      return Error(detail::is_out_of_space(ec) ? errc::disk_full : errc::io_error, id.str(), "cannot write " + path).with_cause(ec);
    return success();
  }

  // Records a snapshot whose every file is in target.model_dir, verified: the
  // Python client's .msc, .mdl and .mv (so it sees the model as cached), then
  // our manifest, last. Each written under a temporary name and renamed.
  // until_restart skips every sync and says so in the manifest, with the boot.
  result<ResolvedModel> commit(const ModelId& id, const WriteTarget& target, const HubSnapshot& snapshot,
                               Durability durability) const {
    MODELRES_TRYV(refuse_bookkeeping_names(id, snapshot));
    const bool sync = durability == Durability::on_disk;
    // Every file on disk before anything says the model is complete: after a
    // crash, a manifest never vouches for data that did not reach the disk.
    if (sync) {
      for (const HubFile& f : snapshot.files) {
        if (auto ec = detail::sync_to_disk(target.file(f.path)))
          return Error(errc::io_error, id.str(), "cannot sync " + target.file(f.path)).with_cause(ec);
      }
      if (auto ec = detail::sync_to_disk(target.model_dir))
        return Error(errc::io_error, id.str(), "cannot sync " + target.model_dir).with_cause(ec);
    }
    std::vector<detail::pickle::StringDict> records;
    ResolvedModel m;
    for (const HubFile& f : snapshot.files) {
      records.push_back({{"Path", f.path}, {"Revision", f.revision}});
      m.files.push_back({f.path, f.revision, f.size});
    }
    const auto write = [&](const char* name, const std::string& bytes) -> result<void> {
      const std::string path = target.model_dir + "/" + name;
      if (auto ec = detail::write_file_atomically(path, bytes, sync))
        return Error(detail::is_out_of_space(ec) ? errc::disk_full : errc::io_error, id.str(), "cannot write " + path).with_cause(ec);
      return success();
    };
    MODELRES_TRYV(write(".msc", detail::pickle::Writer::list_of_dicts(records)));
    MODELRES_TRYV(write(".mdl", detail::pickle::Writer::dict_only({{"id", id.owner + "/" + escape_name(id.name)}})));
    MODELRES_TRYV(write(".mv", "Revision:" + snapshot.revision + ",CreatedAt:" + std::to_string(snapshot.created_at)));
    const std::string boot = detail::current_boot_id();
    MODELRES_TRYV(write(detail::manifest_name,
                        detail::write_manifest(id.str(), snapshot, false, sync ? std::string() : boot.empty() ? "-" : boot)));
    m.directory = target.model_dir;
    m.model_id = id.str();
    m.revision = snapshot.revision;
    m.layout = layout_models;
    m.completeness = Completeness::verified;
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

    // 1. modelscope >= 1.38
    {
      const std::string snapshots = r + "/models/" + id.owner + "--" + id.name + "/snapshots";
      auto found = probe_snapshot(snapshots, revision, probes, notes);
      if (found) {
        found.value().model_id = id.str();
        return found;
      }
      if (found.error().code != errc::not_cached) return finish(std::move(found).error());
    }
    // 2-7: the classic layouts, each path built only when it is probed.
    std::string dir;
    for (const ClassicLayout& c : classic_layouts) {
      if (!classic_dir(c, r, id, escaped, dir)) continue;
      auto found = probe_classic(dir, c.layout, &id, revision, probes, notes);
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
    auto found = probe_classic(directory.native(), "directory", nullptr, revision, probes, notes,
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
          e.layout = layout_snapshots;
          auto state = probe_snapshot(snapshots, rev.name, probes, notes);
          if (!state && state.error().code == errc::not_cached) continue;  // empty snapshot directory
          record(e, std::move(state));
          out.push_back(std::move(e));
        }
      }
    }
    // Classic layouts: owner/name directories holding Python's metadata.
    const std::pair<std::string, const char*> trees[] = {
        {r + "/models", layout_models}, {r + "/hub/models", layout_models}, {r + "/hub", layout_hub}, {r, layout_flat}};
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
          auto state = probe_classic(dir, layout, nullptr, {}, probes, notes);
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
  static std::string escape_name(std::string_view name) {
    std::string out;
    out.reserve(name.size() + 8);
    for (char c : name) {
      if (c == '.')
        out += "___";
      else
        out += c;
    }
    return out;
  }
  static std::string unescape_name(std::string_view name) {
    std::string out;
    for (std::size_t i = 0; i < name.size(); ++i) {
      if (name.compare(i, 3, "___") == 0) {
        out += '.';
        i += 2;
      } else {
        out += name[i];
      }
    }
    return out;
  }

 private:
  static constexpr const char* layout_snapshots = "modelscope >= 1.38 (models/owner--name/snapshots/revision)";
  static constexpr const char* layout_models = "modelscope 1.23-1.37 (models/owner/name___)";
  static constexpr const char* layout_hub = "modelscope 1.15-1.22 (hub/owner/name___)";
  static constexpr const char* layout_hub_dotted = "modelscope <= 1.11 (hub/owner/name)";
  static constexpr const char* layout_flat = "modelscope <= 1.14 or cache_dir (owner/name___)";
  static constexpr const char* layout_flat_dotted = "modelscope <= 1.11 or modelscope_hub 0.1.0-0.1.6 (owner/name)";

  // The classic layouts 2-7, in probe order: ROOT + middle + owner/ + name
  // (escaped with "___", or as given for the dotted ones).
  struct ClassicLayout {
    const char* middle;
    bool dotted;  // the unescaped name: probed only when it differs from the escaped one
    const char* layout;
  };
  static constexpr ClassicLayout classic_layouts[] = {
      {"/models/", false, layout_models}, {"/hub/models/", false, layout_models},
      {"/hub/", false, layout_hub},       {"/hub/", true, layout_hub_dotted},
      {"/", false, layout_flat},          {"/", true, layout_flat_dotted},
  };

  // Builds a classic layout's directory into `out` (reusing its buffer); false
  // for a dotted layout when the name has no dot (it is the escaped one again).
  static bool classic_dir(const ClassicLayout& c, const std::string& root, const ModelId& id, const std::string& escaped,
                          std::string& out) {
    if (c.dotted && escaped == id.name) return false;
    const std::string& name = c.dotted ? id.name : escaped;
    out.clear();
    out.reserve(root.size() + 16 + id.owner.size() + name.size());
    out.append(root).append(c.middle).append(id.owner).append(1, '/').append(name);
    return true;
  }

  // What probing learned besides its verdicts.
  struct ProbeNotes {
    bool permission_problem = false;  // a directory on the way could not be read
    bool foreign = false;             // the directory belongs to another model
  };

  // Python's bookkeeping in a classic model directory; not model files.
  static bool is_bookkeeping(std::string_view name) {
    return name == ".msc" || name == ".mv" || name == ".mdl" || name == ".msc.corrupted" ||
           name == ".mdl.corrupted" || name == "._____temp" || name == detail::manifest_name;
  }

  // A hub file named like the bookkeeping would overwrite it: a hostile .msc
  // is a pickle the Python client would load. Refused before anything is written.
  static result<void> refuse_bookkeeping_names(const ModelId& id, const HubSnapshot& snapshot) {
    for (const HubFile& f : snapshot.files) {
      const std::string_view top = std::string_view(f.path).substr(0, f.path.find('/'));
      if (is_bookkeeping(top))
        return Error(errc::unsafe_file_list, id.str(),
                     "the hub listed '" + detail::printable(f.path) + "', a name the cache keeps for its own metadata; "
                     "nothing was written").with_revision(snapshot.revision);
    }
    return success();
  }
  // What an interrupted download leaves: modelscope_hub's "x.incomplete" and
  // "x.parallel_tmp", and the classic client's temp files "*.tmp".
  static bool is_partial_download(std::string_view name) {
    const auto ends_with = [&](std::string_view s) {
      return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    return ends_with(".incomplete") || ends_with(".parallel_tmp");
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

  // Looks in snapshots/REV. not_cached means "nothing here, go on".
  static result<ResolvedModel> probe_snapshot(const std::string& snapshots, std::string_view revision,
                                              std::vector<Probe>& probes, ProbeNotes& notes) {
    std::string rev(revision.empty() ? default_revision : revision);
    std::string dir = snapshots + "/" + rev;
    detail::FileStatus st;
    if (revision.empty()) {
      // Not pinned: master, else a single other snapshot. Looking at
      // snapshots/ first costs a classic-layout hit one syscall, not two.
      std::vector<detail::DirEntry> revs;
      const std::error_code listed = detail::list_directory(snapshots, revs);
      if (listed) {
        st.error = listed;
      } else {
        std::vector<std::string> names;
        for (const auto& e : revs)
          if (e.is_directory) names.push_back(e.name);
        const bool has_master = std::find(names.begin(), names.end(), rev) != names.end();
        if (!has_master && names.size() == 1) {
          rev = names.front();
          dir = snapshots + "/" + rev;
        } else if (!has_master && names.size() > 1) {
          std::string all;
          for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
          probes.push_back({dir, "does not exist; snapshots of revisions " + all + " do: pass a revision"});
          return Error(errc::not_cached, {});
        }
        st = detail::status(dir);
      }
    } else {
      st = detail::status(dir);
    }
    if (!st.exists()) {
      if (st.error == std::errc::permission_denied) notes.permission_problem = true;
      probes.push_back({dir, st.missing() ? "does not exist" : st.error.message()});
      return Error(errc::not_cached, {});
    }
    if (!st.is_directory) {
      probes.push_back({dir, "not a directory"});
      return Error(errc::not_cached, {});
    }
    std::vector<detail::WalkedFile> files;
    if (auto ec = detail::walk_files(dir, files)) {
      probes.push_back({dir, "cannot be read: " + ec.message()});
      const errc code = ec == std::errc::permission_denied ? errc::permission_denied : errc::io_error;
      return Error(code, {}, "cannot list " + dir).with_cause(ec);
    }
    if (files.empty()) {
      probes.push_back({dir, "empty"});
      return Error(errc::not_cached, {});
    }
    std::vector<std::string> partial;
    for (const auto& f : files)
      if (is_partial_download(f.path)) partial.push_back(f.path);
    if (!partial.empty()) {
      probes.push_back({dir, "holds partial downloads"});
      return Error(errc::incomplete, {}, "interrupted download, partial files: " + detail::join_limited(partial));
    }
    probes.push_back({dir, "found"});
    ResolvedModel m;
    m.directory = dir;
    m.revision = rev;
    m.layout = layout_snapshots;
    m.completeness = Completeness::unknown;  // this layout keeps no record of the file list
    m.files.reserve(files.size());
    for (auto& f : files) m.files.push_back({std::move(f.path), {}, f.size});
    return m;
  }

  // Looks in a classic directory. `id` (if given) must match what .mdl says.
  // not_cached means "nothing here, go on". `list_unrecorded`: walk a directory
  // without a file record to list its files and find partial downloads (cache
  // directories), or take it as it is (a directory given by path, which may be large).
  static result<ResolvedModel> probe_classic(const std::string& dir, const char* layout, const ModelId* id,
                                             std::string_view revision, std::vector<Probe>& probes,
                                             ProbeNotes& notes, bool list_unrecorded = true) {
    std::string bytes;
    // Our manifest, where a modelres download left one: the hub's whole file list.
    const std::string manifest_path = dir + "/" + detail::manifest_name;
    const std::error_code manifest_error = detail::read_file(manifest_path, bytes, max_metadata_bytes);
    if (!manifest_error) return probe_manifest(dir, manifest_path, bytes, layout, id, revision, probes, notes);
    if (manifest_error != std::errc::no_such_file_or_directory && manifest_error != std::errc::not_a_directory) {
      probes.push_back({manifest_path, "cannot be read: " + manifest_error.message()});
      if (manifest_error == std::errc::permission_denied)
        return Error(errc::permission_denied, {}, "cannot read " + manifest_path).with_cause(manifest_error);
    }
    const std::string msc_path = dir + "/.msc";
    std::error_code msc_error = detail::read_file(msc_path, bytes, max_metadata_bytes);
    const bool has_msc = !msc_error;
    if (msc_error == std::errc::not_a_directory || msc_error == std::errc::no_such_file_or_directory) {
      const detail::FileStatus st = detail::status(dir);
      if (!st.exists()) {
        if (st.error == std::errc::permission_denied) notes.permission_problem = true;
        probes.push_back({dir, st.missing() ? "does not exist" : st.error.message()});
        return Error(errc::not_cached, {});
      }
      if (!st.is_directory) {
        probes.push_back({dir, "not a directory"});
        return Error(errc::not_cached, {});
      }
      bytes.clear();
      msc_error = {};
    } else if (msc_error) {
      probes.push_back({msc_path, "cannot be read: " + msc_error.message()});
      const errc code = msc_error == std::errc::permission_denied ? errc::permission_denied
                        : msc_error == std::errc::file_too_large ? errc::corrupt_metadata
                                                                  : errc::io_error;
      return Error(code, {}, "cannot read " + msc_path).with_cause(msc_error);
    }

    // .mdl names the model the directory belongs to.
    std::string model_id;
    {
      std::string mdl;
      const std::string mdl_path = dir + "/.mdl";
      if (const std::error_code ec = detail::read_file(mdl_path, mdl, max_metadata_bytes); !ec) {
        auto doc = detail::pickle::read(mdl);
        if (!doc) {
          probes.push_back({mdl_path, "unreadable"});
          return std::move(doc).error().in_file(mdl_path);
        }
        const auto& root = doc.value().root_node();
        const std::string* recorded = root.type == detail::pickle::kind::dict ? doc.value().find_string(root, "id") : nullptr;
        if (!recorded) {
          probes.push_back({mdl_path, "unreadable"});
          return Error(errc::corrupt_metadata, {}, mdl_path + ": expected a dict with a string 'id'");
        }
        if (id && *recorded != id->owner + "/" + escape_name(id->name)) {
          probes.push_back({dir, "belongs to model " + *recorded + " (per .mdl)"});
          notes.foreign = true;
          return Error(errc::not_cached, {});
        }
        const std::size_t slash = recorded->find('/');
        model_id = slash == std::string::npos ? *recorded
                                              : recorded->substr(0, slash + 1) + unescape_name(recorded->substr(slash + 1));
      }
    }

    std::vector<CachedFile> recorded_files;
    if (!bytes.empty()) {
      auto doc = detail::pickle::read(bytes);
      if (!doc) {
        probes.push_back({msc_path, "unreadable"});
        return std::move(doc).error().in_file(msc_path);
      }
      MODELRES_TRY(files, parse_msc(doc.value(), msc_path));
      recorded_files = std::move(files);
    }

    if (recorded_files.empty()) {
      // No record of files: either Python's leftovers only, or files without
      // metadata (a copy, git clone, modelscope_hub 0.1.0-0.1.6).
      std::vector<detail::DirEntry> entries;
      if (auto ec = detail::list_directory(dir, entries)) {
        probes.push_back({dir, "cannot be read: " + ec.message()});
        if (ec == std::errc::permission_denied) notes.permission_problem = true;
        return Error(errc::not_cached, {});
      }
      const bool has_content = std::any_of(entries.begin(), entries.end(),
                                           [](const detail::DirEntry& e) { return !is_bookkeeping(e.name); });
      if (!has_content) {
        probes.push_back({dir, entries.empty() ? "empty" : "holds only the Python client's bookkeeping, no model files"});
        return Error(errc::not_cached, {});
      }
      // For an owner named like a layout directory ("models/x", "hub/x") a flat
      // probe can land on another layout's owner directory: its subdirectories
      // are models with their own metadata, and it is not a model itself.
      for (const auto& e : entries) {
        if (!e.is_directory || is_bookkeeping(e.name)) continue;
        const std::string sub = dir + "/" + e.name;
        if (detail::status(sub + "/.msc").exists() || detail::status(sub + "/.mdl").exists()) {
          probes.push_back({dir, "holds other models' directories (" + e.name + "), not a model"});
          notes.foreign = true;
          return Error(errc::not_cached, {});
        }
      }
      // The client's own record says no file finished downloading: its
      // local_files_only refuses this directory ("Cannot find the requested
      // files in the cached path"), and so does modelres. Without any .msc the
      // files came from elsewhere (a copy, git clone) and are served, unverified.
      if (has_msc) {
        probes.push_back({dir, ".msc records no finished file; the Python client does not serve it either"});
        return Error(errc::not_cached, {});
      }
      std::vector<detail::WalkedFile> walked;
      if (!list_unrecorded) {
        // walked stays empty
      } else if (auto ec = detail::walk_files(dir, walked)) {
        probes.push_back({dir, "cannot be read: " + ec.message()});
        return Error(ec == std::errc::permission_denied ? errc::permission_denied : errc::io_error, {}, "cannot list " + dir)
            .with_cause(ec);
      }
      std::vector<std::string> partial;
      ResolvedModel m;
      for (auto& f : walked) {
        const std::string_view first = std::string_view(f.path).substr(0, f.path.find('/'));
        if (is_bookkeeping(first)) continue;
        if (is_partial_download(f.path)) partial.push_back(f.path);
        m.files.push_back({std::move(f.path), {}, f.size});
      }
      if (!partial.empty()) {
        probes.push_back({dir, "holds partial downloads"});
        return Error(errc::incomplete, {}, "interrupted download, partial files: " + detail::join_limited(partial));
      }
      std::string version = read_version(dir);
      MODELRES_TRYV(check_revision(dir, revision, version, probes));
      probes.push_back({dir, "found, without a record of its files"});
      m.directory = dir;
      m.model_id = model_id;
      m.revision = std::move(version);
      m.layout = layout;
      m.completeness = Completeness::unknown;
      return m;
    }

    // Every file the record lists must be on disk.
    std::vector<std::string> missing;
    for (CachedFile& f : recorded_files) {
      const detail::FileStatus st = detail::status(dir + "/" + f.path);
      if (st.exists() && st.is_regular)
        f.size = st.size;
      else
        missing.push_back(f.path);
    }
    if (!missing.empty()) {
      probes.push_back({dir, std::to_string(missing.size()) + " of " + std::to_string(recorded_files.size()) +
                                 " recorded files missing"});
      return Error(errc::incomplete, {}, "missing files recorded in .msc: " + detail::join_limited(missing));
    }
    const std::string version = read_version(dir);
    MODELRES_TRYV(check_revision(dir, revision, version, probes));
    probes.push_back({dir, "found"});
    ResolvedModel m;
    m.directory = dir;
    m.model_id = model_id;
    m.revision = version;
    m.layout = layout;
    m.files = std::move(recorded_files);
    // .mv is written after the last file of a snapshot: without it the download never finished.
    m.completeness = version.empty() ? Completeness::unknown : Completeness::verified;
    return m;
  }

  static result<ResolvedModel> probe_manifest(const std::string& dir, const std::string& path, const std::string& bytes,
                                              const char* layout, const ModelId* id, std::string_view revision,
                                              std::vector<Probe>& probes, ProbeNotes& notes) {
    auto parsed = detail::read_manifest(bytes, path);
    if (!parsed) {
      probes.push_back({path, "unreadable"});
      return std::move(parsed).error();
    }
    detail::Manifest& man = parsed.value();
    if (id && man.model != id->str()) {
      probes.push_back({dir, "belongs to model " + detail::printable(man.model) + " (per .modelres)"});
      notes.foreign = true;
      return Error(errc::not_cached, {});
    }
    if (man.downloading) {
      probes.push_back({dir, "a download into it has not finished"});
      return Error(errc::incomplete, {}, "a modelres download of revision " + detail::printable(man.snapshot.revision) +
                                             " into " + dir + " has not finished (or was interrupted)");
    }
    std::vector<std::string> missing;
    ResolvedModel m;
    for (HubFile& f : man.snapshot.files) {
      const detail::FileStatus st = detail::status(dir + "/" + f.path);
      if (!st.exists() || !st.is_regular)
        missing.push_back(f.path);
      else if (st.size != f.size)
        missing.push_back(f.path + " (" + std::to_string(st.size) + " bytes, not " + std::to_string(f.size) + ")");
      m.files.push_back({std::move(f.path), std::move(f.revision), f.size});
    }
    if (!missing.empty()) {
      probes.push_back({dir, std::to_string(missing.size()) + " of " + std::to_string(m.files.size()) + " files missing or changed"});
      return Error(errc::incomplete, {}, "missing or changed files recorded in .modelres: " + detail::join_limited(missing));
    }
    MODELRES_TRYV(check_revision(dir, revision, man.snapshot.revision, probes));
    // Written without waiting for the disk, and the machine restarted since:
    // the files may not be what was verified. Served, but not as verified.
    const bool trusted = man.unsynced_boot.empty() || detail::same_boot(man.unsynced_boot);
    probes.push_back({dir, trusted ? "found" : "found; written without syncing (Durability::until_restart) before a restart, "
                                               "so not proven complete until an online resolve hashes it again"});
    m.directory = dir;
    m.model_id = man.model;
    m.revision = man.snapshot.revision;
    m.layout = layout;
    m.completeness = trusted ? Completeness::verified : Completeness::unknown;
    return m;
  }

  static result<std::vector<CachedFile>> parse_msc(detail::pickle::Document& doc, const std::string& path) {
    using detail::pickle::kind;
    const auto& root = doc.root_node();
    if (root.type != kind::list) return Error(errc::corrupt_metadata, {}, path + ": expected a list of file records");
    std::vector<CachedFile> files;
    files.reserve(root.items.size());
    for (std::uint32_t item : root.items) {
      const auto& entry = doc.at(item);
      CachedFile f;
      if (entry.type != kind::dict || !doc.take_string(entry, "Path", f.path))
        return Error(errc::corrupt_metadata, {}, path + ": a record has no string 'Path'");
      if (!detail::is_safe_relative_path(f.path))
        return Error(errc::corrupt_metadata, {},
                     path + ": recorded path '" + detail::printable(f.path) + "' would leave the model directory");
      doc.take_string(entry, "Revision", f.revision);
      files.push_back(std::move(f));
    }
    return files;
  }

  // The revision in .mv: "Revision:master,CreatedAt:1713419382" for models,
  // the bare revision for datasets. Empty if there is no .mv.
  static std::string read_version(const std::string& dir) {
    std::string text;
    if (detail::read_file(dir + "/.mv", text, 4096)) return {};
    // Python reads it back with str.strip().
    const auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
    while (!text.empty() && is_space(text.back())) text.pop_back();
    std::size_t lead = 0;
    while (lead < text.size() && is_space(text[lead])) ++lead;
    text.erase(0, lead);
    const std::string_view key = "Revision:";
    if (text.compare(0, key.size(), key) == 0) {
      const std::size_t comma = text.find(",CreatedAt:");
      return text.substr(key.size(), comma == std::string::npos ? std::string::npos : comma - key.size());
    }
    return text;
  }

  static result<void> check_revision(const std::string& dir, std::string_view wanted, const std::string& recorded,
                                     std::vector<Probe>& probes) {
    if (wanted.empty() || wanted == recorded) return success();
    if (recorded.empty()) {
      probes.push_back({dir, "records no revision"});
      return Error(errc::revision_mismatch, {},
                   "the cache at " + dir + " records no revision, so it cannot be shown to hold " + std::string(wanted));
    }
    probes.push_back({dir, "holds revision " + recorded});
    return Error(errc::revision_mismatch, {}, "the cache at " + dir + " holds revision " + recorded);
  }

  std::filesystem::path explicit_root_;
};

}  // namespace modelres
