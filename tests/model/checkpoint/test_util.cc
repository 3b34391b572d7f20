#include "tests/model/checkpoint/test_util.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/safetensors/safetensors_file.h"
#include "tests/test_data.h"

namespace likeness::model::checkpoint::testing {
namespace {

namespace fs = std::filesystem;

}  // namespace

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

void WriteJson(const std::string& path, const nlohmann::json& value) {
  std::ofstream out(path, std::ios::trunc);
  out << value.dump(2);
  ASSERT_TRUE(out.good()) << path;
}

std::vector<SingleFileCase> SingleFileCases() {
  std::vector<SingleFileCase> cases;
  const std::string dir = likeness::testing::GoldenDir();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".json") continue;
    nlohmann::json sidecar = ReadJson(entry.path().string());
    // "class" is a string, or an object of component classes for multi-model files.
    if (!sidecar.is_object() || !sidecar.contains("class") || sidecar["class"] != kSingleFileClass)
      continue;
    const std::string stem = entry.path().stem().string();
    cases.push_back({stem, (fs::path(dir) / (stem + ".safetensors")).string(), std::move(sidecar)});
  }
  std::sort(cases.begin(), cases.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return cases;
}

torch::Tensor GoldenTensor(const std::string& ref) {
  static auto* files = new std::map<std::string, std::shared_ptr<safetensors::SafetensorsFile>>();
  const size_t colon = ref.find(':');
  EXPECT_NE(colon, std::string::npos) << ref;
  if (colon == std::string::npos) return {};
  const std::string stem = ref.substr(0, colon);
  auto& file = (*files)[stem];
  if (file == nullptr) {
    const std::string path = likeness::testing::GoldenDir() + "/" + stem + ".safetensors";
    auto opened = safetensors::SafetensorsFile::Open(path);
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return {};
    file = *opened;
  }
  auto tensor = file->Get(ref.substr(colon + 1));
  EXPECT_TRUE(tensor.ok()) << tensor.status();
  return tensor.ok() ? *tensor : torch::Tensor();
}

std::optional<Component> ComponentOf(const std::string& sgm_name) {
  for (const ComponentPrefix& prefix : ComponentPrefixes()) {
    if (absl::StartsWith(sgm_name, prefix.prefix)) return prefix.component;
  }
  return std::nullopt;
}

std::string DiffusersNameOf(Component component, const std::string& ref) {
  std::string key = ref.substr(ref.find(':') + 1);
  const std::string folder_prefix = absl::StrCat(ComponentName(component), ".");
  if (absl::StartsWith(key, folder_prefix)) key = key.substr(folder_prefix.size());
  return key;
}

std::vector<std::string> RefsOf(const nlohmann::json& value) {
  if (value.is_string()) return {value.get<std::string>()};
  return value.get<std::vector<std::string>>();
}

std::map<Component, StateDict> GoldenDiffusersWeights(const nlohmann::json& sidecar) {
  std::map<Component, StateDict> out;
  for (const auto& [sgm_name, refs] : sidecar.at("key_map").items()) {
    const std::optional<Component> component = ComponentOf(sgm_name);
    EXPECT_TRUE(component.has_value()) << sgm_name;
    if (!component) continue;
    for (const std::string& ref : RefsOf(refs))
      out[*component][DiffusersNameOf(*component, ref)] = GoldenTensor(ref);
  }
  return out;
}

::testing::AssertionResult BitEqual(const torch::Tensor& actual, const torch::Tensor& expected) {
  if (!actual.defined() || !expected.defined())
    return ::testing::AssertionFailure() << "undefined tensor";
  if (actual.scalar_type() != expected.scalar_type()) {
    return ::testing::AssertionFailure()
           << "dtype " << actual.scalar_type() << " vs " << expected.scalar_type();
  }
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure()
           << "shape " << actual.sizes() << " vs " << expected.sizes();
  }
  const torch::Tensor a = actual.contiguous();
  const torch::Tensor e = expected.contiguous();
  if (std::memcmp(a.data_ptr(), e.data_ptr(), a.numel() * a.element_size()) != 0) {
    return ::testing::AssertionFailure() << "bytes differ";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsErrorNaming(const absl::Status& status, absl::StatusCode code,
                                         const std::vector<std::string>& subjects) {
  if (status.code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << absl::StatusCodeToString(code) << ", got " << status;
  }
  for (const std::string& subject : subjects) {
    if (!absl::StrContains(status.message(), subject)) {
      return ::testing::AssertionFailure()
             << "message does not name '" << subject << "': " << status;
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace likeness::model::checkpoint::testing
