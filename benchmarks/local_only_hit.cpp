// A LocalOnly cache hit, against its syscall floor, with 1 and with 10,000
// models in the cache.
//
// The floor replays, with precomputed paths and no parsing, exactly the
// syscalls one hit makes (checked with strace; see docs/benchmarks.md):
// stat models/ (the gate of the layouts below it), open snapshots/ (ENOENT), open .modelres (ENOENT: a cache the Python client
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

// A fresh directory below $TMPDIR, removed with everything in it.
struct TempRoot {
  TempRoot() {
    std::string tmpl = (fs::temp_directory_path() / "modelres-bench-XXXXXX").native();
    if (!::mkdtemp(tmpl.data())) std::abort();
    root = tmpl;
  }
  ~TempRoot() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  fs::path root;
};

// A cache root holding `models` models in the modelscope 1.23-1.37 layout, all
// under one owner, so the owner directory has `models` entries.
struct Cache : TempRoot {
  explicit Cache(int models) {
    for (int i = 1; i < models; ++i) lay_out_model(root / "models/iic" / ("model_" + std::to_string(i)), "iic/model");
    target = root / "models/iic/cv_unet_skin_retouching_torch";
    lay_out_model(target, "iic/cv_unet_skin_retouching_torch");
  }
  fs::path target;
};

// One cache of each kind and size for the whole run: laying out 10,000 models is slow.
template <class C>
C& cache_with(int models) {
  static std::map<int, std::unique_ptr<C>> caches;
  auto& c = caches[models];
  if (!c) c = std::make_unique<C>(models);
  return *c;
}

// The unet, resolved offline from the ModelScope cache at `root`, once per iteration.
void modelscope_hits(benchmark::State& state, const fs::path& root) {
  Resolver<LocalOnlyPolicy, ModelScopeCache> resolver{ModelScopeCache(root)};
  for (auto _ : state) {
    auto r = resolver.resolve("iic/cv_unet_skin_retouching_torch");
    if (!r || r.value().completeness != Completeness::verified) state.SkipWithError("resolve failed");
    benchmark::DoNotOptimize(r);
  }
}

void BM_LocalOnlyHit(benchmark::State& state) {
  modelscope_hits(state, cache_with<Cache>(static_cast<int>(state.range(0))).root);
}

void read_whole(const std::string& path, char* buf, std::size_t cap) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  ::fstat(fd, &st);
  benchmark::DoNotOptimize(::read(fd, buf, cap < static_cast<std::size_t>(st.st_size) ? cap : st.st_size));
  ::close(fd);
}

void BM_SyscallFloor(benchmark::State& state) {
  Cache& c = cache_with<Cache>(static_cast<int>(state.range(0)));
  const std::string models = (c.root / "models").native();
  const std::string snapshots = (c.root / "models/iic--cv_unet_skin_retouching_torch/snapshots").native();
  const std::string dir = c.target.native();
  const std::string manifest = dir + "/.modelres", msc = dir + "/.msc", mdl = dir + "/.mdl", mv = dir + "/.mv";
  std::vector<std::string> files;
  for (const char* f : kFiles) files.push_back(dir + "/" + f);
  char buf[4096];
  for (auto _ : state) {
    struct stat gate;
    benchmark::DoNotOptimize(::stat(models.c_str(), &gate));
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

// The same hit on a Hugging Face cache as huggingface_hub lays it out: refs/main,
// snapshots/<commit>/ of relative symlinks into blobs/, and trees/<commit>.json
// listing the files, so the hit proves completeness `listed`. `models` models
// are models--org--model_N beside it.
const std::string kCommit = "e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9";

struct HfCache : TempRoot {
  explicit HfCache(int models) {
    for (int i = 1; i < models; ++i) fs::create_directories(root / ("models--org--model_" + std::to_string(i)) / "snapshots");
    repo = root / "models--iic--cv_unet_skin_retouching_torch";
    std::string tree = "{\n \"format_version\": 1,\n \"files\": {";
    int n = 0;
    for (const char* f : kFiles) {
      const std::string etag = std::string(40, static_cast<char>('a' + n));
      write(repo / "blobs" / etag, "x");
      const fs::path link = repo / "snapshots" / kCommit / f;
      fs::create_directories(link.parent_path());
      std::string up = "../../";
      for (const char* c = f; *c; ++c) up += *c == '/' ? "../" : "";
      fs::create_symlink(up + "blobs/" + etag, link);
      tree += std::string(n++ ? "," : "") + "\n  \"" + f + "\": {\"size\": 1, \"blob_id\": \"" + etag + "\"}";
    }
    write(repo / "trees" / (kCommit + ".json"), tree + "\n }\n}");
    write(repo / "refs/main", kCommit);
  }
  fs::path repo;
};

void BM_HuggingFaceHit(benchmark::State& state) {
  HfCache& c = cache_with<HfCache>(static_cast<int>(state.range(0)));
  Resolver<LocalOnlyPolicy, HuggingFaceCache> resolver{HuggingFaceCache(c.root)};
  for (auto _ : state) {
    auto r = resolver.resolve("iic/cv_unet_skin_retouching_torch");
    if (!r || r.value().completeness != Completeness::listed) state.SkipWithError("resolve failed");
    benchmark::DoNotOptimize(r);
  }
}

// Exactly the hit's syscalls (strace): stat the model's folder, read refs/main,
// stat the snapshot, read the tree, then readlink each subdirectory once and
// readlink and stat each listed file.
void BM_HuggingFaceFloor(benchmark::State& state) {
  HfCache& c = cache_with<HfCache>(static_cast<int>(state.range(0)));
  const std::string repo = c.repo.native(), ref = repo + "/refs/main", snapshot = repo + "/snapshots/" + kCommit,
                    tree = repo + "/trees/" + kCommit + ".json", manifest = repo + "/.modelres/" + kCommit;
  std::vector<std::string> files, dirs = {snapshot + "/assets", snapshot + "/assets/weights"};
  for (const char* f : kFiles) files.push_back(snapshot + "/" + f);
  char buf[4096];
  struct stat st;
  for (auto _ : state) {
    benchmark::DoNotOptimize(::stat(repo.c_str(), &st));
    read_whole(ref, buf, sizeof buf);
    benchmark::DoNotOptimize(::stat(snapshot.c_str(), &st));
    // modelres's manifest of the commit, looked for first: absent (ENOENT) in a cache Python wrote.
    benchmark::DoNotOptimize(::open(manifest.c_str(), O_RDONLY | O_CLOEXEC));
    read_whole(tree, buf, sizeof buf);
    for (const auto& d : dirs) benchmark::DoNotOptimize(::readlink(d.c_str(), buf, sizeof buf));
    for (const auto& f : files) {
      benchmark::DoNotOptimize(::readlink(f.c_str(), buf, sizeof buf));
      benchmark::DoNotOptimize(::stat(f.c_str(), &st));
    }
  }
}

// The same model, alone, in each classic layout, by probe order
// (docs/cache-layouts.md): 2 ROOT/models/owner/name___, 3 ROOT/hub/models/...,
// 4 ROOT/hub/owner/name___, 6 ROOT/owner/name___ (cache_dir= on 1.15-1.37).
// Layouts probed later must not cost measurably more.
struct LayoutCache : TempRoot {
  explicit LayoutCache(int layout) {
    const char* middle = layout == 2 ? "models/" : layout == 3 ? "hub/models/" : layout == 4 ? "hub/" : "";
    lay_out_model(root / middle / "iic/cv_unet_skin_retouching_torch", "iic/cv_unet_skin_retouching_torch");
  }
};

void BM_LayoutHit(benchmark::State& state) {
  modelscope_hits(state, cache_with<LayoutCache>(static_cast<int>(state.range(0))).root);
}

BENCHMARK(BM_SyscallFloor)->Arg(1)->Arg(10000)->ArgName("models");
BENCHMARK(BM_LocalOnlyHit)->Arg(1)->Arg(10000)->ArgName("models");
BENCHMARK(BM_HuggingFaceFloor)->Arg(1)->Arg(10000)->ArgName("models");
BENCHMARK(BM_HuggingFaceHit)->Arg(1)->Arg(10000)->ArgName("models");
BENCHMARK(BM_LayoutHit)->Arg(2)->Arg(3)->Arg(4)->Arg(6)->ArgName("layout");

}  // namespace

BENCHMARK_MAIN();
