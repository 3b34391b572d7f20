// Reading transformers config.json fields for the vision configs (vision_config.h): a key that is
// absent keeps the struct's default (what from_pretrained would use), a key that is present must
// have the right type, else INVALID_ARGUMENT naming the config and the key.
//
// The CLIP text config (worker/model/text/clip_text_config.cc) has the same helpers in an
// anonymous namespace; they could move to one shared header (not done here: that file is owned
// by the text encoder).
#ifndef LIKENESS_WORKER_MODEL_VISION_CONFIG_JSON_H_
#define LIKENESS_WORKER_MODEL_VISION_CONFIG_JSON_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "worker/model/text/clip_text_config.h"

namespace likeness::model::vision_internal {

class ConfigFieldReader {
 public:
  // `config_name` goes into every error: "CLIP vision config", "ViT config".
  ConfigFieldReader(const nlohmann::json& json, absl::string_view config_name)
      : json_(json), config_name_(config_name) {}

  absl::Status Int(const char* field, int64_t& out) const;
  absl::Status Double(const char* field, double& out) const;
  absl::Status Bool(const char* field, bool& out) const;
  // transformers' ACT2FN names: quick_gelu, gelu, gelu_new, gelu_pytorch_tanh.
  absl::Status Activation(const char* field, ClipActivation& out) const;

  absl::Status Error(absl::string_view field, absl::string_view want,
                     const nlohmann::json& got) const;
  const std::string& config_name() const { return config_name_; }

 private:
  const nlohmann::json& json_;
  std::string config_name_;
};

// INVALID_ARGUMENT "<config_name> field '<field>': want <want>, got <got>".
absl::Status ConfigFieldError(absl::string_view config_name, absl::string_view field,
                              absl::string_view want, const nlohmann::json& got);

// Parses `text` as JSON; INVALID_ARGUMENT with the parser's position otherwise.
absl::StatusOr<nlohmann::json> ParseConfigJson(absl::string_view text,
                                               absl::string_view config_name);

}  // namespace likeness::model::vision_internal

#endif  // LIKENESS_WORKER_MODEL_VISION_CONFIG_JSON_H_
