// verify(): re-hashes a cached model's files, offline, against what is known
// of them: modelres's manifest (sha256 per file), Hugging Face's cached tree
// (lfs_sha256, git blob ids) and blob names (huggingface_hub names each blob by
// its content's hash). Nothing is written; a read-only root verifies too.
//
//   auto report = modelres::verify(modelres::HuggingFaceCache(), id);
//   if (report && !report.value().passed()) ...  // report.value().files names each mismatch
//
// A file nothing records a hash for (a ModelScope cache only the Python
// client wrote keeps none) is `unchecked`, never counted as matched. Needs
// libcrypto: part of the modelres::online component.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "caches/cache_traits.hpp"
#include "detail/digest.hpp"
#include "detail/fs.hpp"
#include "fetcher.hpp"
#include "hub_snapshot.hpp"
#include "lock_file.hpp"
#include "model_ref.hpp"
#include "resolved_model.hpp"
#include "result.hpp"

namespace modelres {

enum class FileState {
  matched,     // the bytes hash to what is recorded
  mismatched,  // they do not (or the file is not the recorded size)
  missing,     // the file cannot be read
  unchecked,   // nothing records a hash for it
};

inline const char* to_string(FileState s) noexcept {
  switch (s) {
    case FileState::matched: return "matched";
    case FileState::mismatched: return "mismatched";
    case FileState::missing: return "missing";
    case FileState::unchecked: return "unchecked";
  }
  return "unknown";
}

struct FileVerdict {
  std::string path;         // relative to the model directory
  std::uint64_t size = 0;   // bytes on disk
  FileState state = FileState::unchecked;
  std::string check;        // "sha256" or "git blob sha1"; empty when unchecked
  std::string expected;     // the recorded hash
  std::string actual;       // what the bytes hash to (mismatched, matched)
};

struct Verification {
  ResolvedModel model;
  std::vector<FileVerdict> files;

  std::size_t count(FileState s) const {
    std::size_t n = 0;
    for (const FileVerdict& f : files) n += f.state == s;
    return n;
  }
  // No file mismatched or missing (unchecked files are reported, not failed).
  bool passed() const { return count(FileState::mismatched) == 0 && count(FileState::missing) == 0; }
};

// Bytes hashed: this file's and all files' of one verify().
using VerifyProgress = FetchProgress;

namespace detail {

// Hashes one file against `known` (its sha256, else its git blob id), reporting bytes as they go.
inline FileVerdict verify_file(const ResolvedModel& m, const CachedFile& f, const HubFile* known, std::uint64_t& done,
                               std::uint64_t total, const std::function<void(const VerifyProgress&)>& progress) {
  FileVerdict v;
  v.path = f.path;
  v.size = f.size;
  if (!known || (known->sha256.empty() && known->git_oid.empty())) {
    done += f.size;
    return v;
  }
  ContentCheck check(known->sha256, known->git_oid, f.size);
  v.check = check.name();
  v.expected = check.expected();
  const std::string path = (m.directory / f.path).native();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    v.state = FileState::missing;
    done += f.size;
    return v;
  }
  std::uint64_t fed = 0;
  const bool read = feed_file(fd, check, UINT64_MAX, 0, [&](std::uint64_t so_far) {
    fed = so_far;
    if (progress) progress({f.path, fed, f.size, done + fed, total});
  });
  ::close(fd);
  done += f.size;
  if (!read) {
    v.state = FileState::missing;
    return v;
  }
  v.actual = check.hex();
  v.state = v.actual == v.expected && (known->size == 0 || fed == known->size) ? FileState::matched : FileState::mismatched;  // 0: the hub did not say
  return v;
}

// Every file of `m` hashed against `known`, matched by path.
inline Verification verify_against(ResolvedModel m, const std::vector<HubFile>& known,
                                   const std::function<void(const VerifyProgress&)>& progress) {
  std::unordered_map<std::string_view, const HubFile*> by_path;
  for (const HubFile& k : known) by_path.emplace(k.path, &k);
  std::uint64_t total = 0, done = 0;
  for (const CachedFile& f : m.files) total += f.size;
  Verification out;
  for (const CachedFile& f : m.files) {
    const auto it = by_path.find(f.path);
    out.files.push_back(verify_file(m, f, it == by_path.end() ? nullptr : it->second, done, total, progress));
  }
  out.model = std::move(m);
  return out;
}

}  // namespace detail

// Every file of `m` (found by the cache's locate, or its inspect of a
// directory given by path) hashed against what the cache records of it.
template <class Cache>
Verification verify(const Cache& cache, ResolvedModel m, const std::function<void(const VerifyProgress&)>& progress = {}) {
  static_assert(cache_has_recorded_checks<Cache>::value,
                "modelres: verify() needs a cache that says what it records of a model's files: "
                "`std::vector<HubFile> recorded_checks(const ResolvedModel&) const` (see docs/traits.md)");
  const std::vector<HubFile> known = cache.recorded_checks(m);
  return detail::verify_against(std::move(m), known, progress);
}

// Every file of `m` hashed against a lock entry instead: a file the lock
// names that the copy lacks is `missing`, one the lock does not name `unchecked`.
inline Verification verify(ResolvedModel m, const LockedModel& lock, const std::function<void(const VerifyProgress&)>& progress = {}) {
  Verification out = detail::verify_against(std::move(m), lock.files, progress);
  std::unordered_set<std::string_view> held;
  for (const CachedFile& c : out.model.files) held.insert(c.path);
  for (const HubFile& f : lock.files)
    if (!held.count(f.path)) out.files.push_back({f.path, 0, FileState::missing, {}, {}, {}});
  return out;
}

// The model as `cache` serves it (revision empty: not pinned), verified. An
// error only when the cache does not serve the model (not_cached,
// incomplete, ...); a mismatch is a Verification that has not passed().
template <class Cache>
result<Verification> verify(const Cache& cache, const ModelId& id, std::string_view revision = {},
                            const std::function<void(const VerifyProgress&)>& progress = {}) {
  MODELRES_TRY(m, cache.locate(id, revision));
  return verify(cache, std::move(m), progress);
}

}  // namespace modelres
