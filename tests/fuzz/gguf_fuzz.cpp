// libFuzzer entry point for the GGUF reader: any input must either parse or
// throw specsteer::Error; never crash, over-read, hit UB or hang. Every
// metadata accessor and every tensor view is exercised so the sanitizers see
// whatever the parser handed out.
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/error.h"
#include "gguf/gguf.h"

namespace {

volatile uint64_t g_sink;  // keeps the reads from being optimized away

template <typename F>
void guarded(F&& f) {
  try {
    f();
  } catch (const specsteer::Error&) {
  }
}

void touch_value(const std::string& key, const specsteer::gguf::Value& v) {
  uint64_t acc = 0;
  guarded([&] { acc += v.as_u64(key); });
  guarded([&] { acc += static_cast<uint64_t>(v.as_i64(key)); });
  guarded([&] { acc += static_cast<uint64_t>(v.as_f64(key) != 0); });
  guarded([&] { acc += v.as_bool(key); });
  guarded([&] {
    for (unsigned char c : v.as_string(key)) acc += c;
  });
  guarded([&] {
    for (auto s : v.as_strings(key)) acc += s.size() + (s.empty() ? 0 : static_cast<unsigned char>(s.back()));
  });
  guarded([&] {
    for (float x : v.as_f32s(key)) acc += static_cast<uint64_t>(x == x);
  });
  guarded([&] {
    for (int64_t x : v.as_i64s(key)) acc += static_cast<uint64_t>(x);
  });
  acc += v.is_integer() + v.is_array() + v.count;
  acc += specsteer::gguf::value_type_name(v.type).size();
  g_sink = g_sink + acc;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace specsteer;
  try {
    auto f = gguf::File::from_bytes(std::span<const uint8_t>(data, size), "fuzz-input");
    uint64_t acc = f->version() + f->alignment() + f->size();
    for (const auto& kv : f->metadata()) {
      touch_value(kv.key, kv.value);
      acc += f->find(kv.key) != nullptr;
    }
    for (const char* key : {"general.architecture", "general.alignment", "general.name", "tokenizer.ggml.model",
                            "llama.block_count", "qwen3.embedding_length", "tokenizer.ggml.bos_token_id"}) {
      guarded([&] { acc += f->get_u64(key).value_or(0); });
      guarded([&] { acc += static_cast<uint64_t>(f->get_f64(key).value_or(0) != 0); });
      guarded([&] { acc += f->get_bool(key).value_or(false); });
      guarded([&] { acc += f->get_string(key).value_or("").size(); });
      guarded([&] { acc += f->require_u64(key); });
      guarded([&] { acc += f->require_string(key).size(); });
    }
    for (const auto& t : f->tensors()) {
      acc += t.rows() + t.shape_string().size() + (f->find_tensor(t.name) != nullptr);
      const auto* tr = gguf::type_traits(static_cast<uint32_t>(t.type));
      if (tr == nullptr) __builtin_trap();  // the reader must reject unknown types
      if (t.ne[0] % tr->block_elems != 0) __builtin_trap();
      acc += gguf::row_bytes(t.type, t.ne[0]);
      // The view must lie inside the input: touch both ends and the middle
      // (ASan flags any byte outside the parser's copy).
      if (t.n_bytes > 0) acc += t.data[0] + t.data[t.n_bytes / 2] + t.data[t.n_bytes - 1];
    }
    g_sink = g_sink + acc;
  } catch (const Error&) {
    // Rejected cleanly: the expected outcome for most inputs.
  }
  return 0;
}
