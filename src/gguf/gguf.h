#pragma once
// GGUF v2/v3 reader: the file is mmap'd, metadata is parsed with every offset
// bounds-checked, and tensors are zero-copy views into the mapping.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/types.h"

namespace specsteer::gguf {

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view value_type_name(ValueType t);

// One metadata value. Scalars are decoded; arrays keep a pointer to their
// packed elements in the mapping (strings are pre-split into views).
class Value {
 public:
  ValueType type = ValueType::U8;
  ValueType elem_type = ValueType::U8;  // arrays only
  uint64_t count = 0;                   // arrays only

  bool is_integer() const;
  bool is_array() const { return type == ValueType::ARRAY; }
  // Checked conversions: throw specsteer::Error naming `key` on a type mismatch
  // or an out-of-range value.
  uint64_t as_u64(std::string_view key) const;
  int64_t as_i64(std::string_view key) const;
  double as_f64(std::string_view key) const;
  bool as_bool(std::string_view key) const;
  std::string_view as_string(std::string_view key) const;
  std::vector<std::string_view> as_strings(std::string_view key) const;
  std::vector<float> as_f32s(std::string_view key) const;    // any numeric array
  std::vector<int64_t> as_i64s(std::string_view key) const;  // any integer array

  // Filled by the parser.
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string_view s;
  const uint8_t* array_data = nullptr;    // numeric arrays: packed elements
  std::vector<std::string_view> strings;  // string arrays
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::F32;
  uint32_t n_dims = 0;
  uint64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous (row) dimension
  uint64_t offset = 0;            // relative to the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // view into the mapping

  uint64_t rows() const { return n_elements / ne[0]; }
  std::string shape_string() const;
};

class File {
 public:
  // mmaps `path` read-only and parses it; throws specsteer::Error on any problem.
  static std::unique_ptr<File> open(const std::string& path);
  // Parses an in-memory copy (fuzzing, tests). `name` appears in error messages.
  static std::unique_ptr<File> from_bytes(std::span<const uint8_t> bytes, std::string name = "<memory>");
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t size() const { return size_; }
  const std::vector<KeyValue>& metadata() const { return kv_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  const Value* find(std::string_view key) const;
  const TensorInfo* find_tensor(std::string_view name) const;

  // Convenience getters: nullopt when absent, Error when present with a bad type.
  std::optional<uint64_t> get_u64(std::string_view key) const;
  std::optional<double> get_f64(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  // Required variants: Error naming the key when absent.
  uint64_t require_u64(std::string_view key) const;
  std::string require_string(std::string_view key) const;

 private:
  File() = default;
  void parse();

  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void* map_ = nullptr;          // mmap'd region, or nullptr
  std::vector<uint8_t> owned_;   // for from_bytes
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
};

// GGUF v3 metadata and header encoding, shared by the in-memory Writer below
// and the streaming writer of `specsteer gguf synth` (model/synth.h).
class MetadataBuilder {
 public:
  void add_u8(const std::string& key, uint8_t v);
  void add_i8(const std::string& key, int8_t v);
  void add_u16(const std::string& key, uint16_t v);
  void add_i16(const std::string& key, int16_t v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_u64(const std::string& key, uint64_t v);
  void add_i64(const std::string& key, int64_t v);
  void add_f32(const std::string& key, float v);
  void add_f64(const std::string& key, double v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, std::string_view v);
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  void add_f32s(const std::string& key, const std::vector<float>& v);
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);
  // Numeric array: `count` packed little-endian elements of `elem` in `data`.
  void add_array(const std::string& key, ValueType elem, const void* data, uint64_t count);
  // Re-encodes a value read by File (copying metadata between files).
  void add_value(const std::string& key, const Value& v);
  // Raw escape hatch for fuzz seeds: `encoded` is the type id + payload.
  void add_raw(const std::string& key, std::vector<uint8_t> encoded);

 protected:
  struct TensorHeader {
    std::string name;
    TensorType type;
    std::vector<uint64_t> ne;
    uint64_t bytes;
  };
  // Validates a tensor declaration and returns its header entry.
  static TensorHeader make_tensor(const std::string& name, TensorType type, std::vector<uint64_t> ne);
  // Magic, version, counts, metadata and tensor infos (data offsets laid out
  // with `alignment`), not yet padded to the data section.
  std::vector<uint8_t> encode_header(const std::vector<TensorHeader>& tensors, uint32_t alignment) const;

  std::vector<std::pair<std::string, std::vector<uint8_t>>> kv_;  // key, encoded type+value
};

// Writes whole GGUF v3 files from memory (tests, fuzz seed corpus).
class Writer : public MetadataBuilder {
 public:
  // `ne` in ggml order (ne[0] = row length); `bytes` already in `type`'s layout.
  void add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> ne, std::vector<uint8_t> bytes);
  std::vector<uint8_t> to_bytes(uint32_t alignment = 32) const;
  void write(const std::string& path, uint32_t alignment = 32) const;

 private:
  std::vector<TensorHeader> headers_;
  std::vector<std::vector<uint8_t>> data_;
};

}  // namespace specsteer::gguf
