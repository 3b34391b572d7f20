// Checkpoint folders of a training run: <output_dir>/step-<N>/, and how one is committed so
// that a crash at any moment leaves either the complete folder or none under that name.
//
// Commit sequence (CheckpointWriter):
//   1. Begin: remove a leftover step-N.tmp/ (a crash's) and create it empty.
//   2. The caller writes every payload file into step-N.tmp/, each atomically and fsynced
//      (trained weights, optimizer/RNG/data state), and names it with AddFile.
//      Crash point kCrashBeforeManifest fires after this step.
//   3. Commit writes manifest.json LAST (format, step, every file with its size): a folder
//      without a readable manifest is never a checkpoint.
//      Crash point kCrashBeforeRename fires after this step.
//   4. fsync step-N.tmp/, rename it to step-N/ (atomic on POSIX; an existing step-N/ from an
//      earlier attempt is moved aside first and removed after), fsync <output_dir>.
// Reading (FindLatestCheckpoint): only folders named exactly step-<N> whose manifest parses
// and whose files exist with the recorded sizes count; *.tmp folders are ignored. Resume
// takes the largest such N.
#ifndef LIKENESS_WORKER_TRAIN_CHECKPOINT_H_
#define LIKENESS_WORKER_TRAIN_CHECKPOINT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace likeness::train {

inline constexpr char kCheckpointPrefix[] = "step-";
inline constexpr char kTempSuffix[] = ".tmp";
inline constexpr char kManifestName[] = "manifest.json";
inline constexpr char kCheckpointFormat[] = "likeness-train-checkpoint";
inline constexpr int kCheckpointVersion = 1;

// Named crash points (RocksDB kill-point style): a test arms one, and the commit returns
// ABORTED "injected crash at <name>" there, leaving the disk as a crash would.
inline constexpr char kCrashBeforeManifest[] = "checkpoint.before_manifest";
inline constexpr char kCrashBeforeRename[] = "checkpoint.before_rename";
void ArmCrashPoint(const std::string& name);
void DisarmCrashPoints();
// ABORTED when `name` is armed (it stays armed), OK otherwise.
absl::Status CrashPoint(const char* name);

std::string CheckpointDirName(int64_t step);  // "step-<N>"

class CheckpointWriter {
 public:
  // Step 1. Creates <output_dir> too when missing.
  static absl::StatusOr<CheckpointWriter> Begin(const std::string& output_dir, int64_t step);

  // step-N.tmp/: where the payload goes.
  const std::string& dir() const { return temp_dir_; }
  // Step 2: records `name` (a file already written in dir()).
  void AddFile(const std::string& name) { files_.push_back(name); }
  // Steps 3-4; `extra` is merged into the manifest. Returns the final folder.
  absl::StatusOr<std::string> Commit(const nlohmann::json& extra = nlohmann::json::object());

 private:
  CheckpointWriter(std::string output_dir, int64_t step, std::string temp_dir)
      : output_dir_(std::move(output_dir)), step_(step), temp_dir_(std::move(temp_dir)) {}
  std::string output_dir_;
  int64_t step_;
  std::string temp_dir_;
  std::vector<std::string> files_;
};

struct CheckpointInfo {
  int64_t step = 0;
  std::string dir;
  nlohmann::json manifest;
};

// The manifest of a complete checkpoint folder; FAILED_PRECONDITION naming what is wrong.
absl::StatusOr<CheckpointInfo> ReadCheckpoint(const std::string& dir);
// The complete checkpoint with the largest step, or nullopt when there is none.
absl::StatusOr<std::optional<CheckpointInfo>> FindLatestCheckpoint(const std::string& output_dir);
// Removes complete checkpoints older than the newest `keep` (keep <= 0: none removed).
absl::Status PruneCheckpoints(const std::string& output_dir, int keep);

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_CHECKPOINT_H_
