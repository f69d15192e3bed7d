// A one-line progress bar on stderr for downloads, redrawn at most ten times
// a second. Shared by the modelres program and the demo.
#pragma once

#include <modelres/fetcher.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace modelres_tools {

inline std::string human_size(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

class ProgressBar {
 public:
  void operator()(const modelres::FetchProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    const bool done = p.total_size > 0 && p.total_bytes >= p.total_size;
    if (!done && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double fraction = p.total_size ? static_cast<double>(p.total_bytes) / static_cast<double>(p.total_size) : 0;
    const int width = 30;
    const int filled = static_cast<int>(fraction * width + 0.5);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    std::string file(p.path);
    if (file.size() > 32) file = "..." + file.substr(file.size() - 29);
    std::fprintf(stderr, "\r[%s] %3d%% %10s / %-10s %-32s", bar.c_str(), static_cast<int>(fraction * 100),
                 human_size(p.total_bytes).c_str(), human_size(p.total_size).c_str(), file.c_str());
    drawn_ = true;
    std::fflush(stderr);
  }
  // Ends the line, if one was drawn.
  void finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  std::chrono::steady_clock::time_point last_{};
  bool drawn_ = false;
};

}  // namespace modelres_tools
