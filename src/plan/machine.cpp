#include "spvit/plan/machine.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "spvit/core/error.h"

namespace spvit::plan {
namespace {

// Reads machine files; every error names the file and the key.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  Sourced number(const YAML::Node& parent, const std::string& key, const std::string& where) const {
    const std::string name = where.empty() ? key : where + "." + key;
    const auto node = parent[key];
    if (!node) fail(name, "is missing");
    if (!node.IsMap() || !node["value"] || !node["source"]) {
      fail(name, "must be {value: NUMBER, source: \"where the number comes from\"}");
    }
    Sourced s;
    try {
      s.value = node["value"].as<double>();
      s.source = node["source"].as<std::string>();
    } catch (const YAML::Exception&) {
      fail(name, "must be {value: NUMBER, source: TEXT}");
    }
    if (!std::isfinite(s.value) || s.value <= 0) fail(name, "must be a positive number");
    if (s.source.empty()) fail(name, "has an empty source: say where the number comes from");
    return s;
  }

  std::map<std::string, Sourced> rates(const YAML::Node& root, const std::string& key) const {
    const auto node = root[key];
    if (!node || !node.IsMap() || node.size() == 0) fail(key, "must map precisions (fp32, bf16, fp16) to rates");
    std::map<std::string, Sourced> out;
    for (const auto& kv : node) {
      const auto precision = kv.first.as<std::string>();
      if (precision != "fp32" && precision != "bf16" && precision != "fp16") {
        fail(key + "." + precision, "is not a precision (fp32, bf16, fp16)");
      }
      out[precision] = number(node, precision, key);
    }
    return out;
  }

  // Optional: {PRECISION: {source: TEXT, points: [[size, TFLOP/s], ...]}} with sizes increasing.
  std::map<std::string, RateCurve> curves(const YAML::Node& root, const std::string& key) const {
    std::map<std::string, RateCurve> out;
    const auto node = root[key];
    if (!node) return out;
    if (!node.IsMap()) fail(key, "must map precisions to {source: TEXT, points: [[size, TFLOP/s], ...]}");
    for (const auto& kv : node) {
      const auto precision = kv.first.as<std::string>();
      const std::string name = key + "." + precision;
      const auto& c = kv.second;
      if (!c.IsMap() || !c["source"] || !c["points"] || !c["points"].IsSequence() || c["points"].size() == 0) {
        fail(name, "must be {source: TEXT, points: [[size, TFLOP/s], ...]}");
      }
      RateCurve curve;
      try {
        curve.source = c["source"].as<std::string>();
        for (const auto& p : c["points"]) curve.points.emplace_back(p[0].as<double>(), p[1].as<double>());
      } catch (const YAML::Exception&) {
        fail(name, "points must be pairs of numbers [size, TFLOP/s]");
      }
      if (curve.source.empty()) fail(name, "has an empty source: say where the numbers come from");
      for (size_t i = 0; i < curve.points.size(); ++i) {
        const auto [size, rate] = curve.points[i];
        if (!std::isfinite(size) || !std::isfinite(rate) || size <= 0 || rate <= 0) {
          fail(name, "points must be positive numbers");
        }
        if (i > 0 && size <= curve.points[i - 1].first) fail(name, "points must have increasing sizes");
      }
      out[precision] = std::move(curve);
    }
    return out;
  }

  LinkSpec link(const YAML::Node& root, const std::string& key) const {
    const auto node = root[key];
    if (!node || !node.IsMap()) fail(key, "must hold latency_us and bandwidth_gbs");
    return {number(node, "latency_us", key), number(node, "bandwidth_gbs", key)};
  }

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    SPVIT_THROW(ConfigError, "machine file ", path_, ": '", key, "' ", what);
  }

 private:
  std::string path_;
};

void emit(YAML::Emitter& out, const std::string& key, const Sourced& s) {
  out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "value" << YAML::Value
      << s.value << YAML::Key << "source" << YAML::Value << YAML::DoubleQuoted << s.source << YAML::EndMap;
}

}  // namespace

double RateCurve::at(double size) const {
  SPVIT_CHECK(!points.empty(), "RateCurve::at on an empty curve");
  if (size <= points.front().first) return points.front().second;
  if (size >= points.back().first) return points.back().second;
  const auto hi = std::upper_bound(points.begin(), points.end(), size,
                                   [](double s, const std::pair<double, double>& p) { return s < p.first; });
  const auto lo = hi - 1;
  const double t = std::log(size / lo->first) / std::log(hi->first / lo->first);
  return lo->second + t * (hi->second - lo->second);
}

double MachineSpec::attention_rate(const std::string& precision, double score_elements) const {
  const auto curve = attention_curve.find(precision);
  if (curve != attention_curve.end()) return curve->second.at(score_elements);
  return rate(attention_tflops, precision, "attention_tflops").value;
}

int MachineSpec::ranks_per_node_int() const { return std::max(1, static_cast<int>(std::lround(ranks_per_node.value))); }

const Sourced& MachineSpec::rate(const std::map<std::string, Sourced>& rates, const std::string& precision,
                                 const char* key) const {
  const auto it = rates.find(precision);
  if (it == rates.end()) {
    SPVIT_THROW(ConfigError, "machine '", name, "' has no ", key, " for precision ", precision,
                " (add it to the machine file, or plan with --set train.precision=<one it has>)");
  }
  return it->second;
}

MachineSpec load_machine(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    SPVIT_THROW(ConfigError, "machine file ", path, " cannot be read (see machines/ for the ones spvit ships)");
  } catch (const YAML::Exception& e) {
    SPVIT_THROW(ConfigError, "machine file ", path, " is not valid YAML: ", e.what());
  }
  const Reader r(path);
  if (!root.IsMap()) r.fail("(top level)", "must be a mapping");
  MachineSpec m;
  if (!root["name"]) r.fail("name", "is missing");
  m.name = root["name"].as<std::string>();
  m.description = root["description"] ? root["description"].as<std::string>() : "";
  m.kind = root["kind"] ? root["kind"].as<std::string>() : "gpu";
  if (m.kind != "gpu" && m.kind != "cpu") r.fail("kind", "must be gpu or cpu");
  m.ranks_per_node = r.number(root, "ranks_per_node", "");
  if (m.kind == "cpu") {
    m.cores_per_node = r.number(root, "cores_per_node", "");
    m.threads_per_rank = r.number(root, "threads_per_rank", "");
  }
  m.memory_gib = r.number(root, "memory_gib", "");
  m.memory_bandwidth_gbs = r.number(root, "memory_bandwidth_gbs", "");
  m.matmul_tflops = r.rates(root, "matmul_tflops");
  m.attention_tflops = r.rates(root, "attention_tflops");
  m.conv_tflops = r.rates(root, "conv_tflops");
  m.attention_curve = r.curves(root, "attention_curve");
  if (root["decoder_overhead_ms"]) m.decoder_overhead_ms = r.number(root, "decoder_overhead_ms", "");
  m.intra_node = r.link(root, "intra_node");
  m.inter_node = r.link(root, "inter_node");
  return m;
}

std::string machine_yaml(const MachineSpec& m) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << m.name;
  out << YAML::Key << "description" << YAML::Value << YAML::DoubleQuoted << m.description;
  out << YAML::Key << "kind" << YAML::Value << m.kind;
  emit(out, "ranks_per_node", m.ranks_per_node);
  if (m.kind == "cpu") {
    emit(out, "cores_per_node", m.cores_per_node);
    emit(out, "threads_per_rank", m.threads_per_rank);
  }
  emit(out, "memory_gib", m.memory_gib);
  emit(out, "memory_bandwidth_gbs", m.memory_bandwidth_gbs);
  for (const auto& [key, rates] : {std::pair<const char*, const std::map<std::string, Sourced>*>{"matmul_tflops",
                                                                                                 &m.matmul_tflops},
                                   {"attention_tflops", &m.attention_tflops},
                                   {"conv_tflops", &m.conv_tflops}}) {
    out << YAML::Key << key << YAML::Value << YAML::BeginMap;
    for (const auto& [precision, s] : *rates) emit(out, precision, s);
    out << YAML::EndMap;
  }
  if (m.decoder_overhead_ms.value > 0) emit(out, "decoder_overhead_ms", m.decoder_overhead_ms);
  if (!m.attention_curve.empty()) {
    out << YAML::Key << "attention_curve" << YAML::Value << YAML::BeginMap;
    for (const auto& [precision, curve] : m.attention_curve) {
      out << YAML::Key << precision << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "source" << YAML::Value << YAML::DoubleQuoted << curve.source;
      out << YAML::Key << "points" << YAML::Value << YAML::BeginSeq;
      for (const auto& [size, rate] : curve.points) {
        out << YAML::Flow << YAML::BeginSeq << size << rate << YAML::EndSeq;
      }
      out << YAML::EndSeq << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  for (const auto& [key, link] : {std::pair<const char*, const LinkSpec*>{"intra_node", &m.intra_node},
                                  {"inter_node", &m.inter_node}}) {
    out << YAML::Key << key << YAML::Value << YAML::BeginMap;
    emit(out, "latency_us", link->latency_us);
    emit(out, "bandwidth_gbs", link->bandwidth_gbs);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace spvit::plan
