// OnlinePolicy over a transport of the program's own (modelres::online, no
// libcurl): here one with no network at all, so the hub cannot be asked and
// the cached copy is served, said to be unchecked.
#include <modelres/modelres.hpp>
#include <modelres/policies/online.hpp>

#include <cstdio>

struct NoNetworkTransport {
  modelres::result<modelres::HttpResponse> send(const modelres::HttpRequest& request, const modelres::BodySink&) {
    return modelres::Error(modelres::errc::hub_unreachable, request.url, "this transport has no network");
  }
};

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  modelres::Resolver<modelres::OnlinePolicy<NoNetworkTransport>, modelres::ModelScopeCache> resolver;
  auto model = resolver.resolve(argv[1]);
  if (!model) {
    std::fprintf(stderr, "%s\n", model.error().message().c_str());
    return 1;
  }
  std::printf("%s\nhub check: %s\n", model.value().directory.c_str(), modelres::to_string(model.value().hub_check));
  return 0;
}
