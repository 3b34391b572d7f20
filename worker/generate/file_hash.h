// The hashes AUTOMATIC1111 shows for models and LoRAs, so an image's "Model hash" and "Lora
// hashes" match what A1111, ComfyUI's A1111 readers and model sites (Civitai) list:
//   * model: sha256 of the whole checkpoint file, first 10 hex digits ("AutoV2");
//   * LoRA:  sha256 of a .safetensors file's bytes after its header (the "addnet" hash, so
//            editing metadata does not change it), first 12 hex digits.
// Hashing SDXL (6.9 GB) takes seconds, so full hashes are cached in
// $XDG_CACHE_HOME/likeness/hashes.json (~/.cache/...), keyed by path, size and mtime.
#ifndef LIKENESS_WORKER_GENERATE_FILE_HASH_H_
#define LIKENESS_WORKER_GENERATE_FILE_HASH_H_

#include <string>

#include "absl/status/statusor.h"

namespace likeness::generate {

inline constexpr size_t kModelShortHashDigits = 10;
inline constexpr size_t kLoraShortHashDigits = 12;
// Set to a folder to move the hash cache, or to "off" to disable it.
inline constexpr char kHashCacheEnv[] = "LIKENESS_HASH_CACHE";

enum class HashKind {
  kWholeFile,            // sha256 of every byte
  kSafetensorsPayload,   // sha256 of the bytes after the 8-byte length and the JSON header
};

// Lower-case hex sha256 of `path` by `kind`, from the cache when the file is unchanged.
// NOT_FOUND / INVALID_ARGUMENT naming the file.
absl::StatusOr<std::string> FileSha256(const std::string& path, HashKind kind);

// A1111's "Model hash" of a checkpoint: a single file, or for a diffusers folder its UNet
// weights file (A1111 cannot load folders; this still identifies the weights).
absl::StatusOr<std::string> ModelShortHash(const std::string& model_path);
absl::StatusOr<std::string> LoraShortHash(const std::string& lora_path);

}  // namespace likeness::generate

#endif  // LIKENESS_WORKER_GENERATE_FILE_HASH_H_
