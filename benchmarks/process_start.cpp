// A whole process resolving a cached model offline, as a shell script or a
// service's start-up meets it: fork, exec, dynamic loading, the lookup, exit.
//
//   BM_Process/bin_true                   /bin/true: the cost of a process at all
//   BM_Process/local_only_program         the smallest LocalOnly program on the same headers
//   BM_Process/modelres_offline           modelres resolve ID --local-only (no network library loaded)
//   BM_Process/modelres_online_program    the same command run by modelres-online, which links
//                                         libcurl: what every command cost before the split
//
//   build/release/benchmarks/modelres_process_benchmarks --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

// A cache with one model laid out as modelscope 1.23-1.37 leaves it (files only; no metadata).
struct Cache {
  std::filesystem::path root;
  Cache() {
    char tmpl[] = "/tmp/modelres-process-XXXXXX";
    root = ::mkdtemp(tmpl);
    const auto dir = root / "models/iic/cv_unet_skin_retouching_torch";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "configuration.json") << R"({"framework": "pytorch"})";
  }
  ~Cache() { std::filesystem::remove_all(root); }
};

Cache& cache() {
  static Cache c;
  return c;
}

// Runs argv to completion with stdout to /dev/null; false unless it exits 0.
bool run(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void BM_Process(benchmark::State& state, std::vector<std::string> args) {
  ::unsetenv("MODELRES_OFFLINE");
  for (auto& a : args)
    if (a == "ROOT") a = cache().root.native();
  for (auto _ : state)
    if (!run(args)) state.SkipWithError(("failed: " + args.front()).c_str());
}

const std::string id = "iic/cv_unet_skin_retouching_torch";
BENCHMARK_CAPTURE(BM_Process, bin_true, {"/bin/true"})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Process, local_only_program, {MODELRES_LOCAL_ONLY_PROGRAM, "ROOT", id})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Process, modelres_offline, {MODELRES_CLI, "resolve", id, "--local-only", "--cache-dir", "ROOT"})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Process, modelres_online_program,
                  {MODELRES_CLI_NETWORK_PROGRAM, "resolve", id, "--local-only", "--cache-dir", "ROOT"})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
