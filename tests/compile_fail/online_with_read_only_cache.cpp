// Must not compile: OnlinePolicy over a cache that can only be read.
#include <modelres/modelres.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>

struct ReadOnlyCache {
  modelres::result<modelres::ResolvedModel> locate(const modelres::ModelId&, std::string_view) const {
    return modelres::ResolvedModel{};
  }
  modelres::result<modelres::ResolvedModel> inspect(const std::filesystem::path&, std::string_view) const {
    return modelres::ResolvedModel{};
  }
};

int main() {
  modelres::Resolver<modelres::OnlinePolicy<modelres::CurlTransport>, ReadOnlyCache> r;
  return r.resolve("iic/x") ? 0 : 1;
}
