// Image loading and resize_norm, bit-exact with crnn.data.transforms.resize_norm (numpy + cv2).
#include <cmath>
#include <fstream>
#include <iterator>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "crnn/recognizer.hpp"

namespace crnn {

cv::Mat load_image(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read " + path + ": no such file or not readable");
  std::vector<unsigned char> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw Error("cannot read " + path);
  cv::Mat img;
  if (!data.empty()) img = cv::imdecode(data, cv::IMREAD_COLOR);
  if (img.empty())
    throw Error("cannot decode image " + path + " (" + std::to_string(data.size()) + " bytes)");
  return img;
}

int resized_width(int h, int w, int image_h, int image_w) {
  // Python: min(image_w, int(math.ceil(image_h * (w / float(h))))), all in double.
  double ratio = static_cast<double>(w) / static_cast<double>(h);
  int want = static_cast<int>(std::ceil(image_h * ratio));
  return want < image_w ? want : image_w;
}

void resize_norm(const cv::Mat& bgr, const ModelInfo& info, int width, float* out) {
  if (bgr.empty() || bgr.rows == 0 || bgr.cols == 0)
    throw Error("image of size " + std::to_string(bgr.cols) + "x" + std::to_string(bgr.rows) +
                " cannot be resized");
  if (bgr.type() != CV_8UC3) throw Error("resize_norm expects an 8-bit 3-channel BGR image");
  const int c = info.channels, h = info.height;
  const int new_w = resized_width(bgr.rows, bgr.cols, h, width);
  cv::Mat img = bgr;
  if (info.img_mode == "RGB") cv::cvtColor(bgr, img, cv::COLOR_BGR2RGB);
  cv::Mat resized;
  cv::resize(img, resized, cv::Size(new_w, h), 0, 0, cv::INTER_LINEAR);
  std::fill(out, out + static_cast<size_t>(c) * h * width, 0.0f);  // zero = mid-grey padding
  for (int y = 0; y < h; ++y) {
    const unsigned char* row = resized.ptr<unsigned char>(y);
    for (int x = 0; x < new_w; ++x) {
      for (int ch = 0; ch < c; ++ch) {
        // The same float32 operations as numpy: v / 255.0, then (v - 0.5) / 0.5.
        float v = static_cast<float>(row[x * 3 + ch]) / 255.0f;
        out[(static_cast<size_t>(ch) * h + y) * width + x] = (v - 0.5f) / 0.5f;
      }
    }
  }
}

}  // namespace crnn
