// `likeness train CONFIG.yaml [--set FIELD=VALUE ...]`: subject fine-tuning (worker/train) as a
// standalone command. The YAML is the TrainConfig of protos/likeness.proto, so this command and
// the coordinator's train jobs share one schema and one validator (ResolveTrainConfig).
#include <cmath>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"
#include "common/config/proto_yaml.h"
#include "worker/cli/commands.h"
#include "worker/cli/progress_bar.h"
#include "worker/cli/torch_options.h"
#include "worker/dist/data_parallel.h"
#include "worker/dist/requeue.h"
#include "worker/train/checkpoint.h"
#include "worker/train/metrics.h"
#include "worker/train/train_settings.h"
#include "worker/train/trainer.h"

namespace likeness::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kCommand[] = "train";
// The resolved config, beside the checkpoints: `likeness train <output_dir>/train.yaml` repeats
// (or, with checkpoints there, continues) the run.
constexpr char kResolvedConfigFile[] = "train.yaml";

std::string Help() {
  return absl::StrCat(
      "Fine-tunes SDXL on a subject: LoRA, DreamBooth (full UNet), textual inversion or\n"
      "pivotal tuning. CONFIG.yaml is a TrainConfig (protos/likeness.proto): keys are its field\n"
      "names, enums take their short names (method: lora). --set FIELD=VALUE overrides one\n"
      "field after the file (the value is read as YAML: --set steps=800,\n"
      "--set 'lora_unet_targets=[to_q, to_v]'). Every field is checked and an error names it.\n"
      "model_config may be a JSON object or the path of a JSON file.\n\n"
      "Minimal config:\n"
      "  method: lora\n"
      "  base_model: sd_xl_base_1.0.safetensors   # or a diffusers folder\n"
      "  instance_dir: photos/                    # 10-30 photos, optional same-name .txt\n"
      "  instance_prompt: a photo of {identifier} dog\n"
      "  output_dir: runs/dog\n\n"
      "Outputs in output_dir: step-N/ checkpoints (committed atomically: the LoRA in kohya\n"
      "format, lora_peft.safetensors with save_peft_lora, <identifier>.safetensors for an\n"
      "embedding, the UNet for DreamBooth, plus the exact optimizer/RNG/data state),\n",
      train::kMetricsFileName, " (one JSON line per step: loss, smoothed loss, lr, images/s,\n"
      "peak memory), validation images, and ", kResolvedConfigFile, " (the resolved config).\n"
      "DreamBooth also writes export/diffusers/ (a diffusers pipeline folder) and\n"
      "export/model.safetensors (a single-file SDXL checkpoint) after the last step, with the\n"
      "EMA weights when ema_decay is set.\n\n"
      "Prior preservation: class_dir + class_prompt (+ prior_loss_weight). When class_dir\n"
      "holds fewer than num_class_images photos, the rest are generated from the base model\n"
      "by our sampler and cached under cache_dir/class_images/ for later runs to reuse.\n\n"
      "Resume: when output_dir holds a complete checkpoint, the run continues from the latest\n"
      "one and is bit-identical to an uninterrupted run (same build and device). Settings\n"
      "that change the result (method, data, rates, seed, steps, ...) must match the\n"
      "checkpoint's, or the run is refused naming the fields that differ; output and\n"
      "checkpoint settings (output_dir, checkpoint_every, checkpoints_to_keep, validation_*)\n"
      "and the device may change.\n\n"
      "Progress goes to stderr: a bar (step, loss, it/s, ETA) on a terminal, plain lines\n"
      "otherwise. The final checkpoint folder is printed on stdout.\n\n"
      "Exit status: 0 done, 1 the run failed (bad image, diverged, refused resume), 2 the\n"
      "command line or config is wrong.");
}

// "train: <message>", once: the library's messages already start with "train: ".
std::string Prefixed(const absl::Status& status) {
  const std::string prefix = absl::StrCat(kCommand, ": ");
  const std::string message(status.message());
  return message.rfind(prefix, 0) == 0 ? message : prefix + message;
}

int UsageError(std::ostream& err, const absl::Status& status) {
  err << Prefixed(status) << "\nRun 'likeness train --help' for usage.\n";
  return kExitUsage;
}

int Failure(std::ostream& err, const absl::Status& status) {
  err << Prefixed(status) << "\n";
  return kExitFailure;
}

// model_config is JSON text for the library; the command also takes a file path.
absl::Status InlineModelConfig(v1::TrainConfig* config) {
  const std::string value(absl::StripLeadingAsciiWhitespace(config->model_config()));
  if (value.empty() || value[0] == '{') return absl::OkStatus();
  absl::StatusOr<std::string> text = ReadFileToString(value);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field 'model_config': '", value, "': ", text.status().message()));
  }
  config->set_model_config(*text);
  return absl::OkStatus();
}

// "loss 0.0831 (avg 0.0902)  lr 1.00e-04"
std::string StepDetail(const train::TrainProgress& p) {
  std::string detail = std::isfinite(p.loss) ? absl::StrFormat("loss %.4f", p.loss)
                                             : std::string("loss skipped");
  if (std::isfinite(p.smoothed_loss)) absl::StrAppend(&detail, absl::StrFormat(" (avg %.4f)", p.smoothed_loss));
  absl::StrAppend(&detail, absl::StrFormat("  lr %.2e", p.lr));
  if (p.skipped_steps > 0) absl::StrAppend(&detail, "  skipped ", p.skipped_steps);
  return detail;
}

int RunTrain(const Args& args, std::ostream& out, std::ostream& err) {
  const std::string config_path = args.positional().at(0);
  v1::TrainConfig config;
  if (absl::Status s = config::MergeYamlFileIntoProto(config_path, &config); !s.ok()) {
    return UsageError(err, s);
  }
  if (absl::Status s = config::ApplyOverrides(args.GetAll("set"), &config); !s.ok()) {
    return UsageError(err, s);
  }
  // The same default as generate: the GPU when there is one.
  absl::StatusOr<torch::Device> device = ParseDevice(config.device());
  if (!device.ok()) {
    return UsageError(err, absl::InvalidArgumentError(
                               absl::StrCat("field 'device': ", device.status().message())));
  }
  config.set_device(device->str());
  config.set_resume(!args.Switch("no-resume"));
  // Saved with model_config as the user gave it (a path stays a path).
  const std::string resolved_yaml = config::ProtoToYaml(config);
  if (absl::Status s = InlineModelConfig(&config); !s.ok()) return UsageError(err, s);
  absl::StatusOr<train::TrainSettings> settings = train::ResolveTrainConfig(config);
  if (!settings.ok()) return UsageError(err, settings.status());
  // Data-parallel when mpirun/srun started this process as one of several ranks (one process
  // otherwise, at no cost): worker/dist/data_parallel.h.
  absl::StatusOr<dist::DataParallel> dp = dist::SetUpDataParallel(settings->device);
  if (!dp.ok()) return Failure(err, dp.status());
  settings->device = dp->device;

  absl::StatusOr<std::optional<train::CheckpointInfo>> latest =
      train::FindLatestCheckpoint(settings->output_dir);
  if (!latest.ok()) return Failure(err, latest.status());
  if (latest->has_value() && !settings->resume) {
    return Failure(err, absl::FailedPreconditionError(absl::StrCat(
                            "--no-resume: output_dir ", settings->output_dir,
                            " already holds checkpoints (", (*latest)->dir,
                            "); choose another output_dir")));
  }
  std::error_code error;
  fs::create_directories(settings->output_dir, error);
  if (error) {
    return Failure(err, absl::InternalError(absl::StrCat("cannot create output_dir ",
                                                         settings->output_dir, ": ",
                                                         error.message())));
  }
  // Written at the first step, once the run (or its resume) has been accepted: a refused
  // resume must not replace the config the checkpoints were trained with.
  const std::string resolved = (fs::path(settings->output_dir) / kResolvedConfigFile).string();
  absl::Status config_written = absl::OkStatus();
  bool config_saved = false;

  err << kCommand << ": " << train::MethodName(settings->method) << " of " << settings->base_model
      << " on " << settings->instance_dir << ", " << settings->steps << " steps on "
      << settings->device << "\n";
  ProgressBar bar(err, StderrIsTerminal());
  const bool interactive = StderrIsTerminal();
  bool bar_open = false;
  int64_t first_step = 0;
  train::TrainHooks hooks;
  hooks.reducer = dp->reducer.get();
  hooks.stop_requested = dist::PreemptRequested;  // SIGUSR1: checkpoint, exit for requeue
  hooks.progress = [&](const train::TrainProgress& p) {
    if (p.event == "step") {
      if (!config_saved) {
        config_saved = true;
        config_written = WriteFileAtomically(resolved, resolved_yaml);
      }
      if (!bar_open) {
        first_step = p.step - 1;
        bar.Start(first_step > 0 ? absl::StrCat("[train, resumed at step ", first_step, "]")
                                 : std::string("[train]"),
                  p.total_steps - first_step);
        bar_open = true;
      }
      bar.Update(p.step - first_step, absl::StrCat("step ", p.step, "  ", StepDetail(p)));
      return;
    }
    // Other events are one line each; on a terminal, over the bar, which redraws next step.
    if (interactive && bar_open) err << "\r\033[K";
    if (p.event == "caching") {
      err << kCommand << ": caching latents and text embeddings\n";
    } else {
      err << kCommand << ": " << p.event << "\n";
    }
  };
  absl::StatusOr<train::TrainResult> result = train::RunTraining(*settings, hooks);
  bar.Finish();
  if (!result.ok()) {
    Failure(err, result.status());
    // A lost peer or a preemption: the launcher and the coordinator requeue on this code.
    return dist::ExitCodeFor(result.status(), kExitFailure);
  }
  if (!config_written.ok()) return Failure(err, config_written);
  if (dp->rank() == 0) {  // one summary per job, not one per rank
    err << kCommand << ": " << result->steps << " steps (" << result->skipped_steps
        << " skipped), smoothed loss " << absl::StrFormat("%.4f", result->final_smoothed_loss)
        << "\n";
    out << result->final_checkpoint << "\n";
  }
  return kExitOk;
}

}  // namespace

Command MakeTrainCommand() {
  Command command;
  command.name = kCommand;
  command.summary = "Fine-tune SDXL on a subject: LoRA, DreamBooth, textual inversion, pivotal";
  command.usage_args = "CONFIG.yaml [--set FIELD=VALUE ...] [options]";
  command.description = Help();
  command.options = {
      {"set", "FIELD=VALUE", "override one config field; repeat for several", "", true},
      {"no-resume", "", "start from the base model; fails when output_dir already holds "
                        "checkpoints", ""},
  };
  command.min_positional = 1;
  command.max_positional = 1;
  command.run = RunTrain;
  return command;
}

}  // namespace likeness::cli
