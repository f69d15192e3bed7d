// Durability: whether a download waits for the disk before the model is
// declared complete.
//
// - on_disk (the default): every file is synced before the manifest says the
//   model is complete, so a crash or power cut never leaves a "verified" model
//   whose bytes did not reach the disk.
// - until_restart: the files are left to the kernel's writeback, as the Python
//   clients and curl leave them; the download finishes as soon as the last
//   byte is hashed. Useful where the disk is slower than the network, or where
//   the cache is thrown away with its machine (CI, image builds). The manifest
//   records the boot it was written in; after a restart the model is no longer
//   trusted as verified (lookups report completeness `unknown`) until an online
//   resolve hashes its files again.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace modelres {

enum class Durability { on_disk, until_restart };

namespace detail {

// This boot's id (Linux: a random UUID per boot), or empty where there is
// none. An empty id never matches, so where it is unknown a model written
// until_restart is never trusted as verified: the safe side.
inline std::string current_boot_id() {
  static const std::string id = [] {
    // /proc reports a size of 0, so this is read as a stream, not by size.
    const int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::string();
    char buf[64];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    std::string text(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text.find_first_of(" \n") == std::string::npos ? text : std::string();
  }();
  return id;
}

// Whether files written until_restart during boot `written_in` are still what
// was written: only while that boot lasts (the page cache is then authoritative).
inline bool same_boot(const std::string& written_in) {
  return !written_in.empty() && written_in == current_boot_id();
}

}  // namespace detail
}  // namespace modelres
