// What crnn_infer prints: the three formats of `crnn predict --format` (crnn.cli._cmd_predict).
#pragma once

#include <string>

#include "crnn/recognizer.hpp"

namespace crnn {

enum class Format { tsv, json, jsonl };

// "tsv" | "json" | "jsonl" -> Format; throws Error naming the value otherwise.
Format parse_format(const std::string& name);

// `path<TAB>text<TAB>confidence` with 4 decimals, as `crnn predict` prints it.
std::string tsv_line(const std::string& path, const Prediction& p);

// crnn.cli.prediction_dict with its path, {"path", "text", "confidence", "chars": [{"char", "confidence",
// "x0", "x1"}]}, laid out as Python's json.dumps(..., ensure_ascii=False): one line when indent < 0,
// else indented by `indent` spaces per level, starting at nesting level `level`.
std::string prediction_json(const std::string& path, const Prediction& p, int indent, int level);

}  // namespace crnn
