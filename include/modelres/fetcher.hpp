// Fetcher<Transport>: downloads a set of files safely, for any hub and layout.
//
// Each file streams to PARTIAL_DIR/name.<claim>.incomplete, is hashed while
// it streams (no second read), is checked against the size and the hash the
// hub listed (sha256, or the git blob id), then renamed to FINAL_DIR/name:
// nothing partial is ever visible under a final name. The claim (the writer's
// machine, pid and fetch, detail/process_tag.hpp) makes a partial file one
// process's alone, so correctness never rests on a lock: two processes on a
// network filesystem whose flock locks nothing each write their own file, and
// the last rename leaves a whole, checked file either way. An interrupted
// download rests as PARTIAL_DIR/name.incomplete (the name huggingface_hub
// resumes from too) and the next fetch takes it over by renaming it to its own
// claim: of two processes reaching for it, one gets it. A partial whose writer
// is gone without resting it (killed; its machine rebooted) is taken over the
// same way, once its process is known to be gone (same machine, no such
// pid). `name` is the file's path in the model, or the cache's own name for it
// (Hugging Face's blobs/<etag>).
//
// With Durability::on_disk, writeback starts at once and waiting for the disk
// is left to whoever declares the set complete (each cache's commit syncs
// every file before it writes the manifest), so disk and network overlap. An
// interrupted file resumes, in this run or the next, with Range: only a 206
// whose Content-Range starts where the partial file ends is appended to; a 200
// restarts the file from zero. Failed attempts back off exponentially and
// honour Retry-After (or a RateLimit reset). Files download in parallel (one
// transport each), and a progress callback sees bytes per file and in total.
//
// A file larger than FetchOptions::ranged_threshold, with a listed hash, is
// fetched as byte ranges over every free connection (a CDN or proxy that caps
// each connection would cap a one-stream download of a 50 GB file): ranges
// land in place in PARTIAL_DIR/name.<claim>.ranges.incomplete, a journal beside it
// (detail/range_journal.hpp) lets each range resume in the next run, and a
// hasher follows the prefix written without a gap, so the whole file's hash is
// checked before it is renamed into place. Only a 206 with exactly the asked
// Content-Range and an unchanged ETag is written; a server that answers
// otherwise gets the file in one stream instead. All the transfers of one
// fetch, whole files and ranges, share FetchOptions::parallel connections.
//
// A file may name a lock file another process (the Python client) takes to
// fetch the same bytes: it is held while the file is fetched, and a final file
// that appeared meanwhile is checked and kept. Which hub, which cache layout
// and the model's lock are the caller's (OnlinePolicy): this knows how to
// move files, nothing else.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "detail/digest.hpp"
#include "detail/file_lock.hpp"
#include "detail/fs.hpp"
#include "detail/hub_support.hpp"
#include "detail/process_tag.hpp"
#include "detail/range_journal.hpp"
#include "durability.hpp"
#include "error.hpp"
#include "result.hpp"
#include "transports/transport_traits.hpp"

namespace modelres {

struct FetchItem {
  std::string path;         // the file in the model (progress, errors); relative, checked safe by the hub
  std::uint64_t size = 0;   // expected bytes; checked when the hub listed a hash or a size
  std::string sha256;       // expected lower-case hex; empty: the git blob id, else only the size, is checked
  HttpRequest request;      // how to get it
  std::string git_oid;      // expected git blob id (sha1 of "blob <size>\0" + content), when there is no sha256
  std::string destination;  // its name below the final and partial directories; empty: `path`
  std::string lock_path;    // held while it is fetched (another process may fetch the same bytes); empty: none
};

struct FetchProgress {
  std::string_view path;
  std::uint64_t file_bytes = 0, file_size = 0;    // this file
  std::uint64_t total_bytes = 0, total_size = 0;  // all files of this fetch
};

struct FetchOptions {
  unsigned parallel = 8;  // connections at once, across all files and the ranges of large ones
  // Larger files with a listed hash are fetched as byte ranges over the free
  // connections (each range at least a quarter of this); 0: every file in one stream.
  std::uint64_t ranged_threshold = std::uint64_t(64) << 20;
  unsigned max_attempts = 5;
  std::chrono::milliseconds backoff{500};            // first wait; doubles each attempt
  std::chrono::milliseconds max_backoff{30000};
  std::chrono::milliseconds max_retry_after{120000}; // a longer Retry-After fails at once (rate_limited)
  std::chrono::milliseconds first_byte_timeout{30 * 60 * 1000};  // a cold pull-through mirror
  std::chrono::milliseconds stall_timeout{60000};
  std::chrono::milliseconds lock_timeout{60 * 60 * 1000};  // another process fetching the same model or file
  // on_disk: every file is synced before the model is declared complete, and
  // its writeback starts while it downloads. until_restart: left to the kernel
  // (durability.hpp says what that costs).
  Durability durability = Durability::on_disk;
  std::function<void(const FetchProgress&)> on_progress;  // called from worker threads, one at a time
  const std::atomic<bool>* cancel = nullptr;
};

namespace detail {

// How long to wait after failed attempt `attempt` (1-based): the hub's
// Retry-After if it gave one, else `backoff` doubled per attempt up to
// `max_backoff`; then up to half as long again, at random, so that a fleet
// refused at the same moment (a restart, a 429 storm) does not come back at
// the same moment.
inline std::chrono::milliseconds retry_wait(unsigned attempt, std::chrono::milliseconds retry_after, const FetchOptions& o) {
  const std::chrono::milliseconds doubled = o.backoff * (1 << std::min(attempt == 0 ? 0u : attempt - 1, 16u));
  const std::chrono::milliseconds base = retry_after.count() > 0 ? retry_after : std::min(o.max_backoff, doubled);
  thread_local std::mt19937_64 random(std::random_device{}());
  std::uniform_int_distribution<long long> spread(0, base.count() / 2);
  return base + std::chrono::milliseconds(spread(random));
}

// Sleeps `wait`, waking every 50 ms to see `cancel`; false if it was set.
inline bool sleep_unless_cancelled(std::chrono::milliseconds wait, const std::atomic<bool>* cancel) {
  const auto until = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < until) {
    if (cancel && cancel->load()) return false;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(50), until - std::chrono::steady_clock::now()));
  }
  return true;
}

}  // namespace detail

template <class Transport>
class Fetcher {
  static_assert(check_transport<Transport>());

 public:
  using TransportFactory = std::function<Transport()>;
  // The typed error for a response that is not 200/206 (the hub knows its envelope).
  using StatusError = std::function<Error(const FetchItem&, const ResponseHead&, std::string_view body)>;

  Fetcher(TransportFactory make_transport, StatusError status_error, FetchOptions options = {})
      : make_transport_(std::move(make_transport)), status_error_(std::move(status_error)), options_(std::move(options)) {}

  // Every item into final_dir; fails with the first item's error (by list
  // order) if any failed, the others counted in its detail. Files that did
  // complete stay in place, and partial ones stay for the next run to resume.
  result<void> fetch(const std::vector<FetchItem>& items, const std::string& final_dir, const std::string& partial_dir) {
    static std::atomic<unsigned> fetches{0};
    claim_ = detail::process_tag() + "-" + std::to_string(fetches++);
    find_orphans(items, partial_dir);
    total_size_ = 0;
    total_bytes_ = 0;
    for (const auto& i : items) total_size_ += i.size;
    std::vector<std::optional<Error>> errors(items.size());
    std::atomic<std::size_t> next{0};
    connections_ = std::max(1u, options_.parallel);
    const unsigned workers = static_cast<unsigned>(std::min<std::size_t>(connections_, items.size()));
    busy_ = workers;  // each worker holds a connection until the list is done; ranges use the rest
    const auto work = [&] {
      Transport transport = make_transport_();
      for (std::size_t i = next++; i < items.size(); i = next++) {
        auto r = fetch_one(transport, items[i], final_dir, partial_dir);
        if (!r) errors[i] = std::move(r).error();
      }
      give_connection();
    };
    std::vector<std::thread> threads;
    for (unsigned w = 1; w < workers; ++w) threads.emplace_back(work);
    if (workers > 0) work();
    for (auto& t : threads) t.join();

    std::size_t failed = 0;
    std::optional<Error> first;
    for (auto& e : errors)
      if (e) {
        ++failed;
        if (!first) first = std::move(e);
      }
    if (!first) return success();
    if (failed > 1) first->detail += " (and " + std::to_string(failed - 1) + " more files failed)";
    return std::move(*first);
  }

 private:
  struct Partial {
    int fd = -1;
    ~Partial() {
      if (fd >= 0) ::close(fd);
    }
  };

  static Error file_system_error(const std::string& path, std::error_code ec, const char* doing) {
    const bool full = detail::is_out_of_space(ec) || ec == std::errc::file_too_large;
    return Error(full ? errc::disk_full : errc::io_error, path, std::string(doing) + " " + path).with_cause(ec);
  }

  static bool transient(const Error& e) {
    return e == errc::transfer_interrupted || e == errc::timed_out || e == errc::hub_unreachable;
  }

  // "bytes START-END/TOTAL" must start where the partial file ends (and end at the size, if known).
  static bool content_range_matches(const ResponseHead& head, std::uint64_t have, std::uint64_t size) {
    const std::string* cr = head.header("content-range");
    if (!cr) return false;
    unsigned long long start = 0, end = 0, total = 0;
    if (std::sscanf(cr->c_str(), "bytes %llu-%llu/%llu", &start, &end, &total) != 3) return false;
    return start == have && (size == 0 || (total == size && end + 1 == size));
  }

  // Waits before attempt `attempt` (1-based), or for the hub's Retry-After,
  // with jitter (detail::retry_wait). False if cancelled meanwhile.
  bool wait_before_retry(unsigned attempt, std::chrono::milliseconds retry_after) {
    return detail::sleep_unless_cancelled(detail::retry_wait(attempt, retry_after, options_), options_.cancel);
  }

  void report(const FetchItem& item, std::uint64_t file_bytes, std::uint64_t delta) {
    const std::uint64_t total = total_bytes_ += delta;
    if (!options_.on_progress) return;
    std::lock_guard<std::mutex> lock(progress_mutex_);
    options_.on_progress(FetchProgress{item.path, file_bytes, item.size, total, total_size_});
  }

  // How one attempt at a file ended: the file is whole, checked and in place;
  // or worth another attempt (why, and how long the hub asked us to wait);
  // or an error no retry can fix.
  struct Attempt {
    enum class Outcome { done, retry, fail };
    Outcome outcome = Outcome::done;
    std::optional<Error> error;
    std::chrono::milliseconds retry_after{0};

    static Attempt retry(Error e, std::chrono::milliseconds wait = {}) { return {Outcome::retry, std::move(e), wait}; }
    static Attempt fail(Error e) { return {Outcome::fail, std::move(e), {}}; }
  };

  // One file: under its lock (if it names one), attempts until it is whole and
  // checked, backing off between them.
  result<void> fetch_one(Transport& transport, const FetchItem& item, const std::string& final_dir,
                         const std::string& partial_dir) {
    const std::string& name = name_of(item);
    const std::string stem = partial_dir + "/" + name;  // resting partials: STEM.incomplete, STEM.ranges.*
    const std::string mine = stem + "." + claim_;       // this fetch's: MINE.incomplete, MINE.ranges.*
    const std::string partial_path = mine + ".incomplete";
    const std::string final_path = final_dir + "/" + name;
    if (auto ec = detail::make_directories(parent_of(partial_path))) return file_system_error(partial_path, ec, "cannot create the directory of");
    if (auto ec = detail::make_directories(parent_of(final_path))) return file_system_error(final_path, ec, "cannot create the directory of");

    detail::FileLock lock;
    if (!item.lock_path.empty()) {
      auto locked = detail::FileLock::acquire(item.lock_path, options_.lock_timeout, options_.cancel);
      if (!locked) return std::move(locked).error();
      lock = std::move(locked).value();
      // Whoever held the lock may have fetched it: kept if it checks out.
      const detail::FileStatus st = detail::status(final_path);
      const bool checkable = !item.sha256.empty() || !item.git_oid.empty();
      if (checkable && st.exists() && st.is_regular && st.size == item.size &&
          detail::file_passes(final_path, item.sha256, item.git_oid, item.size)) {
        forget_leftovers(stem);
        report(item, item.size, item.size);
        return success();
      }
    }

    // A file the hub lists as empty, by size and hash, needs no request (the
    // client creates it without one too).
    if (item.size == 0 && (item.sha256 == detail::sha256_of_nothing || (item.sha256.empty() && item.git_oid == detail::git_oid_of_nothing))) {
      if (auto ec = detail::write_file_atomically(final_path, {}, write_behind()))
        return file_system_error(final_path, ec, "cannot create");
      return success();
    }
    std::uint64_t counted = 0;  // bytes of this file already reported to progress
    if (in_ranges(item)) {
      // No answer: the server does not serve ranges as asked; one stream from the start.
      if (auto ranged = fetch_in_ranges(transport, item, stem, mine, final_path, counted)) return std::move(*ranged);
    }
    adopt(stem, ".incomplete", partial_path);
    // What is left of a failed download rests for the next run to resume.
    const auto rest = [&](Error e) -> result<void> {
      struct stat st;
      if (::stat(partial_path.c_str(), &st) != 0 || st.st_size == 0 || ::rename(partial_path.c_str(), (stem + ".incomplete").c_str()) != 0)
        ::unlink(partial_path.c_str());
      return e;
    };
    std::optional<Error> last;
    std::chrono::milliseconds retry_after{0};  // the hub's Retry-After on the last refusal
    for (unsigned attempt = 1; attempt <= options_.max_attempts; ++attempt) {
      if (attempt > 1) {
        if (retry_after > options_.max_retry_after) return rest(std::move(*last));
        if (!wait_before_retry(attempt - 1, retry_after)) return rest(Error(errc::cancelled, item.path, "cancelled"));
      }
      Attempt a = attempt_once(transport, item, partial_path, final_path, counted);
      if (a.outcome == Attempt::Outcome::done) {
        forget_leftovers(stem);  // earlier runs' partials of this file, now useless
        return success();
      }
      if (a.outcome == Attempt::Outcome::fail) return rest(std::move(*a.error));
      last = std::move(a.error);
      retry_after = a.retry_after;
    }
    // Out of attempts: a checksum failure leaves nothing behind.
    if (last && *last == errc::checksum_mismatch) ::unlink(partial_path.c_str());
    Error e = last ? std::move(*last) : Error(errc::io_error, item.path, "no attempt made");
    e.detail += " (after " + std::to_string(options_.max_attempts) + " attempts)";
    return rest(std::move(e));
  }

  // One attempt: resumes the partial file from the longest prefix that still
  // hashes, fetches the rest, checks size and hash, and renames it into place.
  Attempt attempt_once(Transport& transport, const FetchItem& item, const std::string& partial_path,
                       const std::string& final_path, std::uint64_t& counted) {
    Partial file;
    // O_NOFOLLOW: a symlink planted in a shared cache must not redirect our writes.
    file.fd = ::open(partial_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (file.fd < 0) return Attempt::fail(file_system_error(partial_path, detail::last_error(), "cannot open"));
    struct stat st;
    if (::fstat(file.fd, &st) != 0) return Attempt::fail(file_system_error(partial_path, detail::last_error(), "cannot stat"));
    std::uint64_t have = static_cast<std::uint64_t>(st.st_size);
    detail::ContentCheck hash(item.sha256, item.git_oid, item.size);
    if (item.size > 0 && have > item.size) have = 0;  // longer than the file: not ours to trust
    if (have > 0 && !detail::feed_file(file.fd, hash, have)) have = 0;
    // Truncating an empty file is not free: ext4 then flushes the whole file
    // when it is closed (its auto_da_alloc guess at a rewrite).
    if (have == 0 && st.st_size > 0) {
      hash.reset();
      if (::ftruncate(file.fd, 0) != 0) return Attempt::fail(file_system_error(partial_path, detail::last_error(), "cannot truncate"));
    }
    ::lseek(file.fd, static_cast<off_t>(have), SEEK_SET);
    if (have > counted) {
      report(item, have, have - counted);
      counted = have;
    }

    std::uint64_t written = have;
    if (!(item.size > 0 && have == item.size)) {  // a partial that is already whole needs no request
      Attempt received = receive(transport, item, file.fd, partial_path, hash, have, written, counted);
      if (received.outcome != Attempt::Outcome::done) return received;
    }
    if (item.size > 0 && written < item.size)  // the body ended early without an error: resume
      return Attempt::retry(Error(errc::transfer_interrupted, item.path,
                                  "got " + std::to_string(written) + " of " + std::to_string(item.size) + " bytes"));
    if (hash.enabled()) {
      const std::string got = hash.hex();
      if (got != hash.expected()) {
        ::ftruncate(file.fd, 0);
        return Attempt::retry(Error(errc::checksum_mismatch, item.path,
                                    std::string(hash.name()) + " " + got + ", the hub lists " + hash.expected()));
      }
    }
    // Durability is the committer's (it syncs every file before declaring the
    // model complete); starting the writeback now overlaps it with the network.
    if (write_behind()) detail::start_writeback(file.fd);
    if (::rename(partial_path.c_str(), final_path.c_str()) != 0)
      return Attempt::fail(file_system_error(final_path, detail::last_error(), "cannot move into place"));
    return {};
  }

  // Why a whole-file answer (200) cannot be this file, before a byte of it is
  // kept: it declares a length other than the listed size (a captive portal's
  // page, a proxy's error page, a login form, all with 200); empty if it may be.
  static std::string wrong_length(const ResponseHead& head, const FetchItem& item) {
    const std::string* length = head.header("content-length");
    const std::string* encoding = head.header("content-encoding");
    if (!length || item.size == 0 || (encoding && *encoding != "identity")) return {};
    if (length->empty() || length->size() > 19 || length->find_first_not_of("0123456789") != std::string::npos) return {};
    if (std::stoull(*length) == item.size) return {};
    const std::string* type = head.header("content-type");
    return "the answer is " + *length + " bytes" + (type ? " of " + detail::printable(*type, 60) : std::string()) + " where " +
           std::to_string(item.size) + " were listed: not this file (a captive portal, a login page, or an error page from "
           "something in between?)";
  }

  // Requests the bytes from `have` on and appends them to `fd` as they arrive,
  // hashing each chunk once. A 206 that starts where the file ends is
  // appended; a 200 restarts the file; anything else is the hub's error.
  // `done` means the body was received, not yet that it is whole.
  Attempt receive(Transport& transport, const FetchItem& item, int fd, const std::string& partial_path,
                  detail::ContentCheck& hash, std::uint64_t have, std::uint64_t& written, std::uint64_t& counted) {
    HttpRequest req = item.request;
    req.resume_from = have;
    req.first_byte_timeout = options_.first_byte_timeout;
    req.stall_timeout = options_.stall_timeout;
    req.cancel = options_.cancel;
    bool decided = false, appending = false, restarted = false;
    std::uint64_t flushed = have;  // bytes handed to the disk's writeback
    std::error_code write_error;
    std::string error_body, not_the_file;
    auto sent = transport.send(req, [&](const ResponseHead& head, std::string_view chunk) {
      if (!decided) {
        decided = true;
        if (head.status == 200 && (not_the_file = wrong_length(head, item)).size()) return false;
        if (head.status == 206 && have > 0 && content_range_matches(head, have, item.size)) {
          appending = true;
        } else if (head.status == 200) {
          appending = true;
          if (have > 0) {  // the server ignored Range: start over
            restarted = true;
            hash.reset();
            written = 0;
            flushed = 0;
            if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) {
              write_error = detail::last_error();
              return false;
            }
          }
        }
      }
      if (!appending) {
        if (error_body.size() < 65536) error_body.append(chunk.substr(0, 65536 - error_body.size()));
        return true;
      }
      if (item.size > 0 && written + chunk.size() > item.size) {
        write_error = std::make_error_code(std::errc::message_size);  // more bytes than listed
        return false;
      }
      if (auto ec = detail::write_all(fd, chunk)) {
        write_error = ec;
        return false;
      }
      hash.update(chunk);
      written += chunk.size();
      // Hand each 8 MiB to the disk as it arrives, so that the commit's
      // sync finds little left and disk and network overlap throughout.
      if (write_behind() && written - flushed >= (8u << 20)) {
        detail::start_writeback(fd, flushed, written - flushed);
        flushed = written;
      }
      report(item, written, chunk.size());
      counted += chunk.size();
      return true;
    });
    if (restarted) counted = written;  // progress already counted the bytes thrown away; total runs ahead, never back
    if (!not_the_file.empty()) return Attempt::retry(Error(errc::checksum_mismatch, item.path, not_the_file));
    if (write_error == std::errc::message_size) {
      ::ftruncate(fd, 0);
      return Attempt::retry(Error(errc::checksum_mismatch, item.path,
                                  "the hub sent more bytes than the " + std::to_string(item.size) + " it listed"));
    }
    if (write_error) return Attempt::fail(file_system_error(partial_path, write_error, "cannot write"));
    if (!sent) {
      Error e = std::move(sent).error();
      // A transient failure keeps the partial file: the next attempt resumes it.
      return transient(e) ? Attempt::retry(std::move(e)) : Attempt::fail(std::move(e));
    }
    const HttpResponse& head = sent.value();
    if (appending) return {};
    if (head.status == 206 || head.status == 416) {  // a range we cannot use: start over
      ::ftruncate(fd, 0);
      return Attempt::retry(Error(errc::transfer_interrupted, item.path, "the hub answered the resume with HTTP " + std::to_string(head.status)));
    }
    Error e = status_error_(item, head, error_body);
    if (e == errc::rate_limited || e == errc::server_error) return Attempt::retry(std::move(e), detail::retry_after_of(head));
    return Attempt::fail(std::move(e));
  }

  // --- Large files, in ranges over several connections ---

  // One large file while connections fetch its ranges. `m` guards everything
  // but the atomics, and the journal file.
  struct RangedFile {
    explicit RangedFile(const FetchItem& i) : item(i) {}
    ~RangedFile() {
      if (fd >= 0) ::close(fd);
    }
    const FetchItem& item;
    std::string data_path, journal_path;
    int fd = -1;
    std::mutex m;
    std::condition_variable written;       // the hasher waits on it
    detail::RangeJournal journal;
    std::vector<std::uint64_t> journaled;  // each range's count when the journal was last written
    std::vector<bool> taken;               // handed to a connection
    std::vector<std::thread> helpers;      // the extra connections
    std::uint64_t counted = 0;             // bytes reported to progress
    bool confirmed = false;                // a 206 with the asked Content-Range came back
    bool finished = false;                 // no connection writes any more
    bool one_stream = false;               // the server does not serve ranges as asked
    std::optional<Error> error;            // the first error no retry fixed
    std::atomic<bool> stop{false};         // one_stream or error: every connection stops
    std::atomic<bool> handed_out{false};   // no range left to hand out
  };

  bool in_ranges(const FetchItem& item) const {
    return options_.ranged_threshold > 0 && item.size > options_.ranged_threshold && connections_ > 1 &&
           (!item.sha256.empty() || !item.git_oid.empty());
  }

  // About four ranges per connection, so that a slow range holds up little at
  // the end, and none shorter than a quarter of the threshold (each costs a
  // request, and the hub's redirect with it).
  std::uint64_t range_size_for(std::uint64_t size) const {
    const std::uint64_t pieces = std::uint64_t(4) * connections_;
    return std::max<std::uint64_t>({options_.ranged_threshold / 4, (size + pieces - 1) / pieces, 1});
  }

  // --- Partial files: whose they are, and how they change hands ---

  // The partials of each file left by writers that are gone (killed, or their
  // machine rebooted), by the file's resting stem: one listing of each partial
  // directory per fetch, not one per file.
  void find_orphans(const std::vector<FetchItem>& items, const std::string& partial_dir) {
    orphans_.clear();
    std::vector<std::string> dirs;
    for (const FetchItem& i : items) dirs.push_back(parent_of(partial_dir + "/" + name_of(i)));
    std::sort(dirs.begin(), dirs.end());
    dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
    std::vector<detail::DirEntry> entries;
    for (const std::string& dir : dirs) {
      if (detail::list_directory(dir, entries)) continue;
      for (const detail::DirEntry& e : entries) {
        std::string_view n = e.name;
        bool kind = false;
        for (std::string_view k : {".ranges.incomplete", ".ranges.json", ".incomplete"})
          if (n.size() > k.size() && n.compare(n.size() - k.size(), k.size(), k) == 0) {
            n.remove_suffix(k.size());
            kind = true;
            break;
          }
        const std::size_t dot = n.rfind('.');
        if (e.is_directory || !kind || dot == std::string_view::npos || !detail::process_is_gone(n.substr(dot + 1))) continue;
        std::vector<std::string>& claimed = orphans_[dir + "/" + std::string(n.substr(0, dot))];
        const std::string stem = dir + "/" + std::string(n);
        if (std::find(claimed.begin(), claimed.end(), stem) == claimed.end()) claimed.push_back(stem);
      }
    }
  }

  // Takes over an earlier partial of the file at `stem` (STEM.incomplete, or
  // STEM.ranges.incomplete: `kind`) by renaming it to `to`: the resting one
  // first (an interrupted run's, or huggingface_hub's blobs/<etag>.incomplete),
  // then those of writers that are gone. Another process may reach for the same
  // one: the rename gives it to one of us. Returns the stem it had (the journal
  // of ranges goes with it), or nothing.
  std::optional<std::string> adopt(const std::string& stem, std::string_view kind, const std::string& to) const {
    if (::rename((stem + std::string(kind)).c_str(), to.c_str()) == 0) return stem;
    if (auto o = orphans_.find(stem); o != orphans_.end())
      for (const std::string& claimed : o->second)
        if (::rename((claimed + std::string(kind)).c_str(), to.c_str()) == 0) return claimed;
    return std::nullopt;
  }

  // After the file is in place: every earlier partial of it is useless.
  void forget_leftovers(const std::string& stem) const {
    forget_ranges(stem);
    if (auto o = orphans_.find(stem); o != orphans_.end())
      for (const std::string& claimed : o->second) {
        ::unlink((claimed + ".incomplete").c_str());
        forget_ranges(claimed);
      }
  }

  static void forget_ranges(const std::string& stem) {
    ::unlink((stem + ".ranges.incomplete").c_str());
    ::unlink((stem + ".ranges.json").c_str());
  }

  // A failed ranged download rests for the next run: the journal first, so a
  // process that takes the data over finds the journal written for it.
  static void rest_ranges(const RangedFile& f, const std::string& stem) {
    if (::rename(f.journal_path.c_str(), (stem + ".ranges.json").c_str()) == 0)
      ::rename(f.data_path.c_str(), (stem + ".ranges.incomplete").c_str());
  }

  // Takes one of the fetch's connections for a range of `f`, waiting until
  // one is free; false if no range is left meanwhile.
  bool take_connection(RangedFile& f) {
    std::unique_lock<std::mutex> lock(connections_mutex_);
    connection_freed_.wait(lock, [&] { return busy_ < connections_ || f.handed_out || f.stop; });
    if (f.handed_out || f.stop) return false;
    ++busy_;
    return true;
  }
  void give_connection() {
    {
      std::lock_guard<std::mutex> lock(connections_mutex_);
      --busy_;
    }
    connection_freed_.notify_all();
  }
  // Wakes the connections waiting to help `f`, after a flag they wait on changed.
  void wake_helpers() {
    { std::lock_guard<std::mutex> lock(connections_mutex_); }
    connection_freed_.notify_all();
  }

  // Ends the ranged attempt: the file goes in one stream instead.
  void switch_to_one_stream(RangedFile& f) {
    {
      std::lock_guard<std::mutex> lock(f.m);
      f.one_stream = true;
    }
    f.stop = true;
    wake_helpers();
  }
  void give_up(RangedFile& f, Error e) {
    {
      std::lock_guard<std::mutex> lock(f.m);
      if (!f.error && !f.one_stream) f.error = std::move(e);
    }
    f.stop = true;
    wake_helpers();
  }

  std::error_code write_journal(RangedFile& f) {  // under f.m
    f.journaled = f.journal.done;
    return detail::write_file_atomically(f.journal_path, f.journal.text(), false);
  }

  // Opens the journal and data of an earlier run if they are for this file,
  // else starts both afresh, keeping the prefix of a one-stream partial
  // (ours, or huggingface_hub's blobs/<etag>.incomplete: the per-file lock is held).
  std::optional<Error> open_ranges(RangedFile& f, const std::string& stem) {
    const FetchItem& item = f.item;
    const std::string expected = item.sha256.empty() ? item.git_oid : item.sha256;
    if (auto from = adopt(stem, ".ranges.incomplete", f.data_path)) ::rename((*from + ".ranges.json").c_str(), f.journal_path.c_str());
    std::string text;
    if (!detail::read_file(f.journal_path, text, 1 << 20) &&
        detail::RangeJournal::parse(text, item.size, expected, f.journal)) {
      f.fd = ::open(f.data_path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
      struct stat st;
      if (f.fd >= 0 && ::fstat(f.fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) == item.size) {
        f.journaled = f.journal.done;
        return std::nullopt;
      }
      if (f.fd >= 0) ::close(f.fd);
      f.fd = -1;
    }
    f.journal = detail::RangeJournal(item.size, expected, range_size_for(item.size));
    ::unlink(f.data_path.c_str());
    ::unlink(f.journal_path.c_str());
    std::uint64_t prefix = 0;
    struct stat st;
    if (adopt(stem, ".incomplete", f.data_path)) {
      if (::lstat(f.data_path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) <= item.size)
        prefix = static_cast<std::uint64_t>(st.st_size);
      else
        ::unlink(f.data_path.c_str());
    }
    // O_NOFOLLOW: a symlink planted in a shared cache must not redirect our writes.
    f.fd = ::open(f.data_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (f.fd < 0) return file_system_error(f.data_path, detail::last_error(), "cannot open");
    // The whole size reserved up front: a disk that cannot hold the file says so now, not after hours.
    if (auto ec = detail::reserve(f.fd, item.size)) return file_system_error(f.data_path, ec, "cannot reserve space for");
    f.journal.mark_prefix(prefix);
    if (auto ec = write_journal(f)) return file_system_error(f.journal_path, ec, "cannot write");
    return std::nullopt;
  }

  // The file in ranges: an answer (in place, or the error), or none when the
  // server does not serve ranges as asked (then the caller fetches it in one
  // stream, from the start).
  std::optional<result<void>> fetch_in_ranges(Transport& transport, const FetchItem& item, const std::string& stem,
                                              const std::string& mine, const std::string& final_path, std::uint64_t& counted) {
    RangedFile f(item);
    f.data_path = mine + ".ranges.incomplete";
    f.journal_path = mine + ".ranges.json";
    if (auto e = open_ranges(f, stem)) {
      forget_ranges(mine);
      return result<void>(std::move(*e));
    }
    f.taken.assign(f.journal.done.size(), false);
    f.counted = counted;
    std::uint64_t already = 0;
    for (std::uint64_t d : f.journal.done) already += d;
    if (already > f.counted) {
      report(item, already, already - f.counted);
      f.counted = already;
    }

    // The hasher follows the prefix written without a gap.
    detail::ContentCheck hash(item.sha256, item.git_oid, item.size);
    std::uint64_t hashed = 0;
    bool readable = true;
    std::thread hasher([&] {
      for (;;) {
        std::uint64_t until = 0;
        {
          std::unique_lock<std::mutex> lock(f.m);
          f.written.wait(lock, [&] { return f.journal.contiguous() > hashed || f.finished; });
          until = f.journal.contiguous();
        }
        if (until <= hashed) return;
        if (!detail::feed_file(f.fd, hash, until - hashed, hashed)) {
          readable = false;
          return;
        }
        hashed = until;
      }
    });

    fetch_ranges(transport, f);
    for (auto& t : f.helpers) t.join();
    {
      std::lock_guard<std::mutex> lock(f.m);
      f.finished = true;
      if (f.journal.done != f.journaled) write_journal(f);  // the next run resumes from every byte written
    }
    f.written.notify_all();
    hasher.join();
    counted = f.counted;

    if (f.one_stream) {
      forget_ranges(mine);
      return std::nullopt;
    }
    if (f.error) {
      rest_ranges(f, stem);
      return result<void>(std::move(*f.error));
    }
    if (!readable || hashed != item.size) {
      rest_ranges(f, stem);
      return result<void>(file_system_error(f.data_path, std::make_error_code(std::errc::io_error), "cannot read back"));
    }
    const std::string got = hash.hex();
    if (got != hash.expected()) {
      // Ranges that do not add up (a torn journal after a power loss, a server
      // serving mixed versions): nothing of them is kept, one stream decides.
      forget_ranges(mine);
      return std::nullopt;
    }
    if (write_behind()) detail::start_writeback(f.fd);
    if (::rename(f.data_path.c_str(), final_path.c_str()) != 0) {
      Error e = file_system_error(final_path, detail::last_error(), "cannot move into place");
      rest_ranges(f, stem);
      return result<void>(std::move(e));
    }
    ::unlink(f.journal_path.c_str());
    forget_leftovers(stem);
    return result<void>(success());
  }

  // This connection's share of `f`: ranges one after another until none is
  // left. The first 206 that matches brings in the other connections.
  void fetch_ranges(Transport& transport, RangedFile& f) {
    for (;;) {
      std::size_t k = 0;
      bool none_left = false;
      {
        std::lock_guard<std::mutex> lock(f.m);
        if (f.stop) return;
        const std::size_t n = f.journal.done.size();
        while (k < n && (f.taken[k] || f.journal.complete(k))) ++k;
        none_left = k == n;
        if (none_left)
          f.handed_out = true;
        else
          f.taken[k] = true;
      }
      if (none_left) {
        wake_helpers();
        return;
      }
      if (auto r = fetch_range(transport, f, k); !r) {
        give_up(f, std::move(r).error());
        return;
      }
    }
  }

  // Connections beyond this one, each waiting for a free one of the fetch's.
  void bring_in_helpers(RangedFile& f) {  // under f.m
    std::size_t open = 0;
    for (std::size_t i = 0; i < f.taken.size(); ++i) open += !f.taken[i] && !f.journal.complete(i);
    const std::size_t extra = std::min<std::size_t>(connections_ - 1, open);
    for (std::size_t i = 0; i < extra; ++i)
      f.helpers.emplace_back([this, &f] {
        if (!take_connection(f)) return;
        Transport transport = make_transport_();
        fetch_ranges(transport, f);
        give_connection();
      });
  }

  // One range until it is whole, backing off between attempts.
  result<void> fetch_range(Transport& transport, RangedFile& f, std::size_t k) {
    std::optional<Error> last;
    std::chrono::milliseconds retry_after{0};
    for (unsigned attempt = 1; attempt <= options_.max_attempts; ++attempt) {
      if (attempt > 1) {
        if (retry_after > options_.max_retry_after) return std::move(*last);
        if (!wait_before_retry(attempt - 1, retry_after)) return Error(errc::cancelled, f.item.path, "cancelled");
      }
      if (f.stop) return success();
      Attempt a = receive_range(transport, f, k);
      if (a.outcome == Attempt::Outcome::done) return success();
      if (a.outcome == Attempt::Outcome::fail) return std::move(*a.error);
      last = std::move(a.error);
      retry_after = a.retry_after;
    }
    Error e = last ? std::move(*last) : Error(errc::io_error, f.item.path, "no attempt made");
    e.detail += " (after " + std::to_string(options_.max_attempts) + " attempts at bytes " + std::to_string(f.journal.start(k)) +
                "-" + std::to_string(f.journal.end(k) - 1) + ")";
    return e;
  }

  // "bytes FROM-LAST/SIZE", exactly.
  static bool content_range_is(const ResponseHead& head, std::uint64_t from, std::uint64_t last, std::uint64_t size) {
    const std::string* cr = head.header("content-range");
    return cr && *cr == "bytes " + std::to_string(from) + "-" + std::to_string(last) + "/" + std::to_string(size);
  }

  // Asks for what range k lacks and writes it in place as it arrives. Only a
  // 206 with exactly the asked Content-Range, and the ETag the other ranges
  // came with, is written; a 200, another range or another ETag sends the
  // file to one stream.
  Attempt receive_range(Transport& transport, RangedFile& f, std::size_t k) {
    const FetchItem& item = f.item;
    std::uint64_t from = 0;
    const std::uint64_t to = f.journal.end(k);
    {
      std::lock_guard<std::mutex> lock(f.m);
      from = f.journal.start(k) + f.journal.done[k];
    }
    HttpRequest req = item.request;
    req.resume_from = from;
    req.range_length = to - from;
    req.first_byte_timeout = options_.first_byte_timeout;
    req.stall_timeout = options_.stall_timeout;
    req.cancel = options_.cancel;
    bool decided = false, accepted = false;
    std::uint64_t at = from, flushed = from;
    std::error_code write_error;
    std::string error_body;
    auto sent = transport.send(req, [&](const ResponseHead& head, std::string_view chunk) {
      if (f.stop) return false;
      if (!decided) {
        decided = true;
        if (head.status == 200 || head.status == 206 || head.status == 416) {
          const std::string* etag = head.header("etag");
          std::unique_lock<std::mutex> lock(f.m);
          const bool same = !etag || etag->empty() || f.journal.etag.empty() || *etag == f.journal.etag;
          if (head.status != 206 || !content_range_is(head, from, to - 1, item.size) || !same) {
            lock.unlock();
            switch_to_one_stream(f);
            return false;
          }
          if (etag && f.journal.etag.empty()) f.journal.etag = *etag;
          accepted = true;
          if (!f.confirmed) {
            f.confirmed = true;
            bring_in_helpers(f);
          }
        }
      }
      if (!accepted) {
        if (error_body.size() < 65536) error_body.append(chunk.substr(0, 65536 - error_body.size()));
        return true;
      }
      if (chunk.size() > to - at) {  // more than the Content-Range said
        switch_to_one_stream(f);
        return false;
      }
      if ((write_error = detail::write_all_at(f.fd, chunk, at))) return false;
      at += chunk.size();
      std::uint64_t file_bytes = 0;
      {
        std::lock_guard<std::mutex> lock(f.m);
        f.journal.done[k] = at - f.journal.start(k);
        // Each 8 MiB of a range, and its end, go to the journal, after the bytes themselves.
        if ((f.journal.done[k] - f.journaled[k] >= (8u << 20) || at == to) && (write_error = write_journal(f)))
          return false;
        f.counted += chunk.size();
        file_bytes = f.counted;
      }
      f.written.notify_one();
      if (write_behind() && at - flushed >= (8u << 20)) {
        detail::start_writeback(f.fd, flushed, at - flushed);
        flushed = at;
      }
      report(item, file_bytes, chunk.size());
      return true;
    });
    if (write_error) return Attempt::fail(file_system_error(f.data_path, write_error, "cannot write"));
    if (f.stop) return {};  // another range decided for the file
    if (!sent) {
      Error e = std::move(sent).error();
      return transient(e) ? Attempt::retry(std::move(e)) : Attempt::fail(std::move(e));
    }
    if (accepted) {
      if (at == to) return {};
      return Attempt::retry(Error(errc::transfer_interrupted, item.path,
                                  "got " + std::to_string(at - from) + " of the " + std::to_string(to - from) + " bytes asked from byte " +
                                      std::to_string(from)));
    }
    const HttpResponse& head = sent.value();
    Error e = status_error_(item, head, error_body);
    if (e == errc::rate_limited || e == errc::server_error) return Attempt::retry(std::move(e), detail::retry_after_of(head));
    return Attempt::fail(std::move(e));
  }

  // on_disk: writeback starts as bytes arrive; the committer waits for it.
  bool write_behind() const { return options_.durability == Durability::on_disk; }

  static std::string parent_of(const std::string& path) { return path.substr(0, path.rfind('/')); }
  // The item's name below the final and partial directories.
  static const std::string& name_of(const FetchItem& item) { return item.destination.empty() ? item.path : item.destination; }

  TransportFactory make_transport_;
  StatusError status_error_;
  FetchOptions options_;
  std::string claim_;  // in this fetch's partial names: "<process tag>-<fetch number>"
  std::unordered_map<std::string, std::vector<std::string>> orphans_;  // see find_orphans()
  std::mutex progress_mutex_;
  // The fetch's connections: `busy_` of `connections_` in use (workers on
  // whole files, and the extra connections of files in ranges).
  unsigned connections_ = 1;
  unsigned busy_ = 0;
  std::mutex connections_mutex_;
  std::condition_variable connection_freed_;
  std::atomic<std::uint64_t> total_bytes_{0};
  std::uint64_t total_size_ = 0;
};

}  // namespace modelres
