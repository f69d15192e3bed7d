// Filesystem helpers on POSIX calls: error codes, no exceptions. Lookups use
// only the reading ones, kept to the few calls a cache hit needs, so that a
// hit costs little more than its syscalls (see benchmarks/local_only_hit.cpp);
// make_directories is for downloads.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "process_tag.hpp"

namespace modelres::detail {

inline std::error_code last_error() { return {errno, std::generic_category()}; }

// A write that failed for want of space or quota: errc::disk_full, not io_error.
inline bool is_out_of_space(std::error_code ec) { return ec == std::errc::no_space_on_device || ec.value() == EDQUOT; }

struct FileStatus {
  std::error_code error;  // set when the path could not be stat'ed
  bool is_directory = false;
  bool is_regular = false;
  std::uint64_t size = 0;

  bool exists() const { return !error; }
  bool missing() const {
    return error == std::errc::no_such_file_or_directory || error == std::errc::not_a_directory;
  }
};

// stat(2), following symlinks: a dotted-name symlink resolves to its target.
inline FileStatus status(const std::string& path) {
  FileStatus s;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    s.error = last_error();
    return s;
  }
  s.is_directory = S_ISDIR(st.st_mode);
  s.is_regular = S_ISREG(st.st_mode);
  s.size = static_cast<std::uint64_t>(st.st_size);
  return s;
}

inline bool is_symlink(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// Reads a whole file of at most `max_bytes`; a larger file is EFBIG.
inline std::error_code read_file(const std::string& path, std::string& out, std::size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return last_error();
  std::error_code ec;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ec = last_error();
  } else if (S_ISDIR(st.st_mode)) {
    ec = std::make_error_code(std::errc::is_a_directory);
  } else if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    ec = std::make_error_code(std::errc::file_too_large);
  } else {
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = ::read(fd, &out[got], out.size() - got);
      if (n < 0) {
        if (errno == EINTR) continue;
        ec = last_error();
        break;
      }
      if (n == 0) break;  // the file shrank while we read it
      got += static_cast<std::size_t>(n);
    }
    out.resize(got);
  }
  ::close(fd);
  return ec;
}

struct DirEntry {
  std::string name;
  bool is_directory = false;
  bool is_symlink = false;
};

// The entries of one directory, without "." and "..".
inline std::error_code list_directory(const std::string& path, std::vector<DirEntry>& out) {
  out.clear();
  DIR* dir = ::opendir(path.c_str());
  if (!dir) return last_error();
  errno = 0;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    DirEntry entry;
    entry.name = std::string(name);
    if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
      struct stat st;
      const std::string full = path + "/" + entry.name;
      entry.is_symlink = ::lstat(full.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
      entry.is_directory = ::stat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    } else {
      entry.is_directory = e->d_type == DT_DIR;
    }
    out.push_back(std::move(entry));
  }
  const std::error_code ec = errno ? last_error() : std::error_code();
  ::closedir(dir);
  return ec;
}

struct WalkedFile {
  std::string path;  // relative, '/'-separated
  std::uint64_t size = 0;
};

// Every regular file below `root` (symlinked files included, symlinked
// directories not entered), with paths relative to it.
inline std::error_code walk_files(const std::string& root, std::vector<WalkedFile>& out, const std::string& prefix = {}) {
  std::vector<DirEntry> entries;
  if (auto ec = list_directory(prefix.empty() ? root : root + "/" + prefix, entries)) {
    // A subdirectory removed while we walk is not an error of the walk.
    if (!prefix.empty() && ec == std::errc::no_such_file_or_directory) return {};
    return ec;
  }
  for (const DirEntry& e : entries) {
    const std::string rel = prefix.empty() ? e.name : prefix + "/" + e.name;
    if (e.is_directory) {
      if (e.is_symlink) continue;
      if (auto ec = walk_files(root, out, rel)) return ec;
    } else {
      const FileStatus s = status(root + "/" + rel);
      if (s.exists() && s.is_regular) out.push_back({rel, s.size});
    }
  }
  return {};
}

// mkdir -p, with 0777 filtered by the umask (shared caches want group bits).
inline std::error_code make_directories(const std::string& path) {
  if (path.empty()) return {};
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return S_ISDIR(st.st_mode) ? std::error_code() : std::make_error_code(std::errc::not_a_directory);
  const std::size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0)
    if (auto ec = make_directories(path.substr(0, slash))) return ec;
  if (::mkdir(path.c_str(), 0777) != 0 && errno != EEXIST) return last_error();
  return {};
}

// Writes all of `bytes` to `fd`, through short writes and EINTR.
inline std::error_code write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

// Writes all of `bytes` to `fd` at `offset` (pwrite), through short writes and EINTR.
inline std::error_code write_all_at(int fd, std::string_view bytes, std::uint64_t offset) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return {};
}

// Makes an open file `size` bytes long with its blocks allocated (fallocate),
// so that a disk too small says so at once; where the file system cannot
// allocate ahead, the file is only extended.
inline std::error_code reserve(int fd, std::uint64_t size) {
#if defined(__linux__)
  if (::fallocate(fd, 0, 0, static_cast<off_t>(size)) == 0) return {};
  if (errno != EOPNOTSUPP && errno != ENOSYS) return last_error();
#endif
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return last_error();
  return {};
}

// Writes a whole file under a temporary name in the same directory, syncs it
// (unless `sync` is false), and renames it over `path`: readers see the old
// file or the new one, never a part. A file that is replaced keeps its
// permissions (the Python client's .msc is 0600); a new one gets 0666 less the umask.
inline std::error_code write_file_atomically(const std::string& path, std::string_view bytes, bool sync = true) {
  static std::atomic<unsigned> counter{0};
  // The process tag, not only the pid: another machine on the same network filesystem may have our pid.
  const std::string tmp = path + ".tmp" + process_tag() + "-" + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0) return last_error();
  std::error_code ec;
  struct stat replaced;
  if (::stat(path.c_str(), &replaced) == 0 && ::fchmod(fd, replaced.st_mode & 07777) != 0) ec = last_error();
  if (!ec) ec = write_all(fd, bytes);
  if (!ec && sync && ::fsync(fd) != 0) ec = last_error();
  ::close(fd);
  if (!ec && ::rename(tmp.c_str(), path.c_str()) != 0) ec = last_error();
  if (ec) ::unlink(tmp.c_str());
  return ec;
}

// Starts writing a file's data to disk without waiting (Linux), so the disk
// works while the network does; sync_to_disk() later finds little left to do.
inline void start_writeback(int fd, std::uint64_t offset = 0, std::uint64_t length = 0) {
#if defined(__linux__)
  ::sync_file_range(fd, static_cast<off64_t>(offset), static_cast<off64_t>(length), SYNC_FILE_RANGE_WRITE);
#else
  (void)fd, (void)offset, (void)length;
#endif
}

// Waits until a file's (or directory's) data is on disk.
inline std::error_code sync_to_disk(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return last_error();
  std::error_code ec;
  if (::fdatasync(fd) != 0) ec = last_error();
  ::close(fd);
  return ec;
}

// Copies a file's bytes to `to`, a new file (never through a link); on
// failure nothing is left at `to`.
inline std::error_code copy_file(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return last_error();
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (out < 0) {
    const auto ec = last_error();
    ::close(in);
    return ec;
  }
  std::error_code ec;
  std::string buf(1 << 20, '\0');
  for (;;) {
    const ssize_t got = ::read(in, &buf[0], buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) ec = last_error();
    if (got <= 0) break;
    if ((ec = write_all(out, std::string_view(buf.data(), static_cast<std::size_t>(got))))) break;
  }
  ::close(in);
  ::close(out);
  if (ec) ::unlink(to.c_str());
  return ec;
}

inline bool is_var_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

inline std::string environment(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// A switch set the way huggingface_hub reads its own: 1, true, yes or on, in any case.
inline bool environment_flag(const char* name) {
  std::string v = environment(name);
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

// $HOME, else the password database; empty if neither knows.
// The offline switch users already set, read at each call: the name of the
// variable that is on, or null.
inline const char* offline_switch() {
  for (const char* name : {"MODELRES_OFFLINE", "HF_HUB_OFFLINE"})
    if (environment_flag(name)) return name;
  return nullptr;
}

inline std::string home_directory() {
  std::string home = environment("HOME");
  if (!home.empty()) return home;
  std::vector<char> buf(16384);
  struct passwd pw;
  struct passwd* found = nullptr;
  if (::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_dir)
    return found->pw_dir;
  return {};
}

// "~" and "~/x" through home_directory(), "~user/x" through the password
// database. Returns false if the user or home is unknown.
inline bool expand_tilde(std::string_view text, std::string& out) {
  if (text.empty() || text.front() != '~') {
    out = std::string(text);
    return true;
  }
  const std::size_t slash = text.find('/');
  const std::string_view user = text.substr(1, slash == std::string_view::npos ? std::string_view::npos : slash - 1);
  const std::string_view rest = slash == std::string_view::npos ? std::string_view() : text.substr(slash);
  std::string home;
  if (user.empty()) {
    home = home_directory();
  } else {
    std::vector<char> buf(16384);
    struct passwd pw;
    struct passwd* found = nullptr;
    const std::string name(user);
    if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_dir)
      home = found->pw_dir;
  }
  if (home.empty()) return false;
  out = home + std::string(rest);
  return true;
}

// $NAME and ${NAME} replaced by the environment's value, as Python's
// os.path.expandvars does (the Hugging Face client expands its variables so);
// an unset variable is left as written.
inline std::string expand_variables(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] != '$') {
      out += text[i++];
      continue;
    }
    const bool braced = i + 1 < text.size() && text[i + 1] == '{';
    std::size_t start = i + (braced ? 2 : 1), end = start;
    while (end < text.size() && (is_var_char(text[end]))) ++end;
    const bool closed = !braced || (end < text.size() && text[end] == '}');
    const char* value = end > start && closed ? std::getenv(std::string(text.substr(start, end - start)).c_str()) : nullptr;
    const std::size_t past = end + (braced && closed ? 1 : 0);
    if (value)
      out += value;
    else
      out.append(text.substr(i, past - i));
    i = past > i ? past : i + 1;
  }
  return out;
}

// The parts joined, in one allocation: a lookup builds a dozen paths, and
// a + "/" + b reallocates at each step.
inline std::string concat(std::initializer_list<std::string_view> parts) {
  std::size_t size = 0;
  for (std::string_view p : parts) size += p.size();
  std::string out;
  out.reserve(size);
  for (std::string_view p : parts) out.append(p);
  return out;
}

// An absolute path with "." and ".." components and repeated '/' resolved by
// spelling alone (no filesystem access), as std::filesystem's
// lexically_normal() does, without its allocations per component.
inline std::string lexically_normal_absolute(std::string_view path) {
  std::string out;
  out.reserve(path.size() + 1);
  std::size_t start = 0;
  while (start < path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part == "..") {
      const std::size_t cut = out.rfind('/');
      out.resize(cut == std::string::npos ? 0 : cut);
    } else if (!part.empty() && part != ".") {
      out += '/';
      out += part;
    }
    start = end + 1;
  }
  if (out.empty()) out = "/";
  return out;
}

// A cache root made absolute (against the working directory) and without a
// trailing '/': directories handed back stay right whatever the working
// directory later becomes.
inline std::error_code absolute_root(std::string& root) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root.empty() || root.front() == '/') return {};
  std::error_code ec;
  const std::filesystem::path cwd = std::filesystem::current_path(ec);
  if (ec) return ec;
  root = (cwd / root).lexically_normal().native();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return {};
}

// A path from metadata is safe to join below a model directory: relative,
// no "." or ".." component, no empty component, no control character or backslash.
inline bool is_safe_relative_path(std::string_view p) {
  if (p.empty() || p.front() == '/' || p.size() > 4096) return false;
  std::size_t start = 0;
  while (start <= p.size()) {
    std::size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    const std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') return false;
    start = end + 1;
  }
  return true;
}

}  // namespace modelres::detail
