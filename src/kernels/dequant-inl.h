// Block dequantizers shared by the reference path (quant.cpp, baseline
// instruction set) and the Highway TU (simd.cpp), which includes this file
// once per target inside its per-target namespace, so the same loops are
// compiled, and auto-vectorized, for AVX-512, AVX2, ... and picked at run
// time. No include guard on purpose (Highway's "-inl.h" convention).
//
// Needs kernels/quant.h (block structs, fp16_to_fp32, get_scale_min_k4) and
// <cstring>.

inline void dequant_q8_0(const BlockQ8_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (size_t i = 0; i < kQK8_0; ++i) y[i] = static_cast<float>(b.qs[i]) * d;
}

inline void dequant_q4_0(const BlockQ4_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (size_t j = 0; j < kQK4_0 / 2; ++j) {
    y[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
    y[j + kQK4_0 / 2] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
  }
}

// Q4_K and Q5_K share their layout of 6-bit scales/mins and nibbles; Q5_K
// adds a fifth bit per weight from qh (bit 2g for the low nibbles of group g,
// 2g+1 for the high ones). kQh is a template flag so each type's loops stay
// branch-free and vectorize.
template <bool kQh>
inline void dequant_k4(uint16_t d_bits, uint16_t dmin_bits, const uint8_t* scales, const uint8_t* qs,
                       const uint8_t* qh, float* y) {
  const float d = fp16_to_fp32(d_bits);
  const float dmin = fp16_to_fp32(dmin_bits);
  for (int g = 0; g < 4; ++g) {
    uint8_t sc, m;
    get_scale_min_k4(2 * g, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    get_scale_min_k4(2 * g + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    const uint8_t* q = qs + 32 * g;
    const uint8_t u1 = static_cast<uint8_t>(1u << (2 * g)), u2 = static_cast<uint8_t>(2u << (2 * g));
    for (int l = 0; l < 32; ++l) {
      int v = q[l] & 0x0F;
      if constexpr (kQh) v += (qh[l] & u1) ? 16 : 0;
      y[64 * g + l] = d1 * static_cast<float>(v) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      int v = q[l] >> 4;
      if constexpr (kQh) v += (qh[l] & u2) ? 16 : 0;
      y[64 * g + 32 + l] = d2 * static_cast<float>(v) - m2;
    }
  }
}

inline void dequant_q4_k(const BlockQ4_K& b, float* y) { dequant_k4<false>(b.d, b.dmin, b.scales, b.qs, nullptr, y); }
inline void dequant_q5_k(const BlockQ5_K& b, float* y) { dequant_k4<true>(b.d, b.dmin, b.scales, b.qs, b.qh, y); }

inline void dequant_q6_k(const BlockQ6_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int n = 0; n < 2; ++n) {
    const uint8_t* ql = b.ql + 64 * n;
    const uint8_t* qh = b.qh + 32 * n;
    const int8_t* sc = b.scales + 8 * n;
    float* yy = y + 128 * n;
    // Two halves of 16 with their scales fixed, so the compiler vectorizes
    // the loop (a per-element scale index kept it scalar, 4x slower).
    for (int is = 0; is < 2; ++is) {
      const float s1 = d * static_cast<float>(sc[is + 0]), s2 = d * static_cast<float>(sc[is + 2]);
      const float s3 = d * static_cast<float>(sc[is + 4]), s4 = d * static_cast<float>(sc[is + 6]);
      for (int l = 16 * is; l < 16 * is + 16; ++l) {
        const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        yy[l] = s1 * static_cast<float>(q1);
        yy[l + 32] = s2 * static_cast<float>(q2);
        yy[l + 64] = s3 * static_cast<float>(q3);
        yy[l + 96] = s4 * static_cast<float>(q4);
      }
    }
  }
}

// Dequantizes n elements (whole blocks) of a quantized row; false for types
// without blocks here (the caller handles float types and errors).
inline bool DequantizeBlocks(gguf::TensorType t, const uint8_t* p, float* dst, size_t n) {
  const auto block = [&]<typename B>(void (*fn)(const B&, float*), size_t elems) {
    for (size_t i = 0; i < n / elems; ++i, p += sizeof(B), dst += elems) {
      B b;
      std::memcpy(&b, p, sizeof(B));
      fn(b, dst);
    }
    return true;
  };
  switch (t) {
    case gguf::TensorType::Q8_0: return block(&dequant_q8_0, kQK8_0);
    case gguf::TensorType::Q4_0: return block(&dequant_q4_0, kQK4_0);
    case gguf::TensorType::Q4_K: return block(&dequant_q4_k, kQK_K);
    case gguf::TensorType::Q5_K: return block(&dequant_q5_k, kQK_K);
    case gguf::TensorType::Q6_K: return block(&dequant_q6_k, kQK_K);
    default: return false;
  }
}
