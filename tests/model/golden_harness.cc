#include "tests/model/golden_harness.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "gtest/gtest.h"
#include "tests/test_data.h"

namespace likeness::testing {
namespace {

namespace fs = std::filesystem;

std::map<std::string, GoldenChecker>& Checkers() {
  static auto* checkers = new std::map<std::string, GoldenChecker>();
  return *checkers;
}

std::vector<std::string> GoldenStems() {
  std::vector<std::string> stems;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(GoldenDir(), error)) {
    const fs::path p = entry.path();
    if (p.extension() == ".safetensors" && fs::exists(fs::path(p).replace_extension(".json"))) {
      stems.push_back(p.stem().string());
    }
  }
  std::sort(stems.begin(), stems.end());
  return stems;
}

torch::Tensor Named(const GoldenCase& c, const std::string& name) {
  absl::StatusOr<torch::Tensor> t = c.file->Get(name);
  EXPECT_TRUE(t.ok()) << c.path << ": " << t.status();
  return t.ok() ? *t : torch::Tensor();
}

// The checker key: "class" as a string ("diffusers.AutoencoderKL"); an object of component
// classes joined by '+' in key order ("transformers.CLIPTextModel+transformers.CLIPTextModelWithProjection");
// without "class", the sidecar's "name" ("schedulers").
std::string ClassKey(const nlohmann::json& sidecar) {
  const auto it = sidecar.find("class");
  if (it != sidecar.end() && it->is_string()) return it->get<std::string>();
  if (it != sidecar.end() && it->is_object()) {
    std::string key;
    for (const auto& [component, cls] : it->items()) {
      if (!key.empty()) key += "+";
      key += cls.is_string() ? cls.get<std::string>() : component;
    }
    return key;
  }
  return sidecar.value("name", "");
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, ReproducesReference) {
  GoldenCase c;
  c.name = GetParam();
  c.path = (fs::path(GoldenDir()) / (c.name + ".safetensors")).string();
  std::ifstream sidecar((fs::path(GoldenDir()) / (c.name + ".json")).string());
  c.sidecar = nlohmann::json::parse(sidecar, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(c.sidecar.is_discarded()) << c.name << ".json is not valid JSON";
  const std::string cls = ClassKey(c.sidecar);
  auto it = Checkers().find(cls);
  if (it == Checkers().end()) GTEST_SKIP() << c.name << ": class '" << cls << "' is not implemented yet";
  auto file = safetensors::SafetensorsFile::Open(c.path);
  ASSERT_TRUE(file.ok()) << file.status();
  c.file = *file;
  it->second(c);
}

INSTANTIATE_TEST_SUITE_P(GoldenDir, GoldenTest, ::testing::ValuesIn(GoldenStems()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(GoldenDirTest, HoldsCases) {
  EXPECT_FALSE(GoldenStems().empty()) << "no <name>.safetensors + <name>.json pairs in " << GoldenDir();
}

}  // namespace

torch::Tensor GoldenCase::Input(const std::string& key) const { return Named(*this, "__input__." + key); }
torch::Tensor GoldenCase::Output(const std::string& key) const { return Named(*this, "__output__." + key); }
bool GoldenCase::HasOutput(const std::string& key) const { return file->Contains("__output__." + key); }

bool RegisterGoldenChecker(const std::string& class_name, GoldenChecker checker) {
  return Checkers().emplace(class_name, std::move(checker)).second;
}

void ExpectGoldenClose(const torch::Tensor& actual, const torch::Tensor& expected, const std::string& what,
                       double rel_tolerance) {
  ASSERT_TRUE(actual.defined()) << what << ": no result";
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what << ": shape differs";
  const torch::Tensor a = actual.detach().to(torch::kFloat64).cpu();
  const torch::Tensor e = expected.detach().to(torch::kFloat64).cpu();
  const double max_ref = e.abs().max().item<double>();
  const double max_diff = (a - e).abs().max().item<double>();
  EXPECT_LE(max_diff, rel_tolerance * max_ref)
      << what << ": max|diff| " << max_diff << " vs bound " << rel_tolerance * max_ref << " (max|ref| " << max_ref << ")";
}

}  // namespace likeness::testing
