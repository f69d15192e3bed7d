// A LocalOnly cache hit, against its syscall floor, with 1 and with 10,000
// models in the cache.
//
// The floor replays, with precomputed paths and no parsing, exactly the
// syscalls one hit makes (checked with strace; see docs/benchmarks.md):
// open snapshots/ (ENOENT), open .modelres (ENOENT: a cache the Python client
// wrote), open+fstat+read+close of .msc, .mdl and .mv, and a stat of each
// recorded file. The two are measured in the same run, so the
// ratio holds on any machine.
//
//   build/benchmarks/modelres_benchmarks --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <modelres/modelres.hpp>

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace modelres;

namespace {

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

const char* const kFiles[] = {"configuration.json", "README.md", "pytorch_model.pt", "assets/weights/joint.pth"};

void lay_out_model(const fs::path& dir, const std::string& id) {
  std::vector<detail::pickle::StringDict> records;
  for (const char* f : kFiles) {
    write(dir / f, "x");
    records.push_back({{"Path", f}, {"Revision", "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9"}});
  }
  write(dir / ".msc", detail::pickle::Writer::list_of_dicts(records));
  write(dir / ".mdl", detail::pickle::Writer::dict_only({{"id", id}}));
  write(dir / ".mv", "Revision:master,CreatedAt:1713419382");
}

// A cache root holding `models` models in the modelscope 1.23-1.37 layout, all
// under one owner, so the owner directory has `models` entries.
class Cache {
 public:
  explicit Cache(int models) {
    std::string tmpl = (fs::temp_directory_path() / "modelres-bench-XXXXXX").native();
    if (!::mkdtemp(tmpl.data())) std::abort();
    root = tmpl;
    for (int i = 1; i < models; ++i) lay_out_model(root / "models/iic" / ("model_" + std::to_string(i)), "iic/model");
    target = root / "models/iic/cv_unet_skin_retouching_torch";
    lay_out_model(target, "iic/cv_unet_skin_retouching_torch");
  }
  ~Cache() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  fs::path root, target;
};

Cache& cache_with(int models) {
  static std::map<int, std::unique_ptr<Cache>> caches;
  auto& c = caches[models];
  if (!c) c = std::make_unique<Cache>(models);
  return *c;
}

void BM_LocalOnlyHit(benchmark::State& state) {
  Cache& c = cache_with(static_cast<int>(state.range(0)));
  Resolver<LocalOnlyPolicy, ModelScopeCache> resolver{ModelScopeCache(c.root)};
  for (auto _ : state) {
    auto r = resolver.resolve("iic/cv_unet_skin_retouching_torch");
    if (!r || r.value().completeness != Completeness::verified) state.SkipWithError("resolve failed");
    benchmark::DoNotOptimize(r);
  }
}

void read_whole(const std::string& path, char* buf, std::size_t cap) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  ::fstat(fd, &st);
  benchmark::DoNotOptimize(::read(fd, buf, cap < static_cast<std::size_t>(st.st_size) ? cap : st.st_size));
  ::close(fd);
}

void BM_SyscallFloor(benchmark::State& state) {
  Cache& c = cache_with(static_cast<int>(state.range(0)));
  const std::string snapshots = (c.root / "models/iic--cv_unet_skin_retouching_torch/snapshots").native();
  const std::string dir = c.target.native();
  const std::string manifest = dir + "/.modelres", msc = dir + "/.msc", mdl = dir + "/.mdl", mv = dir + "/.mv";
  std::vector<std::string> files;
  for (const char* f : kFiles) files.push_back(dir + "/" + f);
  char buf[4096];
  for (auto _ : state) {
    const int d = ::open(snapshots.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_DIRECTORY);
    if (d >= 0) ::close(d);
    const int m = ::open(manifest.c_str(), O_RDONLY | O_CLOEXEC);
    if (m >= 0) ::close(m);
    read_whole(msc, buf, sizeof buf);
    read_whole(mdl, buf, sizeof buf);
    struct stat st;
    for (const auto& f : files) benchmark::DoNotOptimize(::stat(f.c_str(), &st));
    read_whole(mv, buf, sizeof buf);
  }
}

BENCHMARK(BM_SyscallFloor)->Arg(1)->Arg(10000)->ArgName("models");
BENCHMARK(BM_LocalOnlyHit)->Arg(1)->Arg(10000)->ArgName("models");

}  // namespace

BENCHMARK_MAIN();
