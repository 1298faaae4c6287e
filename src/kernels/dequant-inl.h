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

inline void dequant_q4_1(const BlockQ4_1& b, float* y) {
  const float d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
  for (size_t j = 0; j < kQK4_0 / 2; ++j) {
    y[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
    y[j + kQK4_0 / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
  }
}

template <bool kMin, typename B>
inline void dequant_q5(const B& b, float d, float m, float* y) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  for (size_t j = 0; j < kQK4_0 / 2; ++j) {
    const int lo = (b.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = kMin ? static_cast<float>(lo) * d + m : static_cast<float>(lo - 16) * d;
    y[j + kQK4_0 / 2] = kMin ? static_cast<float>(hi) * d + m : static_cast<float>(hi - 16) * d;
  }
}
inline void dequant_q5_0(const BlockQ5_0& b, float* y) { dequant_q5<false>(b, fp16_to_fp32(b.d), 0.0f, y); }
inline void dequant_q5_1(const BlockQ5_1& b, float* y) {
  dequant_q5<true>(b, fp16_to_fp32(b.d), fp16_to_fp32(b.m), y);
}

// Q2_K and Q3_K: 2-bit codes, byte l of each 32-byte column of qs holds the
// same element of four 32-element groups (bit pairs 0-1, 2-3, 4-5, 6-7).
inline void dequant_q2_k(const BlockQ2_K& b, float* y) {
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  const uint8_t* q = b.qs;
  int is = 0;
  for (int n = 0; n < static_cast<int>(kQK_K); n += 128, q += 32)
    for (int shift = 0; shift < 8; shift += 2)
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = b.scales[is++];
        const float dl = d * static_cast<float>(sc & 0x0F), ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
      }
}

inline void dequant_q3_k(const BlockQ3_K& b, float* y) {
  // The 16 6-bit scales: low 4 bits in bytes 0-7 (two per byte), top 2 bits in bytes 8-11.
  int8_t scales[16];
  for (int i = 0; i < 16; ++i) {
    const int low = i < 8 ? b.scales[i] & 0x0F : b.scales[i - 8] >> 4;
    const int high = (b.scales[8 + i % 4] >> (2 * (i / 4))) & 3;
    scales[i] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
  const float d = fp16_to_fp32(b.d);
  const uint8_t* q = b.qs;
  uint8_t m = 1;
  int is = 0;
  for (int n = 0; n < static_cast<int>(kQK_K); n += 128, q += 32)
    for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1))
      for (int half = 0; half < 2; ++half) {
        const float dl = d * static_cast<float>(scales[is++]);
        for (int l = 0; l < 16; ++l) {
          const int k = l + 16 * half;
          *y++ = dl * static_cast<float>(((q[k] >> shift) & 3) - ((b.hmask[k] & m) ? 0 : 4));
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
    case gguf::TensorType::Q4_1: return block(&dequant_q4_1, kQK4_0);
    case gguf::TensorType::Q5_0: return block(&dequant_q5_0, kQK4_0);
    case gguf::TensorType::Q5_1: return block(&dequant_q5_1, kQK4_0);
    case gguf::TensorType::Q2_K: return block(&dequant_q2_k, kQK_K);
    case gguf::TensorType::Q3_K: return block(&dequant_q3_k, kQK_K);
    default: return false;
  }
}
