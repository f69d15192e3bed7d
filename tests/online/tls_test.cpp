// CurlTransport over TLS against an HTTPS server on 127.0.0.1 whose
// certificate is signed by a test CA (tests/fixtures/tls): verification is
// on, trust is added only by name, and https never redirects to http.
#include <modelres/transports/curl_transport.hpp>

#include <string>
#include <thread>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/http_server.hpp"

using namespace modelres;

namespace tls_test {

const std::string tls_dir = std::string(MODELRES_FIXTURES_DIR) + "/tls";

class HttpsServer {
 public:
  HttpsServer() : server_((tls_dir + "/server.pem").c_str(), (tls_dir + "/server.key").c_str()) {
    server_.set_tcp_nodelay(true);
  }
  ~HttpsServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::SSLServer& routes() { return server_; }
  void start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  std::string url(const std::string& path) const { return "https://127.0.0.1:" + std::to_string(port_) + path; }

 private:
  httplib::SSLServer server_;
  std::thread thread_;
  int port_ = 0;
};

HttpRequest get(const std::string& url) {
  HttpRequest r;
  r.url = url;
  r.timeout = std::chrono::seconds(10);
  return r;
}

result<HttpResponse> fetch(CurlTransport& t, const std::string& url, std::string& body) {
  return t.send(get(url), [&](const ResponseHead&, std::string_view c) {
    body.append(c);
    return true;
  });
}

TEST_CASE("tls: a certificate no trusted CA signed is refused", "[online][tls]") {
  HttpsServer server;
  server.routes().Get("/hello", [](const httplib::Request&, httplib::Response& res) { res.set_content("hi", "text/plain"); });
  server.start();
  testing::ScopedEnv file("SSL_CERT_FILE", "");
  testing::ScopedEnv dir("SSL_CERT_DIR", "");
  CurlTransport t;
  std::string body;
  auto r = fetch(t, server.url("/hello"), body);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::hub_unreachable);
  CHECK(r.error().detail.find("certificate") != std::string::npos);
  CHECK(body.empty());
}

TEST_CASE("tls: trust is added by CurlOptions::ca_bundle or SSL_CERT_FILE", "[online][tls]") {
  HttpsServer server;
  server.routes().Get("/hello", [](const httplib::Request&, httplib::Response& res) { res.set_content("hi", "text/plain"); });
  server.start();
  {
    CurlOptions o;
    o.ca_bundle = tls_dir + "/ca.pem";
    CurlTransport t(o);
    std::string body;
    auto r = fetch(t, server.url("/hello"), body);
    REQUIRE(r);
    CHECK(body == "hi");
  }
  {
    testing::ScopedEnv file("SSL_CERT_FILE", tls_dir + "/ca.pem");
    CurlTransport t;
    std::string body;
    REQUIRE(fetch(t, server.url("/hello"), body));
    CHECK(body == "hi");
  }
  {
    CurlOptions o;
    o.insecure_skip_tls_verify = true;  // named, and printed on stderr at each request
    CurlTransport t(o);
    std::string body;
    REQUIRE(fetch(t, server.url("/hello"), body));
    CHECK(body == "hi");
  }
}

TEST_CASE("tls: a redirect from https to plain http is refused before any http request", "[online][tls]") {
  testing::HttpServer plain;
  plain.routes().Get("/bytes", [](const httplib::Request&, httplib::Response& res) { res.set_content("leaked", "text/plain"); });
  plain.start();
  HttpsServer server;
  const std::string target = plain.url("/bytes");
  server.routes().Get("/down", [target](const httplib::Request&, httplib::Response& res) { res.set_redirect(target); });
  server.start();
  CurlOptions o;
  o.ca_bundle = tls_dir + "/ca.pem";
  CurlTransport t(o);
  HttpRequest req = get(server.url("/down"));
  req.headers = {{"Authorization", "Bearer SECRET", true}};
  std::string body;
  auto r = t.send(req, [&](const ResponseHead&, std::string_view c) {
    body.append(c);
    return true;
  });
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::redirect_refused);
  CHECK(r.error().detail.find("from https to plain http") != std::string::npos);
  CHECK(plain.requests().empty());
  CHECK(body.empty());
}

}  // namespace tls_test
