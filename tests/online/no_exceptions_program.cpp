// CurlTransport built with -fno-exceptions -fno-rtti: a request to a port
// where nothing listens must come back as a typed hub_unreachable.
#include <modelres/transports/curl_transport.hpp>

#include <cstdio>

int main() {
  modelres::CurlTransport transport;
  modelres::HttpRequest request;
  request.url = "http://127.0.0.1:1/api/v1/models/iic/x/revisions";
  request.timeout = std::chrono::seconds(5);
  auto r = transport.send(request, [](const modelres::ResponseHead&, std::string_view) { return true; });
  if (r || r.error() != modelres::errc::hub_unreachable) return 1;
  std::printf("typed error without exceptions: %s\n", r.error().message().c_str());
  return 0;
}
