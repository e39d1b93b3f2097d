// crnn::Recognizer: ONNX Runtime session + crnn.Recognizer's batching (see crnn/predict.py).
#include <algorithm>
#include <array>
#include <filesystem>
#include <numeric>

#include <onnxruntime_cxx_api.h>

#include "crnn/recognizer.hpp"

namespace crnn {

namespace {

Ort::Env& ort_env() {
  // One environment per process (it owns ONNX Runtime's logging and global thread state).
  static Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "crnn_infer");
  return env;
}

std::string lookup(const Ort::ModelMetadata& meta, const char* key, const std::string& name) {
  Ort::AllocatorWithDefaultOptions alloc;
  Ort::AllocatedStringPtr v = meta.LookupCustomMetadataMapAllocated(key, alloc);
  if (!v)
    throw Error(name + " has no crnn metadata (missing " + key + "): export it with `crnn export`");
  return std::string(v.get());
}

}  // namespace

struct Recognizer::Impl {
  Options options;
  ModelInfo info;
  std::string path;
  std::unique_ptr<Ort::Session> session;
  std::string input_name, output_name;
};

Recognizer::Recognizer(const std::string& model_path, const Options& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->path = model_path;
  if (options.batch_size < 1) throw Error("batch_size must be >= 1");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(model_path, ec)) throw Error("ONNX model " + model_path + " not found");
  Ort::SessionOptions so;
  // As crnn.onnx_backend.session_options: full graph optimisation, N intra-op threads if given.
  so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  if (options.num_threads > 0) {
    so.SetIntraOpNumThreads(options.num_threads);
    so.SetInterOpNumThreads(1);
  }
  try {
    impl_->session = std::make_unique<Ort::Session>(ort_env(), model_path.c_str(), so);
  } catch (const Ort::Exception& e) {
    throw Error(model_path + " is not a loadable ONNX model: " + e.what());
  }
  Ort::ModelMetadata meta = impl_->session->GetModelMetadata();
  std::string version = lookup(meta, "crnn.format_version", model_path);
  impl_->info = parse_model_info(lookup(meta, "crnn.charset", model_path),
                                 lookup(meta, "crnn.image_shape", model_path),
                                 lookup(meta, "crnn.img_mode", model_path), version, model_path);
  {  // optional crnn.temperature (confidence calibration), as crnn.onnx_backend.parse_metadata
    Ort::AllocatorWithDefaultOptions alloc;
    Ort::AllocatedStringPtr t = meta.LookupCustomMetadataMapAllocated("crnn.temperature", alloc);
    if (t) impl_->info.temperature = parse_temperature(t.get(), model_path);
  }
  // The preprocessing spec; absent from exports before it, which were all padded (the defaults).
  Ort::AllocatorWithDefaultOptions meta_alloc;
  Ort::AllocatedStringPtr spec = meta.LookupCustomMetadataMapAllocated("crnn.preprocess", meta_alloc);
  if (spec) parse_preprocess(spec.get(), model_path, &impl_->info);
  if (options.width == WidthMode::variable && !impl_->info.padding)  // as crnn.Recognizer(dynamic_width=True)
    throw Error("dynamic_width needs a model that pads its inputs; " + model_path +
                " stretches them (RecResizeImg padding: false)");
  Ort::AllocatorWithDefaultOptions alloc;
  impl_->input_name = impl_->session->GetInputNameAllocated(0, alloc).get();
  impl_->output_name = impl_->session->GetOutputNameAllocated(0, alloc).get();
}

Recognizer::~Recognizer() = default;

const ModelInfo& Recognizer::info() const { return impl_->info; }

std::vector<float> Recognizer::run(const std::vector<float>& batch, int batch_size, int width,
                                   int* steps, int* classes) {
  const ModelInfo& mi = impl_->info;
  std::array<int64_t, 4> shape{batch_size, mi.channels, mi.height, width};
  if (batch.size() != static_cast<size_t>(batch_size) * mi.channels * mi.height * width)
    throw Error("run: batch has " + std::to_string(batch.size()) + " floats, not B*C*H*W");
  Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value input = Ort::Value::CreateTensor<float>(mem, const_cast<float*>(batch.data()), batch.size(),
                                                     shape.data(), shape.size());
  const char* in_names[] = {impl_->input_name.c_str()};
  const char* out_names[] = {impl_->output_name.c_str()};
  std::vector<Ort::Value> out;
  try {
    out = impl_->session->Run(Ort::RunOptions{nullptr}, in_names, &input, 1, out_names, 1);
  } catch (const Ort::Exception& e) {
    throw Error(impl_->path + ": inference failed: " + e.what());
  }
  std::vector<int64_t> oshape = out[0].GetTensorTypeAndShapeInfo().GetShape();
  if (oshape.size() != 3 || oshape[0] != batch_size)
    throw Error(impl_->path + ": expected logits (B, T, K), got rank " + std::to_string(oshape.size()));
  *steps = static_cast<int>(oshape[1]);
  *classes = static_cast<int>(oshape[2]);
  if (*classes != static_cast<int>(mi.chars.size()) + 1)
    throw Error(impl_->path + ": model has " + std::to_string(*classes) + " classes but its charset has " +
                std::to_string(mi.chars.size()) + " symbols (+1 blank)");
  const float* p = out[0].GetTensorData<float>();
  return std::vector<float>(p, p + static_cast<size_t>(batch_size) * *steps * *classes);
}

std::vector<Prediction> Recognizer::recognize(const std::vector<cv::Mat>& images) {
  const ModelInfo& mi = impl_->info;
  const Options& opt = impl_->options;
  for (size_t i = 0; i < images.size(); ++i)
    if (images[i].empty() || images[i].rows == 0 || images[i].cols == 0)
      throw Error("image " + std::to_string(i) + " is empty");
  // Python: crnn.data.preprocess.ratio_batches, sorted(range(n), key=w / h) -- a stable sort on the
  // same double key (a crop's batch decides its width, so both must agree on ties).
  std::vector<size_t> order(images.size());
  std::iota(order.begin(), order.end(), 0);
  auto aspect = [&](size_t i) { return static_cast<double>(images[i].cols) / images[i].rows; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return aspect(a) < aspect(b); });

  std::vector<Prediction> out(images.size());
  const size_t per_row = static_cast<size_t>(mi.channels) * mi.height;
  const bool variable = opt.width == WidthMode::variable;
  for (size_t start = 0; start < order.size(); start += opt.batch_size) {
    size_t end = std::min(order.size(), start + static_cast<size_t>(opt.batch_size));
    int width = mi.width;
    if (variable) {  // Preprocess.batch: the batch's variable width
      std::vector<std::pair<int, int>> sizes;
      for (size_t j = start; j < end; ++j) sizes.emplace_back(images[order[j]].rows, images[order[j]].cols);
      width = batch_width(mi, sizes);
    }
    const int n = static_cast<int>(end - start);
    std::vector<float> batch(per_row * width * n);
    for (int j = 0; j < n; ++j)
      resize_norm(images[order[start + j]], mi, width, batch.data() + per_row * width * j);
    int steps = 0, classes = 0;
    std::vector<float> logits = run(batch, n, width, &steps, &classes);
    std::vector<Prediction> preds =
        greedy_decode(logits.data(), n, steps, classes, mi.chars, opt.word_score, mi.temperature);
    for (int j = 0; j < n; ++j) {
      // CTC frames -> this image's pixels, as crnn.Recognizer.decode_arrays; content_w: the width
      // resize_norm gave the image inside the `width`-wide input.
      const cv::Mat& im = images[order[start + j]];
      const int content_w = resized_width(im.rows, im.cols, mi.height, width);
      preds[j].char_positions = frames_to_pixels(preds[j].char_frames, im.cols, width, steps, content_w);
      out[order[start + j]] = std::move(preds[j]);
    }
  }
  return out;
}

}  // namespace crnn
