#include "worker/model/checkpoint/sgm_structure.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace likeness::model::checkpoint {
namespace {

absl::Status Unrecognised(absl::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

absl::StatusOr<Structure> SgmUnet(const StateDict& sd, absl::string_view source) {
  // input_blocks = [conv_in] + per level (L entries + a downsampler, none after the last level),
  // so N * (L + 1) entries in all; the first downsampler sits at index L + 1.
  const int inputs = CountIndexed(sd, "input_blocks.");
  const int outputs = CountIndexed(sd, "output_blocks.");
  int stride = 0;  // L + 1
  for (int n = 1; n < inputs; ++n) {
    if (sd.count(absl::StrCat("input_blocks.", n, ".0.op.weight")) > 0) {
      stride = n;
      break;
    }
  }
  if (stride == 0) stride = inputs;  // One level, no downsampler.
  if (stride < 2 || inputs % stride != 0 || outputs != inputs) {
    return Unrecognised(source, absl::StrCat("UNet block indices do not form levels (", inputs,
                                             " input_blocks, ", outputs,
                                             " output_blocks, first "
                                             "downsampler at ",
                                             stride, ")"));
  }
  Structure s;
  s.layers_per_block = stride - 1;
  s.levels = inputs / stride;
  for (int i = 0; i < s.levels; ++i) {
    s.down_depth.push_back(
        CountIndexed(sd, absl::StrCat("input_blocks.", i * stride + 1, ".1.transformer_blocks.")));
    s.up_depth.push_back(
        CountIndexed(sd, absl::StrCat("output_blocks.", i * stride, ".1.transformer_blocks.")));
  }
  s.mid_depth = CountIndexed(sd, "middle_block.1.transformer_blocks.");
  return s;
}

absl::StatusOr<Structure> DiffusersUnet(const StateDict& sd, absl::string_view source) {
  Structure s;
  s.levels = CountIndexed(sd, "down_blocks.");
  s.layers_per_block = CountIndexed(sd, "down_blocks.0.resnets.");
  if (s.levels == 0 || s.layers_per_block == 0)
    return Unrecognised(source, "no UNet down_blocks.*.resnets");
  for (int i = 0; i < s.levels; ++i) {
    s.down_depth.push_back(
        CountIndexed(sd, absl::StrCat("down_blocks.", i, ".attentions.0.transformer_blocks.")));
    s.up_depth.push_back(
        CountIndexed(sd, absl::StrCat("up_blocks.", i, ".attentions.0.transformer_blocks.")));
  }
  s.mid_depth = CountIndexed(sd, "mid_block.attentions.0.transformer_blocks.");
  return s;
}

absl::StatusOr<Structure> Vae(const StateDict& sd, absl::string_view levels_prefix,
                              absl::string_view layers_prefix, absl::string_view source) {
  Structure s;
  s.levels = CountIndexed(sd, levels_prefix);
  s.layers_per_block = CountIndexed(sd, layers_prefix);
  if (s.levels == 0 || s.layers_per_block == 0) {
    return Unrecognised(source, absl::StrCat("no VAE encoder blocks (", layers_prefix, "*)"));
  }
  return s;
}

absl::StatusOr<Structure> Text(const StateDict& sd, absl::string_view layers_prefix,
                               absl::string_view source) {
  Structure s;
  s.text_layers = CountIndexed(sd, layers_prefix);
  if (s.text_layers == 0)
    return Unrecognised(source, absl::StrCat("no text encoder layers (", layers_prefix, "*)"));
  return s;
}

}  // namespace

int CountIndexed(const StateDict& state_dict, absl::string_view prefix) {
  int count = 0;
  for (auto it = state_dict.lower_bound(std::string(prefix));
       it != state_dict.end() && absl::StartsWith(it->first, prefix); ++it) {
    const absl::string_view rest = absl::string_view(it->first).substr(prefix.size());
    const size_t dot = rest.find('.');
    int index = 0;
    if (dot != absl::string_view::npos && absl::SimpleAtoi(rest.substr(0, dot), &index) &&
        index >= 0 && std::isdigit(static_cast<unsigned char>(rest[0]))) {
      count = std::max(count, index + 1);
    }
  }
  return count;
}

absl::StatusOr<Structure> DetectSgmStructure(Naming naming, const StateDict& sgm,
                                             absl::string_view source) {
  switch (naming) {
    case Naming::kUnet:
      return SgmUnet(sgm, source);
    case Naming::kVae:
      return Vae(sgm, "encoder.down.", "encoder.down.0.block.", source);
    case Naming::kClipText:
      return Text(sgm, "text_model.encoder.layers.", source);
    case Naming::kOpenClip:
      return Text(sgm, "transformer.resblocks.", source);
  }
  return absl::InternalError("unknown naming");
}

absl::StatusOr<Structure> DetectDiffusersStructure(Naming naming, const StateDict& diffusers,
                                                   absl::string_view source) {
  switch (naming) {
    case Naming::kUnet:
      return DiffusersUnet(diffusers, source);
    case Naming::kVae:
      return Vae(diffusers, "encoder.down_blocks.", "encoder.down_blocks.0.resnets.", source);
    case Naming::kClipText:
    case Naming::kOpenClip:
      return Text(diffusers, "text_model.encoder.layers.", source);
  }
  return absl::InternalError("unknown naming");
}

}  // namespace likeness::model::checkpoint
