// Test support: the real proxies of docs/deployment.md, run in the
// foreground from Debian's packages: nginx (nginx-light) as the pull-through
// mirror, from tests/docs/nginx_mirror.conf (ModelScope) or nginx_hf_mirror.conf
// (Hugging Face) verbatim but for where it listens,
// what it mirrors and where it caches; tinyproxy (tinyproxy-bin) as a forward proxy.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cache_builder.hpp"
#include "loopback_ports.hpp"

#ifndef MODELRES_SOURCE_DIR
#error "MODELRES_SOURCE_DIR must name the source tree"
#endif

namespace testing {

class NginxMirror {
 public:
  // tests/docs/nginx_mirror.conf, mirroring `upstream` (http://127.0.0.1:PORT) instead of ModelScope.
  explicit NginxMirror(const std::string& upstream)
      : NginxMirror("nginx_mirror.conf", {{"https://www.modelscope.cn", upstream}}) {}

  // tests/docs/nginx_hf_mirror.conf, mirroring `hub` instead of huggingface.co and `cdn` instead of its CDNs.
  static std::unique_ptr<NginxMirror> hugging_face(const std::string& hub, const std::string& cdn) {
    return std::make_unique<NginxMirror>(
        "nginx_hf_mirror.conf", std::vector<std::pair<std::string, std::string>>{{"https://huggingface.co", hub},
                                                                                 {"https://cdn-lfs.hf.co", cdn},
                                                                                 {"https://cas-bridge.xethub.hf.co", cdn}});
  }

  // tests/docs/`conf` with each upstream (from, to) replaced, every time it
  // appears; listening on a free port of 127.0.0.1 and caching below a temporary directory.
  NginxMirror(const std::string& conf, const std::vector<std::pair<std::string, std::string>>& upstreams) {
    port_ = free_port();
    const std::string d = dir_.str();
    std::string site = read_text(std::string(MODELRES_SOURCE_DIR) + "/tests/docs/" + conf);
    const auto listen = site.find("listen ");
    if (listen == std::string::npos) throw std::runtime_error(conf + " no longer has a listen directive");
    site.replace(listen, site.find(';', listen) - listen, "listen 127.0.0.1:" + std::to_string(port_));
    for (const auto& [from, to] : upstreams) replace(site, from, to);
    replace(site, "/var/cache/nginx/", d + "/cache/");
    write_file(dir_.path() / "site.conf", site);
    fs::create_directories(dir_.path() / "tmp");
    fs::create_directories(dir_.path() / "cache");
    std::string main = ::geteuid() == 0 ? "user root;\n" : "";  // the default (nobody) cannot read a 0700 temporary directory
    main += "daemon off;\nmaster_process on;\nworker_processes 2;\npid " + d + "/nginx.pid;\nerror_log " + d +
            "/error.log;\nevents { worker_connections 512; }\nhttp {\n  access_log " + d + "/access.log;\n";
    for (const char* temp : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
      main += std::string("  ") + temp + "_temp_path " + d + "/tmp/" + temp + ";\n";
    main += "  include " + d + "/site.conf;\n}\n";
    write_file(dir_.path() / "nginx.conf", main);
    pid_ = start_command({"/usr/sbin/nginx", "-p", d, "-e", d + "/error.log", "-c", d + "/nginx.conf"}, {}, d + "/stdout",
                         d + "/stderr");
    for (int i = 0; pid_ > 0 && i < 400 && !accepts(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (!accepts(port_)) stop();
  }
  ~NginxMirror() { stop(); }
  NginxMirror(const NginxMirror&) = delete;
  NginxMirror& operator=(const NginxMirror&) = delete;

  bool running() const { return pid_ > 0; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Why it did not start, or what it logged.
  std::string log() const { return read_text(dir_.path() / "error.log") + read_text(dir_.path() / "stderr"); }

 private:
  // Every `from` in `text` becomes `to`; there must be one at least.
  static void replace(std::string& text, const std::string& from, const std::string& to) {
    auto at = text.find(from);
    if (at == std::string::npos) throw std::runtime_error("the nginx configuration no longer has: " + from);
    for (; at != std::string::npos; at = text.find(from, at + to.size())) text.replace(at, from.size(), to);
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGQUIT);  // graceful: the workers go too
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  TempDir dir_;
  int port_ = -1;
  pid_t pid_ = -1;
};

// tinyproxy in the foreground on 127.0.0.1, logging each request (CONNECT
// for https) to log().
class Tinyproxy {
 public:
  Tinyproxy() {
    port_ = free_port();
    const std::string d = dir_.str();
    write_file(dir_.path() / "tinyproxy.conf",
               "Port " + std::to_string(port_) + "\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nMaxClients 64\n"
               "LogLevel Connect\nLogFile \"" + d + "/tinyproxy.log\"\n" + (::geteuid() == 0 ? "User root\nGroup root\n" : ""));
    pid_ = start_command({"/usr/bin/tinyproxy", "-d", "-c", d + "/tinyproxy.conf"}, {}, d + "/stdout", d + "/stderr");
    for (int i = 0; pid_ > 0 && i < 400 && !accepts(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (!accepts(port_)) stop();
  }
  ~Tinyproxy() { stop(); }
  Tinyproxy(const Tinyproxy&) = delete;
  Tinyproxy& operator=(const Tinyproxy&) = delete;

  bool running() const { return pid_ > 0; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return read_text(dir_.path() / "tinyproxy.log") + read_text(dir_.path() / "stderr"); }

 private:
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  TempDir dir_;
  int port_ = -1;
  pid_t pid_ = -1;
};

}  // namespace testing
