// One large file from nginx, with and without a per-connection rate cap
// (nginx's limit_rate, as CDNs and proxies cap each connection), in one run:
//
//   BM_LargeFile_modelres_ranged/cap_MBps:N      the Fetcher as shipped: byte ranges over
//                                                FetchOptions::parallel (8) connections,
//                                                SHA-256 checked over the whole file
//   BM_LargeFile_modelres_one_stream/cap_MBps:N  the same with ranged_threshold = 0: one
//                                                connection, hashed as it streams (before ranges)
//   BM_LargeFile_curl/cap_MBps:N                 the curl program, one stream, no hash
//
// cap_MBps:0 is no cap. Both modelres rows leave writeback to the kernel
// (Durability::until_restart), as curl does. nginx (the nginx-light package)
// must be installed: without it every row fails and the program exits 1.
//
//   build/release/benchmarks/modelres_segmented_benchmarks
//   MODELRES_BENCH_FILE_MIB=128 ...  a smaller file (the CI smoke run); 1024 by default
#include <modelres/fetcher.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <benchmark/benchmark.h>

#include "../tests/support/loopback_ports.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fs = std::filesystem;
using namespace modelres;
using testing::accepts;
using testing::free_port;

namespace {

constexpr unsigned kCapMBps = 32;  // nginx's `limit_rate 32m`: 32 MiB/s per connection

std::uint64_t file_size() {
  const char* mib = std::getenv("MODELRES_BENCH_FILE_MIB");
  return (mib ? std::strtoull(mib, nullptr, 10) : 1024) << 20;
}

pid_t spawn(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) pid = -1;
  return pid;
}

bool succeeded(pid_t pid) {
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A fresh directory, removed with its contents when it goes.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "modelres-bench-XXXXXX").native();
    if (!::mkdtemp(tmpl.data())) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Bytes that do not compress (a proxy could not shrink them).
std::string noise(std::uint64_t n, std::uint64_t seed) {
  std::string out(n, '\0');
  std::uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
  for (std::uint64_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64
    out[i] = static_cast<char>(x);
  }
  return out;
}

// nginx in the foreground, serving one file of pattern bytes as
// /free/big.bin and /capped/big.bin (the latter with limit_rate).
class Nginx {
 public:
  Nginx() {
    const fs::path www = dir_.path() / "www";
    fs::create_directories(www);
    fs::create_directories(dir_.path() / "tmp");
    {
      // Written in pieces: a 1 GiB file is never held in memory.
      std::ofstream out(www / "big.bin", std::ios::binary);
      detail::Digest sha(EVP_sha256());
      constexpr std::uint64_t piece = 16u << 20;
      for (std::uint64_t at = 0, i = 0; at < file_size(); at += piece, ++i) {
        const std::string bytes = noise(std::min(piece, file_size() - at), i);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        sha.update(bytes);
      }
      sha256_ = sha.hex();
    }
    port_ = free_port();
    const std::string d = dir_.path().native();
    std::ofstream(dir_.path() / "nginx.conf")
        << (::geteuid() == 0 ? "user root;\n" : "")  // the default (nobody) cannot read a 0700 temporary directory
        << "daemon off;\nmaster_process on;\nworker_processes 2;\npid " << d << "/nginx.pid;\nerror_log " << d
        << "/error.log;\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n  sendfile on;\n"
        << "  client_body_temp_path " << d << "/tmp;\n  proxy_temp_path " << d << "/tmp;\n"
        << "  server {\n    listen 127.0.0.1:" << port_ << ";\n"
        << "    location /free/ { alias " << d << "/www/; }\n"
        << "    location /capped/ { alias " << d << "/www/; limit_rate " << kCapMBps << "m; }\n  }\n}\n";
    pid_ = spawn({"nginx", "-p", d, "-e", d + "/error.log", "-c", d + "/nginx.conf"});
    for (int i = 0; pid_ > 0 && i < 200 && !accepts(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (pid_ > 0 && !accepts(port_)) stop();
  }
  ~Nginx() { stop(); }

  bool running() const { return pid_ > 0; }
  std::string url(unsigned cap) const {
    return "http://127.0.0.1:" + std::to_string(port_) + (cap ? "/capped/big.bin" : "/free/big.bin");
  }
  const std::string& sha256() const { return sha256_; }

 private:
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGQUIT);  // graceful: the workers go too
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  TempDir dir_;
  std::string sha256_;
  int port_ = -1;
  pid_t pid_ = -1;
};

Nginx& nginx() {
  static Nginx server;
  return server;
}

bool any_failed = false;
void fail(benchmark::State& state, const std::string& why) {
  any_failed = true;
  state.SkipWithError(why.c_str());
}

void modelres_fetch(benchmark::State& state, bool ranged) {
  if (!nginx().running()) return fail(state, "nginx did not start (is the nginx-light package installed?)");
  const unsigned cap = static_cast<unsigned>(state.range(0));
  FetchOptions o;
  o.durability = Durability::until_restart;
  if (!ranged) o.ranged_threshold = 0;
  FetchItem item{"big.bin", file_size(), nginx().sha256(), {}, {}, {}, {}};
  item.request.url = nginx().url(cap);
  for (auto _ : state) {
    state.PauseTiming();
    auto dir = std::make_unique<TempDir>();
    Fetcher<CurlTransport> fetcher([] { return CurlTransport(); },
                                   [](const FetchItem& i, const ResponseHead& h, std::string_view) {
                                     return Error(errc::server_error, i.path, "HTTP " + std::to_string(h.status));
                                   },
                                   o);
    state.ResumeTiming();
    auto r = fetcher.fetch({item}, (dir->path() / "final").native(), (dir->path() / "partial").native());
    if (!r) return fail(state, r.error().message());
    state.PauseTiming();
    dir.reset();  // removing the file is not part of the download
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * file_size()));
}

void BM_LargeFile_modelres_ranged(benchmark::State& state) { modelres_fetch(state, true); }
void BM_LargeFile_modelres_one_stream(benchmark::State& state) { modelres_fetch(state, false); }

void BM_LargeFile_curl(benchmark::State& state) {
  if (!nginx().running()) return fail(state, "nginx did not start (is the nginx-light package installed?)");
  const unsigned cap = static_cast<unsigned>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    auto dir = std::make_unique<TempDir>();
    const std::string out = (dir->path() / "big.bin").native();
    state.ResumeTiming();
    if (!succeeded(spawn({"curl", "-sS", "--fail", "-o", out, nginx().url(cap)})))
      return fail(state, "curl failed (is the curl program installed?)");
    state.PauseTiming();
    if (fs::file_size(out) != file_size()) return fail(state, "curl wrote a file of the wrong size");
    dir.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * file_size()));
}

// One pass each: a capped 1 GiB file by one stream takes 32 s.
#define MODELRES_LARGE_FILE(fn) \
  BENCHMARK(fn)->Arg(0)->Arg(kCapMBps)->ArgName("cap_MBps")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1)
MODELRES_LARGE_FILE(BM_LargeFile_modelres_ranged);
MODELRES_LARGE_FILE(BM_LargeFile_modelres_one_stream);
MODELRES_LARGE_FILE(BM_LargeFile_curl);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return any_failed ? 1 : 0;
}
