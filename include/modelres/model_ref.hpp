// Model references: the grammar of hub ids and revisions, and the one rule that
// tells a filesystem path from a hub id. Knows no hub and no disk layout.
//
//   ModelId::parse("Qwen/Qwen2.5-0.5B")  -> owner "Qwen", name "Qwen2.5-0.5B"
//   parse_revision("v1.0.3")             -> "v1.0.3"
//   classify_reference("./models/unet")  -> reference_kind::path
//
// A valid id can never name a path outside a cache root: it is exactly two
// components of [A-Za-z0-9_.-], neither "." nor "..", with no ".." anywhere.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "error.hpp"
#include "result.hpp"

namespace modelres {

struct ModelId {
  // Limits: the hubs' own (Hugging Face caps a repo name at 96), and short
  // enough that every cache layout's directory name stays under NAME_MAX.
  static constexpr std::size_t max_owner_length = 64;
  static constexpr std::size_t max_name_length = 96;

  std::string owner;
  std::string name;

  std::string str() const {
    std::string s;
    s.reserve(owner.size() + 1 + name.size());
    return s.append(owner).append(1, '/').append(name);
  }

  static result<ModelId> parse(std::string_view text);

  friend bool operator==(const ModelId& a, const ModelId& b) {
    return a.owner == b.owner && a.name == b.name;
  }
};

namespace detail {

inline bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
inline bool is_id_char(char c) { return is_word_char(c) || c == '-' || c == '.'; }

// Why a component of an id is invalid, or empty if it is valid.
inline std::string id_component_problem(std::string_view part, const char* what, std::size_t max_length) {
  if (part.empty()) return std::string("empty ") + what;
  if (part.size() > max_length)
    return std::string(what) + " is " + std::to_string(part.size()) + " characters, more than " +
           std::to_string(max_length);
  for (char c : part) {
    if (!is_id_char(c)) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) return std::string(what) + " contains a control character";
      if (c == '\\') return std::string(what) + " contains a backslash";
      return std::string(what) + " contains '" + std::string(1, c) + "'; allowed are letters, digits, '_', '-', '.'";
    }
  }
  if (part.find("..") != std::string_view::npos) return std::string(what) + " contains '..'";
  if (!is_word_char(part.front()) || !is_word_char(part.back()))
    return std::string(what) + " must start and end with a letter, digit or '_'";
  return {};
}

// `text` is exactly `length` lower-case hex digits: a commit (40), a git blob
// id (40), a sha256 (64), as the hubs and their caches write them.
inline bool is_lower_hex(std::string_view text, std::size_t length) {
  // A loop, not find_first_not_of: that is a memchr per character, on every cache hit.
  if (text.size() != length) return false;
  for (const char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Printable form of untrusted input for error messages: control bytes escaped.
inline std::string printable(std::string_view text, std::size_t max_length = 300) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < text.size() && out.size() < max_length; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() >= max_length) out += "...";
  return out;
}

}  // namespace detail

inline result<ModelId> ModelId::parse(std::string_view text) {
  const auto fail = [&](std::string why) { return Error(errc::invalid_model_id, detail::printable(text), std::move(why)); };
  if (text.empty()) return fail("empty model id; expected owner/name");
  if (text.front() == '/') return fail("an absolute path is not a model id; expected owner/name");
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return fail("expected owner/name, found no '/'");
  if (text.find('/', slash + 1) != std::string_view::npos) return fail("expected owner/name, found more than one '/'");
  const std::string_view owner = text.substr(0, slash);
  const std::string_view name = text.substr(slash + 1);
  if (auto why = detail::id_component_problem(owner, "owner", max_owner_length); !why.empty()) return fail(why);
  if (auto why = detail::id_component_problem(name, "name", max_name_length); !why.empty()) return fail(why);
  // "a--b/c" and "a/b--c" would share the directory "a--b--c" in the layouts
  // that join owner and name with "--".
  if (owner.find("--") != std::string_view::npos) return fail("owner contains '--'");
  return ModelId{std::string(owner), std::string(name)};
}

// A branch or tag name. Empty means "not pinned". Accepted: [A-Za-z0-9_.-/],
// at most 128 characters, '/'-separated components that are neither empty nor
// start with '.', and the other rules git applies to ref names.
inline result<std::string> parse_revision(std::string_view text) {
  const auto fail = [&](std::string why) {
    return Error(errc::invalid_revision, {}, std::move(why)).with_revision(detail::printable(text));
  };
  if (text.empty()) return std::string();
  if (text.size() > 128) return fail("revision is longer than 128 characters");
  for (char c : text) {
    if (!detail::is_id_char(c) && c != '/') {
      const unsigned char u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) return fail("revision contains a control character");
      return fail("revision contains '" + std::string(1, c) + "'; allowed are letters, digits, '_', '-', '.', '/'");
    }
  }
  if (text.find("..") != std::string_view::npos) return fail("revision contains '..'");
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find('/', start);
    const std::string_view part = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part.empty()) return fail("revision has an empty component");
    if (part.front() == '.') return fail("a revision component starts with '.'");
    if (part.size() >= 5 && part.substr(part.size() - 5) == ".lock") return fail("a revision component ends with '.lock'");
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return std::string(text);
}

enum class reference_kind { path, model_id, any };

// The rule compositions use to send a reference to a path policy or to a hub
// policy, decided by spelling alone (never by what happens to exist on disk):
// a reference is a path if it is absolute, starts with "~", "./" or "../", or
// is "." or "..". Everything else is a model id. A relative directory named like
// an id ("models/unet") is written "./models/unet".
inline reference_kind classify_reference(std::string_view text) {
  if (text == "." || text == ".." || text == "~") return reference_kind::path;
  if (!text.empty() && (text.front() == '/' || text.front() == '~')) return reference_kind::path;
  if (text.substr(0, 2) == "./" || text.substr(0, 3) == "../") return reference_kind::path;
  return reference_kind::model_id;
}

// Which hub an id belongs to. A reference may name it the way ollama does
// ("hf.co/owner/name"); split_hub_prefix() takes that prefix off.
enum class Hub { modelscope, huggingface };

inline const char* to_string(Hub h) noexcept { return h == Hub::huggingface ? "huggingface" : "modelscope"; }

// "huggingface" / "hf" / "modelscope" / "ms" (as --hub and MODELRES_HUB spell it).
inline bool parse_hub_name(std::string_view text, Hub& out) {
  if (text == "huggingface" || text == "hf") return out = Hub::huggingface, true;
  if (text == "modelscope" || text == "ms") return out = Hub::modelscope, true;
  return false;
}

struct HubPrefixed {
  bool named = false;      // the reference named its hub
  Hub hub = Hub::modelscope;
  std::string_view id;     // the rest: "owner/name"
};

// "hf.co/owner/name", "huggingface.co/owner/name" and "modelscope.cn/owner/name",
// also with "https://" and "www." before them, as users paste them from a
// browser. Anything else, paths included, is returned whole with named=false.
inline HubPrefixed split_hub_prefix(std::string_view reference) {
  HubPrefixed out;
  out.id = reference;
  if (classify_reference(reference) == reference_kind::path) return out;
  std::string_view rest = reference;
  if (rest.substr(0, 8) == "https://") rest.remove_prefix(8);
  if (rest.substr(0, 4) == "www.") rest.remove_prefix(4);
  static constexpr std::pair<std::string_view, Hub> hosts[] = {
      {"hf.co/", Hub::huggingface}, {"huggingface.co/", Hub::huggingface}, {"modelscope.cn/", Hub::modelscope}};
  for (const auto& [host, hub] : hosts) {
    if (rest.substr(0, host.size()) == host) {
      out.named = true;
      out.hub = hub;
      out.id = rest.substr(host.size());
      return out;
    }
  }
  return out;
}

}  // namespace modelres
