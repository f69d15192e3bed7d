// Online resolution against a loopback hub, in the same run as curl:
//
//   BM_ColdDownload_modelres        OnlinePolicy into an empty cache: 8 files of 32 MiB,
//                                   4 connections, every byte hashed and verified, every
//                                   file synced to disk (Durability::on_disk, the default)
//   BM_ColdDownload_modelres_until_restart  the same without waiting for the disk
//   BM_ColdDownload_curl            the curl program fetching the same 8 URLs with
//                                   --parallel --parallel-max 4, into the page cache
//   BM_ColdDownload_curl_sha256     the same, then every file's SHA-256 checked with
//                                   `openssl dgst -sha256` (SHA-NI; two at once, one per core):
//                                   curl with verification on
//   BM_ColdDownload_curl_sha256_sync  that, then each file synced to disk: the whole of
//                                   what the default modelres download does
//   BM_CurrentCacheCheck            OnlinePolicy when the cache is current: requests and latency
//   BM_HfColdDownload_modelres      the same 8 files as LFS files of a Hugging Face model, each
//                                   through the hub's redirect to its CDN (127.0.0.2), into
//                                   HuggingFaceCache: blobs, links, tree, refs, synced
//   BM_HfColdDownload_curl_sha256_sync  curl -L on the same /resolve URLs, then openssl and sync
//   BM_HfCurrentCacheCheck          a current Hugging Face cache: requests (one) and latency
//   BM_PeakMemory/<MiB>             peak RSS of a child process downloading one file of that size
//
//   build/release/benchmarks/modelres_download_benchmarks
#include <modelres/modelres.hpp>
#include <modelres/hubs/huggingface_hub.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cache_builder.hpp"
#include "hf_test_hub.hpp"
#include "test_hub.hpp"

extern char** environ;

namespace fs = std::filesystem;
using namespace modelres;

namespace {

constexpr std::size_t kFiles = 8;
constexpr std::size_t kFileSize = 32u << 20;

testing::TestHub& hub() {
  static testing::TestHub* h = [] {
    auto* server = new testing::TestHub();
    testing::HubModelSpec m{"bench/model", {"master"}, {}, {}, {}};
    for (std::size_t i = 0; i < kFiles; ++i)
      m.files.push_back({"shard-" + std::to_string(i) + ".bin", testing::pattern_bytes(kFileSize, 50 + unsigned(i)),
                         "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9", nullptr});
    for (std::size_t mib : {64, 256})
      server->add({"bench/one-" + std::to_string(mib), {"master"}, {}, {{"weights.bin", testing::pattern_bytes(mib << 20, 3),
                                                                          "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9", nullptr}}, {}});
    server->add(m);
    server->start();
    return server;
  }();
  return *h;
}

// The same files as LFS files of a Hugging Face model.
testing::HfTestHub& hf_hub() {
  static testing::HfTestHub* h = [] {
    auto* server = new testing::HfTestHub();
    testing::HfHubModel m;
    m.id = "bench/model";
    m.commit = "0123456789abcdef0123456789abcdef01234567";
    for (std::size_t i = 0; i < kFiles; ++i)
      m.files.push_back({"shard-" + std::to_string(i) + ".bin", testing::pattern_bytes(kFileSize, 50 + unsigned(i)), true, "", "", false});
    server->add(m);
    server->start();
    return server;
  }();
  return *h;
}

// A benchmark that cannot do its work says why, and the program then exits 1
// (Google Benchmark itself exits 0 after a skipped benchmark), so a smoke run
// in CI notices.
bool any_failed = false;
void fail(benchmark::State& state, const std::string& why) {
  any_failed = true;
  state.SkipWithError(why.c_str());
}

// A fresh directory, removed with its contents when it goes.
using TempRoot = testing::TempDir;

Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache> online(const fs::path& root, Durability durability = Durability::on_disk) {
  OnlineOptions o;
  o.hub.endpoint = hub().endpoint();
  o.fetch.parallel = 4;
  o.fetch.durability = durability;
  return Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache>(ModelScopeCache(root), OnlinePolicy<CurlTransport>(o));
}

void modelres_download(benchmark::State& state, Durability durability) {
  ::unsetenv("MODELRES_OFFLINE");
  for (auto _ : state) {
    state.PauseTiming();
    auto root = std::make_unique<TempRoot>();  // a cold cache each time
    auto resolver = online(root->path(), durability);
    state.ResumeTiming();
    auto r = resolver.resolve("bench/model");
    if (!r) return fail(state, r.error().message());
    state.PauseTiming();
    root.reset();  // removing 256 MiB is not part of the download
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFiles * kFileSize));
}

void BM_ColdDownload_modelres(benchmark::State& state) { modelres_download(state, Durability::on_disk); }
void BM_ColdDownload_modelres_until_restart(benchmark::State& state) { modelres_download(state, Durability::until_restart); }

std::string shard_name(std::size_t i) { return "shard-" + std::to_string(i) + ".bin"; }

// Starts a program (looked up in PATH), its output into `out` if given; -1 if it cannot be started.
pid_t spawn(std::vector<std::string> args, const fs::path& out = {}) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  if (!out.empty()) ::posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  if (::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid = -1;
  ::posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// Waits for a spawned program; true if it exited 0.
bool succeeded(pid_t pid) {
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// curl, then optionally what modelres does besides: check every file's SHA-256
// (openssl dgst, two processes, one per core), and sync each to disk.
void curl_download(benchmark::State& state, bool verify, bool durable, const std::string& base) {
  static const std::vector<std::string> hashes = [] {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < kFiles; ++i) out.push_back(testing::sha256_hex(testing::pattern_bytes(kFileSize, 50 + unsigned(i))));
    return out;
  }();
  for (auto _ : state) {
    state.PauseTiming();
    auto holder = std::make_unique<TempRoot>();
    const fs::path& root = holder->path();
    std::vector<std::string> args{"curl", "-sS", "--no-progress-meter", "--fail", "--location", "--parallel", "--parallel-max", "4"};
    for (std::size_t i = 0; i < kFiles; ++i) {
      args.push_back("-o");
      args.push_back((root / shard_name(i)).native());
      args.push_back(base + shard_name(i));
    }
    // Half the files for each of two openssl processes, and what each must print.
    std::vector<std::string> halves[2] = {{"openssl", "dgst", "-sha256", "-r"}, {"openssl", "dgst", "-sha256", "-r"}};
    std::string expected[2];
    for (std::size_t i = 0; i < kFiles; ++i) {
      halves[i % 2].push_back((root / shard_name(i)).native());
      expected[i % 2] += hashes[i] + " *" + (root / shard_name(i)).native() + "\n";
    }
    state.ResumeTiming();
    if (!succeeded(spawn(args))) return fail(state, "curl failed (is the curl program installed?)");
    if (verify) {
      const pid_t first = spawn(halves[0], root / "sums-0"), second = spawn(halves[1], root / "sums-1");
      const bool ran = succeeded(first), ran_too = succeeded(second);
      if (!ran || !ran_too) return fail(state, "openssl dgst failed (is the openssl program installed?)");
      // Comparing 8 lines of text is not the cost being measured, but it is part of verifying.
      if (testing::read_text(root / "sums-0") != expected[0] || testing::read_text(root / "sums-1") != expected[1])
        return fail(state, "a file's SHA-256 does not match");
    }
    if (durable)
      for (std::size_t i = 0; i < kFiles; ++i) detail::sync_to_disk((root / shard_name(i)).native());
    state.PauseTiming();
    holder.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFiles * kFileSize));
}

std::string modelscope_base() { return hub().endpoint() + "/api/v1/models/bench/model/repo?Revision=master&FilePath="; }
std::string huggingface_base() {
  return hf_hub().endpoint() + "/bench/model/resolve/0123456789abcdef0123456789abcdef01234567/";
}
void BM_ColdDownload_curl(benchmark::State& state) { curl_download(state, false, false, modelscope_base()); }
void BM_ColdDownload_curl_sha256(benchmark::State& state) { curl_download(state, true, false, modelscope_base()); }
void BM_ColdDownload_curl_sha256_sync(benchmark::State& state) { curl_download(state, true, true, modelscope_base()); }

using HfOnline = OnlinePolicy<CurlTransport, HuggingFaceHub<CurlTransport>>;
Resolver<HfOnline, HuggingFaceCache> hf_online(const fs::path& root) {
  HfOnline::Options o;
  o.hub.endpoint = hf_hub().endpoint();
  o.fetch.parallel = 4;
  return Resolver<HfOnline, HuggingFaceCache>(HuggingFaceCache(root), HfOnline(o));
}

void BM_HfColdDownload_modelres(benchmark::State& state) {
  ::unsetenv("MODELRES_OFFLINE");
  ::setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1", 1);
  for (auto _ : state) {
    state.PauseTiming();
    auto root = std::make_unique<TempRoot>();
    auto resolver = hf_online(root->path());
    state.ResumeTiming();
    auto r = resolver.resolve("bench/model");
    if (!r) return fail(state, r.error().message());
    state.PauseTiming();
    root.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFiles * kFileSize));
}
void BM_HfColdDownload_curl_sha256_sync(benchmark::State& state) { curl_download(state, true, true, huggingface_base()); }

void BM_HfCurrentCacheCheck(benchmark::State& state) {
  ::unsetenv("MODELRES_OFFLINE");
  ::setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1", 1);
  TempRoot root;
  auto resolver = hf_online(root.path());
  if (!resolver.resolve("bench/model")) return fail(state, "first resolve failed");
  const std::size_t before = hf_hub().hub().requests().size() + hf_hub().cdn().requests().size();
  for (auto _ : state) {
    auto r = resolver.resolve("bench/model");
    if (!r || r.value().hub_check != HubCheck::current) return fail(state, "check failed");
  }
  state.counters["requests_per_check"] =
      static_cast<double>(hf_hub().hub().requests().size() + hf_hub().cdn().requests().size() - before) /
      static_cast<double>(state.iterations());
}

void BM_CurrentCacheCheck(benchmark::State& state) {
  ::unsetenv("MODELRES_OFFLINE");
  TempRoot root;
  auto resolver = online(root.path());
  if (!resolver.resolve("bench/model")) return fail(state, "first resolve failed");
  const std::size_t before = hub().server().requests().size();
  for (auto _ : state) {
    auto r = resolver.resolve("bench/model");
    if (!r || r.value().hub_check != HubCheck::current) return fail(state, "check failed");
  }
  state.counters["requests_per_check"] =
      static_cast<double>(hub().server().requests().size() - before) / static_cast<double>(state.iterations());
}

// Peak memory of a fresh process (this program, exec'ed with
// --child-download) that downloads one file of `MiB`, as the child's own
// VmHWM: flat in file size means the body is streamed, never held. (Linux
// carries ru_maxrss across exec from the spawning process, so the child reports.)
std::string self_path;

void BM_PeakMemory(benchmark::State& state) {
  const std::string model = "bench/one-" + std::to_string(state.range(0));
  const std::string endpoint = hub().endpoint();
  double peak_mib = 0;
  for (auto _ : state) {
    TempRoot root;
    const std::string report = (root.path() / "hwm").native();
    if (!succeeded(spawn({self_path, "--child-download", endpoint, model, (root.path() / "cache").native(), report})))
      return fail(state, "child download failed");
    std::ifstream(report) >> peak_mib;
  }
  state.counters["child_peak_MiB"] = peak_mib;
}

BENCHMARK(BM_ColdDownload_modelres)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_ColdDownload_modelres_until_restart)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_ColdDownload_curl)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_ColdDownload_curl_sha256)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_ColdDownload_curl_sha256_sync)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_CurrentCacheCheck)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_HfColdDownload_modelres)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_HfColdDownload_curl_sha256_sync)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_HfCurrentCacheCheck)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_PeakMemory)->Arg(64)->Arg(256)->ArgName("MiB")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "--child-download") {
    ::unsetenv("MODELRES_OFFLINE");
    OnlineOptions o;
    o.hub.endpoint = argv[2];
    Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache> resolver{ModelScopeCache(std::string(argv[4])), OnlinePolicy<CurlTransport>(o)};
    if (!resolver.resolve(argv[3])) return 1;
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("VmHWM:", 0) == 0) std::ofstream(argv[5]) << std::stod(line.substr(6)) / 1024.0;
    return 0;
  }
  self_path = fs::canonical("/proc/self/exe").native();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return any_failed ? 1 : 0;
}
