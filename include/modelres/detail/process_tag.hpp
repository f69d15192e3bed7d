// Who writes a temporary file: a tag of the machine and the process, put in
// the file's name. Processes on different machines sharing a network
// filesystem (NFS, CephFS, Lustre), where flock may lock nothing, then never
// pick the same temporary name; and a temporary file left by a process that
// is gone (killed, or its machine rebooted) can be told from one a live
// process still writes, and taken over safely.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

namespace modelres::detail {

// This machine and pid namespace (two containers on one host may share a
// host name, never their pids), as 12 hex digits of FNV-1a: stable across
// builds and compilers, so any modelres on the machine reads the same tag.
inline const std::string& host_tag() {
  static const std::string tag = [] {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    char pid_namespace[64] = {};
    const ssize_t n = ::readlink("/proc/self/ns/pid", pid_namespace, sizeof pid_namespace - 1);
    const std::string key = std::string(host) + '\n' + std::string(pid_namespace, n > 0 ? static_cast<std::size_t>(n) : 0);
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : key) {
      h ^= c;
      h *= 1099511628211ull;
    }
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 12; ++i) out += digits[(h >> (4 * i)) & 15];
    return out;
  }();
  return tag;
}

// "<host tag>-<pid>": unique among the live processes of every machine.
inline std::string process_tag() { return host_tag() + "-" + std::to_string(::getpid()); }

// Whether `tag` (a process_tag(), or one followed by "-<anything>") names a
// process of this machine that no longer runs. Another machine's processes,
// and this process, are never taken for gone: a temporary file of theirs may
// still be written.
inline bool process_is_gone(std::string_view tag) {
  const std::string& host = host_tag();
  if (tag.size() < host.size() + 2 || tag.compare(0, host.size(), host) != 0 || tag[host.size()] != '-') return false;
  tag.remove_prefix(host.size() + 1);
  long long pid = 0;
  std::size_t digits = 0;
  for (; digits < tag.size() && digits < 10 && tag[digits] >= '0' && tag[digits] <= '9'; ++digits) pid = pid * 10 + (tag[digits] - '0');
  if (digits == 0 || (digits < tag.size() && tag[digits] != '-') || pid <= 0 || pid == ::getpid()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

}  // namespace modelres::detail
