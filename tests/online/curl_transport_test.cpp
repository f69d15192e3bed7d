// CurlTransport against a real HTTP server on 127.0.0.1 (and a second "host"
// on 127.0.0.2): streaming, ranges, redirects and credentials, timeouts,
// dropped connections, cancellation.
#include <modelres/transports/curl_transport.hpp>

#include <atomic>
#include <string>
#include <thread>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/http_server.hpp"

using namespace modelres;
using testing::HttpServer;
using testing::pattern_bytes;

namespace curl_transport_test {

struct Collected {
  std::string body;
  int chunks = 0;
  BodySink sink() {
    return [this](const ResponseHead&, std::string_view chunk) {
      body.append(chunk);
      ++chunks;
      return true;
    };
  }
};

HttpRequest get(const std::string& url) {
  HttpRequest r;
  r.url = url;
  r.timeout = std::chrono::seconds(10);
  return r;
}

// cpp-httplib answers HEAD with the GET handler, without the body.
void add_bytes_route(HttpServer& s, const std::string& content) {
  s.routes().Get("/bytes", [content](const httplib::Request& req, httplib::Response& res) {
    testing::serve_with_ranges(req, res, content);
  });
}

TEST_CASE("curl: a body is streamed to the sink, with the user agent sent", "[online][transport]") {
  HttpServer server;
  const std::string content = pattern_bytes(3 * 1024 * 1024);
  add_bytes_route(server, content);
  server.start();
  CurlTransport t;
  Collected got;
  auto r = t.send(get(server.url("/bytes")), got.sink());
  REQUIRE(r);
  CHECK(r.value().status == 200);
  CHECK(got.body == content);
  CHECK(got.chunks > 1);  // streamed, not buffered whole
  REQUIRE(r.value().header("content-length"));
  CHECK(*r.value().header("content-length") == std::to_string(content.size()));
  CHECK(server.requests().at(0).header("user-agent") == std::string("modelres/") + MODELRES_VERSION_STRING);
  static_assert(is_transport<CurlTransport>::value);
}

TEST_CASE("curl: Range from an offset gives 206 and the rest", "[online][transport]") {
  HttpServer server;
  const std::string content = pattern_bytes(100000);
  add_bytes_route(server, content);
  server.start();
  CurlTransport t;
  Collected got;
  HttpRequest req = get(server.url("/bytes"));
  req.resume_from = 40000;
  auto r = t.send(req, got.sink());
  REQUIRE(r);
  CHECK(r.value().status == 206);
  CHECK(*r.value().header("content-range") == "bytes 40000-99999/100000");
  CHECK(got.body == content.substr(40000));
  CHECK(server.requests().at(0).header("range") == "bytes=40000-");
}

TEST_CASE("curl: HEAD has no body, an error status is a response, not an error", "[online][transport]") {
  HttpServer server;
  add_bytes_route(server, "0123456789");
  server.routes().Get("/missing", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"Code":10010205001,"Message":"not found"})", "application/json");
  });
  server.start();
  CurlTransport t;
  Collected head_body, missing;
  HttpRequest head = get(server.url("/bytes"));
  head.method = HttpRequest::Method::head;
  auto h = t.send(head, head_body.sink());
  REQUIRE(h);
  CHECK(h.value().status == 200);
  CHECK(head_body.body.empty());
  auto m = t.send(get(server.url("/missing")), missing.sink());
  REQUIRE(m);
  CHECK(m.value().status == 404);
  CHECK(missing.body == R"({"Code":10010205001,"Message":"not found"})");
}

TEST_CASE("curl: one connection is reused across requests", "[online][transport]") {
  HttpServer server;
  add_bytes_route(server, "abc");
  server.start();
  CurlTransport t;
  for (int i = 0; i < 3; ++i) {
    Collected got;
    REQUIRE(t.send(get(server.url("/bytes")), got.sink()));
  }
  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].remote_port == reqs[1].remote_port);
  CHECK(reqs[1].remote_port == reqs[2].remote_port);
}

TEST_CASE("curl: redirects keep credentials on the same host and drop them on another", "[online][transport]") {
  HttpServer hub, cdn("127.0.0.2");
  add_bytes_route(hub, "same-host");
  add_bytes_route(cdn, "other-host");
  cdn.start();
  hub.routes().Get("/same", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/bytes"); });
  const std::string cdn_url = cdn.url("/bytes?Signature=abc");
  hub.routes().Get("/away", [cdn_url](const httplib::Request&, httplib::Response& res) { res.set_redirect(cdn_url); });
  hub.start();

  HttpRequest req = get(hub.url("/same"));
  req.headers = {{"Authorization", "Bearer SECRET-TOKEN", true}, {"Cookie", "m_session_id=SECRET-TOKEN", true},
                 {"X-Request-ID", "r1", false}};
  CurlTransport t;
  Collected same;
  auto r1 = t.send(req, same.sink());
  REQUIRE(r1);
  CHECK(same.body == "same-host");
  CHECK(r1.value().redirects.size() == 1);
  CHECK(hub.requests().at(1).header("authorization") == "Bearer SECRET-TOKEN");

  req.url = hub.url("/away");
  Collected away;
  auto r2 = t.send(req, away.sink());
  REQUIRE(r2);
  CHECK(away.body == "other-host");
  CHECK(r2.value().url == cdn_url);
  const auto at_cdn = cdn.requests().at(0);
  CHECK_FALSE(at_cdn.has_header("authorization"));
  CHECK_FALSE(at_cdn.has_header("cookie"));
  CHECK(at_cdn.header("x-request-id") == "r1");
  CHECK(at_cdn.params.at("Signature") == "abc");
}

TEST_CASE("curl: redirect loops and non-http targets are refused", "[online][transport]") {
  HttpServer server;
  server.routes().Get("/loop", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/loop"); });
  server.routes().Get("/ftp", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("ftp://127.0.0.1/file");
  });
  server.routes().Get("/file", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("file:///etc/passwd");
  });
  server.start();
  CurlTransport t;
  Collected got;
  auto loop = t.send(get(server.url("/loop")), got.sink());
  REQUIRE_FALSE(loop);
  CHECK(loop.error() == errc::redirect_refused);
  CHECK(loop.error().detail == "more than 10 redirects");
  CHECK(t.send(get(server.url("/ftp")), got.sink()).error() == errc::redirect_refused);
  CHECK(t.send(get(server.url("/file")), got.sink()).error() == errc::redirect_refused);
}

TEST_CASE("curl: nothing listening is hub_unreachable, and the error hides the query", "[online][transport]") {
  CurlTransport t;
  Collected got;
  auto r = t.send(get("http://127.0.0.1:1/api/v1/models?token=SECRET"), got.sink());
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::hub_unreachable);
  CHECK(r.error().reference == "http://127.0.0.1:1/api/v1/models?...");
  CHECK(r.error().message().find("SECRET") == std::string::npos);
  CHECK(t.send(get("ftp://127.0.0.1/x"), got.sink()).error() == errc::hub_unreachable);
}

TEST_CASE("curl: a connection dropped mid-body is transfer_interrupted", "[online][transport]") {
  HttpServer server;
  const std::string content = pattern_bytes(1 << 20);
  server.routes().Get("/drop", [content](const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(content.size(), "application/octet-stream",
                             [content](std::size_t offset, std::size_t, httplib::DataSink& sink) {
                               if (offset >= content.size() / 2) return false;  // hang up halfway
                               sink.write(content.data() + offset, 64 * 1024);
                               return true;
                             });
  });
  server.start();
  CurlTransport t;
  Collected got;
  auto r = t.send(get(server.url("/drop")), got.sink());
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::transfer_interrupted);
  CHECK(got.body.size() == content.size() / 2);
  CHECK(got.body == content.substr(0, got.body.size()));
}

TEST_CASE("curl: a stalled download and a slow answer are timed_out", "[online][transport]") {
  HttpServer server;
  server.routes().Get("/stall", [](const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(1000, "application/octet-stream", [](std::size_t offset, std::size_t, httplib::DataSink& sink) {
      if (offset == 0) {
        sink.write("0123456789", 10);
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(3500));
      return false;
    });
  });
  server.routes().Get("/slow", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    res.set_content("late", "text/plain");
  });
  server.start();
  CurlTransport t;
  Collected got;
  HttpRequest stall;
  stall.url = server.url("/stall");
  stall.stall_timeout = std::chrono::seconds(1);
  auto s = t.send(stall, got.sink());
  REQUIRE_FALSE(s);
  INFO(s.error().message());
  CHECK(s.error() == errc::timed_out);
  CHECK(s.error().detail == "no data for the stall timeout after 10 bytes");
  CHECK(got.body == "0123456789");

  HttpRequest slow;
  slow.url = server.url("/slow");
  slow.timeout = std::chrono::milliseconds(300);
  auto w = t.send(slow, got.sink());
  REQUIRE_FALSE(w);
  CHECK(w.error() == errc::timed_out);

  HttpRequest first_byte;
  first_byte.url = server.url("/slow");
  first_byte.first_byte_timeout = std::chrono::milliseconds(400);
  first_byte.stall_timeout = std::chrono::seconds(30);
  auto f = t.send(first_byte, got.sink());
  REQUIRE_FALSE(f);
  CHECK(f.error() == errc::timed_out);
  CHECK(f.error().detail == "no response within the first-byte timeout");

  HttpRequest patient = first_byte;
  patient.first_byte_timeout = std::chrono::seconds(5);  // a cold mirror: slow to start is fine
  Collected late;
  auto p = t.send(patient, late.sink());
  REQUIRE(p);
  CHECK(late.body == "late");
}

TEST_CASE("curl: the sink or a flag cancels", "[online][transport]") {
  HttpServer server;
  add_bytes_route(server, pattern_bytes(4 << 20));
  server.start();
  CurlTransport t;
  std::size_t seen = 0;
  auto by_sink = t.send(get(server.url("/bytes")), [&](const ResponseHead&, std::string_view chunk) {
    seen += chunk.size();
    return seen < 100000;
  });
  REQUIRE_FALSE(by_sink);
  CHECK(by_sink.error() == errc::cancelled);

  std::atomic<bool> stop{true};
  HttpRequest req = get(server.url("/bytes"));
  req.cancel = &stop;
  Collected got;
  auto by_flag = t.send(req, got.sink());
  REQUIRE_FALSE(by_flag);
  CHECK(by_flag.error() == errc::cancelled);
  CHECK(got.body.size() < (4u << 20));
}

TEST_CASE("curl: HTTP_PROXY (either case) is used, NO_PROXY is honoured", "[online][transport]") {
  // A forward proxy on 127.0.0.1 that answers every request itself.
  HttpServer proxy;
  proxy.routes().Get(R"(.*)", [](const httplib::Request&, httplib::Response& res) { res.set_content("via proxy", "text/plain"); });
  proxy.start();
  HttpServer origin("127.0.0.2");
  add_bytes_route(origin, "direct");
  origin.start();
  testing::ScopedEnv lower("http_proxy", "");
  testing::ScopedEnv no_proxy_lower("no_proxy", "");
  CurlTransport t;
  {
    testing::ScopedEnv upper("HTTP_PROXY", proxy.url());
    testing::ScopedEnv no("NO_PROXY", "");
    Collected got;
    REQUIRE(t.send(get(origin.url("/bytes")), got.sink()));
    CHECK(got.body == "via proxy");
    CHECK(proxy.requests().size() == 1);
  }
  {
    testing::ScopedEnv upper("HTTP_PROXY", proxy.url());
    testing::ScopedEnv no("NO_PROXY", "127.0.0.2");
    Collected got;
    REQUIRE(t.send(get(origin.url("/bytes")), got.sink()));
    CHECK(got.body == "direct");
  }
  {
    testing::ScopedEnv lower_set("http_proxy", proxy.url());
    testing::ScopedEnv no("NO_PROXY", "");
    Collected got;
    REQUIRE(t.send(get(origin.url("/bytes")), got.sink()));
    CHECK(got.body == "via proxy");
  }
}

}  // namespace curl_transport_test
