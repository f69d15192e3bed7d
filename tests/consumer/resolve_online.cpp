// resolve_online: asks the hub ($MODELSCOPE_ENDPOINT, else modelscope.cn) which
// files the model has, downloads what the cache lacks (verified), and prints the
// directory. When the hub cannot be asked, a cached copy is still served, and
// said to be unchecked. Links modelres::curl.
#include <modelres/modelres.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s owner/name | /path/to/model\n", argv[0]);
    return 2;
  }
  using Policy = modelres::FirstOf<modelres::PathPolicy, modelres::OnlinePolicy<modelres::CurlTransport>>;
  modelres::Resolver<Policy, modelres::ModelScopeCache> resolver;
  auto model = resolver.resolve(argv[1]);
  if (!model) {
    std::fprintf(stderr, "%s\n", model.error().message().c_str());
    return 1;
  }
  if (model.value().hub_check == modelres::HubCheck::unavailable)
    std::fprintf(stderr, "hub not asked, cached copy served: %s\n", model.value().hub_check_reason.c_str());
  std::printf("%s\n", model.value().directory.c_str());
  return 0;
}
