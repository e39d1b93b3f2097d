// Greedy CTC decoding, word scores, symbol positions and metadata parsing: crnn.decode.greedy_from_probs,
// crnn.decode.word_score, crnn.decoders.frames_to_pixels and crnn.onnx_backend.parse_metadata in C++.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>

#include "crnn/recognizer.hpp"

namespace crnn {

namespace {

// Python's round(x, digits): the exact binary value rounded half to even, which is what printf does.
double py_round(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return std::strtod(buf, nullptr);
}

// numpy's pairwise summation (pairwise_sum in its umath loops), which np.sum and np.mean use along a
// contiguous axis: the same additions in the same order give Python's sums bit for bit.
template <typename T>
T pairwise_sum(const T* a, size_t n) {
  if (n < 8) {
    T res = 0;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    T r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

// Softmax of one step's logits (divided by the temperature first) in float32, as crnn.decode.softmax;
// returns the argmax (first maximum wins, as numpy) and writes the probabilities to `probs`.
int softmax_argmax(const float* z, int classes, float temperature, std::vector<float>& probs) {
  for (int k = 0; k < classes; ++k) probs[k] = temperature != 1.0f ? z[k] / temperature : z[k];
  float zmax = probs[0];
  for (int k = 1; k < classes; ++k) zmax = std::max(zmax, probs[k]);
  for (int k = 0; k < classes; ++k) probs[k] = std::exp(probs[k] - zmax);
  const float total = pairwise_sum(probs.data(), probs.size());
  int best = 0;
  for (int k = 0; k < classes; ++k) {
    probs[k] /= total;
    if (probs[k] > probs[best]) best = k;
  }
  return best;
}

}  // namespace

std::vector<Prediction> greedy_decode(const float* logits, int batch, int steps, int classes,
                                      const std::vector<std::string>& chars, WordScore how,
                                      double temperature) {
  std::vector<Prediction> out(batch);
  std::vector<float> probs(classes);
  const float temp = static_cast<float>(temperature);  // Python: logits / np.float32(temperature)
  for (int b = 0; b < batch; ++b) {
    Prediction& p = out[b];
    int prev = -1;
    for (int t = 0; t < steps; ++t) {
      const int best = softmax_argmax(logits + (static_cast<size_t>(b) * steps + t) * classes, classes, temp, probs);
      if (best != prev && prev > 0) p.char_frames.back().second = t - 1;  // a symbol's run ends
      if (best != prev && best > 0) {  // a run starts: merge repeats, drop blanks
        const std::string& sym = best - 1 < static_cast<int>(chars.size()) ? chars[best - 1] : std::string();
        p.text += sym;
        p.chars.push_back(sym);
        p.char_confidences.push_back(probs[best]);
        p.char_frames.emplace_back(t, t);
      }
      prev = best;
    }
    if (prev > 0) p.char_frames.back().second = steps - 1;
    p.confidence = word_score(p.char_confidences, how);
  }
  return out;
}

double word_score(const std::vector<float>& char_confidences, WordScore how) {
  if (char_confidences.empty()) return 0.0;
  const std::vector<double> p(char_confidences.begin(), char_confidences.end());  // float64, as Python
  if (how == WordScore::mean) return pairwise_sum(p.data(), p.size()) / static_cast<double>(p.size());
  if (how == WordScore::min) return *std::min_element(p.begin(), p.end());
  double acc = 1.0;  // np.prod multiplies in order
  for (double c : p) acc *= c;
  return acc;
}

WordScore parse_word_score(const std::string& name) {
  if (name == "mean") return WordScore::mean;
  if (name == "min") return WordScore::min;
  if (name == "product") return WordScore::product;
  throw Error("word score '" + name + "' is not one of mean, min, product");
}

double parse_temperature(const std::string& value, const std::string& name) {
  // As crnn.onnx_backend.parse_metadata: float(value) must be > 0.
  char* end = nullptr;
  const double t = std::strtod(value.c_str(), &end);
  while (end && *end && std::isspace(static_cast<unsigned char>(*end))) ++end;
  if (value.empty() || !end || *end != '\0' || !(t > 0))
    throw Error(name + ": crnn.temperature must be a positive number, got '" + value + "'");
  return t;
}

std::vector<std::pair<double, double>> frames_to_pixels(const std::vector<std::pair<int, int>>& frames,
                                                        int image_w, int input_w, int num_frames,
                                                        int content_w) {
  std::vector<std::pair<double, double>> out;
  if (frames.empty() || num_frames <= 0 || content_w <= 0) return out;
  // The same double arithmetic, in the same order, as the Python function.
  const double w = image_w;
  const double scale = (static_cast<double>(input_w) / num_frames) * (w / content_w);  // image px per frame
  // a symbol read on a frame of the right padding (the BiLSTM may emit late) belongs to the image's end
  const int last =
      std::max(1, static_cast<int>(std::ceil(static_cast<double>(1LL * content_w * num_frames) / input_w))) - 1;
  const size_t n = frames.size();
  std::vector<double> left(n), right(n);
  left[0] = std::min(frames[0].first, last);
  right[n - 1] = std::min(frames[n - 1].second, last) + 1;
  for (size_t i = 1; i < n; ++i) {  // halfway between one symbol's last frame and the next one's first
    const double cut = (std::min(frames[i - 1].second, last) + 1 + std::min(frames[i].first, last)) / 2.0;
    right[i - 1] = left[i] = cut;
  }
  for (size_t i = 0; i < n; ++i)
    out.emplace_back(py_round(std::min(left[i] * scale, w), 1), py_round(std::min(right[i] * scale, w), 1));
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
