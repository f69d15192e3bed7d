// Fetcher<Transport>: downloads a set of files safely, for any hub and layout.
//
// Each file streams to PARTIAL_DIR/name.incomplete, is hashed while it
// streams (no second read), is checked against the size and the hash the hub
// listed (sha256, or the git blob id), then renamed to FINAL_DIR/name: nothing
// partial is ever visible under a final name. `name` is the file's path in the
// model, or the cache's own name for it (Hugging Face's blobs/<etag>). With Durability::on_disk, writeback starts at once and
// waiting for the disk is left to whoever declares the set complete
// (each cache's commit syncs every file before it writes the manifest), so
// disk and network overlap. An interrupted file resumes, in this run or the
// next, with Range: only a 206 whose Content-Range starts where the partial file
// ends is appended to; a 200 restarts the file from zero. Failed attempts back
// off exponentially and honour Retry-After (or a RateLimit reset). Files download in parallel (one
// transport each), and a progress callback sees bytes per file and in total.
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
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "detail/digest.hpp"
#include "detail/file_lock.hpp"
#include "detail/fs.hpp"
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
  unsigned parallel = 4;
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
    total_size_ = 0;
    total_bytes_ = 0;
    for (const auto& i : items) total_size_ += i.size;
    std::vector<std::optional<Error>> errors(items.size());
    std::atomic<std::size_t> next{0};
    const auto work = [&] {
      Transport transport = make_transport_();
      for (std::size_t i = next++; i < items.size(); i = next++) {
        auto r = fetch_one(transport, items[i], final_dir, partial_dir);
        if (!r) errors[i] = std::move(r).error();
      }
    };
    const unsigned workers = static_cast<unsigned>(std::min<std::size_t>(std::max(1u, options_.parallel), items.size()));
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

  // Waits before attempt `attempt` (1-based), or for the hub's Retry-After.
  // False if cancelled meanwhile.
  bool wait_before_retry(unsigned attempt, std::chrono::milliseconds retry_after) {
    const std::chrono::milliseconds doubled = options_.backoff * (1 << std::min(attempt - 1, 16u));
    const std::chrono::milliseconds wait = retry_after.count() > 0 ? retry_after : std::min(options_.max_backoff, doubled);
    const auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until) {
      if (options_.cancel && options_.cancel->load()) return false;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(50),
                                                                               until - std::chrono::steady_clock::now()));
    }
    return true;
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
    const std::string& name = item.destination.empty() ? item.path : item.destination;
    const std::string partial_path = partial_dir + "/" + name + ".incomplete";
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
    std::optional<Error> last;
    std::chrono::milliseconds retry_after{0};  // the hub's Retry-After on the last refusal
    std::uint64_t counted = 0;                 // bytes of this file already reported to progress
    for (unsigned attempt = 1; attempt <= options_.max_attempts; ++attempt) {
      if (attempt > 1) {
        if (retry_after > options_.max_retry_after) return std::move(*last);
        if (!wait_before_retry(attempt - 1, retry_after)) return Error(errc::cancelled, item.path, "cancelled");
      }
      Attempt a = attempt_once(transport, item, partial_path, final_path, counted);
      if (a.outcome == Attempt::Outcome::done) return success();
      if (a.outcome == Attempt::Outcome::fail) return std::move(*a.error);
      last = std::move(a.error);
      retry_after = a.retry_after;
    }
    // Out of attempts: a checksum failure leaves nothing behind.
    if (last && *last == errc::checksum_mismatch) ::unlink(partial_path.c_str());
    Error e = last ? std::move(*last) : Error(errc::io_error, item.path, "no attempt made");
    e.detail += " (after " + std::to_string(options_.max_attempts) + " attempts)";
    return e;
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
    std::string error_body;
    auto sent = transport.send(req, [&](const ResponseHead& head, std::string_view chunk) {
      if (!decided) {
        decided = true;
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
    if (e == errc::rate_limited || e == errc::server_error) return Attempt::retry(std::move(e), retry_after_of(head));
    return Attempt::fail(std::move(e));
  }

  // on_disk: writeback starts as bytes arrive; the committer waits for it.
  bool write_behind() const { return options_.durability == Durability::on_disk; }

  // Retry-After in seconds; else the IETF RateLimit header's reset, `t=N`
  // (the Hugging Face hub sends `"api";r=0;t=55`), plus a second, as huggingface_hub waits.
  static std::chrono::milliseconds retry_after_of(const ResponseHead& head) {
    const auto seconds = [](std::string_view v) -> long long {
      if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string_view::npos) return -1;
      return std::stoll(std::string(v));
    };
    if (const std::string* v = head.header("retry-after")) {
      const long long s = seconds(*v);
      return s < 0 ? std::chrono::milliseconds(0) : std::chrono::seconds(s);
    }
    if (const std::string* limit = head.header("ratelimit")) {
      const std::size_t t = limit->find("t=");
      if (t != std::string::npos && (t == 0 || (*limit)[t - 1] == ';' || (*limit)[t - 1] == ' ')) {
        const std::string_view rest = std::string_view(*limit).substr(t + 2);
        const long long s = seconds(rest.substr(0, rest.find_first_of(";, ")));
        if (s >= 0) return std::chrono::seconds(s + 1);
      }
    }
    return {};
  }

  static std::string parent_of(const std::string& path) { return path.substr(0, path.rfind('/')); }

  TransportFactory make_transport_;
  StatusError status_error_;
  FetchOptions options_;
  std::mutex progress_mutex_;
  std::atomic<std::uint64_t> total_bytes_{0};
  std::uint64_t total_size_ = 0;
};

}  // namespace modelres
