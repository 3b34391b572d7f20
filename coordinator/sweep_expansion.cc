#include "coordinator/sweep_expansion.h"

#include <filesystem>
#include <random>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "coordinator/axis_field.h"
#include "coordinator/constants.h"
#include "coordinator/default_prompts.h"
#include "common/status_macros.h"

namespace likeness::coordinator {
namespace {

using google::protobuf::FieldDescriptor;

absl::Status Invalid(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::Status ValidateSubjects(const v1::SweepSpec& spec) {
  if (spec.subjects_size() == 0) return Invalid("subjects", "empty (name at least one subject)");
  std::set<std::string> names;
  for (int i = 0; i < spec.subjects_size(); ++i) {
    const v1::Subject& subject = spec.subjects(i);
    const std::string where = absl::StrCat("subjects[", i, "]");
    if (subject.image_dir().empty()) return Invalid(where + ".image_dir", "empty");
    if (!names.insert(subject.name()).second) {
      return Invalid(where + ".name", absl::StrCat("'", subject.name(), "' names two subjects"));
    }
  }
  return absl::OkStatus();
}

// The axes' values as text, resolved and checked. `fields[i]` is axis i's field.
struct CheckedAxes {
  std::vector<const FieldDescriptor*> fields;
  std::vector<std::vector<std::string>> grid_values;  // empty for RANDOM
};

absl::StatusOr<CheckedAxes> CheckAxes(const v1::SweepSpec& spec) {
  CheckedAxes checked;
  std::set<std::string> seen;
  const bool random = spec.strategy() == v1::SWEEP_STRATEGY_RANDOM;
  for (int i = 0; i < spec.axes_size(); ++i) {
    const v1::SweepAxis& axis = spec.axes(i);
    const std::string where = absl::StrCat("axes[", i, "]");
    LIKENESS_ASSIGN_OR_RETURN(const FieldDescriptor* field,
                              ResolveAxisField(axis.field(), where + ".field"));
    if (!seen.insert(axis.field()).second) {
      return Invalid(where + ".field", absl::StrCat("'", axis.field(), "' is swept twice"));
    }
    // A random draw from a range needs no num; its range is checked as a 2-point grid.
    const bool random_range = random && (axis.has_min() || axis.has_max()) && axis.num() == 0;
    v1::SweepAxis checked_axis = axis;
    if (random_range) checked_axis.set_num(2);
    LIKENESS_ASSIGN_OR_RETURN(std::vector<std::string> values,
                              AxisGridValues(checked_axis, *field, where));
    // Every listed value must be valid for its field; a scratch point checks it.
    for (size_t v = 0; v < values.size(); ++v) {
      SweepPoint scratch;
      LIKENESS_RETURN_IF_ERROR(
          SetAxisValue(axis.field(), values[v], absl::StrCat(where, ".values[", v, "]"), &scratch));
    }
    checked.fields.push_back(field);
    checked.grid_values.push_back(std::move(values));
  }
  return checked;
}

// Axis value combinations, each a list of texts in axis order.
absl::StatusOr<std::vector<std::vector<std::string>>> Combinations(const v1::SweepSpec& spec,
                                                                   const CheckedAxes& axes) {
  std::vector<std::vector<std::string>> combos;
  const int num_axes = spec.axes_size();
  switch (spec.strategy()) {
    case v1::SWEEP_STRATEGY_UNSPECIFIED:
    case v1::SWEEP_STRATEGY_GRID: {
      int64_t total = 1;
      for (const auto& values : axes.grid_values) {
        total *= static_cast<int64_t>(values.size());
        if (total > kMaxSweepPoints) {
          return Invalid("axes", absl::StrCat("the grid has more than ", kMaxSweepPoints,
                                              " points"));
        }
      }
      combos.push_back({});
      for (int a = 0; a < num_axes; ++a) {
        std::vector<std::vector<std::string>> next;
        for (const auto& prefix : combos) {
          for (const std::string& value : axes.grid_values[a]) {
            next.push_back(prefix);
            next.back().push_back(value);
          }
        }
        combos = std::move(next);
      }
      return combos;
    }
    case v1::SWEEP_STRATEGY_RANDOM: {
      if (spec.random_count() < 1 || spec.random_count() > kMaxSweepPoints) {
        return Invalid("random_count", absl::StrCat(spec.random_count(), " is outside [1, ",
                                                    kMaxSweepPoints, "]"));
      }
      std::mt19937_64 rng(spec.random_seed());
      for (int p = 0; p < spec.random_count(); ++p) {
        std::vector<std::string> combo;
        for (int a = 0; a < num_axes; ++a) {
          combo.push_back(AxisRandomValue(spec.axes(a), *axes.fields[a], &rng));
        }
        combos.push_back(std::move(combo));
      }
      return combos;
    }
    case v1::SWEEP_STRATEGY_ZIP: {
      const size_t length = num_axes == 0 ? 1 : axes.grid_values[0].size();
      for (int a = 1; a < num_axes; ++a) {
        if (axes.grid_values[a].size() != length) {
          return Invalid(absl::StrCat("axes[", a, "]"),
                         absl::StrCat("'", spec.axes(a).field(), "' has ",
                                      axes.grid_values[a].size(), " values but axes[0] has ",
                                      length, " (zip needs equal lengths)"));
        }
      }
      for (size_t i = 0; i < length; ++i) {
        std::vector<std::string> combo;
        for (int a = 0; a < num_axes; ++a) combo.push_back(axes.grid_values[a][i]);
        combos.push_back(std::move(combo));
      }
      return combos;
    }
    default:
      return Invalid("strategy", absl::StrCat(spec.strategy(), " is not a strategy"));
  }
}

// The point's fixed settings for one subject, before the axes apply.
SweepPoint BasePoint(const v1::SweepSpec& spec, int subject_index) {
  const v1::Subject& subject = spec.subjects(subject_index);
  SweepPoint point;
  point.subject_index = subject_index;
  point.train = spec.train();
  point.generate = spec.generate();
  point.evaluate = spec.evaluate();
  if (point.train.base_model().empty()) point.train.set_base_model(spec.base_model());
  if (point.generate.model().empty()) point.generate.set_model(point.train.base_model());
  point.train.set_instance_dir(subject.image_dir());
  if (!subject.identifier().empty()) point.train.set_identifier(subject.identifier());
  if (point.train.identifier().empty()) point.train.set_identifier(kDefaultIdentifier);
  const std::string words = subject.class_name().empty()
                                ? point.train.identifier()
                                : absl::StrCat(point.train.identifier(), " ", subject.class_name());
  if (point.train.instance_prompt().empty()) {
    point.train.set_instance_prompt(FillSubject(kDefaultInstancePrompt, words));
  }
  if (point.generate.prompts_size() == 0) {
    for (const std::string& prompt : DefaultPrompts(words)) point.generate.add_prompts(prompt);
  } else {
    for (std::string& prompt : *point.generate.mutable_prompts()) prompt = FillSubject(prompt, words);
  }
  return point;
}

}  // namespace

v1::SweepSpec NormalizeSweep(const v1::SweepSpec& spec) {
  v1::SweepSpec normalized = spec;
  if (normalized.name().empty()) normalized.set_name("sweep");
  for (v1::Subject& subject : *normalized.mutable_subjects()) {
    if (subject.name().empty()) {
      // The folder's name: "/data/dog/" -> "dog".
      std::filesystem::path dir = std::filesystem::path(subject.image_dir()).lexically_normal();
      if (dir.filename().empty()) dir = dir.parent_path();
      subject.set_name(dir.filename().string());
    }
  }
  return normalized;
}

absl::StatusOr<std::vector<SweepPoint>> ExpandSweep(const v1::SweepSpec& raw_spec) {
  const v1::SweepSpec spec = NormalizeSweep(raw_spec);
  if (spec.base_model().empty() && spec.train().base_model().empty()) {
    return Invalid("base_model", "empty (a diffusers folder or a single-file checkpoint)");
  }
  LIKENESS_RETURN_IF_ERROR(ValidateSubjects(spec));
  LIKENESS_ASSIGN_OR_RETURN(CheckedAxes axes, CheckAxes(spec));
  LIKENESS_ASSIGN_OR_RETURN(auto combos, Combinations(spec, axes));
  if (static_cast<int64_t>(combos.size()) * spec.subjects_size() > kMaxSweepPoints) {
    return Invalid("subjects", absl::StrCat(combos.size(), " points x ", spec.subjects_size(),
                                            " subjects is more than ", kMaxSweepPoints));
  }
  std::vector<SweepPoint> points;
  for (int s = 0; s < spec.subjects_size(); ++s) {
    for (const auto& combo : combos) {
      SweepPoint point = BasePoint(spec, s);
      for (int a = 0; a < spec.axes_size(); ++a) {
        const std::string where = absl::StrCat("axes[", a, "]");
        LIKENESS_RETURN_IF_ERROR(SetAxisValue(spec.axes(a).field(), combo[a], where, &point));
        v1::AxisValue value;
        value.set_field(spec.axes(a).field());
        value.set_value(combo[a]);
        point.values.push_back(std::move(value));
      }
      if (point.train.method() == v1::TRAIN_METHOD_UNSPECIFIED) {
        return Invalid("train.method",
                       "unset (lora, dreambooth, textual_inversion or pivotal_tuning)");
      }
      if (point.train.steps() <= 0) {
        // Checkpoints, and so generate jobs, are named by their step.
        return Invalid("train.steps", absl::StrCat(point.train.steps(), " (set a step count > 0)"));
      }
      points.push_back(std::move(point));
    }
  }
  return points;
}

}  // namespace likeness::coordinator
