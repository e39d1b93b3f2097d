// crnn_infer: recognize cropped word images with a model exported by `crnn export`.
//
// Same preprocessing (the model's crnn.data.preprocess.Preprocess spec) and greedy CTC decoding
// (crnn.decode) as the Python `crnn.Recognizer`, so both print the same strings for the same model and
// images. The model file alone is enough: charset and preprocessing spec (image shape, channel order,
// padding, normalisation) come from its ONNX metadata_props.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>

namespace crnn {

// Every failure (missing model, bad metadata, unreadable image, ...) is a crnn::Error whose message
// names the offending file or value.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How a word's confidence is made from its symbols' ones (crnn.decode.word_score).
enum class WordScore { mean, min, product };  // mean is PaddleOCR's

// A recognised word: the fields of Python's crnn.Prediction (greedy decoding).
struct Prediction {
  std::string text;                   // UTF-8
  double confidence = 0.0;            // word score of char_confidences (float64, as Python); 0 if empty
  std::vector<std::string> chars;     // the symbols of text, one per CTC emission (text = their concatenation)
  std::vector<float> char_confidences;  // probability of each symbol at the first frame it was read on
  std::vector<std::pair<int, int>> char_frames;  // each symbol's first and last CTC frame (inclusive)
  // Each symbol's [x0, x1) in the input image's pixels, rounded to 0.1 px; filled in by Recognizer
  // (it knows how the image was resized and padded), empty from greedy_decode alone.
  std::vector<std::pair<double, double>> char_positions;
};

// What the model's metadata says (written by `crnn export`).
struct ModelInfo {
  std::vector<std::string> chars;  // class i + 1 is chars[i]; class 0 is the CTC blank
  bool lower = false;              // the charset lower-cases labels (informational here)
  int channels = 3, height = 32, width = 100;  // image_shape [C, H, W]
  std::string img_mode = "BGR";    // channel order the model was trained with
  double temperature = 1.0;        // optional crnn.temperature: logits are divided by it (calibration)
  // The rest of the preprocessing spec (crnn.preprocess; a model exported before it: these defaults).
  bool padding = true;             // keep the aspect ratio and zero-pad to W; false: stretch to W
  double scale = 1.0 / 255.0, mean = 0.5, std_dev = 0.5;  // pixel v -> (v * scale - mean) / std_dev ("std")
};

// crnn.data.preprocess.MAX_WH_RATIO: a variable-width batch is at most int(H * kMaxWhRatio) wide
// (800 px at H = 32); a crop wider than that aspect ratio is squeezed to it.
constexpr double kMaxWhRatio = 25.0;

// How wide a batch's input is (crnn.Recognizer's dynamic_width).
enum class WidthMode {
  fixed,      // dynamic_width=False (default): the training width W, as the model was trained
  variable,   // dynamic_width=True: PaddleOCR's predict_rec, batch_width(); refused for a model that stretches
};

struct Options {
  int num_threads = 0;         // ONNX Runtime intra-op threads; 0 = its default (one per core)
  int batch_size = 32;         // images per forward pass, in order of aspect ratio
  WidthMode width = WidthMode::fixed;
  WordScore word_score = WordScore::mean;  // Prediction::confidence from the symbols' confidences
};

// Parsed crnn metadata from an ONNX model's metadata_props; throws Error naming `name` and the key.
ModelInfo parse_model_info(const std::string& charset_json, const std::string& image_shape_json,
                           const std::string& img_mode, const std::string& format_version,
                           const std::string& name);

// Read crnn.preprocess (JSON of crnn.data.preprocess.Preprocess.to_dict()) into `info`: padding and
// normalisation. `info` already holds crnn.image_shape / crnn.img_mode, which it must agree with; a
// JSON object without "padding" (what exports before the spec wrote) leaves the defaults. Throws Error
// naming `name` and the bad field.
void parse_preprocess(const std::string& preprocess_json, const std::string& name, ModelInfo* info);

// Decode an image file as OpenCV BGR uint8 (h, w, 3) with the rules of crnn.data.images: over 4,000,000
// pixels or 8192 per side refused (from the header for PNG, JPEG, GIF, BMP), a JPEG without its
// end-of-image marker refused, transparency composited over white. Throws Error naming the file for a
// missing, unreadable, undecodable, truncated, too large or empty file.
cv::Mat load_image(const std::string& path);

// Width an (h, w) image is resized to: min(image_w, ceil(image_h * w / h)) (PaddleOCR's rule).
int resized_width(int h, int w, int image_h, int image_w);

// Input width of a variable-width batch of images of (rows, cols) `sizes` (Preprocess.batch_width,
// PaddleOCR's predict_rec): int(H * max_wh_ratio), max_wh_ratio = the largest w / h of the batch but at
// least W / H and at most kMaxWhRatio, in double as Python; W for a model that stretches.
int batch_width(const ModelInfo& info, const std::vector<std::pair<int, int>>& sizes);

// Columns an (h, w) image fills in an input of width `width`: resized_width(h, w, H, width) if the model
// pads, else `width` (it stretches); Preprocess.content_width.
int content_width(const ModelInfo& info, int h, int w, int width);

// resize_norm: a BGR uint8 image -> float32 (C, H, W) written at `out` (C * H * W floats) by the
// model's spec: resized to content_width columns, in the model's channel order, normalised, zero
// right padding. `width` is the tensor width W. Bit-exact with Preprocess.__call__.
void resize_norm(const cv::Mat& bgr, const ModelInfo& info, int width, float* out);

// Greedy CTC decoding of logits (B, T, K) (row-major), as crnn.decoders.Decoder with its default options:
// logits / temperature (float32, skipped at 1), softmax, argmax, merge repeats, drop blanks. A symbol's
// confidence is the probability at the first step of its run, its frames the whole run.
std::vector<Prediction> greedy_decode(const float* logits, int batch, int steps, int classes,
                                      const std::vector<std::string>& chars,
                                      WordScore word_score = WordScore::mean, double temperature = 1.0);

// crnn.decode.word_score: mean, min or product of the symbols' confidences, in float64; 0 if empty.
double word_score(const std::vector<float>& char_confidences, WordScore how);

// "mean" | "min" | "product" -> WordScore; throws Error naming the value otherwise.
WordScore parse_word_score(const std::string& name);

// The value of crnn.temperature (a positive number); throws Error naming `name` otherwise.
double parse_temperature(const std::string& value, const std::string& name);

// crnn.decoders.frames_to_pixels: each symbol's [x0, x1) in an image image_w pixels wide, from its CTC
// frames, for an input tensor of width input_w read as num_frames frames, whose first content_w columns
// hold the resized image (the rest is right padding). Rounded to 0.1 px as Python's round(x, 1).
std::vector<std::pair<double, double>> frames_to_pixels(const std::vector<std::pair<int, int>>& frames,
                                                        int image_w, int input_w, int num_frames,
                                                        int content_w);

class Recognizer {
 public:
  // Loads an .onnx model written by `crnn export`. Throws Error if the file is missing, is not a
  // loadable ONNX model or has no crnn metadata.
  explicit Recognizer(const std::string& model_path, const Options& options = Options());
  ~Recognizer();
  Recognizer(const Recognizer&) = delete;
  Recognizer& operator=(const Recognizer&) = delete;

  const ModelInfo& info() const;

  // Recognize decoded BGR images (results in input order), batched in order of aspect ratio
  // exactly as crnn.Recognizer.recognize_arrays. Throws Error for an empty image.
  std::vector<Prediction> recognize(const std::vector<cv::Mat>& bgr_images);

  // The model on one preprocessed batch: float32 (B, C, H, W) -> logits (B, T, K); sets steps/classes.
  std::vector<float> run(const std::vector<float>& batch, int batch_size, int width, int* steps,
                         int* classes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crnn
