// Weight gradient of a depthwise 2-D convolution on CPU, float32.
//
// PyTorch 2.13 hands this to oneDNN, whose depthwise backward-weights pass is 3-5x slower than its
// forward pass for 5x5 kernels (docs/training_throughput.md). The gradient is a plain reduction:
//   grad_w[c, i, j] = sum over n, ho, wo of x[n, c, ho*sh + i - ph, wo*sw + j - pw] * grad_out[n, c, ho, wo]
// In channels-last memory every term is a contiguous run of C floats, so the inner loop is a
// vectorised multiply-add over channels into a kh*kw*C accumulator that stays in L1/L2; each thread
// owns one accumulator (a share of the batch) and they are summed at the end.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <vector>

torch::Tensor depthwise_weight_grad(torch::Tensor x, torch::Tensor grad_out, int64_t kh, int64_t kw,
                                    int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  TORCH_CHECK(x.dim() == 4 && grad_out.dim() == 4, "expected 4-D x and grad_out");
  TORCH_CHECK(x.scalar_type() == at::kFloat && grad_out.scalar_type() == at::kFloat, "expected float32");
  TORCH_CHECK(x.size(0) == grad_out.size(0) && x.size(1) == grad_out.size(1), "x and grad_out disagree");
  // (N, C, H, W) -> (N, H, W, C): a view, and no copy when the tensors are already channels-last.
  const auto xl = x.permute({0, 2, 3, 1}).contiguous();
  const auto gl = grad_out.permute({0, 2, 3, 1}).contiguous();
  const int64_t N = xl.size(0), H = xl.size(1), W = xl.size(2), C = xl.size(3);
  const int64_t Ho = gl.size(1), Wo = gl.size(2);
  const int64_t K = kh * kw * C;
  const float* xp = xl.data_ptr<float>();
  const float* gp = gl.data_ptr<float>();
  const int64_t threads = at::get_num_threads();
  std::vector<float> acc(static_cast<size_t>(threads * K), 0.f);
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    float* a = acc.data() + at::get_thread_num() * K;
    for (int64_t n = begin; n < end; ++n) {
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
  });
  auto out = torch::zeros({kh, kw, C}, x.options());
  float* o = out.data_ptr<float>();
  for (int64_t t = 0; t < threads; ++t) {
    const float* a = acc.data() + t * K;
    for (int64_t q = 0; q < K; ++q) o[q] += a[q];
  }
  // (kh, kw, C) -> (C, 1, kh, kw), the layout of a depthwise Conv2d's weight
  return out.permute({2, 0, 1}).unsqueeze(1).contiguous();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("depthwise_weight_grad", &depthwise_weight_grad, "weight gradient of a depthwise conv2d (float32, CPU)");
}
