#include <modelres/detail/pickle.hpp>

#include <random>
#include <string>

#include "../support/cache_builder.hpp"
#include "../support/catch.hpp"

using modelres::errc;
namespace pickle = modelres::detail::pickle;

namespace pickle_test {

// The (Path, Revision) pairs of a parsed .msc.
std::vector<std::pair<std::string, std::string>> records(const pickle::Document& doc) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto i : doc.root_node().items) {
    const auto& d = doc.at(i);
    const std::string* p = doc.find_string(d, "Path");
    const std::string* r = doc.find_string(d, "Revision");
    out.emplace_back(p ? *p : "<none>", r ? *r : "<none>");
  }
  return out;
}

TEST_CASE("reads .msc written by Python at protocols 2, 3, 4 and 5", "[pickle]") {
  for (int proto : {2, 3, 4, 5}) {
    INFO("protocol " << proto);
    auto doc = pickle::read(testing::fixture("unet_msc_p" + std::to_string(proto) + ".pkl"));
    REQUIRE(doc);
    REQUIRE(doc.value().root_node().type == pickle::kind::list);
    const auto recs = records(doc.value());
    REQUIRE(recs.size() == 4);
    CHECK(recs[0] == std::make_pair(std::string("configuration.json"), std::string("e45fcc158894f18a7a8cfa3caf8b3dd1a2b26dc9")));
    CHECK(recs[3] == std::make_pair(std::string("assets/weights/joint.pth"), std::string("7a1c2b3d4e5f60718293a4b5c6d7e8f901234567")));
  }
}

TEST_CASE("reads .mdl written by Python", "[pickle]") {
  for (int proto : {2, 3, 4, 5}) {
    auto doc = pickle::read(testing::fixture("qwen_mdl_p" + std::to_string(proto) + ".pkl"));
    REQUIRE(doc);
    const std::string* id = doc.value().find_string(doc.value().root_node(), "id");
    REQUIRE(id);
    CHECK(*id == "Qwen/Qwen2___5-0___5B-Instruct");
  }
}

TEST_CASE("reads large record lists: APPENDS batches, long and non-ASCII paths", "[pickle]") {
  for (const char* name : {"many_msc_p4.pkl", "many_msc_p2.pkl"}) {
    INFO(name);
    auto doc = pickle::read(testing::fixture(name));
    REQUIRE(doc);
    const auto recs = records(doc.value());
    REQUIRE(recs.size() == 1502);
    CHECK(recs[0].first == "shards/part-00000.bin");
    CHECK(recs[1499].first == "shards/part-01499.bin");
    CHECK(recs[1499].second == "00000000000000000000000000000000000005db");
    CHECK(recs[1500].first.size() == 5 + 300 + 9);
    CHECK(recs[1501].first == "donn\xc3\xa9" "es/\xe6\xa8\xa1\xe5\x9e\x8b.txt");
  }
}

TEST_CASE("code-executing pickles are unsafe_metadata and never run", "[pickle]") {
  for (const char* name : {"exploit_reduce_p4.pkl", "exploit_reduce_p2.pkl", "exploit_global_p0.pkl"}) {
    INFO(name);
    auto doc = pickle::read(testing::fixture(name));
    REQUIRE_FALSE(doc);
    // Protocol 0 is refused before its GLOBAL is reached; the others name the opcode.
    if (std::string(name) == "exploit_global_p0.pkl") {
      CHECK(doc.error() == errc::unsafe_metadata);
    } else {
      CHECK(doc.error() == errc::unsafe_metadata);
      CHECK((doc.error().detail.find("STACK_GLOBAL") != std::string::npos ||
             doc.error().detail.find("GLOBAL") != std::string::npos));
    }
  }
  // Each forbidden opcode on its own, after a valid protocol header.
  for (int op : {int('c'), 0x93, int('R'), int('b'), int('i'), int('o'), 0x81, 0x92, int('P'), int('Q'), 0x82, 0x83, 0x84}) {
    std::string bytes = "\x80\x04";
    bytes += static_cast<char>(op);
    bytes += std::string(16, 'a');
    auto doc = pickle::read(bytes);
    REQUIRE_FALSE(doc);
    CHECK(doc.error() == errc::unsafe_metadata);
  }
}

TEST_CASE("every truncation of a valid pickle is corrupt_metadata", "[pickle]") {
  for (const char* name : {"unet_msc_p2.pkl", "unet_msc_p4.pkl", "unet_mdl_p5.pkl"}) {
    const std::string full = testing::fixture(name);
    for (std::size_t n = 0; n < full.size(); ++n) {
      auto doc = pickle::read(full.substr(0, n));
      INFO(name << " cut at " << n);
      REQUIRE_FALSE(doc);
      CHECK(doc.error() == errc::corrupt_metadata);
    }
    CHECK(pickle::read(full));
    auto trailing = pickle::read(full + "x");
    REQUIRE_FALSE(trailing);
    CHECK(trailing.error() == errc::corrupt_metadata);
  }
}

TEST_CASE("malformed pickles are corrupt_metadata", "[pickle]") {
  const std::string cases[] = {
      std::string("\x80\x04X\xff\xff\xff\xff", 7),   // string length past the end
      std::string("\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f", 11),
      std::string("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff", 11),  // frame past the end
      std::string("\x80\x09]", 3),                  // unknown protocol
      std::string("]\x80\x04.", 4),                 // PROTO not first
      std::string("\x80\x04h\x05.", 5),              // BINGET of an unset slot
      std::string("\x80\x04]\x94h\x00a.", 7),        // memo reference to a container (would share it)
      std::string("\x80\x04]\x94]h\x00" "a.", 8),
      std::string("\x80\x04].", 3) + "extra",
      std::string("\x80\x04}(\x8c\x01ku.", 8),       // SETITEMS with an odd count
      std::string("\x80\x04\x8c\x01xa.", 6),         // APPEND to a string
      std::string("\x80\x04e.", 4),                  // APPENDS without MARK
      std::string("\x80\x04](.", 4),                 // STOP with an open MARK
      std::string("\x80\x04]].", 4),                 // STOP with two values
      std::string("\x80\x04", 2) + std::string(100, '('),  // MARK bomb
      std::string("\x80\x04\xff", 3),                // unknown opcode
      std::string("\x00", 1),
      std::string("\x80\x04\x94.", 4),               // MEMOIZE on an empty stack
      // Opcodes reaching below the innermost MARK (Python starts a new stack at MARK):
      std::string("\x80\x03]](ae.", 7),             // APPEND across the MARK, then APPENDS
      std::string("\x80\x03}\x8c\x01k(\x8c\x01vs.", 11),  // SETITEM across the MARK
      std::string("\x80\x03](\x94" "e.", 6),          // MEMOIZE with nothing above the MARK
      std::string("\x80\x03](q\x00" "e.", 7),         // BINPUT with nothing above the MARK
  };
  for (const auto& bytes : cases) {
    auto doc = pickle::read(bytes);
    INFO("case of " << bytes.size() << " bytes");
    REQUIRE_FALSE(doc);
    CHECK(doc.error() == errc::corrupt_metadata);
  }
}

TEST_CASE("random bytes never crash the reader", "[pickle]") {
  std::mt19937 rng(12345);
  const std::string seed = testing::fixture("unet_msc_p4.pkl");
  int refused = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes = seed;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xff);
    auto doc = pickle::read(bytes);
    if (!doc) {
      ++refused;
      CHECK((doc.error() == errc::corrupt_metadata || doc.error() == errc::unsafe_metadata));
    }
  }
  // Both outcomes occur: changes that break structure are refused, changes
  // inside string bytes still parse to data.
  CHECK(refused > 1000);
  CHECK(refused < 20000);
}

std::vector<pickle::StringDict> as_records(const pickle::Document& doc) {
  std::vector<pickle::StringDict> out;
  for (auto i : doc.root_node().items) {
    pickle::StringDict d;
    const auto& node = doc.at(i);
    for (std::size_t k = 0; k + 1 < node.items.size(); k += 2)
      d.emplace_back(doc.at(node.items[k]).text, doc.at(node.items[k + 1]).text);
    out.push_back(std::move(d));
  }
  return out;
}

TEST_CASE("the writer produces Python's protocol-2 bytes exactly", "[pickle][writer]") {
  for (const char* name : {"unet_msc_p2.pkl", "many_msc_p2.pkl"}) {
    INFO(name);
    const std::string python = testing::fixture(name);
    auto doc = pickle::read(python);
    REQUIRE(doc);
    CHECK(pickle::Writer::list_of_dicts(as_records(doc.value())) == python);
  }
  CHECK(pickle::Writer::dict_only({{"id", "Qwen/Qwen2___5-0___5B-Instruct"}}) == testing::fixture("qwen_mdl_p2.pkl"));
  CHECK(pickle::Writer::list_of_dicts({}) == std::string("\x80\x02]q\x00.", 6));
}

}  // namespace pickle_test
