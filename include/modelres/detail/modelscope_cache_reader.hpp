// How modelres reads the Python modelscope client's cache, layout by layout
// (caches/modelscope_cache.hpp lists them): each probe looks in one
// directory and says what it holds, or not_cached to go on to the next.
// Read-only: nothing here writes, locks or moves anything.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../durability.hpp"
#include "../error.hpp"
#include "../hub_snapshot.hpp"
#include "../model_ref.hpp"
#include "../resolved_model.hpp"
#include "../result.hpp"
#include "cache_support.hpp"
#include "fs.hpp"
#include "manifest.hpp"
#include "pickle.hpp"

namespace modelres::detail::modelscope {

inline constexpr std::string_view default_revision = "master";
// Metadata files larger than this are refused (a 100,000-file .msc is ~10 MB).
inline constexpr std::size_t max_metadata_bytes = 64u << 20;

// The ModelScope client's directory-name escaping: every '.' becomes "___".
inline std::string escape_name(std::string_view name) {
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
inline std::string unescape_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (std::size_t from = 0;;) {
    const std::size_t at = name.find("___", from);
    out.append(name.substr(from, at - from));
    if (at == std::string_view::npos) return out;
    out += '.';
    from = at + 3;
  }
}
// Whether `recorded` is "owner/" + escape_name(name), without building it.
inline bool is_escaped_id(std::string_view recorded, std::string_view owner, std::string_view name) {
  if (recorded.size() <= owner.size() || recorded.substr(0, owner.size()) != owner || recorded[owner.size()] != '/')
    return false;
  recorded.remove_prefix(owner.size() + 1);
  for (char c : name) {
    const std::string_view want = c == '.' ? std::string_view("___") : std::string_view(&c, 1);
    if (recorded.substr(0, want.size()) != want) return false;
    recorded.remove_prefix(want.size());
  }
  return recorded.empty();
}

inline constexpr const char* layout_snapshots = "modelscope >= 1.38 (models/owner--name/snapshots/revision)";
inline constexpr const char* layout_models = "modelscope 1.23-1.37 (models/owner/name___)";
inline constexpr const char* layout_hub = "modelscope 1.15-1.22 (hub/owner/name___)";
inline constexpr const char* layout_hub_dotted = "modelscope <= 1.11 (hub/owner/name)";
inline constexpr const char* layout_flat = "modelscope <= 1.14 or cache_dir (owner/name___)";
inline constexpr const char* layout_flat_dotted = "modelscope <= 1.11 or modelscope_hub 0.1.0-0.1.6 (owner/name)";

// The classic layouts 2-7, in probe order: ROOT + middle + owner/ + name
// (escaped with "___", or as given for the dotted ones).
struct ClassicLayout {
  const char* middle;
  bool dotted;  // the unescaped name: probed only when it differs from the escaped one
  const char* layout;
};
inline constexpr ClassicLayout classic_layouts[] = {
    {"/models/", false, layout_models}, {"/hub/models/", false, layout_models},
    {"/hub/", false, layout_hub},       {"/hub/", true, layout_hub_dotted},
    {"/", false, layout_flat},          {"/", true, layout_flat_dotted},
};

// Builds a classic layout's directory into `out` (reusing its buffer); false
// for a dotted layout when the name has no dot (it is the escaped one again).
inline bool classic_dir(const ClassicLayout& c, const std::string& root, const ModelId& id, const std::string& escaped,
                        std::string& out) {
  if (c.dotted && escaped == id.name) return false;
  const std::string& name = c.dotted ? id.name : escaped;
  out.clear();
  out.reserve(root.size() + 16 + id.owner.size() + name.size());
  out.append(root).append(c.middle).append(id.owner).append(1, '/').append(name);
  return true;
}

// Whether the directories a layout's path goes through (ROOT/models, ROOT/hub,
// ROOT/hub/models) exist, each stat'ed at most once per lookup, so that a cache
// lacking ROOT/hub rules out the three layouts below it with one syscall
// instead of three failed probes of three each: a layout probed late then
// costs what one probed early does. Only a directory known to be missing
// rules a layout out; anything else (unreadable, not a directory) is left to
// the probe, which says what is wrong.
class LayoutGates {
 public:
  explicit LayoutGates(const std::string& root) : root_(root) {}

  // False when `middle` (a ClassicLayout's, or "/models/") names a directory that does not exist.
  bool may_hold(std::string_view middle) {
    for (std::size_t slash = middle.find('/', 1); slash != std::string_view::npos; slash = middle.find('/', slash + 1))
      if (missing(middle.substr(0, slash))) return false;
    return true;
  }

 private:
  bool missing(std::string_view prefix) {
    for (std::size_t i = 0; i < count_; ++i)
      if (known_[i].first == prefix) return known_[i].second;
    const bool is_missing = detail::status(detail::concat({root_, prefix})).error == std::errc::no_such_file_or_directory;
    if (count_ < known_.size()) known_[count_++] = {prefix, is_missing};
    return is_missing;
  }
  const std::string& root_;
  std::array<std::pair<std::string_view, bool>, 4> known_;  // /models, /hub, /hub/models: views of string literals
  std::size_t count_ = 0;
};

// What probing learned besides its verdicts.
struct ProbeNotes {
  bool permission_problem = false;  // a directory on the way could not be read
  bool foreign = false;             // the directory belongs to another model
};

// Python's bookkeeping in a classic model directory; not model files.
inline bool is_bookkeeping(std::string_view name) {
  return name == ".msc" || name == ".mv" || name == ".mdl" || name == ".msc.corrupted" ||
         name == ".mdl.corrupted" || name == "._____temp" || name == detail::manifest_name;
}

// What an interrupted download leaves: modelscope_hub's "x.incomplete" and
// "x.parallel_tmp", and the classic client's temp files "*.tmp".
inline bool is_partial_download(std::string_view name) {
  const auto ends_with = [&](std::string_view s) {
    return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends_with(".incomplete") || ends_with(".parallel_tmp");
}

// A directory a probe looks in (`st` its status): not_cached, with the
// verdict, unless it is one; an unreadable one is noted.
inline result<void> require_probed_directory(const std::string& dir, const FileStatus& st, std::vector<Probe>& probes,
                                             ProbeNotes& notes) {
  if (!st.exists()) {
    if (st.error == std::errc::permission_denied) notes.permission_problem = true;
    probes.push_back({dir, st.missing() ? "does not exist" : st.error.message()});
    return Error(errc::not_cached, {});
  }
  if (!st.is_directory) {
    probes.push_back({dir, "not a directory"});
    return Error(errc::not_cached, {});
  }
  return success();
}

// Looks in snapshots/REV. not_cached means "nothing here, go on".
inline result<ResolvedModel> probe_snapshot(const std::string& snapshots, std::string_view revision,
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
  MODELRES_TRYV(require_probed_directory(dir, st, probes, notes));
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

inline result<std::vector<CachedFile>> parse_msc(detail::pickle::Document& doc, const std::string& path) {
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
inline std::string read_version(const std::string& dir) {
  std::string text;
  if (detail::read_file(detail::concat({dir, "/.mv"}), text, 4096)) return {};
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

inline result<void> check_revision(const std::string& dir, std::string_view wanted, const std::string& recorded,
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

// A directory holding our manifest: the hub's whole file list, each file
// checked on disk with its size.
inline result<ResolvedModel> probe_manifest(const std::string& dir, const std::string& path, const std::string& bytes,
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

// The model a classic directory belongs to, as its .mdl names it (dots
// unescaped); empty without a .mdl. Another model's directory (`id` given and
// different) is not_cached, marked foreign.
inline result<std::string> read_model_id(const std::string& dir, const ModelId* id, std::vector<Probe>& probes,
                                         ProbeNotes& notes) {
  std::string mdl;
  const std::string mdl_path = detail::concat({dir, "/.mdl"});
  if (detail::read_file(mdl_path, mdl, max_metadata_bytes)) return std::string();
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
  if (id && !is_escaped_id(*recorded, id->owner, id->name)) {
    probes.push_back({dir, "belongs to model " + *recorded + " (per .mdl)"});
    notes.foreign = true;
    return Error(errc::not_cached, {});
  }
  const std::size_t slash = recorded->find('/');
  return slash == std::string::npos ? *recorded : recorded->substr(0, slash + 1) + unescape_name(recorded->substr(slash + 1));
}

// A classic directory with no record of its files: either Python's leftovers
// only, or files without metadata (a copy, git clone, modelscope_hub
// 0.1.0-0.1.6). `has_msc`: a .msc is there, recording nothing.
inline result<ResolvedModel> probe_unrecorded(const std::string& dir, const char* layout, std::string model_id, bool has_msc,
                                              std::string_view revision, std::vector<Probe>& probes, ProbeNotes& notes,
                                              bool list_unrecorded) {
  std::vector<detail::DirEntry> entries;
  if (auto ec = detail::list_directory(dir, entries)) {
    probes.push_back({dir, "cannot be read: " + ec.message()});
    if (ec == std::errc::permission_denied) notes.permission_problem = true;
    return Error(errc::not_cached, {});
  }
  // Our manifest half-written and none in place: a modelres download is
  // starting here (the manifest comes before any file), not a model to serve.
  const std::string manifest_temporary = std::string(detail::manifest_name) + ".tmp";
  if (std::any_of(entries.begin(), entries.end(),
                  [&](const detail::DirEntry& e) { return e.name.rfind(manifest_temporary, 0) == 0; })) {
    probes.push_back({dir, "a modelres download is starting (its manifest is being written)"});
    return Error(errc::incomplete, {}, "a download into " + dir + " is starting");
  }
  const bool has_content =
      std::any_of(entries.begin(), entries.end(), [](const detail::DirEntry& e) { return !is_bookkeeping(e.name); });
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
  if (list_unrecorded) {
    if (auto ec = detail::walk_files(dir, walked)) {
      probes.push_back({dir, "cannot be read: " + ec.message()});
      return Error(ec == std::errc::permission_denied ? errc::permission_denied : errc::io_error, {}, "cannot list " + dir)
          .with_cause(ec);
    }
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
  m.model_id = std::move(model_id);
  m.revision = std::move(version);
  m.layout = layout;
  m.completeness = Completeness::unknown;
  return m;
}

// Looks in a classic directory: our manifest if there is one, else Python's
// .msc record of finished files. `id` (if given) must match what .mdl says.
// not_cached means "nothing here, go on". `list_unrecorded`: walk a directory
// without a file record to list its files and find partial downloads (cache
// directories), or take it as it is (a directory given by path, which may be large).
inline result<ResolvedModel> probe_classic(const std::string& dir, const char* layout, const ModelId* id,
                                           std::string_view revision, std::vector<Probe>& probes,
                                           ProbeNotes& notes, bool list_unrecorded = true) {
  std::string bytes;
  const std::string manifest_path = detail::concat({dir, "/", detail::manifest_name});
  const std::error_code manifest_error = detail::read_file(manifest_path, bytes, max_metadata_bytes);
  if (!manifest_error) return probe_manifest(dir, manifest_path, bytes, layout, id, revision, probes, notes);
  if (manifest_error != std::errc::no_such_file_or_directory && manifest_error != std::errc::not_a_directory) {
    probes.push_back({manifest_path, "cannot be read: " + manifest_error.message()});
    if (manifest_error == std::errc::permission_denied)
      return Error(errc::permission_denied, {}, "cannot read " + manifest_path).with_cause(manifest_error);
  }
  const std::string msc_path = detail::concat({dir, "/.msc"});
  const std::error_code msc_error = detail::read_file(msc_path, bytes, max_metadata_bytes);
  const bool has_msc = !msc_error;
  if (msc_error == std::errc::not_a_directory || msc_error == std::errc::no_such_file_or_directory) {
    MODELRES_TRYV(require_probed_directory(dir, detail::status(dir), probes, notes));
    bytes.clear();
  } else if (msc_error) {
    probes.push_back({msc_path, "cannot be read: " + msc_error.message()});
    const errc code = msc_error == std::errc::permission_denied ? errc::permission_denied
                      : msc_error == std::errc::file_too_large ? errc::corrupt_metadata
                                                                : errc::io_error;
    return Error(code, {}, "cannot read " + msc_path).with_cause(msc_error);
  }
  MODELRES_TRY(model_id, read_model_id(dir, id, probes, notes));

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
  if (recorded_files.empty())
    return probe_unrecorded(dir, layout, std::move(model_id), has_msc, revision, probes, notes, list_unrecorded);

  // Every file the record lists must be on disk.
  std::vector<std::string> missing;
  std::string file_path = detail::concat({dir, "/"});  // one buffer for every file's path
  const std::size_t dir_length = file_path.size();
  for (CachedFile& f : recorded_files) {
    file_path.resize(dir_length);
    file_path += f.path;
    const detail::FileStatus st = detail::status(file_path);
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
  m.model_id = std::move(model_id);
  m.revision = version;
  m.layout = layout;
  m.files = std::move(recorded_files);
  // .mv is written after the last file of a snapshot: without it the download never finished.
  m.completeness = version.empty() ? Completeness::unknown : Completeness::verified;
  return m;
}

}  // namespace modelres::detail::modelscope
