// CPU kernels for the training step of crnn's convolutional backbones (float32, channels-last memory).
//
// Why: on 2 CPU cores the step of the mv3 model is bound by memory passes, not arithmetic
// (docs/training_throughput.md). PyTorch 2.13 runs BatchNorm, then the activation, each as its own
// passes over the activations, and computes 5x5 depthwise weight gradients with a oneDNN pass that is
// 3-5x slower than the forward convolution. The kernels below do the same arithmetic in fewer passes.
//
// Layout: a channels-last (N, C, H, W) tensor is, in memory, M = N*H*W rows of C contiguous floats,
// so every inner loop is a vectorised loop over channels. Work is split into `chunks` row ranges, each
// with its own accumulators (indexed by chunk, never by thread id), summed at the end in double.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <tuple>
#include <vector>

namespace {

enum Act : int64_t { kIdentity = 0, kRelu = 1, kHardswish = 2 };

// (N, C, H, W) -> (N, H, W, C) contiguous: no copy when the tensor is already channels-last.
torch::Tensor rows_of_channels(const torch::Tensor& t) { return t.permute({0, 2, 3, 1}).contiguous(); }

// A (N, H, W, C) buffer seen as the (N, C, H, W) channels-last tensor it is.
torch::Tensor as_nchw(const torch::Tensor& t) { return t.permute({0, 3, 1, 2}); }

template <int64_t A>
inline float activate(float z) {
  if constexpr (A == kRelu) return z > 0.f ? z : 0.f;
  if constexpr (A == kHardswish) return z * std::min(std::max(z + 3.f, 0.f), 6.f) / 6.f;
  return z;
}

// d act / d z, with PyTorch's conventions at the kinks (hardswish_backward, threshold_backward).
template <int64_t A>
inline float activate_grad(float z) {
  if constexpr (A == kRelu) return z > 0.f ? 1.f : 0.f;
  if constexpr (A == kHardswish) return z < -3.f ? 0.f : (z <= 3.f ? z / 3.f + 0.5f : 1.f);
  return 1.f;
}

// Runs f.template operator()<A>() for the activation code `act` (the loops are compiled once per activation).
template <typename F>
auto with_act(int64_t act, F f) {
  TORCH_CHECK(act == kIdentity || act == kRelu || act == kHardswish, "unknown activation code ", act);
  if (act == kRelu) return f(std::integral_constant<int64_t, kRelu>{});
  if (act == kHardswish) return f(std::integral_constant<int64_t, kHardswish>{});
  return f(std::integral_constant<int64_t, kIdentity>{});
}

constexpr int64_t kBlock = 64;  // rows summed in float before the block's sum is added in double

int64_t num_chunks(int64_t rows) { return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows)); }

// Sums over rows [r0, r1) of two per-element quantities, in one pass: f(r, c, u, v) sets u and v;
// acc1[c] += sum of u, acc2[c] += sum of v (double), summed as float within blocks of kBlock rows.
template <typename F>
void sum_rows(int64_t r0, int64_t r1, int64_t C, double* acc1, double* acc2, F f) {
  std::vector<float> b1(C), b2(C);
  for (int64_t k0 = r0; k0 < r1; k0 += kBlock) {
    std::fill(b1.begin(), b1.end(), 0.f);
    std::fill(b2.begin(), b2.end(), 0.f);
    float* p1 = b1.data();
    float* p2 = b2.data();
    for (int64_t r = k0; r < std::min(r1, k0 + kBlock); ++r) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        float u, v;
        f(r, c, u, v);
        p1[c] += u;
        p2[c] += v;
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      acc1[c] += p1[c];
      acc2[c] += p2[c];
    }
  }
}

}  // namespace

// Weight gradient of a depthwise convolution:
//   grad_w[c, 0, i, j] = sum over n, ho, wo of x[n, c, ho*sh + i - ph, wo*sw + j - pw] * grad_out[n, c, ho, wo]
torch::Tensor depthwise_weight_grad(torch::Tensor x, torch::Tensor grad_out, int64_t kh, int64_t kw,
                                    int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  TORCH_CHECK(x.dim() == 4 && grad_out.dim() == 4, "expected 4-D x and grad_out");
  TORCH_CHECK(x.scalar_type() == at::kFloat && grad_out.scalar_type() == at::kFloat, "expected float32");
  TORCH_CHECK(x.size(0) == grad_out.size(0) && x.size(1) == grad_out.size(1), "x and grad_out disagree");
  const auto xl = rows_of_channels(x);
  const auto gl = rows_of_channels(grad_out);
  const int64_t N = xl.size(0), H = xl.size(1), W = xl.size(2), C = xl.size(3);
  const int64_t Ho = gl.size(1), Wo = gl.size(2);
  const int64_t K = kh * kw * C;
  const float* xp = xl.data_ptr<float>();
  const float* gp = gl.data_ptr<float>();
  const int64_t chunks = num_chunks(N);
  std::vector<float> acc(static_cast<size_t>(chunks * K), 0.f);  // (chunk, i, j, c): stays in L1/L2
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      float* a = acc.data() + chunk * K;
      for (int64_t n = chunk * N / chunks; n < (chunk + 1) * N / chunks; ++n) {
        for (int64_t ho = 0; ho < Ho; ++ho) {
          for (int64_t i = 0; i < kh; ++i) {
            const int64_t hi = ho * sh + i - ph;
            if (hi < 0 || hi >= H) continue;  // zero padding contributes nothing
            for (int64_t wo = 0; wo < Wo; ++wo) {
              const float* g = gp + ((n * Ho + ho) * Wo + wo) * C;
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t wi = wo * sw + j - pw;
                if (wi < 0 || wi >= W) continue;
                const float* xr = xp + ((n * H + hi) * W + wi) * C;
                float* ar = a + (i * kw + j) * C;
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) ar[c] += xr[c] * g[c];
              }
            }
          }
        }
      }
    }
  });
  auto out = torch::zeros({kh, kw, C}, x.options());
  float* o = out.data_ptr<float>();
  for (int64_t t = 0; t < chunks; ++t) {
    const float* a = acc.data() + t * K;
    for (int64_t q = 0; q < K; ++q) o[q] += a[q];
  }
  return out.permute({2, 0, 1}).unsqueeze(1).contiguous();  // (kh, kw, C) -> (C, 1, kh, kw)
}

// BatchNorm with batch statistics, then the activation: y = act((x - mean) * invstd * weight + bias).
// Two passes: statistics (shifted by the first row, so a large mean does not cancel the variance), then
// normalise + activate. Returns y (channels-last), the batch mean, the biased variance and invstd, all (C,).
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor> bn_act_forward(
    torch::Tensor x, torch::Tensor weight, torch::Tensor bias, double eps, int64_t act) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat, "expected a 4-D float32 x");
  const auto xl = rows_of_channels(x);
  const int64_t C = xl.size(3), M = xl.numel() / C;
  TORCH_CHECK(M > 0, "BatchNorm of an empty batch");
  const float* xp = xl.data_ptr<float>();
  std::vector<float> shift0(xp, xp + C);
  const int64_t chunks = num_chunks(M);
  std::vector<double> s1(chunks * C, 0.0), s2(chunks * C, 0.0);
  const float* k = shift0.data();
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      sum_rows(t * M / chunks, (t + 1) * M / chunks, C, s1.data() + t * C, s2.data() + t * C,
               [&](int64_t r, int64_t c, float& u, float& v) {
                 u = xp[r * C + c] - k[c];
                 v = u * u;
               });
    }
  });
  auto opts = x.options().memory_format(at::MemoryFormat::Contiguous);
  auto mean = torch::empty({C}, opts), var = torch::empty({C}, opts), invstd = torch::empty({C}, opts);
  float* mp = mean.data_ptr<float>();
  float* vp = var.data_ptr<float>();
  float* ip = invstd.data_ptr<float>();
  std::vector<float> scale(C), shift(C);
  const float* w = weight.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  for (int64_t c = 0; c < C; ++c) {
    double a1 = 0.0, a2 = 0.0;
    for (int64_t t = 0; t < chunks; ++t) { a1 += s1[t * C + c]; a2 += s2[t * C + c]; }
    const double d = a1 / M, v = std::max(0.0, a2 / M - d * d);
    const double m = shift0[c] + d, is = 1.0 / std::sqrt(v + eps);
    mp[c] = static_cast<float>(m);
    vp[c] = static_cast<float>(v);
    ip[c] = static_cast<float>(is);
    scale[c] = static_cast<float>(w[c] * is);
    shift[c] = static_cast<float>(b[c] - m * w[c] * is);
  }
  auto y = torch::empty_like(xl);
  float* yp = y.data_ptr<float>();
  with_act(act, [&](auto a) {
    constexpr int64_t A = decltype(a)::value;
    at::parallel_for(0, M, 256, [&](int64_t r0, int64_t r1) {
      const float* sc = scale.data();
      const float* sh = shift.data();
      for (int64_t r = r0; r < r1; ++r) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) yp[r * C + c] = activate<A>(xp[r * C + c] * sc[c] + sh[c]);
      }
    });
    return 0;
  });
  return {as_nchw(y), mean, var, invstd};
}

// Gradients of bn_act_forward: from grad_y, x and the saved statistics, recomputing the pre-activation
// (so the forward pass keeps no normalised copy). Two passes: per-channel sums, then grad_x.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> bn_act_backward(
    torch::Tensor grad_y, torch::Tensor x, torch::Tensor weight, torch::Tensor bias, torch::Tensor mean,
    torch::Tensor invstd, int64_t act) {
  const auto xl = rows_of_channels(x);
  const auto gl = rows_of_channels(grad_y);
  const int64_t C = xl.size(3), M = xl.numel() / C;
  const float* xp = xl.data_ptr<float>();
  const float* gp = gl.data_ptr<float>();
  const float* w = weight.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  const float* mu = mean.data_ptr<float>();
  const float* is = invstd.data_ptr<float>();
  std::vector<float> scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = w[c] * is[c];
    shift[c] = b[c] - mu[c] * scale[c];
  }
  const float* sc = scale.data();
  const float* sh = shift.data();
  auto opts = x.options().memory_format(at::MemoryFormat::Contiguous);
  auto grad_w = torch::empty({C}, opts), grad_b = torch::empty({C}, opts);
  auto grad_x = torch::empty_like(xl);
  with_act(act, [&](auto act_tag) {
    constexpr int64_t A = decltype(act_tag)::value;
    // g = grad_y * act'(z): the gradient at BatchNorm's output
    auto g_at = [&](int64_t r, int64_t c) {
      return gp[r * C + c] * activate_grad<A>(xp[r * C + c] * sc[c] + sh[c]);
    };
    const int64_t chunks = num_chunks(M);
    std::vector<double> sg(chunks * C, 0.0), sgx(chunks * C, 0.0);
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        sum_rows(t * M / chunks, (t + 1) * M / chunks, C, sg.data() + t * C, sgx.data() + t * C,
                 [&](int64_t r, int64_t c, float& u, float& v) {
                   u = g_at(r, c);
                   v = u * (xp[r * C + c] - mu[c]);
                 });
      }
    });
    float* gwp = grad_w.data_ptr<float>();
    float* gbp = grad_b.data_ptr<float>();
    std::vector<float> k1(C), k2(C);
    for (int64_t c = 0; c < C; ++c) {
      double a1 = 0.0, a2 = 0.0;
      for (int64_t t = 0; t < chunks; ++t) { a1 += sg[t * C + c]; a2 += sgx[t * C + c]; }
      gbp[c] = static_cast<float>(a1);
      gwp[c] = static_cast<float>(a2 * is[c]);
      k1[c] = static_cast<float>(a1 / M);
      k2[c] = static_cast<float>(a2 / M * is[c] * is[c]);
    }
    // grad_x = scale * (g - mean(g) - (x - mean) * invstd^2 * mean(g * (x - mean)))
    float* dxp = grad_x.data_ptr<float>();
    at::parallel_for(0, M, 256, [&](int64_t r0, int64_t r1) {
      const float* a = k1.data();
      const float* q = k2.data();
      for (int64_t r = r0; r < r1; ++r) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) dxp[r * C + c] = sc[c] * (g_at(r, c) - a[c] - (xp[r * C + c] - mu[c]) * q[c]);
      }
    });
    return 0;
  });
  return {as_nchw(grad_x), grad_w, grad_b};
}

// Per sample and channel, the sum over pixels of a * b: (N, C, H, W) x 2 -> (N, C). One pass over both
// (the squeeze-excite gate's gradient, sum over pixels of grad_out * x, without a product tensor).
torch::Tensor channel_dot(torch::Tensor a, torch::Tensor b) {
  TORCH_CHECK(a.sizes() == b.sizes() && a.dim() == 4, "expected two 4-D tensors of one shape");
  TORCH_CHECK(a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat, "expected float32");
  const auto al = rows_of_channels(a);
  const auto bl = rows_of_channels(b);
  const int64_t N = al.size(0), P = al.size(1) * al.size(2), C = al.size(3);
  const float* ap = al.data_ptr<float>();
  const float* bp = bl.data_ptr<float>();
  auto out = torch::zeros({N, C}, a.options().memory_format(at::MemoryFormat::Contiguous));
  float* op = out.data_ptr<float>();
  at::parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<float> block(C);
    std::vector<double> acc(C);
    for (int64_t n = n0; n < n1; ++n) {
      std::fill(acc.begin(), acc.end(), 0.0);
      const float* an = ap + n * P * C;
      const float* bn = bp + n * P * C;
      float* q = block.data();
      for (int64_t k0 = 0; k0 < P; k0 += kBlock) {  // float within a block of rows, double across blocks
        std::fill(block.begin(), block.end(), 0.f);
        for (int64_t r = k0; r < std::min(P, k0 + kBlock); ++r) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) q[c] += an[r * C + c] * bn[r * C + c];
        }
        for (int64_t c = 0; c < C; ++c) acc[c] += q[c];
      }
      for (int64_t c = 0; c < C; ++c) op[n * C + c] = static_cast<float>(acc[c]);
    }
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("channel_dot", &channel_dot, "per sample and channel, the sum over pixels of a * b");
  m.def("depthwise_weight_grad", &depthwise_weight_grad, "weight gradient of a depthwise conv2d");
  m.def("bn_act_forward", &bn_act_forward, "BatchNorm (batch statistics) + activation, forward");
  m.def("bn_act_backward", &bn_act_backward, "BatchNorm (batch statistics) + activation, backward");
}
