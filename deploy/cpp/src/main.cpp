// crnn_infer MODEL IMAGE...: print `path<TAB>text<TAB>confidence` per image, like `crnn predict`.
//
// Exit codes: 0 all images recognized; 1 some image could not be read (the others are still
// printed); 2 bad usage or unusable model.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "crnn/recognizer.hpp"

namespace {

const char* kUsage =
    "usage: crnn_infer [--threads N] [--batch-size N] [--dynamic-width] [--max-width N]\n"
    "                  [--list FILE] [--time] MODEL [IMAGE...]\n"
    "  MODEL          an .onnx model written by `crnn export`\n"
    "  IMAGE          word-image files (any format OpenCV decodes)\n"
    "  --list FILE    also read image paths from FILE, one per line\n"
    "  --threads N    ONNX Runtime intra-op threads (default: one per core)\n"
    "  --batch-size N images per forward pass (default 32)\n"
    "  --time         print images/s (decoding + preprocessing + inference) to stderr\n";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "crnn_infer: error: %s\n%s", msg.c_str(), kUsage);
  return 2;
}

bool parse_int(const char* s, int* out) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < 0 || v > 1000000) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  crnn::Options opt;
  std::vector<std::string> positional;
  std::string list_file;
  bool timing = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto int_arg = [&](int* dst) {
      if (i + 1 >= argc || !parse_int(argv[i + 1], dst)) return false;
      ++i;
      return true;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--threads") {
      if (!int_arg(&opt.num_threads)) return usage_error("--threads needs a number >= 0");
    } else if (a == "--batch-size") {
      if (!int_arg(&opt.batch_size) || opt.batch_size < 1) return usage_error("--batch-size needs a number >= 1");
    } else if (a == "--max-width") {
      if (!int_arg(&opt.max_width) || opt.max_width < 1) return usage_error("--max-width needs a number >= 1");
    } else if (a == "--dynamic-width") {
      opt.dynamic_width = true;
    } else if (a == "--time") {
      timing = true;
    } else if (a == "--list") {
      if (i + 1 >= argc) return usage_error("--list needs a file");
      list_file = argv[++i];
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("unknown option " + a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.empty()) return usage_error("no MODEL given");
  const std::string model = positional[0];
  std::vector<std::string> paths(positional.begin() + 1, positional.end());
  if (!list_file.empty()) {
    std::ifstream f(list_file);
    if (!f) return usage_error("cannot read --list file " + list_file);
    for (std::string line; std::getline(f, line);)
      if (!line.empty()) paths.push_back(line);
  }
  if (paths.empty()) return usage_error("no IMAGE given");

  std::unique_ptr<crnn::Recognizer> rec;
  try {
    rec = std::make_unique<crnn::Recognizer>(model, opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crnn_infer: error: %s\n", e.what());
    return 2;
  }

  auto t0 = std::chrono::steady_clock::now();
  std::vector<cv::Mat> images;
  std::vector<size_t> good;
  int failed = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    try {
      images.push_back(crnn::load_image(paths[i]));
      good.push_back(i);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "crnn_infer: error: %s\n", e.what());
      ++failed;
    }
  }
  std::vector<crnn::Prediction> preds;
  try {
    preds = rec->recognize(images);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crnn_infer: error: %s\n", e.what());
    return 2;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (size_t j = 0; j < good.size(); ++j)
    std::printf("%s\t%s\t%.4f\n", paths[good[j]].c_str(), preds[j].text.c_str(), preds[j].confidence);
  if (timing)
    std::fprintf(stderr, "crnn_infer: %zu images in %.3f s (%.1f images/s)\n", good.size(), secs,
                 secs > 0 ? good.size() / secs : 0.0);
  return failed ? 1 : 0;
}
