// The modelres program online, against the test hub.
#include <modelres/durability.hpp>

#include <nlohmann/json.hpp>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
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
