// Greedy CTC decoding and metadata parsing: crnn.decode.greedy_decode and
// crnn.onnx_backend.parse_metadata in C++.
#include <cmath>
#include <vector>

#include <nlohmann/json.hpp>

#include "crnn/recognizer.hpp"

namespace crnn {

std::vector<Prediction> greedy_decode(const float* logits, int batch, int steps, int classes,
                                      const std::vector<std::string>& chars) {
  std::vector<Prediction> out(batch);
  std::vector<float> probs(classes);
  for (int b = 0; b < batch; ++b) {
    int prev = -1;
    double sum_p = 0.0;
    int kept = 0;
    for (int t = 0; t < steps; ++t) {
      const float* z = logits + (static_cast<size_t>(b) * steps + t) * classes;
      // Stable float32 softmax as in Python; argmax over the probabilities (first maximum wins).
      float zmax = z[0];
      for (int k = 1; k < classes; ++k) zmax = std::max(zmax, z[k]);
      float total = 0.0f;
      for (int k = 0; k < classes; ++k) total += (probs[k] = std::exp(z[k] - zmax));
      int best = 0;
      for (int k = 0; k < classes; ++k) {
        probs[k] /= total;
        if (probs[k] > probs[best]) best = k;
      }
      if (best != prev && best != 0) {  // merge repeats, drop blanks
        if (best - 1 < static_cast<int>(chars.size())) out[b].text += chars[best - 1];
        sum_p += probs[best];
        ++kept;
      }
      prev = best;
    }
    out[b].confidence = kept ? static_cast<float>(sum_p / kept) : 0.0f;
  }
  return out;
}

ModelInfo parse_model_info(const std::string& charset_json, const std::string& image_shape_json,
                           const std::string& img_mode, const std::string& format_version,
                           const std::string& name) {
  if (format_version != "1")
    throw Error(name + ": crnn metadata format '" + format_version +
                "' is not supported (this crnn_infer reads '1')");
  ModelInfo info;
  try {
    auto cs = nlohmann::json::parse(charset_json);
    for (const auto& c : cs.at("chars")) info.chars.push_back(c.get<std::string>());
    info.lower = cs.value("lower", false);
    auto shape = nlohmann::json::parse(image_shape_json);
    if (!shape.is_array() || shape.size() != 3)
      throw Error(name + ": crnn.image_shape must be [C, H, W], got " + image_shape_json);
    info.channels = shape[0].get<int>();
    info.height = shape[1].get<int>();
    info.width = shape[2].get<int>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(name + ": malformed crnn metadata (crnn.charset / crnn.image_shape): " + e.what());
  }
  if ((info.channels != 1 && info.channels != 3) || info.height <= 0 || info.width <= 0)
    throw Error(name + ": unsupported crnn.image_shape " + image_shape_json);
  if (img_mode != "BGR" && img_mode != "RGB")
    throw Error(name + ": crnn.img_mode must be BGR or RGB, got '" + img_mode + "'");
  info.img_mode = img_mode;
  return info;
}

}  // namespace crnn
