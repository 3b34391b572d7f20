// `likeness prepare`: a subject folder -> a training-ready dataset file and a contact sheet.
#include <filesystem>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "worker/cli/commands.h"
#include "worker/cli/defaults.h"
#include "worker/data/subject_dataset.h"
#include "worker/image/image_io.h"

namespace likeness::cli {
namespace {

constexpr char kDatasetFile[] = "dataset.safetensors";
constexpr char kContactSheetFile[] = "contact_sheet.png";
constexpr int kThumbnailSize = 256;
constexpr int kContactSheetColumns = 6;

int RunPrepare(const Args& args, std::ostream& out, std::ostream& err) {
  data::SubjectDatasetOptions options;
  options.subject_dir = args.Get("subject");
  options.instance_prompt = args.Get("prompt");
  options.vocab_path = VocabPath(args);
  absl::StatusOr<long long> resolution = args.GetInt("resolution");
  if (!resolution.ok()) {
    err << "prepare: " << resolution.status().message() << "\n";
    return kExitUsage;
  }
  options.resolution = static_cast<int>(*resolution);
  if (options.subject_dir.empty() || options.instance_prompt.empty()) {
    err << "prepare: --subject and --prompt are required\n";
    return kExitUsage;
  }
  const std::string out_dir = args.Get("out");
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error) {
    err << "prepare: cannot create " << out_dir << ": " << error.message() << "\n";
    return kExitFailure;
  }

  absl::StatusOr<data::SubjectDataset> dataset = data::BuildSubjectDataset(options);
  if (!dataset.ok()) {
    err << "prepare: " << dataset.status().message() << "\n";
    return kExitFailure;
  }
  const std::string dataset_path = out_dir + "/" + kDatasetFile;
  if (absl::Status s = data::WriteSubjectDataset(dataset_path, *dataset); !s.ok()) {
    err << "prepare: " << s.message() << "\n";
    return kExitFailure;
  }
  absl::StatusOr<image::Image> sheet = data::ContactSheet(*dataset, kThumbnailSize, kContactSheetColumns);
  const std::string sheet_path = out_dir + "/" + kContactSheetFile;
  const std::string parameters =
      absl::StrCat(options.instance_prompt, "\nSubject: ", options.subject_dir,
                   ", Images: ", dataset->size(), ", Resolution: ", options.resolution);
  absl::Status sheet_status =
      sheet.ok() ? image::WritePngFile(sheet_path, *sheet, {{"parameters", parameters}}) : sheet.status();
  if (!sheet_status.ok()) {
    err << "prepare: " << sheet_status.message() << "\n";
    return kExitFailure;
  }
  nlohmann::json summary = {
      {"dataset", dataset_path},
      {"contact_sheet", sheet_path},
      {"images", dataset->size()},
      {"resolution", dataset->resolution},
      {"prompt", dataset->prompt},
      {"files", dataset->files},
  };
  out << summary.dump(2) << "\n";
  return kExitOk;
}

}  // namespace

Command MakePrepareCommand() {
  Command command;
  command.name = "prepare";
  command.summary = "Turn a folder of subject photos into a training-ready dataset file.";
  command.usage_args = "--subject DIR --prompt TEXT [options]";
  command.description =
      "Decodes every photo in DIR (.jpg, .jpeg, .png, .webp; EXIF orientation applied), resizes\n"
      "its short side to the resolution and cuts the centered square, records SDXL's\n"
      "micro-conditioning (original size, crop top-left), tokenizes the prompt for both text\n"
      "encoders, and writes OUT/dataset.safetensors plus OUT/contact_sheet.png (the crops at a\n"
      "glance, with the settings in its 'parameters' text chunk). A photo that cannot be\n"
      "decoded fails the command with its name: no photo is silently left out.\n"
      "Prints a JSON summary.";
  command.options = {
      {"subject", "DIR", "folder of 1-1000 photos of the subject", ""},
      {"prompt", "TEXT", "instance prompt, e.g. \"a photo of sks dog\"", ""},
      {"out", "DIR", "where the dataset and contact sheet go (created)", "likeness-dataset"},
      {"resolution", "N", "square training size, a multiple of 8", std::to_string(data::kDefaultResolution)},
      VocabOption(),
  };
  command.max_positional = 0;
  command.run = RunPrepare;
  return command;
}

}  // namespace likeness::cli
