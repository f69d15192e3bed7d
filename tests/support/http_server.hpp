// Test support: a real HTTP server on a loopback address, in a thread of the
// test process (cpp-httplib from Debian). Each test adds the routes it needs;
// every request is recorded (path, query, headers) for assertions.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace testing {

struct RecordedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> params;
  std::multimap<std::string, std::string> headers;  // names lower-cased
  int remote_port = 0;                              // the client's port: same port, same connection

  std::string header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool has_header(const std::string& lower_name) const { return headers.count(lower_name) > 0; }
};

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class HttpServer {
 public:
  explicit HttpServer(std::string host = "127.0.0.1") : host_(std::move(host)) {
    // Without it, Nagle and delayed ACKs add ~40-200 ms to every small answer.
    server_.set_tcp_nodelay(true);
    // A thread per connection, and a fleet's processes each keep one open
    // (keep-alive) while they wait between requests: with the default pool (8
    // threads on this machine) the rest would queue behind them, as no real hub makes them.
    server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    // Recorded before routing, so a request is on record before its response is sent.
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
      std::lock_guard<std::mutex> lock(mutex_);
      RecordedRequest r{req.method, req.path, {}, {}, req.remote_port};
      for (const auto& [k, v] : req.params) r.params[k] = v;
      for (const auto& [k, v] : req.headers) r.headers.emplace(lower(k), v);
      requests_.push_back(std::move(r));
      return httplib::Server::HandlerResponse::Unhandled;
    });
  }
  ~HttpServer() { stop(); }

  httplib::Server& routes() { return server_; }

  void start() {
    port_ = server_.bind_to_any_port(host_.c_str());
    // bind_to_any_port already listens: connections queue until the loop accepts them.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // A stop() before the loop runs would be lost (cpp-httplib only stops a running
    // loop) and the join would hang: a server no request reached, such as an unused CDN.
    for (int waited = 0; !server_.is_running() && waited < 5000; ++waited) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void stop() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }

  std::string url(const std::string& path = "") const { return "http://" + host_ + ":" + std::to_string(port_) + path; }
  int port() const { return port_; }

  std::vector<RecordedRequest> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  std::string host_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::vector<RecordedRequest> requests_;
};

// Deterministic content of any length.
inline std::string pattern_bytes(std::size_t n, unsigned seed = 1) {
  std::string out(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

// Serves `content`; cpp-httplib answers "Range: bytes=N-" itself, with 206
// and a Content-Range, as a real server does.
inline void serve_with_ranges(const httplib::Request&, httplib::Response& res, const std::string& content) {
  res.set_content(content, "application/octet-stream");
}

// Makes cpp-httplib answer this request as if no Range had been asked for
// (200 and the whole body): a mirror that ignores ranges.
inline void ignore_range(const httplib::Request& req) { const_cast<httplib::Request&>(req).ranges.clear(); }

// The most requests a server handled at once: call hold() from its
// interceptor (it lets the request through, after a pause that lets others overlap).
struct Concurrency {
  std::atomic<int> now{0}, most{0};
  bool hold() {
    const int n = ++now;
    for (int m = most; n > m && !most.compare_exchange_weak(m, n);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    --now;
    return false;
  }
};

}  // namespace testing
