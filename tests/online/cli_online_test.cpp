// The modelres program online, against the test hub.
#include <modelres/durability.hpp>

#include <nlohmann/json.hpp>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/hf_test_hub.hpp"
#include "../support/test_hub.hpp"

using testing::run_command;
using testing::TempDir;
using testing::TestHub;
namespace fs = std::filesystem;

TEST_CASE("cli online: resolve downloads and prints the directory, download pre-seeds", "[online][cli]") {
  TestHub hub;
  hub.add(testing::unet_on_hub());
  auto second = testing::unet_on_hub();
  second.id = "damo/tiny";
  hub.add(second);
  hub.start();
  TempDir root;
  const std::string cli = MODELRES_CLI;
  const std::map<std::string, std::string> env{{"MODELRES_OFFLINE", ""}, {"HF_HUB_OFFLINE", ""}};

  auto r = run_command({cli, "resolve", "iic/cv_unet_skin_retouching_torch", "--endpoint", hub.endpoint(), "--cache-dir",
                        root.str(), "--json"},
                       env);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["hub_check"] == "current");
  CHECK(j["completeness"] == "verified");
  CHECK(j["directory"] == (root.path() / "models/iic/cv_unet_skin_retouching_torch").native());

  auto d = run_command({cli, "download", "damo/tiny", "iic/cv_unet_skin_retouching_torch", "--endpoint", hub.endpoint(),
                        "--cache-dir", root.str()},
                       env);
  CHECK(d.status == 0);
  CHECK(d.out == (root.path() / "models/damo/tiny").native() + "\n" +
                     (root.path() / "models/iic/cv_unet_skin_retouching_torch").native() + "\n");

  auto missing = run_command({cli, "download", "iic/absent", "--endpoint", hub.endpoint(), "--cache-dir", root.str()}, env);
  CHECK(missing.status == 4);
  CHECK(missing.err.find("unknown model: iic/absent") != std::string::npos);

  auto offline = run_command({cli, "resolve", "damo/tiny", "--local-only", "--cache-dir", root.str()});
  CHECK(offline.status == 0);
}

TEST_CASE("cli online: --no-sync downloads without waiting for the disk, and the manifest says so", "[online][cli][durability]") {
  TestHub hub;
  hub.add(testing::unet_on_hub());
  hub.start();
  TempDir root;
  const std::map<std::string, std::string> env{{"MODELRES_OFFLINE", ""}, {"HF_HUB_OFFLINE", ""}};
  auto d = run_command({MODELRES_CLI, "download", "iic/cv_unet_skin_retouching_torch", "--no-sync", "--endpoint", hub.endpoint(),
                        "--cache-dir", root.str()},
                       env);
  REQUIRE(d.status == 0);
  const fs::path dir = root.path() / "models/iic/cv_unet_skin_retouching_torch";
  CHECK(d.out == dir.native() + "\n");
  CHECK(testing::read_text(dir / ".modelres").find("unsynced_boot " + modelres::detail::current_boot_id() + "\n") !=
        std::string::npos);
  for (const auto& f : testing::unet_on_hub().files) CHECK(testing::read_text(dir / f.path) == f.content);
}

TEST_CASE("cli online: --connections bounds the requests in flight", "[online][cli]") {
  TestHub hub;
  hub.add(testing::unet_on_hub());
  testing::Concurrency concurrency;
  hub.intercept([&](const httplib::Request&, httplib::Response&) { return concurrency.hold(); });
  hub.start();
  const std::map<std::string, std::string> env{{"MODELRES_OFFLINE", ""}, {"HF_HUB_OFFLINE", ""}};
  for (const char* connections : {"1", "3"}) {
    TempDir root;
    concurrency.most = 0;
    auto d = run_command({MODELRES_CLI, "download", "iic/cv_unet_skin_retouching_torch", "--connections", connections,
                          "--no-sync", "--endpoint", hub.endpoint(), "--cache-dir", root.str()},
                         env);
    REQUIRE(d.status == 0);
    CHECK(concurrency.most == std::stoi(connections));  // the model has more files than that
  }
}

TEST_CASE("cli online: a Hugging Face model resolves and downloads, printing the snapshot directory huggingface_hub returns",
          "[online][cli][hf_online]") {
  testing::HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir root, home;
  const std::map<std::string, std::string> env{{"MODELRES_OFFLINE", ""}, {"HF_HUB_OFFLINE", ""}, {"HF_TOKEN", ""},
                                               {"HF_HOME", home.str()}, {"MODELRES_HUB", ""}};
  const std::string snapshot = (root.path() / "models--acme--tiny-bert/snapshots" / model.commit).native();
  auto r = run_command({MODELRES_CLI, "resolve", "hf.co/acme/tiny-bert", "--endpoint", hub.endpoint(), "--cache-dir", root.str()}, env);
  REQUIRE(r.status == 0);
  CHECK(r.out == snapshot + "\n");
  auto d = run_command({MODELRES_CLI, "download", "acme/tiny-bert", "--hub", "huggingface", "--endpoint", hub.endpoint(),
                        "--cache-dir", root.str()},
                       env);
  CHECK(d.status == 0);
  CHECK(d.out == snapshot + "\n");
  auto ls = run_command({MODELRES_CLI, "ls", "--hub", "hf", "--cache-dir", root.str(), "--json"}, env);
  REQUIRE(ls.status == 0);
  const auto j = nlohmann::json::parse(ls.out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["hub"] == "huggingface");
  CHECK(j[0]["state"]["completeness"] == "verified");
}

TEST_CASE("cli online: racing processes fetch each Hugging Face file once", "[online][cli][hf_online]") {
  testing::HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub(4 << 20);
  hub.add(model);
  hub.start();
  TempDir root, home;
  const std::map<std::string, std::string> env{{"MODELRES_OFFLINE", ""}, {"HF_HUB_OFFLINE", ""}, {"HF_TOKEN", ""},
                                               {"HF_HOME", home.str()}};
  std::vector<std::pair<pid_t, std::pair<std::string, std::string>>> running;
  for (int i = 0; i < 3; ++i) {
    const std::string out = (home.path() / ("out" + std::to_string(i))).native(), err = out + ".err";
    running.push_back({testing::start_command({MODELRES_CLI, "download", "hf.co/acme/tiny-bert", "--endpoint", hub.endpoint(),
                                               "--cache-dir", root.str()},
                                              env, out, err),
                       {out, err}});
  }
  for (auto& [pid, files] : running) {
    auto done = testing::finish_command(pid, files.first, files.second);
    CHECK(done.status == 0);
    CHECK(done.out == (root.path() / "models--acme--tiny-bert/snapshots" / model.commit).native() + "\n");
  }
  CHECK(hub.cdn().requests().size() == 1);  // the weights, once
  std::size_t config_downloads = 0;
  for (const auto& q : hub.hub().requests()) config_downloads += q.path.find("/resolve/" + model.commit + "/config.json") != std::string::npos;
  CHECK(config_downloads == 1);
}

TEST_CASE("cli online: a read-only root holding the hub's revision answers, the writable cache never created",
          "[online][cli][layered]") {
  testing::HfTestHub hub;
  const auto model = testing::tiny_bert_on_hub();
  hub.add(model);
  hub.start();
  TempDir ro, rw, home;
  testing::lay_out_as_python(ro.path(), model);
  const auto before = testing::tree_state(ro.path());
  const fs::path writable = rw.path() / "absent";
  const std::map<std::string, std::string> env{{"MODELRES_OFFLINE", ""}, {"HF_HUB_OFFLINE", ""}, {"HF_TOKEN", ""},
                                               {"HF_HOME", home.str()}, {"MODELRES_HUB", ""},
                                               {"MODELRES_READ_ONLY_CACHES", ro.str()}};
  auto r = run_command({MODELRES_CLI, "resolve", "hf.co/acme/tiny-bert", "--endpoint", hub.endpoint(), "--cache-dir",
                        writable.native(), "--json"},
                       env);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["directory"] == (ro.path() / "models--acme--tiny-bert/snapshots" / model.commit).native());
  CHECK(j["hub_check"] == "current");
  CHECK(j["read_only_root"] == true);
  CHECK(j["cache_root"] == ro.str());
  CHECK(hub.cdn().requests().empty());
  CHECK(testing::tree_state(ro.path()) == before);
  CHECK_FALSE(fs::exists(writable));
}
