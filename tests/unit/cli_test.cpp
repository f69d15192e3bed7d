// The modelres program, run as a child process: stdout, stderr and exit codes.
#include <modelres/version.hpp>
#include <nlohmann/json.hpp>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"

using testing::ClassicOptions;
using testing::run_command;
using testing::TempDir;
namespace fs = std::filesystem;

namespace cli_test {

const std::string cli = MODELRES_CLI;
const std::string unet = "iic/cv_unet_skin_retouching_torch";

testing::CommandResult resolve(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv{cli, "resolve"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, env);
}

TEST_CASE("cli: a hit prints the directory and nothing else", "[cli]") {
  TempDir root;
  const fs::path dir = testing::lay_out_classic(root.path() / "models" / unet);
  auto r = resolve({unet, "--local-only", "--cache-dir", root.str()});
  CHECK(r.status == 0);
  CHECK(r.out == dir.native() + "\n");
  CHECK(r.err.empty());

  auto from_env = resolve({unet, "--local-only"}, {{"MODELSCOPE_CACHE", root.str()}});
  CHECK(from_env.status == 0);
  CHECK(from_env.out == dir.native() + "\n");

  auto by_path = resolve({dir.native(), "--local-only"});
  CHECK(by_path.status == 0);
  CHECK(by_path.out == dir.native() + "\n");
}

TEST_CASE("cli: each error class has its exit code, errors on stderr with the paths", "[cli]") {
  TempDir root;
  const fs::path dir = testing::lay_out_classic(root.path() / "models" / unet);

  auto miss = resolve({"iic/absent", "--local-only", "--cache-dir", root.str()});
  CHECK(miss.status == 4);
  CHECK(miss.out.empty());
  CHECK(miss.err.find("model not cached: iic/absent") != std::string::npos);
  CHECK(miss.err.find("looked at " + root.str() + "/models/iic/absent: does not exist") != std::string::npos);

  CHECK(resolve({"../../etc/passwd", "--local-only", "--cache-dir", root.str()}).status == 4);  // a path that is not there
  CHECK(resolve({"iic/bad name", "--local-only", "--cache-dir", root.str()}).status == 3);
  CHECK(resolve({unet, "--local-only", "--revision", "../x", "--cache-dir", root.str()}).status == 3);
  CHECK(resolve({unet, "--local-only", "--revision", "v9", "--cache-dir", root.str()}).status == 6);
  CHECK(resolve({(dir / "README.md").native(), "--local-only"}).status == 4);

  testing::write_file(dir / ".msc", testing::fixture("exploit_reduce_p4.pkl"));
  auto unsafe = resolve({unet, "--local-only", "--cache-dir", root.str()});
  CHECK(unsafe.status == 7);
  CHECK(unsafe.err.find("would import or call code") != std::string::npos);

  testing::write_file(dir / ".msc", testing::fixture("unet_msc_p4.pkl"));
  fs::remove(dir / "README.md");
  auto incomplete = resolve({unet, "--local-only", "--cache-dir", root.str()});
  CHECK(incomplete.status == 5);
  CHECK(incomplete.err.find("missing files recorded in .msc: README.md") != std::string::npos);
}

TEST_CASE("cli: usage errors exit 2", "[cli]") {
  CHECK(run_command({cli}).status == 2);
  CHECK(run_command({cli, "resolve"}).status == 2);
  CHECK(run_command({cli, "frobnicate"}).status == 2);
  CHECK(run_command({cli, "download"}).status == 2);
  CHECK(run_command({cli, "download", "iic/unet", "--connections", "0"}).status == 2);
  CHECK(run_command({cli, "resolve", "iic/unet", "--connections", "65"}).status == 2);
  auto version = run_command({cli, "--version"});
  CHECK(version.status == 0);
  CHECK(version.out.find(MODELRES_VERSION_STRING) != std::string::npos);
}

TEST_CASE("cli: online with no hub: the cached copy, said to be unchecked, else exit 9", "[cli]") {
  TempDir root;
  const fs::path dir = testing::lay_out_classic(root.path() / "models" / unet);
  // Nothing listens on port 1 of the loopback address: the hub cannot be asked.
  const std::string nowhere = "http://127.0.0.1:1";
  auto cached = resolve({unet, "--endpoint", nowhere, "--cache-dir", root.str()});
  CHECK(cached.status == 0);
  CHECK(cached.out == dir.native() + "\n");
  CHECK(cached.err.find("modelres: the hub could not be asked, serving the cached copy unchecked: hub unreachable") == 0);

  auto strict = resolve({unet, "--endpoint", nowhere, "--strict", "--cache-dir", root.str()});
  CHECK(strict.status == 9);
  CHECK(strict.out.empty());

  auto absent = resolve({"iic/absent", "--endpoint", nowhere, "--cache-dir", root.str()});
  CHECK(absent.status == 9);
  CHECK(absent.err.find("and the cache cannot serve it: model not cached") != std::string::npos);

  auto offline = resolve({unet, "--json", "--cache-dir", root.str()}, {{"MODELRES_OFFLINE", "1"}});
  CHECK(offline.status == 0);
  CHECK(nlohmann::json::parse(offline.out)["hub_check"] == "offline");
}

TEST_CASE("cli: --json for scripts, on success and on error", "[cli]") {
  TempDir root;
  const fs::path dir = testing::lay_out_classic(root.path() / "models" / unet);
  auto ok = resolve({unet, "--local-only", "--json", "--cache-dir", root.str()});
  REQUIRE(ok.status == 0);
  const auto j = nlohmann::json::parse(ok.out);
  CHECK(j["ok"] == true);
  CHECK(j["directory"] == dir.native());
  CHECK(j["model"] == unet);
  CHECK(j["revision"] == "master");
  CHECK(j["completeness"] == "verified");
  CHECK(j["files"].size() == 4);

  auto miss = resolve({"iic/absent", "--local-only", "--json", "--cache-dir", root.str()});
  CHECK(miss.status == 4);
  const auto e = nlohmann::json::parse(miss.out);
  CHECK(e["ok"] == false);
  CHECK(e["error"]["code"] == "not_cached");
  CHECK(e["error"]["value"] == 7);
  CHECK(e["error"]["reference"] == "iic/absent");
  CHECK(e["error"]["looked_at"].size() == 5);
  CHECK(e["error"]["looked_at"][1]["path"] == root.str() + "/models/iic/absent");
}

TEST_CASE("cli: ls lists every layout with its state", "[cli]") {
  TempDir root;
  testing::lay_out_classic(root.path() / "models" / unet);
  testing::lay_out_snapshot(root.path(), "Qwen--Qwen2.5-0.5B-Instruct", "master");
  ClassicOptions broken;
  broken.skip_files = {"README.md"};
  testing::lay_out_classic(root.path() / "hub/damo/broken", broken);

  auto table = run_command({cli, "ls", "--cache-dir", root.str()});
  CHECK(table.status == 0);
  CHECK(table.out.find("iic/cv_unet_skin_retouching_torch") != std::string::npos);
  CHECK(table.out.find("verified") != std::string::npos);
  CHECK(table.out.find("Qwen/Qwen2.5-0.5B-Instruct") != std::string::npos);
  CHECK(table.out.find("incomplete") != std::string::npos);

  auto listed = run_command({cli, "ls", "--json", "--cache-dir", root.str()});
  REQUIRE(listed.status == 0);
  const auto j = nlohmann::json::parse(listed.out);
  REQUIRE(j.size() == 3);
  CHECK(j[0]["model"] == "Qwen/Qwen2.5-0.5B-Instruct");
  CHECK(j[0]["state"]["completeness"] == "unknown");
  CHECK(j[1]["model"] == "damo/broken");
  CHECK(j[1]["served"] == false);
  CHECK(j[1]["error"]["code"] == "incomplete");
  CHECK(j[2]["state"]["files"].size() == 4);
}

TEST_CASE("cli: Hugging Face models resolve from huggingface_hub's cache, named by prefix, --hub or MODELRES_HUB", "[cli]") {
  TempDir root;
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  testing::HfOptions with_tree;
  with_tree.tree = true;
  const fs::path gemma = testing::lay_out_hf(root.path(), "google/gemma-2b", commit, {{"config.json", "{}"}}, with_tree);
  const std::string hf_dir = root.str();
  const std::map<std::string, std::string> no_default = {{"MODELRES_HUB", ""}, {"MODELRES_OFFLINE", ""}, {"HF_HUB_OFFLINE", ""}};

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"hf.co/google/gemma-2b", "--local-only", "--cache-dir", hf_dir},
        std::vector<std::string>{"https://huggingface.co/google/gemma-2b", "--local-only", "--cache-dir", hf_dir},
        std::vector<std::string>{"google/gemma-2b", "--hub", "huggingface", "--local-only", "--cache-dir", hf_dir}}) {
    auto hit = resolve(args, no_default);
    CHECK(hit.status == 0);
    CHECK(hit.out == gemma.native() + "\n");
    CHECK(hit.err.empty());
  }
  auto by_env = resolve({"google/gemma-2b", "--local-only", "--cache-dir", hf_dir}, {{"MODELRES_HUB", "hf"}});
  CHECK(by_env.out == gemma.native() + "\n");

  auto as_json = resolve({"hf.co/google/gemma-2b", "--local-only", "--json", "--cache-dir", hf_dir}, no_default);
  REQUIRE(as_json.status == 0);
  const auto j = nlohmann::json::parse(as_json.out);
  CHECK(j["commit"] == commit);
  CHECK(j["revision"] == "main");
  CHECK(j["completeness"] == "listed");

  // Online with the hub out of reach: the cached copy, said to be unchecked; with --strict, the network error.
  auto online = resolve({"hf.co/google/gemma-2b", "--cache-dir", hf_dir, "--endpoint", "http://127.0.0.1:1"}, no_default);
  CHECK(online.status == 0);
  CHECK(online.out == gemma.native() + "\n");
  CHECK(online.err.find("the hub could not be asked, serving the cached copy unchecked") != std::string::npos);
  auto strict = resolve({"hf.co/google/gemma-2b", "--cache-dir", hf_dir, "--endpoint", "http://127.0.0.1:1", "--strict"}, no_default);
  CHECK(strict.status == 9);
  auto offline = resolve({"hf.co/google/gemma-2b", "--json", "--cache-dir", hf_dir}, {{"HF_HUB_OFFLINE", "1"}});
  CHECK(offline.status == 0);
  CHECK(nlohmann::json::parse(offline.out)["hub_check"] == "offline");

  auto bad_hub = resolve({"google/gemma-2b", "--hub", "gitlab", "--local-only"});
  CHECK(bad_hub.status == 2);
  auto bad_env = resolve({"google/gemma-2b", "--local-only", "--cache-dir", hf_dir}, {{"MODELRES_HUB", "gitlab"}});
  CHECK(bad_env.status == 3);
  CHECK(bad_env.err.find("MODELRES_HUB=gitlab: expected huggingface (hf) or modelscope (ms)") != std::string::npos);
}

TEST_CASE("cli: ls shows each model's hub", "[cli]") {
  TempDir root;
  testing::lay_out_classic(root.path() / "models" / unet);
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  testing::lay_out_hf(root.path(), "google/gemma-2b", commit, {{"config.json", "{}"}});
  auto table = run_command({cli, "ls", "--cache-dir", root.str()});
  CHECK(table.status == 0);
  CHECK(table.out.find("modelscope   iic/cv_unet_skin_retouching_torch") != std::string::npos);
  CHECK(table.out.find("huggingface  google/gemma-2b") != std::string::npos);
  auto listed = run_command({cli, "ls", "--json", "--hub", "hf", "--cache-dir", root.str()});
  REQUIRE(listed.status == 0);
  const auto j = nlohmann::json::parse(listed.out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["hub"] == "huggingface");
  CHECK(j[0]["model"] == "google/gemma-2b");
  CHECK(j[0]["state"]["commit"] == commit);
}

#ifdef MODELRES_DEMO  // not built with -DMODELRES_BUILD_DEMO=OFF
TEST_CASE("demo: every outcome as expected", "[cli][demo]") {
  auto demo = run_command({MODELRES_DEMO});
  CHECK(demo.status == 0);
  CHECK(demo.out.find("demo: every outcome as expected") != std::string::npos);
  CHECK(demo.out.find("hub check    current") != std::string::npos);
  CHECK(demo.out.find("hub check    unavailable: hub unreachable") != std::string::npos);
  CHECK(demo.out.find("error not_cached (7)") != std::string::npos);
}
#endif

TEST_CASE("cli: modelres alone serves everything offline, and names the missing modelres-online for the rest", "[cli]") {
  // Without the network program beside it (a copy in a directory of its own).
  TempDir bin, root;
  const fs::path alone = bin.path() / "modelres";
  fs::copy_file(cli, alone);
  const fs::path dir = testing::lay_out_classic(root.path() / "models" / unet);
  const std::map<std::string, std::string> quiet{{"MODELRES_OFFLINE", ""}, {"HF_HUB_OFFLINE", ""}};

  auto local = run_command({alone.native(), "resolve", unet, "--local-only", "--cache-dir", root.str()}, quiet);
  CHECK(local.status == 0);
  CHECK(local.out == dir.native() + "\n");
  auto listed = run_command({alone.native(), "ls", "--cache-dir", root.str()}, quiet);
  CHECK(listed.status == 0);
  CHECK(listed.out.find(unet) != std::string::npos);
  // The offline switch: served, and said to be offline, as OnlinePolicy says it.
  auto switched = run_command({alone.native(), "resolve", unet, "--json", "--cache-dir", root.str()}, {{"MODELRES_OFFLINE", "1"}});
  CHECK(switched.status == 0);
  const auto j = nlohmann::json::parse(switched.out);
  CHECK(j["hub_check"] == "offline");
  CHECK(j["hub_check_reason"] == "MODELRES_OFFLINE is set");

  auto online = run_command({alone.native(), "resolve", unet, "--cache-dir", root.str(), "--endpoint", "http://127.0.0.1:9"}, quiet);
  CHECK(online.status == 8);
  CHECK(online.out.empty());
  CHECK(online.err.find("cannot run " + bin.str() + "/modelres-online") != std::string::npos);
  CHECK(online.err.find("No such file or directory") != std::string::npos);
  auto download = run_command({alone.native(), "download", unet, "--cache-dir", root.str()}, quiet);
  CHECK(download.status == 8);
  CHECK(download.err.find("modelres-online") != std::string::npos);
}

TEST_CASE("cli: --read-only-cache, or MODELRES_READ_ONLY_CACHES, put roots that are only read before --cache-dir",
          "[cli][layered]") {
  TempDir ro, other, rw;
  const fs::path dir = testing::lay_out_classic(ro.path() / "models" / unet);
  const auto before = testing::tree_state(ro.path());
  const fs::path writable = rw.path() / "absent";

  auto r = resolve({unet, "--local-only", "--read-only-cache", other.str(), "--read-only-cache", ro.str(), "--cache-dir",
                    writable.native(), "--json"});
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["directory"] == dir.native());
  CHECK(j["cache_root"] == ro.str());
  CHECK(j["read_only_root"] == true);

  auto from_env = resolve({unet, "--local-only", "--cache-dir", writable.native()},
                          {{"MODELRES_READ_ONLY_CACHES", other.str() + ":" + ro.str()}});
  CHECK(from_env.status == 0);
  CHECK(from_env.out == dir.native() + "\n");
  // Flags replace the environment's list, as --cache-dir replaces MODELSCOPE_CACHE.
  auto flag_wins = resolve({unet, "--local-only", "--read-only-cache", other.str(), "--cache-dir", writable.native()},
                           {{"MODELRES_READ_ONLY_CACHES", ro.str()}});
  CHECK(flag_wins.status == 4);

  // ls lists what every root holds.
  auto ls = run_command({cli, "ls", "--hub", "ms", "--read-only-cache", ro.str(), "--cache-dir", writable.native(), "--json"});
  REQUIRE(ls.status == 0);
  const auto listed = nlohmann::json::parse(ls.out);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["directory"] == dir.native());
  CHECK(listed[0]["served"] == true);

  CHECK(testing::tree_state(ro.path()) == before);
  CHECK_FALSE(fs::exists(writable));
}

}  // namespace cli_test
