// Lock files, for deploys that resolve the same bytes on every node: for each
// model, the hub, the id, the revision asked, the commit it was at (where the
// hub names commits: Hugging Face) and every file's path, size and hashes.
// `modelres lock` writes one from the hub's answer; a resolve given an entry
// (ResolveOptions::locked) serves only a copy whose files match it, and online
// fetches exactly those files or fails with errc::lock_mismatch.
//
//   auto lock = modelres::read_lock_file("modelres.lock");
//   modelres::ResolveOptions o;
//   o.locked = *lock.value().find(modelres::Hub::huggingface, "acme/tiny-bert");
//
// The file is JSON (docs/lock-files.md):
//
//   {"modelres_lock": 1, "models": [{"reference": "hf.co/acme/tiny-bert",
//     "hub": "huggingface", "id": "acme/tiny-bert", "revision": "main",
//     "commit": "<40 hex>", "files": [{"path": "config.json", "size": 412,
//     "git_oid": "<40 hex>"}, {"path": "model.safetensors", "size": 200000,
//     "sha256": "<64 hex>", "git_oid": "<40 hex>"}]}]}
//
// ModelScope names no commits: its entries have no "commit", and each file
// records the commit that last changed it ("revision"). Read strictly (it is
// input from a repository): every path safe, every hash hex, no path twice.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "caches/cache_traits.hpp"
#include "detail/cache_support.hpp"
#include "detail/fs.hpp"
#include "detail/json_reader.hpp"
#include "detail/json_writer.hpp"
#include "error.hpp"
#include "hub_snapshot.hpp"
#include "model_ref.hpp"
#include "resolved_model.hpp"
#include "result.hpp"

namespace modelres {

// One model of a lock file.
struct LockedModel {
  std::string reference;  // as it was written to `modelres lock` (for people; entries are found by hub and id)
  Hub hub = Hub::modelscope;
  std::string id;         // owner/name
  std::string revision;   // the revision asked for when locking
  std::string commit;     // the commit it was at; empty where the hub names none (ModelScope)
  std::vector<HubFile> files;  // path, size (0: the hub did not say), sha256 and/or git_oid, revision (ModelScope)

  // What a locked resolve asks the hub and the cache for: the commit, else the revision.
  const std::string& pinned_revision() const { return commit.empty() ? revision : commit; }
};

struct LockFile {
  std::vector<LockedModel> models;

  // The entry for this hub and id, or nullptr.
  const LockedModel* find(Hub hub, std::string_view id) const {
    for (const LockedModel& m : models)
      if (m.hub == hub && m.id == id) return &m;
    return nullptr;
  }
  // The entry for this hub and id, or not_in_lock saying what the lock holds.
  result<LockedModel> entry(Hub hub, std::string_view id) const;
};

inline result<LockedModel> LockFile::entry(Hub hub, std::string_view id) const {
  if (const LockedModel* m = find(hub, id)) return *m;
  std::vector<std::string> held;
  for (const LockedModel& m : models) held.push_back(std::string(to_string(m.hub)) + " " + m.id);
  return Error(errc::not_in_lock, detail::printable(id),
               std::string("the lock file has no ") + to_string(hub) + " entry for it; it locks " +
                   (held.empty() ? std::string("nothing") : detail::join_limited(held)));
}

// A lock file over 64 MiB is not one (100,000 files make about 20 MB).
inline constexpr std::size_t max_lock_file_bytes = 64u << 20;

namespace detail {

// Whether write_lock_file can write `s` (valid UTF-8), so what is read can be written back.
inline bool is_writable(std::string_view s) {
  std::string scratch;
  return json::append_string(scratch, s);
}

inline void append_field(std::string& out, std::string_view key, std::string_view value) {
  out += ", ";
  json::append_string(out, key);
  out += ": ";
  json::append_string(out, value);
}

}  // namespace detail

// The lock file's text: one line per file, so a change of one file is a one-line diff.
inline std::string write_lock_file(const LockFile& lock) {
  std::string out = "{\"modelres_lock\": 1, \"models\": [";
  for (std::size_t i = 0; i < lock.models.size(); ++i) {
    const LockedModel& m = lock.models[i];
    out += i ? ",\n  {" : "\n  {";
    out += "\"reference\": ";
    detail::json::append_string(out, m.reference);
    detail::append_field(out, "hub", to_string(m.hub));
    detail::append_field(out, "id", m.id);
    detail::append_field(out, "revision", m.revision);
    if (!m.commit.empty()) detail::append_field(out, "commit", m.commit);
    out += ", \"files\": [";
    for (std::size_t j = 0; j < m.files.size(); ++j) {
      const HubFile& f = m.files[j];
      out += j ? ",\n    {\"path\": " : "\n    {\"path\": ";
      detail::json::append_string(out, f.path);
      out += ", \"size\": " + std::to_string(f.size);
      if (!f.sha256.empty()) detail::append_field(out, "sha256", f.sha256);
      if (!f.git_oid.empty()) detail::append_field(out, "git_oid", f.git_oid);
      if (!f.revision.empty()) detail::append_field(out, "revision", f.revision);
      out += "}";
    }
    out += m.files.empty() ? "]}" : "\n  ]}";
  }
  out += lock.models.empty() ? "]}\n" : "\n]}\n";
  return out;
}

// Parses a lock file's text; `where` names it in errors (corrupt_metadata, with what is wrong).
inline result<LockFile> parse_lock_file(std::string_view text, const std::string& where) {
  const auto bad = [&](const std::string& why) { return Error(errc::corrupt_metadata, {}, where + ": " + why); };
  auto parsed = detail::json::read(text);
  if (!parsed) return bad("not JSON: " + parsed.error().detail);
  const detail::json::Document& doc = parsed.value();
  const detail::json::Node& root = doc.root();
  const detail::json::Node* version = doc.member(root, "modelres_lock");
  std::uint64_t v = 0;
  if (!version || !detail::json::Document::as_uint(*version, v) || v != 1)
    return bad("not a modelres lock file, or a newer version of one (\"modelres_lock\": 1 expected)");
  const detail::json::Node* models = doc.member(root, "models");
  if (!models || models->type != detail::json::kind::array) return bad("\"models\" must be an array");

  const auto string_of = [&](const detail::json::Node& object, std::string_view key, std::string& out,
                             bool required) -> bool {
    const detail::json::Node* n = doc.member(object, key);
    if (!n) return !required;
    if (n->type != detail::json::kind::string) return false;
    out = std::string(n->text);
    return true;
  };
  LockFile lock;
  for (const detail::json::Node& entry : doc.children(*models)) {
    const std::string at = "model " + std::to_string(lock.models.size() + 1);
    if (entry.type != detail::json::kind::object) return bad(at + " is not an object");
    LockedModel m;
    std::string hub;
    if (!string_of(entry, "reference", m.reference, false) || !string_of(entry, "hub", hub, true) ||
        !string_of(entry, "id", m.id, true) || !string_of(entry, "revision", m.revision, true) ||
        !string_of(entry, "commit", m.commit, false))
      return bad(at + ": \"hub\", \"id\" and \"revision\" must be strings, as \"reference\" and \"commit\" where given");
    if (!parse_hub_name(hub, m.hub)) return bad(at + ": unknown hub '" + detail::printable(hub) + "'");
    if (!detail::is_writable(m.reference) || !detail::is_writable(m.revision)) return bad(at + ": a string is not UTF-8");
    auto id = ModelId::parse(m.id);
    if (!id) return bad(at + ": " + id.error().message());
    if (m.revision.empty() || m.revision.size() > 256) return bad(at + " (" + m.id + "): bad revision");
    if (!m.commit.empty() && !detail::is_lower_hex(m.commit, 40))
      return bad(at + " (" + m.id + "): \"commit\" must be 40 lower-case hex digits");
    if (lock.find(m.hub, m.id)) return bad(m.id + " is locked twice");
    const detail::json::Node* files = doc.member(entry, "files");
    if (!files || files->type != detail::json::kind::array) return bad(at + " (" + m.id + "): \"files\" must be an array");
    std::unordered_map<std::string_view, bool> seen;
    for (const detail::json::Node& file : doc.children(*files)) {
      const std::string in = m.id + ", file " + std::to_string(m.files.size() + 1);
      if (file.type != detail::json::kind::object) return bad(in + " is not an object");
      HubFile f;
      const detail::json::Node* size = doc.member(file, "size");
      if (!string_of(file, "path", f.path, true) || !size || !detail::json::Document::as_uint(*size, f.size) ||
          !string_of(file, "sha256", f.sha256, false) || !string_of(file, "git_oid", f.git_oid, false) ||
          !string_of(file, "revision", f.revision, false))
        return bad(in + ": needs \"path\" (a string) and \"size\" (a whole number)");
      if (!detail::is_safe_relative_path(f.path))
        return bad(in + ": path '" + detail::printable(f.path) + "' would leave the model directory");
      if (!f.sha256.empty() && !detail::is_lower_hex(f.sha256, 64)) return bad(in + " (" + f.path + "): bad sha256");
      if (!f.git_oid.empty() && !detail::is_lower_hex(f.git_oid, 40)) return bad(in + " (" + f.path + "): bad git_oid");
      if (f.revision.size() > 256) return bad(in + " (" + f.path + "): bad revision");
      if (!detail::is_writable(f.path) || !detail::is_writable(f.revision)) return bad(in + ": a string is not UTF-8");
      m.files.push_back(std::move(f));
    }
    for (const HubFile& f : m.files)
      if (!seen.emplace(f.path, true).second) return bad(m.id + ": '" + detail::printable(f.path) + "' is listed twice");
    lock.models.push_back(std::move(m));
  }
  return lock;
}

// Reads and parses the lock file at `path`.
inline result<LockFile> read_lock_file(const std::string& path) {
  std::string bytes;
  if (const std::error_code ec = detail::read_file(path, bytes, max_lock_file_bytes)) {
    const errc code = ec == std::errc::no_such_file_or_directory ? errc::path_not_found
                      : ec == std::errc::permission_denied        ? errc::permission_denied
                                                                  : errc::io_error;
    return Error(code, {}, "cannot read the lock file " + path).with_cause(ec);
  }
  return parse_lock_file(bytes, path);
}

// Writes `lock` to `path` under a temporary name, synced, then renamed over it.
inline result<void> save_lock_file(const LockFile& lock, const std::string& path) {
  if (const std::error_code ec = detail::write_file_atomically(path, write_lock_file(lock)))
    return Error(detail::is_out_of_space(ec) ? errc::disk_full : ec == std::errc::permission_denied ? errc::permission_denied : errc::io_error,
                 {}, "cannot write the lock file " + path)
        .with_cause(ec);
  return success();
}

namespace detail {

// Why `has` is not the locked file `want`, or empty when it is: the same size
// (where the hub said; `exact_size`: `has` is a file on disk, whose size is
// always known), equal hashes where both record one, and at least one proof in
// common: a hash, the commit that last changed the file (ModelScope), or the
// snapshot's own commit (`same_commit`: Hugging Face).
inline std::string differs_from_lock(const HubFile& want, const HubFile& has, bool same_commit, bool exact_size) {
  if (want.size != 0 && (exact_size || has.size != 0) && want.size != has.size)
    return want.path + " (" + std::to_string(has.size) + " bytes, locked " + std::to_string(want.size) + ")";
  bool proven = same_commit;
  if (!want.sha256.empty() && !has.sha256.empty()) {
    if (want.sha256 != has.sha256) return want.path + " (sha256 " + has.sha256 + ", locked " + want.sha256 + ")";
    proven = true;
  }
  if (!want.git_oid.empty() && !has.git_oid.empty()) {
    if (want.git_oid != has.git_oid) return want.path + " (git blob " + has.git_oid + ", locked " + want.git_oid + ")";
    proven = true;
  }
  if (!want.revision.empty() && !has.revision.empty()) {
    const bool same = want.revision.rfind(has.revision, 0) == 0 || has.revision.rfind(want.revision, 0) == 0;
    if (!same) return want.path + " (last changed by " + printable(has.revision) + ", locked " + printable(want.revision) + ")";
    proven = true;
  }
  return proven ? std::string() : want.path + " (nothing recorded of it to compare with the lock)";
}

// The hub's snapshot against a lock entry: every locked file listed, as
// differs_from_lock() says; the files the lock does not name set aside as
// unselected. A difference is lock_mismatch, naming the files.
inline result<void> apply_lock(HubSnapshot& snap, const LockedModel& lock) {
  std::unordered_map<std::string_view, const HubFile*> listed;
  for (const HubFile& f : snap.files) listed.emplace(f.path, &f);
  const bool same_commit = !lock.commit.empty() && snap.commit == lock.commit;
  std::vector<std::string> differ;
  std::vector<HubFile> kept;
  for (const HubFile& want : lock.files) {
    const auto it = listed.find(want.path);
    std::string why = it == listed.end() ? want.path + " (not listed)" : differs_from_lock(want, *it->second, same_commit, false);
    if (!why.empty())
      differ.push_back(std::move(why));
    else
      kept.push_back(*it->second);
  }
  if (!differ.empty())
    return Error(errc::lock_mismatch, lock.id,
                 "the hub's " + printable(lock.pinned_revision()) + " differs from the lock: " + join_limited(differ))
        .with_revision(lock.pinned_revision());
  std::unordered_map<std::string_view, bool> locked;
  for (const HubFile& f : lock.files) locked.emplace(f.path, true);
  for (HubFile& f : snap.files)
    if (!locked.count(f.path)) snap.unselected.push_back(std::move(f));
  snap.files = std::move(kept);
  return success();
}

// A copy the cache found (`m`, with `recorded`, what the cache records of its
// files: Cache::recorded_checks) against a lock entry: every locked file in it,
// as differs_from_lock() says. Files the lock does not name may be there too
// (a lock taken with --include). No file is hashed: `modelres verify --locked` does that.
inline result<void> check_against_lock(const ResolvedModel& m, const std::vector<HubFile>& recorded, const LockedModel& lock) {
  std::unordered_map<std::string_view, const CachedFile*> on_disk;
  for (const CachedFile& f : m.files) on_disk.emplace(f.path, &f);
  std::unordered_map<std::string_view, const HubFile*> known;
  for (const HubFile& f : recorded) known.emplace(f.path, &f);
  const bool same_commit = !lock.commit.empty() && m.commit == lock.commit;
  std::vector<std::string> differ;
  for (const HubFile& want : lock.files) {
    const auto it = on_disk.find(want.path);
    if (it == on_disk.end()) {
      differ.push_back(want.path + " (not in the copy)");
      continue;
    }
    HubFile has;
    has.path = want.path;
    has.size = it->second->size;
    has.revision = it->second->revision;
    if (const auto k = known.find(want.path); k != known.end()) {
      has.sha256 = k->second->sha256;
      has.git_oid = k->second->git_oid;
    }
    std::string why = differs_from_lock(want, has, same_commit, true);
    if (!why.empty()) differ.push_back(std::move(why));
  }
  if (differ.empty()) return success();
  const std::string& held = m.commit.empty() ? m.revision : m.commit;
  return Error(errc::lock_mismatch, lock.id,
               m.directory.native() + (held.empty() ? std::string() : " (" + printable(held) + ")") +
                   " differs from the lock: " + join_limited(differ))
      .with_revision(lock.pinned_revision());
}

// The copy `cache` holds at the lock's commit (else its revision), if its
// files match the lock. A cache holding the model at another revision is
// lock_mismatch, naming it; one holding none, the cache's own error.
template <class Cache>
result<ResolvedModel> locate_locked(const Cache& cache, const ModelId& id, const LockedModel& lock) {
  if (lock.id != id.str())
    return Error(errc::not_in_lock, id.str(), "the lock entry given is for " + printable(lock.id));
  auto m = cache.locate(id, lock.pinned_revision());
  if (!m) {
    if (!(m.error() == errc::not_cached) && !(m.error() == errc::revision_mismatch)) return m;
    auto other = cache.locate(id, {});
    if (!other) return m;
    const ResolvedModel& o = other.value();
    const std::string& held = o.commit.empty() ? o.revision : o.commit;
    return Error(errc::lock_mismatch, id.str(),
                 o.directory.native() + " holds " + (held.empty() ? std::string("a copy of unknown revision") : printable(held)) +
                     ", the lock records " + printable(lock.pinned_revision()))
        .with_revision(lock.pinned_revision());
  }
  std::vector<HubFile> recorded;
  if constexpr (cache_has_recorded_checks<Cache>::value) recorded = cache.recorded_checks(m.value());
  MODELRES_TRYV(check_against_lock(m.value(), recorded, lock));
  return m;
}

}  // namespace detail

}  // namespace modelres
