// The journal of a file fetched as byte ranges (Fetcher, large files): which
// file it is for (its size and the hash the hub lists), how it is cut, the
// server's ETag, and how many bytes from each range's start are written.
//
// It lives beside the data (NAME.ranges.json next to NAME.ranges.incomplete)
// and is replaced atomically, always after the bytes it counts were written:
// a process killed at any moment leaves a journal that claims nothing
// unwritten, and the next run resumes each range where it stopped. After a
// power loss it may claim bytes the disk lost; the whole-file hash, checked
// before the file is renamed into place, catches that (the file then starts
// over), which is why only files with a listed hash are fetched in ranges.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "json_reader.hpp"
#include "json_writer.hpp"

namespace modelres::detail {

struct RangeJournal {
  std::uint64_t size = 0;
  std::string check;                // the listed sha256, or git blob id
  std::uint64_t range_size = 0;     // every range but the last is this long
  std::string etag;                 // the server's, once seen; empty: none yet
  std::vector<std::uint64_t> done;  // bytes written from each range's start

  RangeJournal() = default;
  RangeJournal(std::uint64_t file_size, std::string expected, std::uint64_t cut)
      : size(file_size), check(std::move(expected)), range_size(cut), done(count(file_size, cut), 0) {}

  static std::size_t count(std::uint64_t size, std::uint64_t cut) {
    return cut == 0 ? 0 : static_cast<std::size_t>((size + cut - 1) / cut);
  }
  std::uint64_t start(std::size_t i) const { return i * range_size; }
  std::uint64_t end(std::size_t i) const { return std::min<std::uint64_t>(start(i) + range_size, size); }
  bool complete(std::size_t i) const { return start(i) + done[i] == end(i); }

  // The end of the bytes written without a gap from the file's start.
  std::uint64_t contiguous() const {
    for (std::size_t i = 0; i < done.size(); ++i)
      if (!complete(i)) return start(i) + done[i];
    return size;
  }

  // Marks the file's first `n` bytes written (a single-stream partial adopted).
  void mark_prefix(std::uint64_t n) {
    for (std::size_t i = 0; i < done.size(); ++i)
      if (start(i) < n) done[i] = std::min(n, end(i)) - start(i);
  }

  std::string text() const {
    std::string out = "{\"format\":1,\"size\":" + std::to_string(size) + ",\"check\":";
    json::append_string(out, check);
    out += ",\"range_size\":" + std::to_string(range_size) + ",\"etag\":";
    if (!json::append_string(out, etag)) out += "\"\"";  // an ETag that is no UTF-8 is not compared
    out += ",\"done\":[";
    for (std::size_t i = 0; i < done.size(); ++i) out += (i ? "," : "") + std::to_string(done[i]);
    return out + "]}\n";
  }

  // A journal for exactly this file and cut, each count within its range;
  // false for anything else (another file, a torn or hand-edited journal).
  static bool parse(std::string_view text, std::uint64_t size, const std::string& check, RangeJournal& out) {
    auto doc = json::read(text);
    if (!doc) return false;
    const json::Document& d = doc.value();
    const json::Node& root = d.root();
    const json::Node* format = d.member(root, "format");
    const json::Node* n_size = d.member(root, "size");
    const json::Node* n_check = d.member(root, "check");
    const json::Node* n_cut = d.member(root, "range_size");
    const json::Node* n_etag = d.member(root, "etag");
    const json::Node* n_done = d.member(root, "done");
    std::uint64_t version = 0, listed_size = 0, cut = 0;
    if (!format || !json::Document::as_uint(*format, version) || version != 1) return false;
    if (!n_size || !json::Document::as_uint(*n_size, listed_size) || listed_size != size) return false;
    if (!n_check || n_check->type != json::kind::string || n_check->text != check) return false;
    if (!n_cut || !json::Document::as_uint(*n_cut, cut) || cut == 0) return false;
    if (!n_etag || n_etag->type != json::kind::string) return false;
    if (!n_done || n_done->type != json::kind::array || n_done->size != count(size, cut)) return false;
    RangeJournal j(size, check, cut);
    j.etag = n_etag->text;
    std::size_t i = 0;
    for (const json::Node& done : d.children(*n_done)) {
      if (!json::Document::as_uint(done, j.done[i]) || j.done[i] > j.end(i) - j.start(i)) return false;
      ++i;
    }
    out = std::move(j);
    return true;
  }
};

}  // namespace modelres::detail
