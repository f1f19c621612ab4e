// The decode-latency fit (engine/measure/stats/decode_fit.h).
#include "engine/measure/stats/decode_fit.h"

namespace gb::engine {

DecodeFit fit_decode_latency(std::span<const SeriesPoint> points) {
  DecodeFit f;
  f.n = static_cast<int>(points.size());
  if (points.empty()) return f;
  // Centred sums (numerically stable for x up to 1e5 and more).
  double mx = 0, my = 0;
  for (const SeriesPoint& p : points) {
    mx += p.x - 1;
    my += p.y;
  }
  mx /= f.n;
  my /= f.n;
  double sxx = 0, sxy = 0, syy = 0;
  for (const SeriesPoint& p : points) {
    const double dx = p.x - 1 - mx, dy = p.y - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx <= 0) {
    f.B_ms = my;
    return f;
  }
  f.slope_ms_per_token = sxy / sxx;
  f.B_ms = my - f.slope_ms_per_token * mx;
  f.W_tokens_per_ms = f.slope_ms_per_token > 0 ? 1.0 / f.slope_ms_per_token : 0;
  f.r2 = syy > 0 ? (sxy * sxy) / (sxx * syy) : 1;
  return f;
}

}  // namespace gb::engine
