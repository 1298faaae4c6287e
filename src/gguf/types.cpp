#include "gguf/types.h"

#include <array>
#include <cctype>
#include <string>

#include "common/error.h"

namespace specsteer::gguf {
namespace {

struct Entry {
  uint32_t id;
  TypeTraits traits;
};

// Block geometry from the GGUF/ggml specification.
constexpr std::array<Entry, 31> kTypes = {{
    {0, {"f32", 1, 4, true}},
    {1, {"f16", 1, 2, true}},
    {2, {"q4_0", 32, 18, true}},
    {3, {"q4_1", 32, 20, true}},
    {6, {"q5_0", 32, 22, true}},
    {7, {"q5_1", 32, 24, true}},
    {8, {"q8_0", 32, 34, true}},
    {9, {"q8_1", 32, 36, false}},
    {10, {"q2_k", 256, 84, true}},
    {11, {"q3_k", 256, 110, true}},
    {12, {"q4_k", 256, 144, true}},
    {13, {"q5_k", 256, 176, true}},
    {14, {"q6_k", 256, 210, true}},
    {15, {"q8_k", 256, 292, false}},
    // Known so that files holding them open and name them; not computed with.
    {16, {"iq2_xxs", 256, 66, false}},
    {17, {"iq2_xs", 256, 74, false}},
    {18, {"iq3_xxs", 256, 98, false}},
    {19, {"iq1_s", 256, 50, false}},
    {20, {"iq4_nl", 32, 18, false}},
    {21, {"iq3_s", 256, 110, false}},
    {22, {"iq2_s", 256, 82, false}},
    {23, {"iq4_xs", 256, 136, false}},
    {24, {"i8", 1, 1, false}},
    {25, {"i16", 1, 2, false}},
    {26, {"i32", 1, 4, false}},
    {27, {"i64", 1, 8, false}},
    {28, {"f64", 1, 8, false}},
    {29, {"iq1_m", 256, 56, false}},
    {30, {"bf16", 1, 2, true}},
    {34, {"tq1_0", 256, 54, false}},
    {35, {"tq2_0", 256, 66, false}},
}};

}  // namespace

const TypeTraits* type_traits(uint32_t type_id) {
  for (const auto& e : kTypes)
    if (e.id == type_id) return &e.traits;
  return nullptr;
}

std::string_view type_name(TensorType t) {
  const TypeTraits* tr = type_traits(static_cast<uint32_t>(t));
  return tr ? tr->name : std::string_view("unknown");
}

TensorType parse_type_name(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& e : kTypes)
    if (e.traits.name == lower) return static_cast<TensorType>(e.id);
  throw Error("unknown tensor type '" + std::string(name) + "' (expected f32, f16, bf16, q8_0, q4_0, q4_k, q5_k or q6_k)");
}

}  // namespace specsteer::gguf
