// Online resolution against a loopback hub, in the same run as curl:
//
//   BM_ColdDownload/modelres  OnlinePolicy into an empty cache: 8 files of 32 MiB,
//                             4 connections, every byte hashed and verified
//   BM_ColdDownload/curl      the curl program fetching the same 8 URLs with
//                             --parallel --parallel-max 4, into the page cache, no verification
//   BM_ColdDownload/curl_then_sync  the same, then each file synced to disk: the
//                             durability modelres gives before declaring a model complete
//   BM_CurrentCacheCheck      OnlinePolicy when the cache is current: requests and latency
//   BM_PeakMemory/<MiB>       peak RSS of a child process downloading one file of that size
//
//   build/release/benchmarks/modelres_download_benchmarks
#include <modelres/modelres.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <benchmark/benchmark.h>

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cache_builder.hpp"
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

// A fresh directory, removed with its contents when it goes.
using TempRoot = testing::TempDir;

Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache> online(const fs::path& root) {
  OnlineOptions o;
  o.hub.endpoint = hub().endpoint();
  o.fetch.parallel = 4;
  return Resolver<OnlinePolicy<CurlTransport>, ModelScopeCache>(ModelScopeCache(root), OnlinePolicy<CurlTransport>(o));
}

void BM_ColdDownload_modelres(benchmark::State& state) {
  ::unsetenv("MODELRES_OFFLINE");
  for (auto _ : state) {
    state.PauseTiming();
    auto root = std::make_unique<TempRoot>();  // a cold cache each time
    auto resolver = online(root->path());
    state.ResumeTiming();
    auto r = resolver.resolve("bench/model");
    if (!r) state.SkipWithError(r.error().message().c_str());
    state.PauseTiming();
    root.reset();  // removing 256 MiB is not part of the download
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFiles * kFileSize));
}

// curl, then each file synced to disk: the same durability modelres gives
// before it declares a model complete.
void curl_download(benchmark::State& state, bool durable);

void BM_ColdDownload_curl(benchmark::State& state) { curl_download(state, false); }
void BM_ColdDownload_curl_then_sync(benchmark::State& state) { curl_download(state, true); }

void curl_download(benchmark::State& state, bool durable) {
  const std::string base = hub().endpoint() + "/api/v1/models/bench/model/repo?Revision=master&FilePath=";
  for (auto _ : state) {
    state.PauseTiming();
    auto holder = std::make_unique<TempRoot>();
    TempRoot& root = *holder;
    std::vector<std::string> args{"curl", "-sS", "--no-progress-meter", "--fail", "--parallel", "--parallel-max", "4"};
    for (std::size_t i = 0; i < kFiles; ++i) {
      args.push_back("-o");
      args.push_back((root.path() / ("shard-" + std::to_string(i) + ".bin")).native());
      args.push_back(base + "shard-" + std::to_string(i) + ".bin");
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    state.ResumeTiming();
    pid_t pid;
    if (::posix_spawnp(&pid, "curl", nullptr, nullptr, argv.data(), environ) != 0) state.SkipWithError("no curl program");
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("curl failed");
    if (durable)
      for (std::size_t i = 0; i < kFiles; ++i) detail::sync_to_disk((root.path() / ("shard-" + std::to_string(i) + ".bin")).native());
    state.PauseTiming();
    holder.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFiles * kFileSize));
}

void BM_CurrentCacheCheck(benchmark::State& state) {
  ::unsetenv("MODELRES_OFFLINE");
  TempRoot root;
  auto resolver = online(root.path());
  if (!resolver.resolve("bench/model")) state.SkipWithError("first resolve failed");
  const std::size_t before = hub().server().requests().size();
  for (auto _ : state) {
    auto r = resolver.resolve("bench/model");
    if (!r || r.value().hub_check != HubCheck::current) state.SkipWithError("check failed");
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
    std::vector<std::string> args{self_path, "--child-download", endpoint, model, (root.path() / "cache").native(), report};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    if (::posix_spawn(&pid, self_path.c_str(), nullptr, nullptr, argv.data(), environ) != 0) state.SkipWithError("spawn");
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("child download failed");
    std::ifstream(report) >> peak_mib;
  }
  state.counters["child_peak_MiB"] = peak_mib;
}

BENCHMARK(BM_ColdDownload_modelres)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_ColdDownload_curl)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_ColdDownload_curl_then_sync)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_CurrentCacheCheck)->Unit(benchmark::kMicrosecond)->UseRealTime();
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
  return 0;
}
