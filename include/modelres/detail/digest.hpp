// Content checks on OpenSSL's libcrypto (EVP), fed chunk by chunk as bytes
// arrive, so a download is checked without a second read: a file's sha256
// (ModelScope, Hugging Face LFS), or its git blob id, sha1 of "blob <size>\0"
// followed by the content (Hugging Face's regular git files).
#pragma once

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace modelres::detail {

inline constexpr const char* sha256_of_nothing = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline constexpr const char* git_oid_of_nothing = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";  // git hash-object /dev/null

class Digest {
 public:
  explicit Digest(const EVP_MD* algorithm) : algorithm_(algorithm), ctx_(EVP_MD_CTX_new()) { reset(); }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void reset() { EVP_DigestInit_ex(ctx_, algorithm_, nullptr); }
  void update(std::string_view bytes) { EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()); }

  // Lower-case hex of everything fed since the last reset.
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (unsigned int i = 0; i < n; ++i) {
      out += digits[md[i] >> 4];
      out += digits[md[i] & 15];
    }
    return out;
  }

 private:
  const EVP_MD* algorithm_;
  EVP_MD_CTX* ctx_;
};

// The check a hub lists for one file: its sha256 if given, else its git blob
// id (which needs the size up front), else none (the size alone is checked).
class ContentCheck {
 public:
  ContentCheck(const std::string& sha256, const std::string& git_oid, std::uint64_t size)
      : expected_(!sha256.empty() ? sha256 : git_oid),
        git_(sha256.empty() && !git_oid.empty()),
        size_(size),
        digest_(git_ ? EVP_sha1() : EVP_sha256()) {
    reset();
  }

  bool enabled() const { return !expected_.empty(); }
  const std::string& expected() const { return expected_; }
  const char* name() const { return git_ ? "git blob sha1" : "sha256"; }

  void reset() {
    digest_.reset();
    if (git_) digest_.update("blob " + std::to_string(size_) + std::string(1, '\0'));
  }
  void update(std::string_view bytes) { digest_.update(bytes); }
  std::string hex() { return digest_.hex(); }

 private:
  std::string expected_;
  bool git_;
  std::uint64_t size_;
  Digest digest_;
};

// Feeds `n` bytes of an open file from offset `from` (all of the rest: n =
// UINT64_MAX) to `check`, telling `on_fed` the bytes fed so far after each
// chunk. False on a read error or a file that ends first.
inline bool feed_file(int fd, ContentCheck& check, std::uint64_t n = UINT64_MAX, std::uint64_t from = 0,
                      const std::function<void(std::uint64_t)>& on_fed = {}) {
  std::string buf(1 << 20, '\0');
  std::uint64_t fed = 0;
  while (fed < n) {
    const std::size_t want = static_cast<std::size_t>(n - fed < buf.size() ? n - fed : buf.size());
    const ssize_t got = ::pread(fd, &buf[0], want, static_cast<off_t>(from + fed));
    if (got < 0) return false;
    if (got == 0) return n == UINT64_MAX;
    check.update(std::string_view(buf.data(), static_cast<std::size_t>(got)));
    fed += static_cast<std::uint64_t>(got);
    if (on_fed) on_fed(fed);
  }
  return true;
}

// Whether the file at `path` passes the check (a file with no check listed
// passes on its size alone, which the caller compares).
inline bool file_passes(const std::string& path, const std::string& sha256, const std::string& git_oid,
                        std::uint64_t size) {
  ContentCheck check(sha256, git_oid, size);
  if (!check.enabled()) return true;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool read = feed_file(fd, check);
  ::close(fd);
  return read && check.hex() == check.expected();
}

}  // namespace modelres::detail
