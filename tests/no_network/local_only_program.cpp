// An offline program: resolves from a cache it lays out itself, with
// LocalOnlyPolicy, built with -fno-exceptions -fno-rtti and linked with the
// library alone. Exit 0 only if the hit and the typed miss are as expected.
#include <modelres/modelres.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

int main() {
  char tmpl[] = "/tmp/modelres-no-network-XXXXXX";
  if (!::mkdtemp(tmpl)) return 10;
  const std::string root = tmpl;
  const std::string snapshot = root + "/models/iic--tiny/snapshots/master";
  for (const std::string& d : {root + "/models", root + "/models/iic--tiny", root + "/models/iic--tiny/snapshots", snapshot})
    ::mkdir(d.c_str(), 0755);
  std::ofstream(snapshot + "/configuration.json") << "{}";

  modelres::Resolver<modelres::LocalOnlyPolicy, modelres::ModelScopeCache> resolver{modelres::ModelScopeCache(root)};
  auto hit = resolver.resolve("iic/tiny");
  auto miss = resolver.resolve("iic/absent");
  std::remove((snapshot + "/configuration.json").c_str());
  for (const std::string& d : {snapshot, root + "/models/iic--tiny/snapshots", root + "/models/iic--tiny", root + "/models", root})
    ::rmdir(d.c_str());

  if (!hit) {
    std::fprintf(stderr, "%s\n", hit.error().message().c_str());
    return 1;
  }
  if (hit.value().directory.native() != snapshot) return 2;
  if (miss || miss.error() != modelres::errc::not_cached) return 3;
  std::puts("local-only hit and typed miss: ok");
  return 0;
}
