// A LocalOnly resolve of a model in a cache this program lays out, as the
// Python client does, and a typed miss; with the curl component, an online
// resolve of the same model while the hub cannot be asked (loopback port 9):
// served from the cache and said to be unchecked.
#include <modelres/modelres.hpp>
#ifdef MODELRES_TEST_ONLINE
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>
#endif

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

int main() {
  const fs::path cache = fs::temp_directory_path() / "modelres-test-package-cache";
  fs::remove_all(cache);
  fs::create_directories(cache / "models" / "acme" / "tiny");
  std::ofstream(cache / "models" / "acme" / "tiny" / "config.json") << "{}\n";

  modelres::Resolver<modelres::DefaultOfflinePolicy, modelres::ModelScopeCache> offline{
      modelres::ModelScopeCache(cache.string())};
  auto hit = offline.resolve("acme/tiny");
  auto miss = offline.resolve("acme/absent");
  if (!hit || hit.value().directory != cache / "models" / "acme" / "tiny") return 1;
  if (miss || miss.error() != modelres::errc::not_cached) return 2;
  std::printf("modelres %s: LocalOnly resolved %s\n", MODELRES_VERSION_STRING, hit.value().directory.c_str());

#ifdef MODELRES_TEST_ONLINE
  modelres::OnlineOptions options;
  options.hub.endpoint = "http://127.0.0.1:9";
  using Online = modelres::OnlinePolicy<modelres::CurlTransport>;
  modelres::Resolver<Online, modelres::ModelScopeCache> online{modelres::ModelScopeCache(cache.string()),
                                                              Online(options)};
  auto served = online.resolve("acme/tiny");
  if (!served || served.value().hub_check != modelres::HubCheck::unavailable) return 3;
  std::printf("online: hub unreachable, cached copy served unchecked (%s)\n", served.value().hub_check_reason.c_str());
#endif
  fs::remove_all(cache);
  return 0;
}
