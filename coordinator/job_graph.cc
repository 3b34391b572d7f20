#include "coordinator/job_graph.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "coordinator/constants.h"

namespace likeness::coordinator {
namespace {

// A deterministic byte string of a message: equal configs give equal keys.
std::string Key(const google::protobuf::Message& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

// The axis values every point of `members` shares (a shared job's description).
std::vector<v1::AxisValue> CommonValues(const std::vector<const SweepPoint*>& members) {
  std::vector<v1::AxisValue> common;
  for (const v1::AxisValue& value : members.front()->values) {
    bool shared = true;
    for (const SweepPoint* point : members) {
      bool found = false;
      for (const v1::AxisValue& other : point->values) {
        found |= other.field() == value.field() && other.value() == value.value();
      }
      shared &= found;
    }
    if (shared) common.push_back(value);
  }
  return common;
}

// One training run and the points it serves.
struct TrainGroup {
  v1::TrainConfig config;  // steps cleared when the steps are shared
  std::vector<const SweepPoint*> members;
  std::set<int> steps;
};

class GraphBuilder {
 public:
  GraphBuilder(const std::string& sweep_id, const v1::SweepSpec& spec, std::string root)
      : sweep_id_(sweep_id), spec_(spec), dir_((std::filesystem::path(root) / sweep_id).string()) {}

  void Build(const std::vector<SweepPoint>& points) {
    for (TrainGroup& group : GroupTrainRuns(points)) {
      const std::string train_id = AddTrainJob(group);
      if (spec_.skip_generate()) continue;
      for (const SweepPoint* point : group.members) AddGenerateAndEvaluate(*point, train_id);
    }
  }

  std::vector<v1::Job> TakeJobs() { return std::move(jobs_); }

 private:
  std::vector<TrainGroup> GroupTrainRuns(const std::vector<SweepPoint>& points) {
    std::map<std::string, size_t> index;
    std::vector<TrainGroup> groups;
    for (const SweepPoint& point : points) {
      v1::TrainConfig config = point.train;
      const bool share_steps = ScheduleIndependentOfTotalSteps(config);
      if (share_steps) config.clear_steps();
      const std::string key = Key(config);
      auto [it, inserted] = index.emplace(key, groups.size());
      if (inserted) groups.push_back(TrainGroup{config, {}, {}});
      groups[it->second].members.push_back(&point);
      groups[it->second].steps.insert(point.train.steps());
    }
    // Lengths whose checkpoints would be too many train separately.
    std::vector<TrainGroup> result;
    for (TrainGroup& group : groups) {
      if (group.steps.size() <= 1 || SharedCheckpointCount(group.steps) <= kMaxSharedCheckpoints) {
        result.push_back(std::move(group));
        continue;
      }
      for (int steps : group.steps) {
        TrainGroup single{group.config, {}, {steps}};
        for (const SweepPoint* point : group.members) {
          if (point->train.steps() == steps) single.members.push_back(point);
        }
        result.push_back(std::move(single));
      }
    }
    return result;
  }

  static int Gcd(const std::set<int>& steps) {
    int g = 0;
    for (int s : steps) g = std::gcd(g, s);
    return g;
  }

  static int64_t SharedCheckpointCount(const std::set<int>& steps) {
    const int g = Gcd(steps);
    return g <= 0 ? kMaxSharedCheckpoints + 1 : *steps.rbegin() / g;
  }

  v1::Job& NewJob(v1::JobKind kind, const std::string& name, const v1::ResourceRequest& resources) {
    v1::Job& job = jobs_.emplace_back();
    job.set_id(absl::StrCat(sweep_id_, ".", name));
    job.set_sweep_id(sweep_id_);
    job.set_priority(spec_.priority());
    job.set_sequence(static_cast<int64_t>(jobs_.size()));
    job.set_state(v1::JOB_STATE_QUEUED);
    job.mutable_spec()->set_kind(kind);
    *job.mutable_spec()->mutable_resources() = resources;
    job.mutable_spec()->set_output_dir((std::filesystem::path(dir_) / name).string());
    return job;
  }

  void DependOn(v1::Job* job, const std::string& dependency) {
    job->mutable_spec()->add_depends_on(dependency);
    job->set_state(v1::JOB_STATE_PENDING);
  }

  const std::string& SubjectName(const SweepPoint& point) const {
    return spec_.subjects(point.subject_index).name();
  }

  std::string AddTrainJob(const TrainGroup& group) {
    const std::string name = absl::StrCat("train-", train_count_++);
    v1::Job& job = NewJob(v1::JOB_KIND_TRAIN, name, spec_.train_resources());
    v1::JobSpec& js = *job.mutable_spec();
    *js.mutable_train() = group.config;
    const int max_steps = *group.steps.rbegin();
    js.mutable_train()->set_steps(max_steps);
    js.mutable_train()->set_output_dir(js.output_dir());
    if (group.steps.size() > 1) {
      // Every requested length needs its checkpoint, and none may be pruned.
      const int user_every = group.config.checkpoint_every();
      const int every = user_every > 0 ? std::gcd(user_every, Gcd(group.steps)) : Gcd(group.steps);
      js.mutable_train()->set_checkpoint_every(every);
      js.mutable_train()->set_checkpoints_to_keep(0);
    }
    for (int steps : group.steps) js.add_checkpoint_steps(steps);
    js.set_method(group.config.method());
    js.set_subject(SubjectName(*group.members.front()));
    for (const v1::AxisValue& value : CommonValues(group.members)) *js.add_point() = value;
    train_dirs_[job.id()] = js.output_dir();
    return job.id();
  }

  void AddGenerateAndEvaluate(const SweepPoint& point, const std::string& train_id) {
    const std::string checkpoint_dir =
        (std::filesystem::path(train_dirs_[train_id]) /
         absl::StrCat(kCheckpointDirPrefix, point.train.steps()))
            .string();
    const std::string generate_key = absl::StrCat(checkpoint_dir, "\n", Key(point.generate));
    auto [generate_it, new_generate] = generate_ids_.emplace(generate_key, "");
    if (new_generate) {
      v1::Job& job = NewJob(v1::JOB_KIND_GENERATE, absl::StrCat("generate-", generate_count_++),
                            spec_.generate_resources());
      v1::JobSpec& js = *job.mutable_spec();
      *js.mutable_generate() = point.generate;
      js.mutable_generate()->set_output_dir(js.output_dir());
      js.set_checkpoint_dir(checkpoint_dir);
      js.set_checkpoint_step(point.train.steps());
      js.set_method(point.train.method());
      js.set_subject(SubjectName(point));
      for (const v1::AxisValue& value : point.values) *js.add_point() = value;
      DependOn(&job, train_id);
      generate_it->second = job.id();
      generate_dirs_[job.id()] = js.output_dir();
    }
    if (spec_.skip_evaluate()) return;
    const std::string& generate_id = generate_it->second;
    const std::string evaluate_key = absl::StrCat(generate_id, "\n", Key(point.evaluate));
    if (!evaluate_keys_.insert(evaluate_key).second) return;
    v1::Job& job = NewJob(v1::JOB_KIND_EVALUATE, absl::StrCat("evaluate-", evaluate_count_++),
                          spec_.evaluate_resources());
    v1::JobSpec& js = *job.mutable_spec();
    *js.mutable_evaluate() = point.evaluate;
    js.set_images_dir(generate_dirs_[generate_id]);
    js.set_reference_dir(point.train.instance_dir());
    for (const std::string& prompt : point.generate.prompts()) js.add_prompts(prompt);
    js.set_method(point.train.method());
    js.set_checkpoint_step(point.train.steps());
    js.set_subject(SubjectName(point));
    for (const v1::AxisValue& value : point.values) *js.add_point() = value;
    DependOn(&job, generate_id);
  }

  const std::string sweep_id_;
  const v1::SweepSpec& spec_;
  const std::string dir_;
  std::vector<v1::Job> jobs_;
  int train_count_ = 0, generate_count_ = 0, evaluate_count_ = 0;
  std::map<std::string, std::string> train_dirs_, generate_dirs_, generate_ids_;
  std::set<std::string> evaluate_keys_;
};

}  // namespace

bool ScheduleIndependentOfTotalSteps(const v1::TrainConfig& train) {
  if (train.method() == v1::TRAIN_METHOD_PIVOTAL_TUNING) return false;
  const std::string& schedule = train.lr_scheduler();
  return schedule.empty() || schedule == "constant" || schedule == "constant_with_warmup";
}

std::vector<v1::Job> BuildJobGraph(const std::string& sweep_id, const v1::SweepSpec& spec,
                                   const std::vector<SweepPoint>& points,
                                   const std::string& artifact_root) {
  GraphBuilder builder(sweep_id, spec, artifact_root);
  builder.Build(points);
  return builder.TakeJobs();
}

}  // namespace likeness::coordinator
