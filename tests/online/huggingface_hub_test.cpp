// HuggingFaceHub over CurlTransport against the Hugging Face test hub
// (127.0.0.1, its CDN on 127.0.0.2): the requests huggingface_hub makes, the
// token chain, every hub answer mapped to a typed error, and hostile lists.
#include <modelres/hubs/huggingface_hub.hpp>
#include <modelres/transports/curl_transport.hpp>

#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"
#include "../support/hf_test_hub.hpp"

using namespace modelres;
using testing::HfTestHub;
using testing::ScopedEnv;
using testing::TempDir;

namespace huggingface_hub_test {

const ModelId bert{"acme", "tiny-bert"};

HuggingFaceHub<CurlTransport> hub_at(const HfTestHub& hub, std::string token = {}) {
  HuggingFaceHubOptions o;
  o.endpoint = hub.endpoint();
  o.token = std::move(token);
  o.metadata_timeout = std::chrono::seconds(10);
  return HuggingFaceHub<CurlTransport>(CurlTransport(), o);
}

// No token from this machine's environment or files leaks into a test.
struct NoAmbientToken {
  TempDir home;
  ScopedEnv a{"HF_TOKEN", ""}, b{"HUGGING_FACE_HUB_TOKEN", ""}, c{"HF_TOKEN_PATH", ""},
      d{"HF_HOME", home.str()}, e{"HF_HUB_DISABLE_IMPLICIT_TOKEN", ""};
};

const HubFile* file_named(const HubSnapshot& s, const std::string& path) {
  for (const auto& f : s.files)
    if (f.path == path) return &f;
  return nullptr;
}

TEST_CASE("hf hub: a snapshot is the commit and every file with its content check", "[online][hf_hub]") {
  NoAmbientToken no_token;
  HfTestHub server;
  const auto model = testing::tiny_bert_on_hub();
  server.add(model);
  server.start();
  auto snap = hub_at(server).snapshot(bert, "");
  REQUIRE(snap);
  CHECK(snap.value().revision == "main");
  CHECK(snap.value().commit == model.commit);
  CHECK(snap.value().endpoint == server.endpoint());
  REQUIRE(snap.value().files.size() == 4);  // the directory entry is not a file
  const HubFile* weights = file_named(snap.value(), "model.safetensors");
  REQUIRE(weights);
  CHECK(weights->size == 200000);
  CHECK(weights->sha256 == testing::sha256_hex(model.files[3].content));
  CHECK(weights->git_oid == testing::git_blob_oid(testing::lfs_pointer(model.files[3].content)));
  CHECK(weights->xet_hash.size() == 64);
  const HubFile* vocab = file_named(snap.value(), "tokenizer/vocab.txt");
  REQUIRE(vocab);
  CHECK(vocab->sha256.empty());
  CHECK(vocab->git_oid == testing::git_blob_oid(model.files[2].content));

  const auto reqs = server.hub().requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].path == "/api/models/acme/tiny-bert/revision/main");
  CHECK(reqs[1].path == "/api/models/acme/tiny-bert/tree/" + model.commit);
  CHECK(reqs[1].params.at("recursive") == "true");
  CHECK_FALSE(reqs[0].has_header("authorization"));
}

TEST_CASE("hf hub: the tree is followed page by page through Link rel=next", "[online][hf_hub]") {
  NoAmbientToken no_token;
  HfTestHub server;
  server.page_size = 2;
  server.add(testing::tiny_bert_on_hub());
  server.start();
  auto snap = hub_at(server).snapshot(bert, "");
  REQUIRE(snap);
  CHECK(snap.value().files.size() == 4);
  CHECK(server.hub().requests().size() == 1 + 3);  // revision, then 5 entries in pages of 2
}

TEST_CASE("hf hub: refs/pr/1 is asked for percent-encoded, and its commit fetched by commit", "[online][hf_hub]") {
  NoAmbientToken no_token;
  HfTestHub server;
  const auto model = testing::tiny_bert_on_hub();
  server.add(model);
  server.start();
  auto hub = hub_at(server);
  auto snap = hub.snapshot(bert, "refs/pr/1");
  REQUIRE(snap);
  CHECK(snap.value().revision == "refs/pr/1");
  CHECK(snap.value().commit == model.commit);
  const HttpRequest req = hub.file_request(bert, snap.value(), *file_named(snap.value(), "tokenizer/vocab.txt"));
  CHECK(req.url == server.endpoint() + "/acme/tiny-bert/resolve/" + model.commit + "/tokenizer/vocab.txt");
  HubSnapshot by_name = snap.value();
  by_name.commit.clear();
  CHECK(hub.file_request(bert, by_name, {"a b+c.txt", 1, "", "", "", ""}).url ==
        server.endpoint() + "/acme/tiny-bert/resolve/refs%2Fpr%2F1/a%20b%2Bc.txt");
}

TEST_CASE("hf hub: an LFS file is redirected to the CDN, which never sees the token", "[online][hf_hub]") {
  NoAmbientToken no_token;
  HfTestHub server;
  auto model = testing::tiny_bert_on_hub();
  model.token = "hf_SeCrEt";
  server.add(model);
  server.start();
  auto hub = hub_at(server, "hf_SeCrEt");
  auto snap = hub.snapshot(bert, "main");
  REQUIRE(snap);
  std::string body;
  auto r = hub.transport().send(hub.file_request(bert, snap.value(), *file_named(snap.value(), "model.safetensors")),
                                [&](const ResponseHead&, std::string_view c) {
                                  body.append(c);
                                  return true;
                                });
  REQUIRE(r);
  CHECK(r.value().status == 200);
  CHECK(body == model.files[3].content);
  for (const auto& q : server.hub().requests()) CHECK(q.header("authorization") == "Bearer hf_SeCrEt");
  REQUIRE(server.cdn().requests().size() == 1);
  CHECK_FALSE(server.cdn().requests()[0].has_header("authorization"));
}

TEST_CASE("hf hub: the token comes from the argument, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, HF_TOKEN_PATH, then HF_HOME/token",
          "[online][hf_hub]") {
  NoAmbientToken no_token;
  HfTestHub server;
  auto hub = hub_at(server);
  CHECK(hub.token().empty());
  testing::write_file(no_token.home.path() / "token", "hf_from_home\n");
  CHECK(hub.token() == "hf_from_home");
  TempDir elsewhere;
  testing::write_file(elsewhere.path() / "tok", "  hf_from_path \n");
  {
    ScopedEnv path("HF_TOKEN_PATH", (elsewhere.path() / "tok").string());
    CHECK(hub.token() == "hf_from_path");
    ScopedEnv legacy("HUGGING_FACE_HUB_TOKEN", "hf_legacy");
    CHECK(hub.token() == "hf_legacy");
    ScopedEnv current("HF_TOKEN", "hf_current");
    CHECK(hub.token() == "hf_current");
    CHECK(hub_at(server, "hf_argument").token() == "hf_argument");
    ScopedEnv disabled("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1");
    CHECK(hub.token().empty());
    CHECK(hub_at(server, "hf_argument").token() == "hf_argument");
  }
}

TEST_CASE("hf hub: each hub answer is a typed error that says what to do, and never shows the token",
          "[online][hf_hub]") {
  NoAmbientToken no_token;
  HfTestHub server;
  auto private_model = testing::tiny_bert_on_hub();
  private_model.token = "hf_right";
  server.add(private_model);
  auto gated = testing::tiny_bert_on_hub();
  gated.id = "acme/gated-bert";
  gated.gated = true;
  gated.token = "hf_accepted";
  server.add(gated);
  server.start();

  auto missing = hub_at(server).snapshot({"acme", "nope"}, "");
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == errc::unknown_model);
  CHECK(missing.error().detail.find("RepoNotFound") != std::string::npos);
  CHECK(missing.error().detail.find("set HF_TOKEN") != std::string::npos);

  auto hidden = hub_at(server).snapshot(bert, "");
  REQUIRE_FALSE(hidden);
  CHECK(hidden.error() == errc::unknown_model);

  auto wrong = hub_at(server, "hf_wrong_token").snapshot(bert, "");
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error() == errc::unauthorized);
  CHECK(wrong.error().message().find("hf_wrong_token") == std::string::npos);

  auto revision = hub_at(server, "hf_right").snapshot(bert, "v9");
  REQUIRE_FALSE(revision);
  CHECK(revision.error() == errc::unknown_revision);
  CHECK(revision.error().revision == "v9");

  // Gated: the listing is public, the files are not.
  auto hub = hub_at(server, "hf_not_accepted");
  const ModelId gated_id{"acme", "gated-bert"};
  auto snap = hub.snapshot(gated_id, "");
  REQUIRE(snap);
  std::string body;
  auto r = hub.transport().send(hub.file_request(gated_id, snap.value(), snap.value().files[1]),
                                [&](const ResponseHead&, std::string_view c) {
                                  body.append(c);
                                  return true;
                                });
  REQUIRE(r);
  const Error e = hub.file_error(gated_id, snap.value(), snap.value().files[1].path, r.value(), body);
  CHECK(e == errc::gated);
  CHECK(e.detail.find("accept its terms at " + server.endpoint() + "/acme/gated-bert") != std::string::npos);
  CHECK(e.message().find("hf_not_accepted") == std::string::npos);
}

TEST_CASE("hf hub: rate limiting and server errors keep the hub's words", "[online][hf_hub]") {
  NoAmbientToken no_token;
  HfTestHub server;
  server.add(testing::tiny_bert_on_hub());
  server.intercept([](const httplib::Request& req, httplib::Response& res) {
    if (req.path.find("/tree/") != std::string::npos) {
      HfTestHub::error(res, 429, "", "You have been rate-limited");
      res.set_header("Retry-After", "55");
      res.set_header("RateLimit", "\"api\";r=0;t=55");
      return true;
    }
    if (req.path.find("/revision/v2") != std::string::npos) {
      res.status = 502;
      res.set_content("<html>Bad Gateway</html>", "text/html");
      return true;
    }
    return false;
  });
  server.start();
  auto limited = hub_at(server).snapshot(bert, "");
  REQUIRE_FALSE(limited);
  CHECK(limited.error() == errc::rate_limited);
  CHECK(limited.error().detail.find("Retry-After: 55") != std::string::npos);
  auto gateway = hub_at(server).snapshot(bert, "v2");
  REQUIRE_FALSE(gateway);
  CHECK(gateway.error() == errc::server_error);
  CHECK(gateway.error().detail.find("HTTP 502") == 0);
}

TEST_CASE("hf hub: a tree listing an unsafe path is refused whole", "[online][hf_hub]") {
  NoAmbientToken no_token;
  for (const char* path : {"../../../.bashrc", "/etc/passwd", "a/../../b", "a//b", "a\\..\\b"}) {
    HfTestHub server;
    auto model = testing::tiny_bert_on_hub();
    model.extra_entries.push_back({{"type", "file"}, {"oid", std::string(40, 'a')}, {"size", 3}, {"path", path}});
    server.add(model);
    server.start();
    auto r = hub_at(server).snapshot(bert, "");
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::unsafe_file_list);
    CHECK(r.error().reference == "acme/tiny-bert");
  }
}

TEST_CASE("hf hub: malformed answers are malformed_response, never a partial list", "[online][hf_hub]") {
  NoAmbientToken no_token;
  const std::vector<std::pair<std::string, std::string>> answers = {
      {"/revision/", R"({"id": "acme/tiny-bert"})"},
      {"/revision/", R"({"sha": "not-a-commit"})"},
      {"/revision/", "<html>captive portal</html>"},
      {"/tree/", R"({"files": []})"},
      {"/tree/", R"([{"type": "file", "path": "a", "size": 1}])"},
      {"/tree/", R"([{"type": "file", "path": "a", "oid": "0000000000000000000000000000000000000000"}])"},
      {"/tree/", R"([{"type": "file", "path": "a", "size": 1, "oid": "0000000000000000000000000000000000000000", "lfs": {"oid": "xyz"}}])"},
      {"/tree/", R"([{"type": "symlink", "path": "a", "size": 1, "oid": "0000000000000000000000000000000000000000"}])"},
  };
  for (const auto& [route, body] : answers) {
    HfTestHub server;
    server.add(testing::tiny_bert_on_hub());
    server.intercept([route = route, body = body](const httplib::Request& req, httplib::Response& res) {
      if (req.path.find(route) == std::string::npos) return false;
      res.set_content(body, "application/json");
      return true;
    });
    server.start();
    auto r = hub_at(server).snapshot(bert, "");
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::malformed_response);
  }
}

TEST_CASE("hf hub: a next page on another host is not followed with the token", "[online][hf_hub]") {
  NoAmbientToken no_token;
  HfTestHub server;
  server.add(testing::tiny_bert_on_hub());
  server.intercept([&server](const httplib::Request& req, httplib::Response& res) {
    if (req.path.find("/tree/") == std::string::npos) return false;
    res.set_header("Link", "<" + server.cdn().url("/steal?cursor=2") + ">; rel=\"next\"");
    res.set_content("[]", "application/json");
    return true;
  });
  server.start();
  auto r = hub_at(server, "hf_SeCrEt").snapshot(bert, "");
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::malformed_response);
  CHECK(server.cdn().requests().empty());
}

TEST_CASE("hf hub: Link headers are read as RFC 8288 has them", "[online][hf_hub]") {
  CHECK(detail::next_link(R"(<https://huggingface.co/api/models/x/tree/c?cursor=abc>; rel="next")") ==
        "https://huggingface.co/api/models/x/tree/c?cursor=abc");
  CHECK(detail::next_link(R"(<https://h/p?c=1>; rel="prev", <https://h/p?c=3>; rel="next")") == "https://h/p?c=3");
  CHECK(detail::next_link(R"(<https://h/p?c=3>;rel=next)") == "https://h/p?c=3");
  CHECK(detail::next_link(R"(<https://h/p?c=3>; REL="Next")") == "https://h/p?c=3");
  CHECK(detail::next_link(R"(<https://h/p?c=3>; rel="nextish")").empty());
  CHECK(detail::next_link(R"(<https://h/p?c=3>; rel="prev")").empty());
  CHECK(detail::next_link("").empty());
  CHECK(detail::next_link("<unterminated; rel=next").empty());
}

}  // namespace huggingface_hub_test
