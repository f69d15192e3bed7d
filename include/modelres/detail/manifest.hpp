// The manifest modelres writes into a model directory after a verified
// download (".modelres"), so that completeness can be proven offline later:
// the hub's full file list with sizes and SHA-256, not just the files that
// happened to finish. A line format, parsed by hand so the offline core needs
// no JSON library; every path is checked safe, as for .msc.
//
//   modelres-manifest 1
//   state downloading            (only while a download into the directory runs)
//   unsynced_boot <boot id>      (only for Durability::until_restart: trusted during that boot)
//   model iic/cv_unet_skin_retouching_torch
//   revision master
//   commit <40 hex>              (only where the hub names commits: Hugging Face)
//   created_at 1713419382
//   endpoint https://www.modelscope.cn
//   file 300000 <sha256, git:<git blob id>, or -> <commit or -> pytorch_model.pt
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "../hub_snapshot.hpp"
#include "../model_ref.hpp"
#include "../result.hpp"
#include "fs.hpp"

namespace modelres::detail {

inline constexpr const char* manifest_name = ".modelres";

struct Manifest {
  std::string model;
  HubSnapshot snapshot;
  // Written before the first file of a download moves in, cleared by the
  // commit: a directory that says so is not served (a process that died
  // mid-download leaves it saying so).
  bool downloading = false;
  // Set when the files were left to the kernel's writeback
  // (Durability::until_restart): the boot they were written in, after which
  // nothing proves they reached the disk.
  std::string unsynced_boot;
};

inline std::string write_manifest(const std::string& model, const HubSnapshot& snap, bool downloading = false,
                                  const std::string& unsynced_boot = {}) {
  std::string out = std::string("modelres-manifest 1\n") + (downloading ? "state downloading\n" : "") +
                    (unsynced_boot.empty() ? "" : "unsynced_boot " + unsynced_boot + "\n") + "model " + model +
                    "\nrevision " + snap.revision + (snap.commit.empty() ? "" : "\ncommit " + snap.commit) + "\ncreated_at " +
                    std::to_string(snap.created_at) + "\nendpoint " + snap.endpoint + "\n";
  for (const HubFile& f : snap.files)
    out += "file " + std::to_string(f.size) + " " +
           (!f.sha256.empty() ? f.sha256 : !f.git_oid.empty() ? "git:" + f.git_oid : std::string("-")) + " " +
           (f.revision.empty() ? "-" : f.revision) + " " + f.path + "\n";
  return out;
}

inline result<Manifest> read_manifest(std::string_view text, const std::string& where) {
  const auto bad = [&](std::string why) { return Error(errc::corrupt_metadata, {}, where + ": " + std::move(why)); };
  Manifest m;
  bool header = false;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return bad("truncated: the last line has no newline");
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    const std::size_t sp = line.find(' ');
    const std::string_view key = line.substr(0, sp);
    const std::string_view value = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    if (line_no == 1) {
      if (line != "modelres-manifest 1") return bad("not a modelres manifest, or a newer version of one");
      header = true;
    } else if (key == "state") {
      m.downloading = value == "downloading";
    } else if (key == "unsynced_boot") {
      // Any value, even an empty one, marks the files unsynced: empty never matches a boot.
      m.unsynced_boot = value.empty() ? std::string("-") : std::string(value);
    } else if (key == "model") {
      m.model = std::string(value);
    } else if (key == "revision") {
      m.snapshot.revision = std::string(value);
    } else if (key == "commit") {
      m.snapshot.commit = std::string(value);
    } else if (key == "endpoint") {
      m.snapshot.endpoint = std::string(value);
    } else if (key == "created_at") {
      if (value.empty() || value.size() > 18 || value.find_first_not_of("0123456789-") != std::string_view::npos)
        return bad("line " + std::to_string(line_no) + ": bad created_at");
      m.snapshot.created_at = std::stoll(std::string(value));
    } else if (key == "file") {
      // size sha256 commit path (the path last: it may hold spaces)
      HubFile f;
      std::string_view rest = value;
      std::string_view fields[3];
      for (auto& field : fields) {
        const std::size_t cut = rest.find(' ');
        if (cut == std::string_view::npos) return bad("line " + std::to_string(line_no) + ": a file line needs 4 fields");
        field = rest.substr(0, cut);
        rest.remove_prefix(cut + 1);
      }
      if (fields[0].empty() || fields[0].size() > 19 || fields[0].find_first_not_of("0123456789") != std::string_view::npos)
        return bad("line " + std::to_string(line_no) + ": bad size");
      f.size = std::stoull(std::string(fields[0]));
      if (fields[1].substr(0, 4) == "git:") {
        if (!is_lower_hex(fields[1].substr(4), 40)) return bad("line " + std::to_string(line_no) + ": bad git blob id");
        f.git_oid = std::string(fields[1].substr(4));
      } else if (fields[1] != "-") {
        if (!is_lower_hex(fields[1], 64)) return bad("line " + std::to_string(line_no) + ": bad sha256");
        f.sha256 = std::string(fields[1]);
      }
      if (fields[2] != "-") f.revision = std::string(fields[2]);
      f.path = std::string(rest);
      if (!is_safe_relative_path(f.path))
        return bad("line " + std::to_string(line_no) + ": path '" + printable(f.path) + "' would leave the model directory");
      m.snapshot.files.push_back(std::move(f));
    }
    // Unknown keys are for later versions of the format: skipped.
  }
  if (!header) return bad("empty");
  return m;
}

}  // namespace modelres::detail
