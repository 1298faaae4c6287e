#include "gguf/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <unordered_set>

#include "common/error.h"

namespace specsteer::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxDims = 4;

size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    default: return 0;
  }
}

// Bounds-checked little-endian reader over the file bytes. Every failure
// names the file, the byte offset and what was being read.
class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size, const std::string& file) : base_(base), size_(size), file_(file) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(file_ + ": " + what + " at offset " + std::to_string(pos_));
  }
  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail(std::string("truncated file: need ") + std::to_string(n) + " bytes for " + what + ", only " +
           std::to_string(remaining()) + " left");
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view read_string(const char* what) {
    uint64_t len = read<uint64_t>(what);
    need(len, what);
    std::string_view s(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return s;
  }
  const uint8_t* skip(uint64_t n, const char* what) {
    need(n, what);
    const uint8_t* p = base_ + pos_;
    pos_ += n;
    return p;
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& file_;
};

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

double numeric_at(ValueType t, const uint8_t* p) {
  switch (t) {
    case ValueType::U8: return load<uint8_t>(p);
    case ValueType::I8: return load<int8_t>(p);
    case ValueType::U16: return load<uint16_t>(p);
    case ValueType::I16: return load<int16_t>(p);
    case ValueType::U32: return load<uint32_t>(p);
    case ValueType::I32: return load<int32_t>(p);
    case ValueType::F32: return load<float>(p);
    case ValueType::U64: return static_cast<double>(load<uint64_t>(p));
    case ValueType::I64: return static_cast<double>(load<int64_t>(p));
    case ValueType::F64: return load<double>(p);
    case ValueType::BOOL: return load<uint8_t>(p) != 0;
    default: return 0;
  }
}

bool is_integer_type(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16:
    case ValueType::U32: case ValueType::I32: case ValueType::U64: case ValueType::I64:
      return true;
    default:
      return false;
  }
}

bool is_signed(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

// Reads one scalar of type t into v (u for unsigned/bool, i for signed, f for floats).
void read_scalar(Cursor& c, ValueType t, Value& v) {
  switch (t) {
    case ValueType::U8: v.u = c.read<uint8_t>("u8 value"); break;
    case ValueType::I8: v.i = c.read<int8_t>("i8 value"); break;
    case ValueType::U16: v.u = c.read<uint16_t>("u16 value"); break;
    case ValueType::I16: v.i = c.read<int16_t>("i16 value"); break;
    case ValueType::U32: v.u = c.read<uint32_t>("u32 value"); break;
    case ValueType::I32: v.i = c.read<int32_t>("i32 value"); break;
    case ValueType::U64: v.u = c.read<uint64_t>("u64 value"); break;
    case ValueType::I64: v.i = c.read<int64_t>("i64 value"); break;
    case ValueType::F32: v.f = c.read<float>("f32 value"); break;
    case ValueType::F64: v.f = c.read<double>("f64 value"); break;
    case ValueType::BOOL: {
      uint8_t b = c.read<uint8_t>("bool value");
      if (b > 1) c.fail("bool value " + std::to_string(b) + " is neither 0 nor 1");
      v.u = b;
      break;
    }
    default: break;
  }
  if (is_signed(t)) v.u = static_cast<uint64_t>(v.i);
  if (is_integer_type(t) && !is_signed(t)) v.i = static_cast<int64_t>(v.u);
  if (t == ValueType::BOOL) v.i = static_cast<int64_t>(v.u);
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::F64); }

}  // namespace

std::string_view value_type_name(ValueType t) {
  static constexpr std::string_view names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < std::size(names) ? names[i] : std::string_view("invalid");
}

bool Value::is_integer() const { return is_integer_type(type); }

static Error type_error(std::string_view key, const Value& v, const char* want) {
  std::string got(value_type_name(v.type));
  if (v.is_array()) got = "array of " + std::string(value_type_name(v.elem_type));
  return Error("metadata key '" + std::string(key) + "' has type " + got + ", expected " + want);
}

uint64_t Value::as_u64(std::string_view key) const {
  if (!is_integer_type(type) && type != ValueType::BOOL) throw type_error(key, *this, "an unsigned integer");
  if (is_signed(type) && i < 0)
    throw Error("metadata key '" + std::string(key) + "' is negative (" + std::to_string(i) + ")");
  return u;
}

int64_t Value::as_i64(std::string_view key) const {
  if (!is_integer_type(type)) throw type_error(key, *this, "an integer");
  if (!is_signed(type) && u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    throw Error("metadata key '" + std::string(key) + "' is out of range");
  return i;
}

double Value::as_f64(std::string_view key) const {
  if (type == ValueType::F32 || type == ValueType::F64) return f;
  if (is_integer_type(type)) return is_signed(type) ? static_cast<double>(i) : static_cast<double>(u);
  throw type_error(key, *this, "a number");
}

bool Value::as_bool(std::string_view key) const {
  if (type != ValueType::BOOL) throw type_error(key, *this, "bool");
  return u != 0;
}

std::string_view Value::as_string(std::string_view key) const {
  if (type != ValueType::STRING) throw type_error(key, *this, "string");
  return s;
}

std::vector<std::string_view> Value::as_strings(std::string_view key) const {
  if (type != ValueType::ARRAY || elem_type != ValueType::STRING) throw type_error(key, *this, "array of strings");
  return strings;
}

std::vector<float> Value::as_f32s(std::string_view key) const {
  if (type != ValueType::ARRAY || scalar_size(elem_type) == 0) throw type_error(key, *this, "numeric array");
  std::vector<float> out(count);
  const size_t w = scalar_size(elem_type);
  for (uint64_t k = 0; k < count; ++k) out[k] = static_cast<float>(numeric_at(elem_type, array_data + k * w));
  return out;
}

std::vector<int64_t> Value::as_i64s(std::string_view key) const {
  if (type != ValueType::ARRAY || !is_integer_type(elem_type)) throw type_error(key, *this, "integer array");
  std::vector<int64_t> out(count);
  const size_t w = scalar_size(elem_type);
  for (uint64_t k = 0; k < count; ++k) {
    const uint8_t* p = array_data + k * w;
    switch (elem_type) {
      case ValueType::U64: out[k] = static_cast<int64_t>(load<uint64_t>(p)); break;
      case ValueType::I64: out[k] = load<int64_t>(p); break;
      default: out[k] = static_cast<int64_t>(numeric_at(elem_type, p)); break;
    }
  }
  return out;
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (uint32_t d = 0; d < n_dims; ++d) {
    if (d) s += ", ";
    s += std::to_string(ne[d]);
  }
  return s + "]";
}

File::~File() {
  if (map_) munmap(map_, size_);
}

std::unique_ptr<File> File::open(const std::string& path) {
  std::unique_ptr<File> f(new File());
  f->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ == 0) {
    ::close(fd);
    throw Error(path + ": empty file, expected a GGUF model");
  }
  void* m = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) throw Error(path + ": mmap failed: " + std::strerror(errno));
  f->map_ = m;
  f->base_ = static_cast<const uint8_t*>(m);
  f->parse();
  return f;
}

std::unique_ptr<File> File::from_bytes(std::span<const uint8_t> bytes, std::string name) {
  std::unique_ptr<File> f(new File());
  f->path_ = std::move(name);
  f->owned_.assign(bytes.begin(), bytes.end());
  f->base_ = f->owned_.data();
  f->size_ = f->owned_.size();
  f->parse();
  return f;
}

void File::parse() {
  Cursor c(base_, size_, path_);
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) {
    throw Error(path_ + ": not a GGUF file (bad magic at offset 0)");
  }
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    throw Error(path_ + ": unsupported GGUF version " + std::to_string(version_) + " at offset 4 (expected 2 or 3)");
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each KV needs at least 8 (key len) + 4 (type) + 1 bytes, each tensor
  // at least 8 + 4 + 8 + 4 + 8: reject counts the file cannot possibly hold.
  if (n_kv > c.remaining() / 13) c.fail("metadata count " + std::to_string(n_kv) + " exceeds what the file can hold");
  if (n_tensors > c.remaining() / 32)
    c.fail("tensor count " + std::to_string(n_tensors) + " exceeds what the file can hold");

  std::unordered_set<std::string_view> seen_keys;
  kv_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    const uint64_t at = c.pos();
    std::string_view key = c.read_string("metadata key");
    KeyValue kv;
    kv.key = std::string(key);
    const uint32_t type = c.read<uint32_t>("metadata value type");
    if (!valid_value_type(type)) c.fail("metadata key '" + kv.key + "' has invalid value type " + std::to_string(type));
    Value& v = kv.value;
    v.type = static_cast<ValueType>(type);
    if (v.type == ValueType::STRING) {
      v.s = c.read_string("string value");
    } else if (v.type == ValueType::ARRAY) {
      const uint32_t et = c.read<uint32_t>("array element type");
      if (!valid_value_type(et)) c.fail("array '" + kv.key + "' has invalid element type " + std::to_string(et));
      v.elem_type = static_cast<ValueType>(et);
      if (v.elem_type == ValueType::ARRAY) c.fail("array '" + kv.key + "' nests arrays, which is not supported");
      v.count = c.read<uint64_t>("array length");
      if (v.elem_type == ValueType::STRING) {
        if (v.count > c.remaining() / 8)
          c.fail("array '" + kv.key + "' length " + std::to_string(v.count) + " exceeds what the file can hold");
        v.strings.reserve(v.count);
        for (uint64_t j = 0; j < v.count; ++j) v.strings.push_back(c.read_string("array string"));
      } else {
        const size_t w = scalar_size(v.elem_type);
        if (v.count > c.remaining() / w)
          c.fail("array '" + kv.key + "' length " + std::to_string(v.count) + " exceeds what the file can hold");
        v.array_data = c.skip(v.count * w, "array data");
      }
    } else {
      read_scalar(c, v.type, v);
    }
    if (!seen_keys.insert(key).second)
      throw Error(path_ + ": duplicate metadata key '" + kv.key + "' at offset " + std::to_string(at));
    kv_.push_back(std::move(kv));
  }

  if (const Value* a = find("general.alignment")) {
    uint64_t al = a->as_u64("general.alignment");
    if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20))
      throw Error(path_ + ": general.alignment " + std::to_string(al) + " is not a power of two <= 1 MiB");
    alignment_ = al;
  }

  std::unordered_set<std::string> names;
  tensors_.reserve(n_tensors);
  for (uint64_t t = 0; t < n_tensors; ++t) {
    const uint64_t at = c.pos();
    TensorInfo ti;
    ti.name = std::string(c.read_string("tensor name"));
    auto tfail = [&](const std::string& what) -> void {
      throw Error(path_ + ": tensor '" + ti.name + "' (info at offset " + std::to_string(at) + "): " + what);
    };
    ti.n_dims = c.read<uint32_t>("tensor dimension count");
    if (ti.n_dims == 0 || ti.n_dims > kMaxDims) tfail("has " + std::to_string(ti.n_dims) + " dimensions (1..4 allowed)");
    uint64_t n = 1;
    for (uint32_t d = 0; d < ti.n_dims; ++d) {
      ti.ne[d] = c.read<uint64_t>("tensor dimension");
      if (ti.ne[d] == 0) tfail("dimension " + std::to_string(d) + " is zero");
      if (ti.ne[d] > (uint64_t{1} << 40) || n > (uint64_t{1} << 42) / ti.ne[d]) tfail("element count overflows");
      n *= ti.ne[d];
    }
    ti.n_elements = n;
    const uint32_t type = c.read<uint32_t>("tensor type");
    const TypeTraits* tr = type_traits(type);
    if (!tr) tfail("has unknown tensor type id " + std::to_string(type));
    ti.type = static_cast<TensorType>(type);
    if (ti.ne[0] % tr->block_elems != 0)
      tfail("row length " + std::to_string(ti.ne[0]) + " is not a multiple of the " + std::string(tr->name) +
            " block size " + std::to_string(tr->block_elems));
    ti.n_bytes = n / tr->block_elems * tr->block_bytes;
    ti.offset = c.read<uint64_t>("tensor data offset");
    if (ti.offset % alignment_ != 0) tfail("data offset " + std::to_string(ti.offset) + " is not aligned");
    if (!names.insert(ti.name).second) tfail("duplicate tensor name");
    tensors_.push_back(std::move(ti));
  }

  uint64_t data_start = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_start > size_) throw Error(path_ + ": truncated file: tensor data section missing");
  for (auto& ti : tensors_) {
    if (ti.offset > size_ || ti.n_bytes > size_ - data_start || data_start + ti.offset > size_ - ti.n_bytes)
      throw Error(path_ + ": tensor '" + ti.name + "' data [" + std::to_string(data_start + ti.offset) + ", +" +
                  std::to_string(ti.n_bytes) + ") runs past the end of the file (" + std::to_string(size_) +
                  " bytes): truncated or corrupt file");
    ti.data = base_ + data_start + ti.offset;
  }
}

const Value* File::find(std::string_view key) const {
  for (const auto& kv : kv_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::optional<uint64_t> File::get_u64(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  try {
    return v->as_u64(key);
  } catch (const Error& e) {
    throw Error(path_ + ": " + e.what());
  }
}

std::optional<double> File::get_f64(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  try {
    return v->as_f64(key);
  } catch (const Error& e) {
    throw Error(path_ + ": " + e.what());
  }
}

std::optional<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  try {
    return v->as_bool(key);
  } catch (const Error& e) {
    throw Error(path_ + ": " + e.what());
  }
}

std::optional<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  try {
    return std::string(v->as_string(key));
  } catch (const Error& e) {
    throw Error(path_ + ": " + e.what());
  }
}

uint64_t File::require_u64(std::string_view key) const {
  auto v = get_u64(key);
  if (!v) throw Error(path_ + ": missing required metadata key '" + std::string(key) + "'");
  return *v;
}

std::string File::require_string(std::string_view key) const {
  auto v = get_string(key);
  if (!v) throw Error(path_ + ": missing required metadata key '" + std::string(key) + "'");
  return *v;
}

// ---------------------------------------------------------------- writer

namespace {
void put_bytes(std::vector<uint8_t>& out, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n);
}
template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  put_bytes(out, &v, sizeof(T));
}
void put_string(std::vector<uint8_t>& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  put_bytes(out, s.data(), s.size());
}
template <typename T>
std::vector<uint8_t> scalar(ValueType t, T v) {
  std::vector<uint8_t> out;
  put<uint32_t>(out, static_cast<uint32_t>(t));
  put<T>(out, v);
  return out;
}
uint64_t aligned(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }
}  // namespace

void MetadataBuilder::add_u8(const std::string& k, uint8_t v) { kv_.emplace_back(k, scalar(ValueType::U8, v)); }
void MetadataBuilder::add_i8(const std::string& k, int8_t v) { kv_.emplace_back(k, scalar(ValueType::I8, v)); }
void MetadataBuilder::add_u16(const std::string& k, uint16_t v) { kv_.emplace_back(k, scalar(ValueType::U16, v)); }
void MetadataBuilder::add_i16(const std::string& k, int16_t v) { kv_.emplace_back(k, scalar(ValueType::I16, v)); }
void MetadataBuilder::add_u32(const std::string& k, uint32_t v) { kv_.emplace_back(k, scalar(ValueType::U32, v)); }
void MetadataBuilder::add_i32(const std::string& k, int32_t v) { kv_.emplace_back(k, scalar(ValueType::I32, v)); }
void MetadataBuilder::add_u64(const std::string& k, uint64_t v) { kv_.emplace_back(k, scalar(ValueType::U64, v)); }
void MetadataBuilder::add_i64(const std::string& k, int64_t v) { kv_.emplace_back(k, scalar(ValueType::I64, v)); }
void MetadataBuilder::add_f32(const std::string& k, float v) { kv_.emplace_back(k, scalar(ValueType::F32, v)); }
void MetadataBuilder::add_f64(const std::string& k, double v) { kv_.emplace_back(k, scalar(ValueType::F64, v)); }
void MetadataBuilder::add_bool(const std::string& k, bool v) {
  kv_.emplace_back(k, scalar<uint8_t>(ValueType::BOOL, v ? 1 : 0));
}
void MetadataBuilder::add_string(const std::string& k, std::string_view v) {
  std::vector<uint8_t> out;
  put<uint32_t>(out, static_cast<uint32_t>(ValueType::STRING));
  put_string(out, v);
  kv_.emplace_back(k, std::move(out));
}
void MetadataBuilder::add_strings(const std::string& k, const std::vector<std::string>& v) {
  std::vector<uint8_t> out;
  put<uint32_t>(out, static_cast<uint32_t>(ValueType::ARRAY));
  put<uint32_t>(out, static_cast<uint32_t>(ValueType::STRING));
  put<uint64_t>(out, v.size());
  for (const auto& s : v) put_string(out, s);
  kv_.emplace_back(k, std::move(out));
}
void MetadataBuilder::add_array(const std::string& k, ValueType elem, const void* data, uint64_t count) {
  const size_t w = scalar_size(elem);
  if (w == 0) throw Error("gguf writer: array '" + k + "' must have a numeric element type");
  std::vector<uint8_t> out;
  put<uint32_t>(out, static_cast<uint32_t>(ValueType::ARRAY));
  put<uint32_t>(out, static_cast<uint32_t>(elem));
  put<uint64_t>(out, count);
  put_bytes(out, data, count * w);
  kv_.emplace_back(k, std::move(out));
}
void MetadataBuilder::add_f32s(const std::string& k, const std::vector<float>& v) {
  add_array(k, ValueType::F32, v.data(), v.size());
}
void MetadataBuilder::add_i32s(const std::string& k, const std::vector<int32_t>& v) {
  add_array(k, ValueType::I32, v.data(), v.size());
}
void MetadataBuilder::add_raw(const std::string& k, std::vector<uint8_t> encoded) {
  kv_.emplace_back(k, std::move(encoded));
}

void MetadataBuilder::add_value(const std::string& k, const Value& v) {
  switch (v.type) {
    case ValueType::U8: add_u8(k, static_cast<uint8_t>(v.u)); break;
    case ValueType::I8: add_i8(k, static_cast<int8_t>(v.i)); break;
    case ValueType::U16: add_u16(k, static_cast<uint16_t>(v.u)); break;
    case ValueType::I16: add_i16(k, static_cast<int16_t>(v.i)); break;
    case ValueType::U32: add_u32(k, static_cast<uint32_t>(v.u)); break;
    case ValueType::I32: add_i32(k, static_cast<int32_t>(v.i)); break;
    case ValueType::U64: add_u64(k, v.u); break;
    case ValueType::I64: add_i64(k, v.i); break;
    case ValueType::F32: add_f32(k, static_cast<float>(v.f)); break;
    case ValueType::F64: add_f64(k, v.f); break;
    case ValueType::BOOL: add_bool(k, v.u != 0); break;
    case ValueType::STRING: add_string(k, v.s); break;
    case ValueType::ARRAY:
      if (v.elem_type == ValueType::STRING) {
        add_strings(k, std::vector<std::string>(v.strings.begin(), v.strings.end()));
      } else {
        add_array(k, v.elem_type, v.array_data, v.count);
      }
      break;
  }
}

MetadataBuilder::TensorHeader MetadataBuilder::make_tensor(const std::string& name, TensorType type,
                                                           std::vector<uint64_t> ne) {
  const TypeTraits* tr = type_traits(static_cast<uint32_t>(type));
  if (!tr) throw Error("gguf writer: tensor '" + name + "' has an unknown type");
  if (ne.empty() || ne.size() > kMaxDims) throw Error("gguf writer: tensor '" + name + "' needs 1..4 dimensions");
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;
  if (ne[0] % tr->block_elems != 0)
    throw Error("gguf writer: tensor '" + name + "' row length " + std::to_string(ne[0]) +
                " is not a multiple of the " + std::string(tr->name) + " block size " +
                std::to_string(tr->block_elems));
  return {name, type, std::move(ne), n / tr->block_elems * tr->block_bytes};
}

std::vector<uint8_t> MetadataBuilder::encode_header(const std::vector<TensorHeader>& tensors,
                                                    uint32_t alignment) const {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw Error("gguf writer: alignment must be a power of two");
  std::vector<uint8_t> out;
  put<uint32_t>(out, kMagic);
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors.size());
  const bool add_alignment = alignment != 32;
  put<uint64_t>(out, kv_.size() + (add_alignment ? 1 : 0));
  for (const auto& [key, val] : kv_) {
    put_string(out, key);
    put_bytes(out, val.data(), val.size());
  }
  if (add_alignment) {
    put_string(out, "general.alignment");
    auto v = scalar(ValueType::U32, alignment);
    put_bytes(out, v.data(), v.size());
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) put<uint64_t>(out, d);
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, offset);
    offset += aligned(t.bytes, alignment);
  }
  return out;
}

void Writer::add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> ne,
                        std::vector<uint8_t> bytes) {
  TensorHeader h = make_tensor(name, type, std::move(ne));
  if (h.bytes != bytes.size())
    throw Error("gguf writer: tensor '" + name + "' byte size does not match its shape and type");
  headers_.push_back(std::move(h));
  data_.push_back(std::move(bytes));
}

std::vector<uint8_t> Writer::to_bytes(uint32_t alignment) const {
  std::vector<uint8_t> out = encode_header(headers_, alignment);
  out.resize(aligned(out.size(), alignment), 0);
  for (const auto& d : data_) {
    put_bytes(out, d.data(), d.size());
    out.resize(aligned(out.size(), alignment), 0);
  }
  return out;
}

void Writer::write(const std::string& path, uint32_t alignment) const {
  auto bytes = to_bytes(alignment);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(path + ": cannot open for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw Error(path + ": write failed");
}

}  // namespace specsteer::gguf
