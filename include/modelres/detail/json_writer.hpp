// Writing JSON strings as Python's json.dump writes them (ensure_ascii: every
// non-ASCII character as \uXXXX, surrogate pairs above U+FFFF), so a file we
// write for a Python client reads as one it wrote. The offline core has no
// JSON library; this is all it needs to write.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace modelres::detail::json {

// Appends `s` as a JSON string literal. False (and nothing appended) if `s`
// is not valid UTF-8: Python's str could not have held it either.
inline bool append_string(std::string& out, std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  std::string lit = "\"";
  const auto escape_unit = [&](std::uint32_t u) {
    lit += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) lit += hex[(u >> shift) & 15];
  };
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': lit += "\\\""; break;
        case '\\': lit += "\\\\"; break;
        case '\n': lit += "\\n"; break;
        case '\r': lit += "\\r"; break;
        case '\t': lit += "\\t"; break;
        case '\b': lit += "\\b"; break;
        case '\f': lit += "\\f"; break;
        default:
          if (c < 0x20 || c == 0x7f)
            escape_unit(c);
          else
            lit += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    const std::size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (n == 0 || c > 0xf4 || i + n > s.size()) return false;
    std::uint32_t cp = c & (0x7f >> n);
    for (std::size_t k = 1; k < n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;  // overlong, surrogate
    if (cp > 0xffff) {
      cp -= 0x10000;
      escape_unit(0xd800 + (cp >> 10));
      escape_unit(0xdc00 + (cp & 0x3ff));
    } else {
      escape_unit(cp);
    }
    i += n;
  }
  out += lit;
  out += '"';
  return true;
}

}  // namespace modelres::detail::json
