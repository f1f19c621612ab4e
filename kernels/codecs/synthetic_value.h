// The per-element draw of synthetic weights (engine/weights/synthetic.h), header-only
// and __host__ __device__ so that a device fills a tensor with the values the host
// generator gives, bit for bit: element i of the tensor of key `key` is
// mean + scale * (irwin_hall_centered(mix64(key + (i + 1) * golden))) in f64, rounded
// to f32, with scale = stddev / std of the centred Irwin-Hall sum (synthetic_scale,
// computed once on the host and passed to the device). Not here: the tensor keys
// (a hash of the seed and the name, engine/weights/synthetic.cc) and any threading.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/codecs/host_device.h"

namespace gb::kernels {

inline constexpr uint64_t kSyntheticGolden = 0x9e3779b97f4a7c15ull;

// splitmix64's output function (Steele, Lea, Flood 2014).
GB_HOST_DEVICE inline uint64_t synthetic_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The sum of the four 16-bit fields of h, centred: symmetric about 0, variance
// 4 * (65536^2 - 1) / 12.
GB_HOST_DEVICE inline int64_t synthetic_irwin_hall_centered(uint64_t h) {
  const int64_t s = static_cast<int64_t>((h & 0xffff) + ((h >> 16) & 0xffff) + ((h >> 32) & 0xffff) + (h >> 48));
  return s - 2 * 65535;
}

// 1 / std of synthetic_irwin_hall_centered.
inline double synthetic_irwin_hall_inv_std() { return 1.0 / std::sqrt(4.0 * (65536.0 * 65536.0 - 1.0) / 12.0); }

// The factor of the centred sum for a tensor of `stddev` (host).
inline double synthetic_scale(float stddev) { return static_cast<double>(stddev) * synthetic_irwin_hall_inv_std(); }

// Element i of the tensor of `key`. On the device the product and the sum are
// rounded separately (no fused multiply-add), as the host computes them.
GB_HOST_DEVICE inline float synthetic_element(uint64_t key, float mean, double scale, uint64_t i) {
  const double z = static_cast<double>(synthetic_irwin_hall_centered(synthetic_mix64(key + (i + 1) * kSyntheticGolden)));
#if defined(__CUDA_ARCH__)
  return static_cast<float>(__dadd_rn(static_cast<double>(mean), __dmul_rn(scale, z)));
#else
  return static_cast<float>(static_cast<double>(mean) + scale * z);
#endif
}

}  // namespace gb::kernels
