// crnn_infer MODEL IMAGE...: print `path<TAB>text<TAB>confidence` per image, like `crnn predict`;
// `--format json|jsonl` adds each symbol's confidence and x range, as `crnn predict --format`.
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
#include "output.hpp"

namespace {

const char* kUsage =
    "usage: crnn_infer [--threads N] [--batch-size N] [--fixed-width | --dynamic-width]\n"
    "                  [--list FILE] [--format tsv|json|jsonl] [--word-score mean|min|product]\n"
    "                  [--time] MODEL [IMAGE...]\n"
    "  MODEL          an .onnx model written by `crnn export`\n"
    "  IMAGE          word-image files (any format OpenCV decodes)\n"
    "  --list FILE    also read image paths from FILE, one per line\n"
    "  --threads N    ONNX Runtime intra-op threads (default: one per core)\n"
    "  --batch-size N images per forward pass (default 32)\n"
    "  --fixed-width  resize every image into the model's width W (the default; crnn eval's protocol)\n"
    "  --dynamic-width  PaddleOCR's variable width: images sorted by aspect ratio, each batch as wide as\n"
    "                 its widest, at most H * 25 (kMaxWhRatio); an error for a model that stretches\n"
    "  --format F     tsv: path, text, confidence (default); json/jsonl: also each symbol's\n"
    "                 confidence and x range in the image's pixels (as `crnn predict --format`)\n"
    "  --word-score S word confidence from the symbols' ones: mean (default, as PaddleOCR), min, product\n"
    "  --time         print images/s (decoding + preprocessing + inference) to stderr\n";

// Upper bounds, as crnn.limits (MAX_THREADS, MAX_BATCH_SIZE): --threads 100000 grew memory and never
// answered. The variable width is bounded by kMaxWhRatio (recognizer.hpp).
constexpr int kMaxThreads = 256;
constexpr int kMaxBatchSize = 4096;

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

// One line per image (tsv, jsonl) or one JSON array (json, as json.dumps(records, indent=2)), in input order.
void print_predictions(crnn::Format format, const std::vector<std::string>& paths, const std::vector<size_t>& good,
                       const std::vector<crnn::Prediction>& preds) {
  if (format == crnn::Format::json && good.empty()) return;  // as `crnn predict`: nothing when no image was read
  if (format == crnn::Format::json) std::fputs("[\n", stdout);
  for (size_t j = 0; j < good.size(); ++j) {
    const std::string& path = paths[good[j]];
    if (format == crnn::Format::tsv) {
      std::printf("%s\n", crnn::tsv_line(path, preds[j]).c_str());
    } else if (format == crnn::Format::jsonl) {
      std::printf("%s\n", crnn::prediction_json(path, preds[j], -1, 0).c_str());
    } else {
      std::printf("  %s%s\n", crnn::prediction_json(path, preds[j], 2, 1).c_str(), j + 1 < good.size() ? "," : "");
    }
  }
  if (format == crnn::Format::json) std::fputs("]\n", stdout);
}

// The command line; parse_args returns -1 to go on, else the exit code (0 after --help, 2 for bad usage).
struct Args {
  crnn::Options opt;
  std::vector<std::string> positional;
  std::string list_file;
  bool timing = false;
  crnn::Format format = crnn::Format::tsv;
};

int parse_args(int argc, char** argv, Args& args) {
  crnn::Options& opt = args.opt;
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
      if (!int_arg(&opt.num_threads) || opt.num_threads > kMaxThreads)
        return usage_error("--threads needs a number from 0 to " + std::to_string(kMaxThreads));
    } else if (a == "--batch-size") {
      if (!int_arg(&opt.batch_size) || opt.batch_size < 1 || opt.batch_size > kMaxBatchSize)
        return usage_error("--batch-size needs a number from 1 to " + std::to_string(kMaxBatchSize));
    } else if (a == "--fixed-width") {
      opt.width = crnn::WidthMode::fixed;
    } else if (a == "--dynamic-width") {
      opt.width = crnn::WidthMode::variable;
    } else if (a == "--format" || a == "--word-score") {
      if (i + 1 >= argc) return usage_error(a + " needs a value");
      try {
        if (a == "--format") args.format = crnn::parse_format(argv[++i]);
        else opt.word_score = crnn::parse_word_score(argv[++i]);
      } catch (const crnn::Error& e) {
        return usage_error(a + ": " + e.what());
      }
    } else if (a == "--time") {
      args.timing = true;
    } else if (a == "--list") {
      if (i + 1 >= argc) return usage_error("--list needs a file");
      args.list_file = argv[++i];
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("unknown option " + a);
    } else {
      args.positional.push_back(a);
    }
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (int rc = parse_args(argc, argv, args); rc >= 0) return rc;
  const crnn::Options& opt = args.opt;
  const std::vector<std::string>& positional = args.positional;
  if (positional.empty()) return usage_error("no MODEL given");
  const std::string model = positional[0];
  std::vector<std::string> paths(positional.begin() + 1, positional.end());
  if (!args.list_file.empty()) {
    std::ifstream f(args.list_file);
    if (!f) return usage_error("cannot read --list file " + args.list_file);
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
  print_predictions(args.format, paths, good, preds);
  if (args.timing)
    std::fprintf(stderr, "crnn_infer: %zu images in %.3f s (%.1f images/s)\n", good.size(), secs,
                 secs > 0 ? good.size() / secs : 0.0);
  return failed ? 1 : 0;
}
