// An exclusive lock on a file, with flock(2): the lock Python's filelock takes,
// so modelres and the Python client exclude each other on the same model.
// Correctness never rests on it (each process downloads under its own
// temporary names and renames, fetcher.hpp); it keeps two processes from
// fetching the same files twice. Where the filesystem cannot lock at all,
// acquire() succeeds without a lock.
#pragma once

#include <sys/file.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "../error.hpp"
#include "../result.hpp"
#include "fs.hpp"

namespace modelres::detail {

class FileLock {
 public:
  FileLock() = default;
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

  // Waits up to `timeout` (polling, so `cancel` is seen).
  static result<FileLock> acquire(const std::string& path, std::chrono::milliseconds timeout,
                                  const std::atomic<bool>* cancel = nullptr) {
    if (auto ec = make_directories(path.substr(0, path.rfind('/'))))
      return Error(ec == std::errc::permission_denied ? errc::permission_denied : errc::io_error, path,
                   "cannot create the lock directory").with_cause(ec);
    FileLock lock;
    lock.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock.fd_ < 0) return Error(errc::io_error, path, "cannot open the lock file").with_cause(last_error());
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
      // A filesystem that cannot lock (Lustre without -o flock: ENOSYS; NFS
      // without lockd: ENOLCK) goes unlocked: nothing rests on the lock.
      if (errno == ENOSYS || errno == ENOLCK || errno == EOPNOTSUPP) return lock;
      if (errno != EWOULDBLOCK && errno != EINTR) return Error(errc::io_error, path, "cannot lock").with_cause(last_error());
      if (cancel && cancel->load()) return Error(errc::cancelled, path, "cancelled while waiting for the lock");
      if (std::chrono::steady_clock::now() > until)
        return Error(errc::timed_out, path, "another process held the lock " + path + " for longer than the lock timeout");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return lock;
  }

 private:
  int fd_ = -1;
};

}  // namespace modelres::detail
