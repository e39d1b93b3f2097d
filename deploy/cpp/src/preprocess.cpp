// Image loading (the rules of crnn.data.images), the preprocessing spec (crnn.data.preprocess) and
// resize_norm, bit-exact with Preprocess.__call__ (numpy + cv2).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "crnn/recognizer.hpp"

namespace crnn {

namespace {

// The rules of crnn.data.images (docs/reliability.md), so a file gives the same pixels as in Python.
constexpr long long kMaxPixels = 4000000;  // crnn.data.images.MAX_PIXELS
constexpr long long kMaxSide = 8192;       // crnn.data.images.MAX_SIDE

unsigned be16(const std::vector<unsigned char>& d, size_t i) { return (d[i] << 8) | d[i + 1]; }
unsigned long be32(const std::vector<unsigned char>& d, size_t i) {
  return (static_cast<unsigned long>(be16(d, i)) << 16) | be16(d, i + 2);
}
unsigned long le32(const std::vector<unsigned char>& d, size_t i) {
  return d[i] | (d[i + 1] << 8) | (static_cast<unsigned long>(d[i + 2]) << 16) |
         (static_cast<unsigned long>(d[i + 3]) << 24);
}

// Width and height from a PNG, JPEG, GIF or BMP header, without decoding; false if not found.
bool header_size(const std::vector<unsigned char>& d, long long* w, long long* h) {
  const size_t n = d.size();
  if (n >= 24 && d[0] == 0x89 && d[1] == 'P' && d[2] == 'N' && d[3] == 'G') {
    *w = be32(d, 16);
    *h = be32(d, 20);
    return true;
  }
  if (n >= 10 && d[0] == 'G' && d[1] == 'I' && d[2] == 'F') {
    *w = d[6] | (d[7] << 8);
    *h = d[8] | (d[9] << 8);
    return true;
  }
  if (n >= 26 && d[0] == 'B' && d[1] == 'M') {
    *w = static_cast<int32_t>(le32(d, 18));
    long long hh = static_cast<int32_t>(le32(d, 22));
    *h = hh < 0 ? -hh : hh;  // negative height: top-down rows
    return true;
  }
  if (n >= 4 && d[0] == 0xFF && d[1] == 0xD8) {
    size_t i = 2;
    while (i + 9 < n) {
      if (d[i] != 0xFF) return false;
      unsigned char m = d[i + 1];
      if (m == 0xFF) { ++i; continue; }  // fill byte
      if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { i += 2; continue; }  // no length
      bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
      if (sof) {
        *h = be16(d, i + 5);
        *w = be16(d, i + 7);
        return true;
      }
      if (m == 0xDA || m == 0xD9) return false;  // scan before any frame header
      i += 2 + be16(d, i + 2);
    }
  }
  return false;
}

// A JPEG must have its end-of-image marker (FF D9) after its last start-of-scan (FF DA): entropy-coded
// data never holds FF D9, so a file cut short has none. Pillow refuses such files; so does this.
bool jpeg_complete(const std::vector<unsigned char>& d) {
  if (d.size() < 2 || d[0] != 0xFF || d[1] != 0xD8) return true;
  long long last_sos = -1, last_eoi = -1;
  for (size_t i = 0; i + 1 < d.size(); ++i) {
    if (d[i] != 0xFF) continue;
    if (d[i + 1] == 0xDA) last_sos = static_cast<long long>(i);
    if (d[i + 1] == 0xD9) last_eoi = static_cast<long long>(i);
  }
  return last_eoi > last_sos;
}

// BGRA over opaque white with Pillow's Image.alpha_composite integer arithmetic (bit-exact).
cv::Mat composite_on_white(const cv::Mat& bgra) {
  cv::Mat out(bgra.rows, bgra.cols, CV_8UC3);
  for (int y = 0; y < bgra.rows; ++y) {
    const unsigned char* src = bgra.ptr<unsigned char>(y);
    unsigned char* dst = out.ptr<unsigned char>(y);
    for (int x = 0; x < bgra.cols; ++x) {
      const unsigned a = src[x * 4 + 3];
      for (int c = 0; c < 3; ++c) {
        unsigned v = (src[x * 4 + c] * a + 255u * (255u - a)) * 128u + (0x80u << 7);
        dst[x * 3 + c] = static_cast<unsigned char>(((((v >> 8) + v) >> 8)) >> 7);
      }
    }
  }
  return out;
}

}  // namespace

cv::Mat load_image(const std::string& path) {
  // an ifstream opens a directory without complaint and then reads nothing: say what it is
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(path + " is a directory, not an image file (give its image files)");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read " + path + ": no such file or not readable");
  std::vector<unsigned char> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw Error("cannot read " + path);
  if (data.empty()) throw Error(path + " is empty (0 bytes)");
  long long w = 0, h = 0;
  if (header_size(data, &w, &h) && (w * h > kMaxPixels || w > kMaxSide || h > kMaxSide))
    throw Error(path + " is " + std::to_string(w) + "x" + std::to_string(h) + " pixels; the limit is " +
                std::to_string(kMaxPixels) + " pixels and " + std::to_string(kMaxSide) + " per side");
  if (!jpeg_complete(data)) throw Error(path + " is a truncated JPEG (no end-of-image marker)");
  const bool jpeg = data[0] == 0xFF && data[1] == 0xD8;
  // JPEG: IMREAD_COLOR applies EXIF orientation, as Pillow's exif_transpose; other formats may carry alpha.
  cv::Mat img = cv::imdecode(data, jpeg ? cv::IMREAD_COLOR : cv::IMREAD_UNCHANGED);
  if (!img.empty() && img.depth() == CV_8U && img.channels() == 4) {
    img = composite_on_white(img);
  } else if (!img.empty() && img.depth() == CV_8U && img.channels() == 1) {
    cv::cvtColor(img, img, cv::COLOR_GRAY2BGR);
  } else if (!img.empty() && (img.depth() != CV_8U || img.channels() != 3)) {
    img = cv::imdecode(data, cv::IMREAD_COLOR);
  }
  if (img.empty())
    throw Error(path + " is not an image in a known format or is corrupt (" + std::to_string(data.size()) +
                " bytes)");
  if (static_cast<long long>(img.rows) * img.cols > kMaxPixels || img.rows > kMaxSide || img.cols > kMaxSide)
    throw Error(path + " is " + std::to_string(img.cols) + "x" + std::to_string(img.rows) +
                " pixels; the limit is " + std::to_string(kMaxPixels) + " pixels and " +
                std::to_string(kMaxSide) + " per side");
  return img;
}

int resized_width(int h, int w, int image_h, int image_w) {
  // Python: min(image_w, int(math.ceil(image_h * (w / float(h))))), all in double.
  double ratio = static_cast<double>(w) / static_cast<double>(h);
  int want = static_cast<int>(std::ceil(image_h * ratio));
  return want < image_w ? want : image_w;
}

void parse_preprocess(const std::string& preprocess_json, const std::string& name, ModelInfo* info) {
  const std::string where = name + ": crnn.preprocess";
  nlohmann::json spec;
  try {
    spec = nlohmann::json::parse(preprocess_json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(name + ": malformed crnn metadata (crnn.preprocess): " + e.what());
  }
  if (!spec.is_object()) throw Error(where + ": expected a JSON object, got " + preprocess_json);
  if (!spec.contains("padding")) return;  // an export from before the spec: padded, default normalisation
  for (const char* key : {"image_shape", "img_mode", "padding", "scale", "mean", "std"})
    if (!spec.contains(key)) throw Error(where + ": missing key '" + key + "'");
  if (!spec["padding"].is_boolean())
    throw Error(where + ".padding: must be true or false, got " + spec["padding"].dump());
  info->padding = spec["padding"].get<bool>();
  for (const char* key : {"scale", "mean", "std"}) {
    const nlohmann::json& v = spec[key];
    bool ok = v.is_number() && std::isfinite(v.get<double>()) && (std::string(key) == "mean" || v.get<double>() > 0);
    if (!ok) throw Error(where + "." + key + ": must be a " + (std::string(key) == "mean" ? "finite" : "positive") +
                         " number, got " + v.dump());
  }
  info->scale = spec["scale"].get<double>();
  info->mean = spec["mean"].get<double>();
  info->std_dev = spec["std"].get<double>();
  const nlohmann::json shape = nlohmann::json::array({info->channels, info->height, info->width});
  if (spec["image_shape"] != shape || spec["img_mode"] != info->img_mode)  // a hand-edited file
    throw Error(where + " says " + spec["image_shape"].dump() + " " + spec["img_mode"].dump() +
                " but crnn.image_shape / crnn.img_mode say " + shape.dump() + " \"" + info->img_mode + "\"");
}

int batch_width(const ModelInfo& info, const std::vector<std::pair<int, int>>& sizes) {
  if (!info.padding) return info.width;
  double max_wh_ratio = static_cast<double>(info.width) / info.height;  // Python: image_w / image_h
  for (const auto& [h, w] : sizes) max_wh_ratio = std::max(max_wh_ratio, w * 1.0 / h);
  return static_cast<int>(info.height * std::min(max_wh_ratio, kMaxWhRatio));  // int() truncates
}

int content_width(const ModelInfo& info, int h, int w, int width) {
  return info.padding ? resized_width(h, w, info.height, width) : width;
}

void resize_norm(const cv::Mat& bgr, const ModelInfo& info, int width, float* out) {
  if (bgr.empty() || bgr.rows == 0 || bgr.cols == 0)
    throw Error("image of size " + std::to_string(bgr.cols) + "x" + std::to_string(bgr.rows) +
                " cannot be resized");
  if (bgr.type() != CV_8UC3) throw Error("resize_norm expects an 8-bit 3-channel BGR image");
  const int c = info.channels, h = info.height;
  const int new_w = content_width(info, bgr.rows, bgr.cols, width);
  // crnn.data.transforms.norm_lut: the same float32 operations, (v / (1 / scale) - mean) / std.
  const float inv_scale = static_cast<float>(1.0 / info.scale), mean = static_cast<float>(info.mean),
              std_dev = static_cast<float>(info.std_dev);
  std::array<float, 256> lut;
  for (int v = 0; v < 256; ++v) lut[v] = (static_cast<float>(v) / inv_scale - mean) / std_dev;
  cv::Mat img = bgr;
  if (info.img_mode == "RGB") cv::cvtColor(bgr, img, cv::COLOR_BGR2RGB);
  cv::Mat resized;
  cv::resize(img, resized, cv::Size(new_w, h), 0, 0, cv::INTER_LINEAR);
  std::fill(out, out + static_cast<size_t>(c) * h * width, 0.0f);  // zero right padding
  for (int y = 0; y < h; ++y) {
    const unsigned char* row = resized.ptr<unsigned char>(y);
    for (int x = 0; x < new_w; ++x)
      for (int ch = 0; ch < c; ++ch) out[(static_cast<size_t>(ch) * h + y) * width + x] = lut[row[x * 3 + ch]];
  }
}

}  // namespace crnn
