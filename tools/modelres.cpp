// modelres: the command-line face of the library, a thin layer over the headers.
//
//   modelres resolve MODEL [--hub H] [--revision R | --locked FILE] [--cache-dir DIR] [--read-only-cache DIR]... [--local-only] [--endpoint URL] [--strict] [--no-sync] [--json]
//   modelres download MODEL... [--to DIR] [--hub H] [--revision R | --locked FILE] [--cache-dir DIR] [--read-only-cache DIR]... [--endpoint URL] [--include P] [--exclude P] [--no-sync]
//   modelres verify [MODEL|DIR...] [--hub H] [--revision R] [--cache-dir DIR] [--read-only-cache DIR]... [--locked FILE] [--json]
//   modelres ls [--hub H] [--cache-dir DIR] [--read-only-cache DIR]... [--json]
//   modelres lock MODEL... [-o FILE] [--hub H] [--revision R] [--endpoint URL] [--include P] [--exclude P]
//
// MODEL may name its hub: hf.co/owner/name (Hugging Face), modelscope.cn/owner/name;
// a bare owner/name goes to --hub, else $MODELRES_HUB, else ModelScope.
//
// `resolve` prints the directory on stdout and nothing else; errors go to
// stderr in plain words with every path looked at. Exit codes (docs/cli.md):
//   0 resolved   2 usage   3 invalid reference   4 not found   5 incomplete
//   6 revision mismatch   7 corrupt or unsafe metadata   8 permission or I/O error
//   9 network   10 cancelled   11 the hub refused or answered wrongly
//   12 verify: a file does not match what is recorded of it
//   13 the model is not in the lock file, or its files differ from it
//
// Built twice from this file: `modelres`, which links no network library, does
// everything that needs no network (--help, --version, ls, resolve of a path,
// --local-only or with the offline switch on), so those start as fast as a
// LocalOnly program; for the rest it execs `modelres-online` from its own
// directory, the same program with OnlinePolicy and libcurl
// (MODELRES_CLI_NETWORK defined).
#include <modelres/modelres.hpp>
#ifdef MODELRES_CLI_NETWORK
#include <modelres/hubs/huggingface_hub.hpp>
#include <modelres/policies/online.hpp>
#include <modelres/transports/curl_transport.hpp>
#include <modelres/verify.hpp>
#endif

#include <unistd.h>

#include <cerrno>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "progress_bar.hpp"

namespace {

using modelres::errc;
using nlohmann::json;

enum exit_code : int {
  ok = 0,
  usage = 2,
  invalid_reference = 3,
  not_found = 4,
  incomplete = 5,
  revision_mismatch = 6,
  bad_metadata = 7,
  system_error = 8,
  network = 9,
  cancelled = 10,
  hub_error = 11,
  mismatch = 12,  // verify: a file does not hash to what is recorded, or cannot be read
  lock = 13,      // --locked: the model is not in the lock file, or its files differ from it
};

int exit_code_for(const modelres::Error& e) {
  if (e.code.category() != modelres::error_category()) return system_error;
  switch (static_cast<errc>(e.code.value())) {
    case errc::invalid_model_id:
    case errc::invalid_revision:
    case errc::unsupported_reference: return invalid_reference;
    case errc::path_not_found:
    case errc::not_a_directory:
    case errc::not_cached: return not_found;
    case errc::incomplete: return incomplete;
    case errc::revision_mismatch: return revision_mismatch;
    case errc::corrupt_metadata:
    case errc::unsafe_metadata: return bad_metadata;
    case errc::permission_denied:
    case errc::io_error: return system_error;
    case errc::hub_unreachable:
    case errc::timed_out:
    case errc::transfer_interrupted:
    case errc::redirect_refused: return network;
    case errc::cancelled: return cancelled;
    case errc::unknown_model:
    case errc::unknown_revision: return not_found;
    case errc::unauthorized:
    case errc::gated:
    case errc::rate_limited:
    case errc::server_error:
    case errc::malformed_response:
    case errc::unsafe_file_list:
    case errc::checksum_mismatch: return hub_error;
    case errc::disk_full: return system_error;
    case errc::not_in_lock:
    case errc::lock_mismatch: return lock;
  }
  return system_error;
}

json to_json(const modelres::ResolvedModel& m) {
  json files = json::array();
  for (const auto& f : m.files) files.push_back({{"path", f.path}, {"revision", f.revision}, {"size", f.size}});
  json out = {{"directory", m.directory.native()}, {"model", m.model_id},      {"revision", m.revision},
          {"layout", m.layout},                {"files", std::move(files)}, {"size", m.total_size()},
          {"completeness", to_string(m.completeness)}, {"hub_check", to_string(m.hub_check)}};
  if (!m.commit.empty()) out["commit"] = m.commit;
  if (!m.hub_check_reason.empty()) out["hub_check_reason"] = m.hub_check_reason;
  if (!m.endpoint.empty()) out["endpoint"] = m.endpoint;
  if (!m.cache_root.empty()) out["cache_root"] = m.cache_root.native();
  out["read_only_root"] = m.from_read_only_root;
  return out;
}

json to_json(const modelres::Error& e) {
  json looked = json::array();
  for (const auto& p : e.looked_at) looked.push_back({{"path", p.path}, {"verdict", p.verdict}});
  json out = {{"code", e.code.category() == modelres::error_category() ? to_string(static_cast<errc>(e.code.value()))
                                                                        : e.code.category().name()},
              {"value", e.code.value()},
              {"message", e.code.message()},
              {"reference", e.reference},
              {"revision", e.revision},
              {"detail", e.detail},
              {"looked_at", std::move(looked)}};
  if (e.cause) out["cause"] = e.cause.message();
  return out;
}

// json::dump replaces invalid UTF-8 (paths are bytes) instead of throwing.
std::string dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); }

using modelres_tools::human_size;

struct Request {
  std::string revision, cache_dir;
  std::vector<std::string> endpoints;         // --endpoint, in order; none: $MODELRES_ENDPOINTS, else the hub's own
  std::vector<std::string> read_only_caches;  // --read-only-cache; none given: $MODELRES_READ_ONLY_CACHES
  std::string to;                             // download --to: a plain directory instead of the cache
  std::string locked;                         // --locked FILE
  std::optional<modelres::LockFile> lock;     // what --locked names, read once
  std::optional<modelres::Hub> hub;  // --hub; else MODELRES_HUB, else ModelScope
  std::vector<std::string> include, exclude;
  bool local_only = false, strict = false, as_json = false, no_sync = false;
  unsigned connections = 0;  // --connections; 0: FetchOptions' default
};

// Reports a resolve; returns its exit code.
int report(const modelres::result<modelres::ResolvedModel>& model, bool as_json) {
  if (!model) {
    if (as_json) std::cout << dump({{"ok", false}, {"error", to_json(model.error())}}) << "\n";
    std::cerr << "modelres: " << model.error().message() << "\n";
    return exit_code_for(model.error());
  }
  const modelres::ResolvedModel& m = model.value();
  if (m.hub_check == modelres::HubCheck::unavailable)
    std::cerr << "modelres: the hub could not be asked, serving the cached copy unchecked: " << m.hub_check_reason << "\n";
  if (as_json) {
    json j = to_json(m);
    j["ok"] = true;
    std::cout << dump(j) << "\n";
  } else {
    std::cout << m.directory.native() << "\n";
  }
  return ok;
}

// A hub's cache as the command line asks for it: --cache-dir the writable
// root (both hubs are given it), behind the read-only roots.
template <class Cache>
modelres::LayeredCache<Cache> layered(const Request& req) {
  if (req.read_only_caches.empty()) return modelres::LayeredCache<Cache>(Cache(req.cache_dir));
  std::vector<Cache> read_only;
  for (const auto& dir : req.read_only_caches) read_only.emplace_back(dir);
  return modelres::LayeredCache<Cache>(std::move(read_only), Cache(req.cache_dir));
}

using ModelScopeOffline = modelres::Resolver<modelres::DefaultOfflinePolicy, modelres::LayeredCache<modelres::ModelScopeCache>>;
using HuggingFaceOffline = modelres::Resolver<modelres::DefaultOfflinePolicy, modelres::LayeredCache<modelres::HuggingFaceCache>>;
using OfflineRouter = modelres::HubRouter<ModelScopeOffline, HuggingFaceOffline>;

OfflineRouter offline_router(const Request& req) {
  return OfflineRouter(ModelScopeOffline(layered<modelres::ModelScopeCache>(req)),
                       HuggingFaceOffline(layered<modelres::HuggingFaceCache>(req)), req.hub);
}

#ifdef MODELRES_CLI_NETWORK
// One model id, online, on the hub it was routed to.
template <class Hub, class Cache>
modelres::result<modelres::ResolvedModel> resolve_online(const std::string& id, const modelres::ResolveOptions& options,
                                                         Cache cache, const Request& req, bool show_progress) {
  using Online = modelres::OnlinePolicy<modelres::CurlTransport, Hub>;
  typename Online::Options online;
  online.strict = req.strict;
  online.endpoints = req.endpoints;
  if (req.no_sync) online.fetch.durability = modelres::Durability::until_restart;
  if (req.connections) online.fetch.parallel = req.connections;
  modelres_tools::ProgressBar bar;
  if (show_progress) online.fetch.on_progress = [&bar](const modelres::FetchProgress& p) { bar(p); };
  modelres::Resolver<Online, Cache> resolver(std::move(cache), Online(online));
  auto r = resolver.resolve(id, options);
  bar.finish();
  return r;
}

#endif

// Whether a resolve would ask the hub, the offline switch aside: not for a path or --local-only.
bool asks_hub(const std::string& reference, const Request& req) {
  return !req.local_only && modelres::classify_reference(reference) != modelres::reference_kind::path;
}

modelres::result<modelres::ResolvedModel> resolve_one(const std::string& reference, const Request& req, bool show_progress) {
  modelres::ResolveOptions options;
  options.revision = req.revision;
  options.allow_patterns = req.include;
  options.ignore_patterns = req.exclude;
  OfflineRouter offline = offline_router(req);
  auto routed = offline.route(reference);
  if (!routed) return std::move(routed).error();
  const auto resolve_offline = [&] { return req.lock ? offline.resolve(reference, *req.lock, options) : offline.resolve(reference, options); };
  if (!asks_hub(reference, req)) return resolve_offline();
  if (const char* offline_switch = modelres::detail::offline_switch()) {
    // As OnlinePolicy says it: the hub was not asked because the switch is on.
    auto r = resolve_offline();
    if (r) {
      r.value().hub_check = modelres::HubCheck::offline;
      r.value().hub_check_reason = std::string(offline_switch) + " is set";
    }
    return r;
  }
#ifdef MODELRES_CLI_NETWORK
  const std::string id(routed.value().second);
  if (req.lock) {
    MODELRES_TRY(entry, req.lock->entry(routed.value().first, id));
    options.locked = std::move(entry);
  }
  if (!req.to.empty()) {
    if (routed.value().first == modelres::Hub::huggingface)
      return resolve_online<modelres::HuggingFaceHub<modelres::CurlTransport>>(id, options, modelres::PlainDirectoryCache(req.to),
                                                                               req, show_progress);
    return resolve_online<modelres::ModelScopeHub<modelres::CurlTransport>>(id, options, modelres::PlainDirectoryCache(req.to),
                                                                            req, show_progress);
  }
  if (routed.value().first == modelres::Hub::huggingface)
    return resolve_online<modelres::HuggingFaceHub<modelres::CurlTransport>>(id, options, layered<modelres::HuggingFaceCache>(req),
                                                                             req, show_progress);
  return resolve_online<modelres::ModelScopeHub<modelres::CurlTransport>>(id, options, layered<modelres::ModelScopeCache>(req),
                                                                          req, show_progress);
#else
  (void)show_progress;  // main() hands every resolve that needs the hub to modelres-online
  return modelres::Error(modelres::errc::unsupported_reference, reference, "this program does not reach a hub");
#endif
}

#ifdef MODELRES_CLI_NETWORK
// What the hub says `reference` is at the revision asked, as a lock entry (nothing downloaded).
template <class Hub>
modelres::result<modelres::LockedModel> lock_one(const std::string& reference, modelres::Hub hub_name, const std::string& id_text,
                                                 const Request& req) {
  MODELRES_TRY(id, modelres::ModelId::parse(id_text));
  typename modelres::OnlinePolicy<modelres::CurlTransport, Hub>::Options options;
  options.endpoints = req.endpoints;
  MODELRES_TRY(snap, modelres::OnlinePolicy<modelres::CurlTransport, Hub>(options).snapshot(id, req.revision));
  for (const modelres::HubFile& f : snap.files)
    if (!modelres::detail::is_safe_relative_path(f.path))
      return modelres::Error(errc::unsafe_file_list, id.str(),
                             "the hub listed '" + modelres::detail::printable(f.path) + "', which would leave the model directory");
  modelres::ResolveOptions patterns;
  patterns.allow_patterns = req.include;
  patterns.ignore_patterns = req.exclude;
  modelres::detail::select_files(snap, patterns);
  modelres::LockedModel m;
  m.reference = reference;
  m.hub = hub_name;
  m.id = id.str();
  m.revision = req.revision.empty() ? snap.revision : req.revision;
  m.commit = snap.commit;
  m.files = std::move(snap.files);
  return m;
}

// Asks the hub for each model and writes the lock file, all or nothing: a
// model that cannot be locked leaves the file as it was.
int lock_command(const std::vector<std::string>& references, const Request& req, const std::string& output) {
  OfflineRouter router = offline_router(req);
  modelres::LockFile lock;
  for (const auto& reference : references) {
    auto routed = router.route(reference);
    if (!routed) return report(std::move(routed).error(), false);
    const auto [hub, id] = routed.value();
    if (lock.find(hub, id)) {
      std::cerr << "modelres: " << reference << " is named twice\n";
      return usage;
    }
    auto m = hub == modelres::Hub::huggingface
                 ? lock_one<modelres::HuggingFaceHub<modelres::CurlTransport>>(reference, hub, std::string(id), req)
                 : lock_one<modelres::ModelScopeHub<modelres::CurlTransport>>(reference, hub, std::string(id), req);
    if (!m) return report(std::move(m).error(), false);
    const modelres::LockedModel& e = m.value();
    std::uint64_t size = 0;
    for (const auto& f : e.files) size += f.size;
    std::cerr << "locked  " << e.id << "  " << e.revision << (e.commit.empty() ? "" : " at " + e.commit) << "  " << e.files.size()
              << " files, " << human_size(size) << "\n";
    lock.models.push_back(std::move(m).value());
  }
  if (output == "-") {
    std::cout << modelres::write_lock_file(lock);
    return ok;
  }
  if (auto saved = modelres::save_lock_file(lock, output); !saved) return report(std::move(saved).error(), false);
  std::cerr << "wrote " << output << "\n";
  return ok;
}

json to_json(const modelres::Verification& v) {
  json files = json::array();
  for (const auto& f : v.files) {
    json j = {{"path", f.path}, {"size", f.size}, {"state", to_string(f.state)}};
    if (!f.check.empty()) j["check"] = f.check, j["expected"] = f.expected;
    if (!f.actual.empty()) j["actual"] = f.actual;
    files.push_back(std::move(j));
  }
  return {{"model", v.model.model_id},
          {"directory", v.model.directory.native()},
          {"passed", v.passed()},
          {"matched", v.count(modelres::FileState::matched)},
          {"unchecked", v.count(modelres::FileState::unchecked)},
          {"files", std::move(files)}};
}

// Re-hashes the models named (all the caches hold, with none named) against
// what is recorded of them; exit 0 when nothing mismatched, 12 when something did.
int verify_command(const std::vector<std::string>& references, const Request& req) {
  struct Target {
    modelres::Hub hub;
    std::string reference;  // an id, or a directory (every model the caches hold)
    std::string name;       // the model's id, where known
  };
  std::vector<Target> targets;
  OfflineRouter router = offline_router(req);
  if (references.empty() && req.lock) {
    for (const auto& m : req.lock->models)
      if (!req.hub || *req.hub == m.hub) targets.push_back({m.hub, m.id, m.id});
  } else if (references.empty()) {
    for (const modelres::Hub hub : {modelres::Hub::modelscope, modelres::Hub::huggingface}) {
      if (req.hub && *req.hub != hub) continue;
      auto entries = hub == modelres::Hub::huggingface ? layered<modelres::HuggingFaceCache>(req).list()
                                                       : layered<modelres::ModelScopeCache>(req).list();
      if (!entries) return report(std::move(entries).error(), req.as_json);
      for (const auto& e : entries.value())
        if (e.model) targets.push_back({hub, e.model->directory.native(), e.model_id});
    }
  } else {
    for (const auto& r : references) {
      auto routed = router.route(r);
      if (!routed) return report(std::move(routed).error(), req.as_json);
      targets.push_back({routed.value().first, std::string(routed.value().second), {}});
    }
  }
  modelres_tools::ProgressBar bar;
  const bool show_progress = ::isatty(2);
  const auto progress = [&](const modelres::VerifyProgress& p) { if (show_progress) bar(p); };
  int rc = ok;
  json out = json::array();
  for (const Target& t : targets) {
    const auto run = [&](const auto& cache) -> modelres::result<modelres::Verification> {
      if (modelres::classify_reference(t.reference) == modelres::reference_kind::path) {
        std::string dir;
        if (!modelres::detail::expand_tilde(t.reference, dir)) dir = t.reference;
        MODELRES_TRY(m, cache.inspect(dir, req.revision));
        if (!req.lock) return modelres::verify(cache, std::move(m), progress);
        MODELRES_TRY(entry, req.lock->entry(t.hub, m.model_id));
        return modelres::verify(std::move(m), entry, progress);
      }
      MODELRES_TRY(id, modelres::ModelId::parse(t.reference));
      if (!req.lock) return modelres::verify(cache, id, req.revision, progress);
      // The copy at the locked commit (else revision), every byte hashed against the lock.
      MODELRES_TRY(entry, req.lock->entry(t.hub, id.str()));
      MODELRES_TRY(m, cache.locate(id, entry.pinned_revision()));
      return modelres::verify(std::move(m), entry, progress);
    };
    auto v = t.hub == modelres::Hub::huggingface ? run(layered<modelres::HuggingFaceCache>(req))
                                                 : run(layered<modelres::ModelScopeCache>(req));
    bar.finish();
    if (!v) {
      if (req.as_json) out.push_back({{"reference", t.reference}, {"error", to_json(v.error())}});
      std::cerr << "modelres: " << v.error().message() << "\n";
      if (rc == ok) rc = exit_code_for(v.error());
      continue;
    }
    const modelres::Verification& result = v.value();
    if (req.as_json) out.push_back(to_json(result));
    const std::string name = !t.name.empty() ? t.name : !result.model.model_id.empty() ? result.model.model_id : t.reference;
    for (const auto& f : result.files)
      if (f.state == modelres::FileState::mismatched)
        std::cerr << "modelres: " << name << ": " << f.path << " does not match: " << f.check << " " << f.actual
                  << ", recorded " << f.expected << "\n";
      else if (f.state == modelres::FileState::missing)
        std::cerr << "modelres: " << name << ": " << f.path << " cannot be read\n";
    const std::size_t unchecked = result.count(modelres::FileState::unchecked);
    if (!req.as_json)
      std::cout << (result.passed() ? "ok" : "MISMATCH") << "  " << name << "  " << result.count(modelres::FileState::matched)
                << " of " << result.files.size() << " files matched"
                << (unchecked ? ", " + std::to_string(unchecked) + " with no recorded hash (not checked)" : "") << "  "
                << result.model.directory.native() << "\n";
    if (!result.passed() && (rc == ok || rc == mismatch)) rc = mismatch;
  }
  if (req.as_json) std::cout << dump(out) << "\n";
  return rc;
}
#endif

#ifndef MODELRES_CLI_NETWORK
// Whether a resolve needs the network: it asks the hub, and the offline switch is off.
bool needs_network(const std::string& reference, const Request& req) {
  return asks_hub(reference, req) && !modelres::detail::offline_switch();
}

// Runs modelres-online, from this program's own directory, with the same
// arguments; returns only if it cannot be started.
int run_network_program(char** argv, const Request& req, const std::string& reference) {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self);
  std::string dir = n > 0 ? std::string(self, static_cast<std::size_t>(n)) : std::string(argv[0]);
  dir = dir.find('/') == std::string::npos ? std::string(".") : dir.substr(0, dir.rfind('/'));
  const std::string program = dir + "/modelres-online";
  ::execv(program.c_str(), argv);
  const std::error_code ec(errno, std::generic_category());
  return report(modelres::Error(modelres::errc::io_error, reference,
                                "cannot run " + program + ", the part of modelres that reaches the hub (install it beside modelres, "
                                "or use --local-only)")
                    .with_cause(ec),
                req.as_json);
}
#endif

int resolve_command(const std::string& reference, const Request& req) {
  return report(resolve_one(reference, req, !req.as_json && ::isatty(2)), req.as_json);
}

// Pre-seeds a cache for copying to an offline machine: every model fetched
// and verified, none served from a stale copy.
int download_command(const std::vector<std::string>& models, Request req) {
  req.strict = true;
  if (!req.to.empty() && models.size() != 1) {
    std::cerr << "modelres: download --to takes one model (a directory holds one)\n";
    return usage;
  }
  int first_failure = ok;
  for (const auto& model : models) {
    const int rc = report(resolve_one(model, req, ::isatty(2)), false);
    if (rc != ok && first_failure == ok) first_failure = rc;
  }
  return first_failure;
}

// Every model in the caches of the hubs asked for (both unless --hub), each with its hub.
int ls_command(const Request& req) {
  struct Listed {
    modelres::Hub hub;
    modelres::CacheEntry entry;
  };
  std::vector<Listed> listed;
  std::vector<std::string> roots;
  const auto add = [&](modelres::Hub hub, const auto& cache) -> int {
    if (req.hub && *req.hub != hub) return ok;
    auto entries = cache.list();
    if (!entries) {
      std::cerr << "modelres: " << entries.error().message() << "\n";
      return exit_code_for(entries.error());
    }
    for (auto& e : entries.value()) listed.push_back({hub, std::move(e)});
    if (auto root = cache.root()) roots.push_back(root.value());
    return ok;
  };
  if (int rc = add(modelres::Hub::modelscope, layered<modelres::ModelScopeCache>(req)); rc != ok) return rc;
  if (int rc = add(modelres::Hub::huggingface, layered<modelres::HuggingFaceCache>(req)); rc != ok) return rc;

  if (req.as_json) {
    json out = json::array();
    for (const auto& [hub, e] : listed) {
      json j = {{"hub", to_string(hub)}, {"model", e.model_id}, {"directory", e.directory.native()}, {"layout", e.layout}};
      if (e.model) {
        j["state"] = to_json(*e.model);
        j["served"] = true;
      } else {
        j["error"] = to_json(*e.problem);
        j["served"] = false;
      }
      out.push_back(std::move(j));
    }
    std::cout << dump(out) << "\n";
    return ok;
  }
  std::printf("%-12s %-48s %-12s %6s %10s  %-12s %s\n", "HUB", "MODEL", "REVISION", "FILES", "SIZE", "COMPLETE", "DIRECTORY");
  for (const auto& [hub, e] : listed) {
    if (e.model) {
      const auto& m = *e.model;
      std::printf("%-12s %-48s %-12s %6zu %10s  %-12s %s\n", to_string(hub), e.model_id.c_str(),
                  m.revision.empty() ? "-" : m.revision.c_str(), m.files.size(), human_size(m.total_size()).c_str(),
                  to_string(m.completeness), e.directory.c_str());
    } else {
      std::printf("%-12s %-48s %-12s %6s %10s  %-12s %s\n", to_string(hub), e.model_id.c_str(), "-", "-", "-",
                  to_string(static_cast<errc>(e.problem->code.value())), e.directory.c_str());
    }
  }
  if (listed.empty()) {
    std::string where;
    for (const auto& r : roots) where += (where.empty() ? "" : " or ") + r;
    std::fprintf(stderr, "modelres: no models under %s\n", where.c_str());
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"modelres: resolve a model reference to a verified local directory"};
  app.set_version_flag("--version", std::string("modelres ") + MODELRES_VERSION_STRING);
  app.require_subcommand(1);

  std::string reference;
  std::vector<std::string> models;
  Request req;

  // --hub huggingface|hf|modelscope|ms: where a bare owner/name goes.
  const auto add_hub_choice = [&req](CLI::App* cmd) {
    cmd->add_option_function<std::string>(
           "--hub",
           [&req](const std::string& name) {
             modelres::Hub hub;
             if (!modelres::parse_hub_name(name, hub)) throw CLI::ValidationError("--hub", "expected huggingface or modelscope");
             req.hub = hub;
           },
           "hub of a bare owner/name: huggingface (hf) or modelscope (ms) (default: $MODELRES_HUB, else modelscope)")
        ->type_name("HUB");
  };
  const auto add_cache_dir = [&req](CLI::App* cmd) {
    cmd->add_option("--cache-dir", req.cache_dir,
                    "the hub's cache root (default: ModelScope $MODELSCOPE_CACHE, else ~/.cache/modelscope; Hugging Face "
                    "$HF_HUB_CACHE, $HF_HOME/hub, else ~/.cache/huggingface/hub)");
    cmd->add_option("--read-only-cache", req.read_only_caches,
                    "a cache root only ever read, consulted before --cache-dir; repeat for more, in order (default: "
                    "$MODELRES_READ_ONLY_CACHES, colon-separated)")
        ->type_name("DIR")
        ->allow_extra_args(false);
  };

  const auto add_locked = [&req](CLI::App* cmd, const char* what) {
    return cmd->add_option("--locked", req.locked, what)->type_name("FILE");
  };
  // What resolve, download and lock share: which revision, where the hub is, which files.
  const auto add_hub_query = [&](CLI::App* cmd, const std::string& verb) {
    add_hub_choice(cmd);
    cmd->add_option("--revision", req.revision, "branch, tag or commit (default: master on ModelScope, main on Hugging Face)");
    cmd->add_option("--endpoint", req.endpoints,
                    "hub URL; repeat for more, asked in order while one cannot be (default: $MODELRES_ENDPOINTS, "
                    "comma-separated; else ModelScope $MODELSCOPE_ENDPOINT, $MODELSCOPE_DOMAIN, https://www.modelscope.cn; "
                    "Hugging Face $HF_ENDPOINT, https://huggingface.co)")
        ->type_name("URL")
        ->allow_extra_args(false);  // one URL per --endpoint: `--endpoint URL MODEL` leaves MODEL alone
    cmd->add_option("--include", req.include, verb + " only files matching (fnmatch; '*' matches '/' too)")->allow_extra_args(false);
    cmd->add_option("--exclude", req.exclude, "do not " + verb + " files matching")->allow_extra_args(false);
  };
  // What resolve and download share.
  const auto add_hub_options = [&](CLI::App* cmd) {
    add_hub_query(cmd, "download");
    add_cache_dir(cmd);
    add_locked(cmd, "exactly what this lock file records (`modelres lock`): its commit, its files, their hashes; not with "
                    "--revision, --include or --exclude");
    cmd->add_option("--connections", req.connections,
                    "connections at once, for whole files and the byte ranges of large files together (1-64, default 8)")
        ->check(CLI::Range(1u, 64u).description(""))
        ->type_name("N");
    cmd->add_flag("--no-sync", req.no_sync,
                  "do not wait for the disk: the download is trusted until the machine restarts, then hashed again "
                  "by the next online resolve");
  };

  CLI::App* resolve = app.add_subcommand("resolve", "Print the local directory of a model id or path");
  resolve->add_option("MODEL", reference, "owner/name, hf.co/owner/name, modelscope.cn/owner/name, or a path (/abs, ./rel, ~/dir)")
      ->required();
  add_hub_options(resolve);
  resolve->add_flag("--local-only", req.local_only, "use the cache only, never the network");
  resolve->add_flag("--strict", req.strict, "fail if the hub cannot be asked, instead of serving the cached copy");
  resolve->add_flag("--json", req.as_json, "print a JSON object on stdout, errors included");

  CLI::App* download = app.add_subcommand("download", "Fetch models into the cache, verified (to copy to an offline machine)");
  download->add_option("MODEL", models, "owner/name ... (with --locked, default: every model of the lock file)");
  add_hub_options(download);
  download->add_option("--to", req.to,
                       "write one model as a plain directory: its files and modelres's manifest, no cache layout (for "
                       "container images; `resolve DIR` and `verify DIR` check it)")
      ->type_name("DIR");

  std::vector<std::string> to_verify;
  CLI::App* verify = app.add_subcommand("verify", "Re-hash cached models against what is recorded of them, offline");
  verify->add_option("MODEL", to_verify, "owner/name ..., or directories (default: every model the caches hold)");
  add_hub_choice(verify);
  verify->add_option("--revision", req.revision, "branch, tag or commit (default: the cache's)");
  add_cache_dir(verify);
  add_locked(verify, "hash against this lock file instead, at its commits (default MODEL: every model it records)");
  verify->add_flag("--json", req.as_json, "print a JSON array, one object per model");

  std::vector<std::string> to_lock;
  std::string lock_output = "modelres.lock";
  CLI::App* lock = app.add_subcommand("lock", "Write a lock file: each model's commit and every file's size and hash, from the hub");
  lock->add_option("MODEL", to_lock, "owner/name, hf.co/owner/name, modelscope.cn/owner/name ...")->required();
  add_hub_query(lock, "lock");
  lock->add_option("-o,--output", lock_output, "where to write it ('-': standard output)")->capture_default_str()->type_name("FILE");

  CLI::App* ls = app.add_subcommand("ls", "List the models in the caches, every hub and layout");
  add_hub_choice(ls);
  add_cache_dir(ls);
  ls->add_flag("--json", req.as_json, "print a JSON array");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? ok : usage;
  }

  if (!req.locked.empty() && (!req.revision.empty() || !req.include.empty() || !req.exclude.empty())) {
    std::cerr << "modelres: --locked names the revision and the files; not with --revision, --include or --exclude\n";
    return usage;
  }
  if (download->parsed() && models.empty() && req.locked.empty()) {
    std::cerr << "modelres: download needs MODEL, or --locked FILE\n";
    return usage;
  }
#ifndef MODELRES_CLI_NETWORK
  // verify hashes with libcrypto, which only modelres-online links.
  if (download->parsed() || verify->parsed() || lock->parsed() || (resolve->parsed() && needs_network(reference, req)))
    return run_network_program(argv, req, download->parsed() ? "download" : verify->parsed() ? "verify" : lock->parsed() ? "lock" : reference);
#endif
  if (!req.locked.empty()) {
    auto read = modelres::read_lock_file(req.locked);
    if (!read) return report(std::move(read).error(), req.as_json);
    req.lock = std::move(read).value();
    if (download->parsed() && models.empty())
      for (const auto& m : req.lock->models)
        models.push_back((m.hub == modelres::Hub::huggingface ? "hf.co/" : "modelscope.cn/") + m.id);
  }
#ifdef MODELRES_CLI_NETWORK
  if (verify->parsed()) return verify_command(to_verify, req);
  if (lock->parsed()) return lock_command(to_lock, req, lock_output);
#endif
  if (resolve->parsed()) return resolve_command(reference, req);
  if (download->parsed()) return download_command(models, req);
  return ls_command(req);
}
