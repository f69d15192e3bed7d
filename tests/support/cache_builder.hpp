// Test support: real temporary directories laid out as the Python modelscope
// client lays them out, from the pickle bytes in tests/fixtures/pickles/
// (written by Python's own pickle, see tests/fixtures/make_pickles.py).
#pragma once

#include <modelres/detail/fs.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#ifndef MODELRES_FIXTURES_DIR
#error "MODELRES_FIXTURES_DIR must name tests/fixtures"
#endif

namespace testing {

namespace fs = std::filesystem;

inline std::string fixture(const std::string& name) {
  std::string out;
  const std::string path = std::string(MODELRES_FIXTURES_DIR) + "/pickles/" + name;
  if (modelres::detail::read_file(path, out, 1u << 26)) {
    std::fprintf(stderr, "missing fixture %s\n", path.c_str());
    std::abort();
  }
  return out;
}

inline void write_file(const fs::path& path, const std::string& bytes) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream(path, std::ios::binary) << bytes;
}

// The regular files below `dir`, relative to it, sorted.
inline std::vector<std::string> files_below(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file()) out.push_back(fs::relative(it->path(), dir).native());
  std::sort(out.begin(), out.end());
  return out;
}

inline std::string read_text(const fs::path& path) {
  std::string out;
  modelres::detail::read_file(path.native(), out, 1u << 26);
  return out;
}

// A fresh directory below $TMPDIR, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "modelres-test-XXXXXX").native();
    if (!::mkdtemp(tmpl.data())) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    // Undo permission tests' chmods so everything can be removed.
    for (auto it = fs::recursive_directory_iterator(path_, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.native(); }

 private:
  fs::path path_;
};

// The fixture model as the hub lists it; matches UNET_FILES in make_pickles.py.
struct FixtureModel {
  std::string id;
  std::vector<std::pair<std::string, std::string>> files;  // path, content
};

inline FixtureModel unet() {
  return {"iic/cv_unet_skin_retouching_torch",
          {{"configuration.json", "{\"framework\": \"pytorch\", \"task\": \"skin-retouching\"}"},
           {"README.md", "# cv_unet_skin_retouching_torch\n"},
           {"pytorch_model.pt", std::string(4096, '\x7f')},
           {"assets/weights/joint.pth", std::string(1024, '\x01')}}};
}

// A classic (<= 1.37) model directory: the files, then .msc, .mdl and .mv as
// the client writes them (.mv last, after the snapshot finished).
struct ClassicOptions {
  int protocol = 4;
  bool write_mv = true;
  std::string mv = "Revision:master,CreatedAt:1713419382";
  bool write_mdl = true;
  std::vector<std::string> skip_files;  // files recorded in .msc but not on disk
};

inline fs::path lay_out_classic(const fs::path& model_dir, const ClassicOptions& o = {}) {
  const FixtureModel m = unet();
  for (const auto& [path, content] : m.files) {
    bool skip = false;
    for (const auto& s : o.skip_files) skip = skip || s == path;
    if (!skip) write_file(model_dir / path, content);
  }
  const std::string p = std::to_string(o.protocol);
  write_file(model_dir / ".msc", fixture("unet_msc_p" + p + ".pkl"));
  if (o.write_mdl) write_file(model_dir / ".mdl", fixture("unet_mdl_p" + p + ".pkl"));
  if (o.write_mv) write_file(model_dir / ".mv", o.mv);
  return model_dir;
}

// A modelscope >= 1.38 snapshot: files only, no metadata.
inline fs::path lay_out_snapshot(const fs::path& root, const std::string& owner_name_joined, const std::string& rev) {
  const fs::path dir = root / "models" / owner_name_joined / "snapshots" / rev;
  for (const auto& [path, content] : unet().files) write_file(dir / path, content);
  return dir;
}

// Every path below `root` with its size and mtime, to prove a lookup wrote nothing.
inline std::map<std::string, std::pair<std::uintmax_t, long long>> tree_state(const fs::path& root) {
  std::map<std::string, std::pair<std::uintmax_t, long long>> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    out[it->path().native()] = {static_cast<std::uintmax_t>(st.st_size),
                                static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
  }
  return out;
}

// Runs `fn` in a child process as an unprivileged user (when we are root, whom
// permission bits do not stop) and returns its exit status. The child is a
// fork that goes on running C++: call this only while the process has one
// thread (no TestHub running), or a lock another thread held at the fork
// (the allocator's, say) stays held in the child forever.
template <class Fn>
int run_unprivileged(Fn fn) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::geteuid() == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(99);
    }
    ::_exit(fn());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// Runs `fn` in a child process in its own mount namespace (mounts made there
// vanish with it); returns its exit status. Single-threaded callers only, as
// for run_unprivileged.
template <class Fn>
int run_in_mount_namespace(Fn fn) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(98);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(97);
    ::_exit(fn());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// Runs `fn` in a child process with a 128 KiB tmpfs mounted on `where`, in a
// private mount namespace (the mount vanishes with it): a disk that fills up
// for real. Returns fn's exit status, or 90 if the mount failed. Needs root.
template <class Fn>
int run_on_128k_disk(const std::filesystem::path& where, Fn fn) {
  return run_in_mount_namespace([&] {
    if (::mount("tmpfs", where.c_str(), "tmpfs", 0, "size=128k") != 0) return 90;
    return fn();
  });
}

// Runs `fn` in a child process that sees `dir` as a read-only mount (a bind
// mount remounted ro, in a private mount namespace): any write below it fails
// with EROFS, as on a read-only volume. Returns fn's exit status, or 90 if the
// mounts failed. Needs root; single-threaded callers only, as above.
template <class Fn>
int run_with_read_only(const std::filesystem::path& dir, Fn fn) {
  return run_in_mount_namespace([&] {
    if (::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) return 90;
    if (::mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) return 90;
    return fn();
  });
}

// Starts a command with its stdout and stderr into files, the environment
// changed by `env` (an empty value unsets). Everything is prepared before the
// fork and the child only opens, dup2()s and execs: safe while other threads
// (a TestHub) run. Returns the pid, or -1.
inline pid_t start_command(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                           const std::string& out_path, const std::string& err_path) {
  std::vector<std::string> environment;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    if (!env.count(entry.substr(0, entry.find('=')))) environment.push_back(entry);
  }
  for (const auto& [k, v] : env)
    if (!v.empty()) environment.push_back(k + "=" + v);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(126);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

// Runs a command, capturing stdout and stderr; returns the exit status.
struct CommandResult {
  int status = -1;
  std::string out;
  std::string err;
};

inline CommandResult finish_command(pid_t pid, const std::string& out_path, const std::string& err_path) {
  int status = 0;
  CommandResult r;
  if (pid > 0 && ::waitpid(pid, &status, 0) == pid) r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  r.out = read_text(out_path);
  r.err = read_text(err_path);
  return r;
}

inline CommandResult run_command(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {}) {
  TempDir capture;
  const std::string out_path = (capture.path() / "out").native(), err_path = (capture.path() / "err").native();
  return finish_command(start_command(argv, env, out_path, err_path), out_path, err_path);
}

// One process per environment in `envs`, all running `argv` at once (every
// one started before any is waited for); their results in the same order.
inline std::vector<CommandResult> run_at_once(const std::vector<std::string>& argv,
                                              const std::vector<std::map<std::string, std::string>>& envs) {
  TempDir capture;
  const auto out = [&](std::size_t i) { return (capture.path() / ("out" + std::to_string(i))).native(); };
  const auto err = [&](std::size_t i) { return (capture.path() / ("err" + std::to_string(i))).native(); };
  std::vector<pid_t> pids;
  for (std::size_t i = 0; i < envs.size(); ++i) pids.push_back(start_command(argv, envs[i], out(i), err(i)));
  std::vector<CommandResult> results;
  for (std::size_t i = 0; i < envs.size(); ++i) results.push_back(finish_command(pids[i], out(i), err(i)));
  return results;
}

// Sets an environment variable for one scope (empty value: unset).
// A Hugging Face cache entry as huggingface_hub lays it out: blobs/<etag> with
// relative symlinks from snapshots/<commit>/ (or, without symlinks, the files
// themselves in the snapshot and no blobs/), refs/<revision> holding the commit
// with no newline, and trees/<commit>.json as json.dump(indent=1) writes it.
struct HfFile {
  std::string path;
  std::string content;
};

struct HfOptions {
  bool symlinks = true;
  bool tree = false;               // write trees/<commit>.json listing every file
  std::vector<std::string> refs = {"main"};
};

inline std::string fake_etag(std::size_t i) {
  static const char hex[] = "0123456789abcdef";
  std::string etag(40, '0');
  for (std::size_t k = 0; k < etag.size(); ++k) etag[k] = hex[(i * 7 + k * 3) % 16];
  return etag;
}

inline std::string tree_json(const std::vector<HfFile>& files) {
  std::string out = "{\n \"format_version\": 1,\n \"files\": {";
  for (std::size_t i = 0; i < files.size(); ++i) {
    out += std::string(i ? "," : "") + "\n  \"" + files[i].path + "\": {\n   \"size\": " +
           std::to_string(files[i].content.size()) + ",\n   \"blob_id\": \"" + fake_etag(i) + "\"\n  }";
  }
  return out + "\n }\n}";
}

inline fs::path lay_out_hf(const fs::path& root, const std::string& repo_id, const std::string& commit,
                           const std::vector<HfFile>& files, const HfOptions& o = {}) {
  std::string folder = "models--" + repo_id;
  folder.replace(folder.find('/'), 1, "--");
  const fs::path repo = root / folder;
  const fs::path snapshot = repo / "snapshots" / commit;
  fs::create_directories(snapshot);
  for (std::size_t i = 0; i < files.size(); ++i) {
    const fs::path entry = snapshot / files[i].path;
    if (!o.symlinks) {
      write_file(entry, files[i].content);
      continue;
    }
    write_file(repo / "blobs" / fake_etag(i), files[i].content);
    fs::create_directories(entry.parent_path());
    std::string up = "../../";
    for (char c : files[i].path) up += c == '/' ? "../" : "";
    fs::create_symlink(up + "blobs/" + fake_etag(i), entry);
  }
  for (const std::string& ref : o.refs) write_file(repo / "refs" / ref, commit);
  if (o.tree) write_file(repo / "trees" / (commit + ".json"), tree_json(files));
  return snapshot;
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value.empty())
      ::unsetenv(name);
    else
      ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_, old_.c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

// The environment a hub test owns: no ambient token, not offline, symlinks
// allowed, no read-only cache roots, and HF_HOME a fresh directory.
struct QuietHubEnvironment {
  TempDir home;
  ScopedEnv a{"HF_TOKEN", ""}, b{"HUGGING_FACE_HUB_TOKEN", ""}, c{"HF_TOKEN_PATH", ""}, d{"HF_HOME", home.str()},
      e{"MODELRES_OFFLINE", ""}, f{"HF_HUB_OFFLINE", ""}, g{"HF_HUB_DISABLE_SYMLINKS", ""},
      h{"MODELRES_READ_ONLY_CACHES", ""}, i{"MODELRES_ENDPOINTS", ""};
};

}  // namespace testing
