// The reference for the CLI's start-up: the smallest program that resolves a
// model id offline with the same headers (LocalOnlyPolicy over
// ModelScopeCache) and prints the directory. benchmarks/process_start.cpp
// runs it beside `modelres resolve --local-only` and /bin/true.
//
//   local_only_program CACHE_ROOT OWNER/NAME
#include <modelres/modelres.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  modelres::Resolver<modelres::LocalOnlyPolicy, modelres::ModelScopeCache> resolver{modelres::ModelScopeCache(argv[1])};
  auto r = resolver.resolve(argv[2]);
  if (!r) return 4;
  std::printf("%s\n", r.value().directory.c_str());
  return 0;
}
