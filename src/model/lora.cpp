#include "model/lora.h"

#include <cmath>
#include <cstdlib>
#include <map>

#include "common/error.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "model/model_impl.h"

namespace specsteer {

LoraAdapter::~LoraAdapter() = default;

namespace {

kernels::Matrix view(const gguf::File& f, const gguf::TensorInfo& t) {
  using gguf::TensorType;
  if (t.type != TensorType::F32 && t.type != TensorType::F16 && t.type != TensorType::BF16 &&
      t.type != TensorType::Q8_0)
    throw Error(f.path() + ": LoRA tensor '" + t.name + "' has type " + std::string(gguf::type_name(t.type)) +
                " (supported: f32, f16, bf16, q8_0)");
  if (t.n_dims != 2) throw Error(f.path() + ": LoRA tensor '" + t.name + "' is not 2-D (" + t.shape_string() + ")");
  kernels::Matrix m;
  m.type = t.type;
  m.data = t.data;
  m.cols = static_cast<int64_t>(t.ne[0]);
  m.rows = static_cast<int64_t>(t.ne[1]);
  m.row_bytes = gguf::row_bytes(t.type, t.ne[0]);
  return m;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::shared_ptr<const LoraAdapter> LoraAdapter::load(const std::string& path, const Model& base) {
  std::shared_ptr<LoraAdapter> a(new LoraAdapter());
  a->file_ = gguf::File::open(path);
  a->path_ = path;
  a->base_ = &base;
  const gguf::File& f = *a->file_;
  const auto type = f.get_string("general.type");
  if (!type || *type != "adapter")
    throw Error(path + ": not an adapter (general.type is '" + (type ? *type : std::string("missing")) +
                "', expected 'adapter')");
  const auto atype = f.get_string("adapter.type");
  if (!atype || *atype != "lora")
    throw Error(path + ": adapter.type is '" + (atype ? *atype : std::string("missing")) + "', expected 'lora'");
  const auto arch = f.get_string("general.architecture");
  if (!arch || *arch != base.config().arch)
    throw Error(path + ": adapter architecture '" + (arch ? *arch : std::string("missing")) +
                "' does not match the base model's '" + base.config().arch + "' (" + base.path() + ")");
  const double alpha = f.get_f64("adapter.lora.alpha").value_or(0.0);
  if (!std::isfinite(alpha) || alpha < 0)
    throw Error(path + ": adapter.lora.alpha = " + std::to_string(alpha) + " must be finite and >= 0");
  a->alpha_ = static_cast<float>(alpha);

  // Pair <base>.lora_a with <base>.lora_b; norms are ignored (as llama.cpp does).
  std::map<std::string, std::pair<const gguf::TensorInfo*, const gguf::TensorInfo*>> halves;
  for (const auto& t : f.tensors()) {
    const bool is_a = ends_with(t.name, ".lora_a"), is_b = ends_with(t.name, ".lora_b");
    if (!is_a && !is_b) throw Error(path + ": tensor '" + t.name + "' is neither a .lora_a nor a .lora_b tensor");
    const std::string target = t.name.substr(0, t.name.size() - 7);
    if (ends_with(target, "_norm.weight")) continue;
    (is_a ? halves[target].first : halves[target].second) = &t;
  }
  if (halves.empty()) throw Error(path + ": the adapter has no LoRA tensors");
  const auto& names = base.impl().matrices_by_name;
  for (const auto& [target, ab] : halves) {
    if (!ab.first || !ab.second)
      throw Error(path + ": '" + target + "' has a " + (ab.first ? ".lora_a" : ".lora_b") + " tensor but no " +
                  (ab.first ? ".lora_b" : ".lora_a"));
    auto it = names.find(target);
    if (it == names.end())
      throw Error(path + ": '" + target + "' is not a matrix this engine adapts in " + base.path() +
                  " (adaptable: attention q/k/v/output and ffn gate/up/down weights)");
    const kernels::Matrix* w = it->second;
    Pair p;
    p.a = view(f, *ab.first);
    p.b = view(f, *ab.second);
    // GGUF ne: W [n_in, n_out], A [n_in, r], B [r, n_out].
    if (p.a.cols != w->cols || p.b.rows != w->rows)
      throw Error(path + ": '" + target + "' adapter shapes " + ab.first->shape_string() + " / " +
                  ab.second->shape_string() + " do not fit the base weight [" + std::to_string(w->cols) + ", " +
                  std::to_string(w->rows) + "]");
    if (p.a.rows != p.b.cols)
      throw Error(path + ": '" + target + "' lora_a " + ab.first->shape_string() + " and lora_b " +
                  ab.second->shape_string() + " disagree on the rank (lora_a tensor is not transposed?)");
    p.rank = static_cast<int>(p.b.cols);
    if (p.rank <= 0) throw Error(path + ": '" + target + "' has rank 0");
    a->pairs_.emplace_back(w, p);
  }
  return a;
}

const LoraAdapter::Pair* LoraAdapter::find(const kernels::Matrix* w) const {
  for (const auto& [base_w, p] : pairs_)
    if (base_w == w) return &p;
  return nullptr;
}

float LoraAdapter::effective_scale(const Pair& p, float scale) const {
  // Computed in float as llama.cpp does: (scale * alpha) / r.
  return alpha_ != 0 ? (scale * alpha_) / static_cast<float>(p.rank) : scale;
}

std::pair<std::string, float> parse_lora_arg(const std::string& arg) {
  const size_t colon = arg.rfind(':');
  std::string file = arg;
  float scale = 1.0f;
  if (colon != std::string::npos) {
    const std::string tail = arg.substr(colon + 1);
    char* end = nullptr;
    const float v = std::strtof(tail.c_str(), &end);
    if (!tail.empty() && end == tail.c_str() + tail.size()) {
      if (!std::isfinite(v)) throw Error("--lora " + arg + ": the scale must be a finite number");
      file = arg.substr(0, colon);
      scale = v;
    }
  }
  if (file.empty()) throw Error("--lora '" + arg + "': no adapter file named");
  return {file, scale};
}

std::vector<LoraRef> load_lora_args(const std::vector<std::string>& args, const Model& base) {
  std::vector<LoraRef> out;
  for (const auto& arg : args) {
    const auto [file, scale] = parse_lora_arg(arg);
    out.push_back({LoraAdapter::load(file, base), scale});
  }
  return out;
}

}  // namespace specsteer
