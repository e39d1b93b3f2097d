// The output formats of `crnn predict`, byte for byte: Python's json.dumps layout and float repr.
#include "output.hpp"

#include <cstdio>
#include <utility>
#include <vector>

namespace crnn {

namespace {

// A JSON value already rendered (a leaf) or a list of (key, value) items (an object, or an array
// when the keys are empty); enough for a prediction record.
struct Node {
  std::string leaf;
  std::vector<std::pair<std::string, Node>> items;
  bool object = false, array = false;
};

// json.dumps of a str with ensure_ascii=False: quote, backslash and control characters escaped.
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// repr(round(x, digits)) of Python: printf rounds the exact value half to even as round() does;
// the repr of the result is that decimal without trailing zeros (but at least one decimal).
std::string py_float(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  std::string s = buf;
  while (s.size() > 2 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s == "-0.0" ? "0.0" : s;
}

Node leaf(std::string v) {
  Node n;
  n.leaf = std::move(v);
  return n;
}

// json.dumps's layout: ", " and ": " separators on one line (indent < 0), else one item per line.
void dump(const Node& n, int indent, int level, std::string& out) {
  if (!n.object && !n.array) {
    out += n.leaf;
    return;
  }
  const char open = n.object ? '{' : '[', close = n.object ? '}' : ']';
  out += open;
  if (n.items.empty()) {
    out += close;
    return;
  }
  const std::string pad = indent < 0 ? "" : "\n" + std::string(static_cast<size_t>(indent) * (level + 1), ' ');
  for (size_t i = 0; i < n.items.size(); ++i) {
    out += i ? (indent < 0 ? ", " : "," + pad) : pad;
    if (n.object) out += json_string(n.items[i].first) + ": ";
    dump(n.items[i].second, indent, level + 1, out);
  }
  if (indent >= 0) out += "\n" + std::string(static_cast<size_t>(indent) * level, ' ');
  out += close;
}

}  // namespace

Format parse_format(const std::string& name) {
  if (name == "tsv") return Format::tsv;
  if (name == "json") return Format::json;
  if (name == "jsonl") return Format::jsonl;
  throw Error("format '" + name + "' is not one of tsv, json, jsonl");
}

std::string tsv_line(const std::string& path, const Prediction& p) {
  char conf[64];
  std::snprintf(conf, sizeof conf, "%.4f", p.confidence);
  return path + "\t" + p.text + "\t" + conf;
}

std::string prediction_json(const std::string& path, const Prediction& p, int indent, int level) {
  Node chars;
  chars.array = true;
  for (size_t i = 0; i < p.chars.size(); ++i) {
    Node c;
    c.object = true;
    c.items = {{"char", leaf(json_string(p.chars[i]))}, {"confidence", leaf(py_float(p.char_confidences[i], 4))}};
    if (i < p.char_positions.size()) {  // as Python: x0/x1 only when the positions are known
      c.items.emplace_back("x0", leaf(py_float(p.char_positions[i].first, 1)));
      c.items.emplace_back("x1", leaf(py_float(p.char_positions[i].second, 1)));
    }
    chars.items.emplace_back("", std::move(c));
  }
  Node rec;
  rec.object = true;
  rec.items = {{"path", leaf(json_string(path))}, {"text", leaf(json_string(p.text))},
               {"confidence", leaf(py_float(p.confidence, 4))}, {"chars", std::move(chars)}};
  std::string out;
  dump(rec, indent, level, out);
  return out;
}

}  // namespace crnn
