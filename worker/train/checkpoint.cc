#include "worker/train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace likeness::train {
namespace fs = std::filesystem;
namespace {

constexpr char kAsideSuffix[] = ".old";

std::mutex& CrashMutex() {
  static std::mutex mutex;
  return mutex;
}
std::set<std::string>& ArmedCrashPoints() {
  static std::set<std::string> armed;
  return armed;
}

absl::Status FsyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("fsync ", path, ": ", std::strerror(saved)));
  return absl::OkStatus();
}

absl::Status Io(const std::error_code& error, const std::string& what) {
  if (!error) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", error.message()));
}

}  // namespace

void ArmCrashPoint(const std::string& name) {
  std::lock_guard<std::mutex> lock(CrashMutex());
  ArmedCrashPoints().insert(name);
}

void DisarmCrashPoints() {
  std::lock_guard<std::mutex> lock(CrashMutex());
  ArmedCrashPoints().clear();
}

absl::Status CrashPoint(const char* name) {
  std::lock_guard<std::mutex> lock(CrashMutex());
  if (ArmedCrashPoints().count(name) == 0) return absl::OkStatus();
  return absl::AbortedError(absl::StrCat("injected crash at ", name));
}

std::string CheckpointDirName(int64_t step) { return absl::StrCat(kCheckpointPrefix, step); }

absl::StatusOr<CheckpointWriter> CheckpointWriter::Begin(const std::string& output_dir,
                                                         int64_t step) {
  std::error_code error;
  fs::create_directories(output_dir, error);
  LIKENESS_RETURN_IF_ERROR(Io(error, absl::StrCat("create ", output_dir)));
  const std::string temp = (fs::path(output_dir) / (CheckpointDirName(step) + kTempSuffix)).string();
  fs::remove_all(temp, error);
  LIKENESS_RETURN_IF_ERROR(Io(error, absl::StrCat("remove stale ", temp)));
  fs::create_directory(temp, error);
  LIKENESS_RETURN_IF_ERROR(Io(error, absl::StrCat("create ", temp)));
  return CheckpointWriter(output_dir, step, temp);
}

absl::StatusOr<std::string> CheckpointWriter::Commit(const nlohmann::json& extra) {
  LIKENESS_RETURN_IF_ERROR(CrashPoint(kCrashBeforeManifest));
  nlohmann::json manifest = extra;
  manifest["format"] = kCheckpointFormat;
  manifest["version"] = kCheckpointVersion;
  manifest["step"] = step_;
  nlohmann::json files = nlohmann::json::object();
  for (const std::string& name : files_) {
    std::error_code error;
    const auto size = fs::file_size(fs::path(temp_dir_) / name, error);
    LIKENESS_RETURN_IF_ERROR(Io(error, absl::StrCat("checkpoint file ", temp_dir_, "/", name)));
    files[name] = static_cast<uint64_t>(size);
  }
  manifest["files"] = files;
  LIKENESS_RETURN_IF_ERROR(WriteFileAtomically((fs::path(temp_dir_) / kManifestName).string(),
                                               manifest.dump(2) + "\n"));
  LIKENESS_RETURN_IF_ERROR(CrashPoint(kCrashBeforeRename));
  LIKENESS_RETURN_IF_ERROR(FsyncPath(temp_dir_));
  const std::string final_dir = (fs::path(output_dir_) / CheckpointDirName(step_)).string();
  const std::string aside = final_dir + kAsideSuffix;
  std::error_code error;
  const bool replacing = fs::exists(final_dir, error);
  if (replacing) {
    fs::remove_all(aside, error);
    fs::rename(final_dir, aside, error);
    LIKENESS_RETURN_IF_ERROR(Io(error, absl::StrCat("move aside ", final_dir)));
  }
  fs::rename(temp_dir_, final_dir, error);
  LIKENESS_RETURN_IF_ERROR(Io(error, absl::StrCat("rename ", temp_dir_, " to ", final_dir)));
  LIKENESS_RETURN_IF_ERROR(FsyncPath(output_dir_));
  if (replacing) fs::remove_all(aside, error);
  return final_dir;
}

absl::StatusOr<CheckpointInfo> ReadCheckpoint(const std::string& dir) {
  const std::string manifest_path = (fs::path(dir) / kManifestName).string();
  absl::StatusOr<std::string> text = ReadFileToString(manifest_path);
  if (!text.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint ", dir, " is incomplete: no ", kManifestName));
  }
  CheckpointInfo info;
  info.dir = dir;
  info.manifest = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!info.manifest.is_object() || info.manifest.value("format", "") != kCheckpointFormat ||
      !info.manifest.contains("step") || !info.manifest.contains("files")) {
    return absl::FailedPreconditionError(absl::StrCat(manifest_path, " is not a manifest"));
  }
  if (info.manifest.value("version", 0) != kCheckpointVersion) {
    return absl::FailedPreconditionError(absl::StrCat(manifest_path, ": version ",
                                                      info.manifest.value("version", 0),
                                                      " is not ", kCheckpointVersion));
  }
  info.step = info.manifest["step"].get<int64_t>();
  for (const auto& [name, size] : info.manifest["files"].items()) {
    std::error_code error;
    const auto actual = fs::file_size(fs::path(dir) / name, error);
    if (error || actual != size.get<uint64_t>()) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint ", dir, ": ", name, " is missing or has the wrong size"));
    }
  }
  return info;
}

absl::StatusOr<std::optional<CheckpointInfo>> FindLatestCheckpoint(const std::string& output_dir) {
  std::error_code error;
  std::optional<CheckpointInfo> best;
  if (!fs::is_directory(output_dir, error)) return best;
  std::vector<std::pair<int64_t, std::string>> candidates;
  for (const auto& entry : fs::directory_iterator(output_dir, error)) {
    const std::string name = entry.path().filename().string();
    absl::string_view rest = name;
    int64_t step = 0;
    if (!entry.is_directory() || !absl::ConsumePrefix(&rest, kCheckpointPrefix) ||
        !absl::SimpleAtoi(rest, &step) || CheckpointDirName(step) != name) {
      continue;  // *.tmp, *.old and anything else
    }
    candidates.emplace_back(step, entry.path().string());
  }
  LIKENESS_RETURN_IF_ERROR(Io(error, absl::StrCat("list ", output_dir)));
  std::sort(candidates.rbegin(), candidates.rend());
  for (const auto& [step, dir] : candidates) {
    absl::StatusOr<CheckpointInfo> info = ReadCheckpoint(dir);
    if (info.ok() && info->step == step) return std::optional<CheckpointInfo>(*std::move(info));
  }
  return best;
}

absl::Status PruneCheckpoints(const std::string& output_dir, int keep) {
  if (keep <= 0) return absl::OkStatus();
  std::vector<std::pair<int64_t, std::string>> complete;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(output_dir, error)) {
    const std::string name = entry.path().filename().string();
    absl::string_view rest = name;
    int64_t step = 0;
    if (entry.is_directory() && absl::ConsumePrefix(&rest, kCheckpointPrefix) &&
        absl::SimpleAtoi(rest, &step) && CheckpointDirName(step) == name &&
        ReadCheckpoint(entry.path().string()).ok()) {
      complete.emplace_back(step, entry.path().string());
    }
  }
  std::sort(complete.rbegin(), complete.rend());
  for (size_t i = static_cast<size_t>(keep); i < complete.size(); ++i) {
    fs::remove_all(complete[i].second, error);
    LIKENESS_RETURN_IF_ERROR(Io(error, absl::StrCat("remove ", complete[i].second)));
  }
  return absl::OkStatus();
}

}  // namespace likeness::train
