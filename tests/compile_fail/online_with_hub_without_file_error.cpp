// Must not compile: OnlinePolicy over a hub that cannot map a failed download to an error.
#include <modelres/modelres.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>

struct HalfAHub {
  struct Options {};
  HalfAHub(modelres::CurlTransport, Options) {}
  modelres::result<modelres::HubSnapshot> snapshot(const modelres::ModelId&, std::string_view) { return modelres::HubSnapshot{}; }
  modelres::HttpRequest file_request(const modelres::ModelId&, const modelres::HubSnapshot&, const modelres::HubFile&) const {
    return {};
  }
};

int main() {
  modelres::Resolver<modelres::OnlinePolicy<modelres::CurlTransport, HalfAHub>, modelres::ModelScopeCache> r;
  return r.resolve("iic/x") ? 0 : 1;
}
