#include "worker/generate/file_hash.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "nlohmann/json.hpp"

namespace likeness::generate {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadChunkBytes = 8 << 20;
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100 << 20;
constexpr char kCacheFileName[] = "hashes.json";
constexpr char kCacheOff[] = "off";
// A diffusers folder's UNet weights, in the order diffusers prefers them.
constexpr const char* kUnetWeightFiles[] = {
    "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/diffusion_pytorch_model.safetensors.index.json"};

std::mutex cache_mutex;

std::string CachePath() {
  if (const char* dir = std::getenv(kHashCacheEnv); dir != nullptr && *dir != '\0') {
    if (std::string(dir) == kCacheOff) return "";
    return absl::StrCat(dir, "/", kCacheFileName);
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return absl::StrCat(xdg, "/likeness/", kCacheFileName);
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return absl::StrCat(home, "/.cache/likeness/", kCacheFileName);
  }
  return "";
}

// "path|size|mtime_ns|kind": any change to the file makes a new key.
absl::StatusOr<std::string> CacheKey(const std::string& path, HashKind kind) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot read the file to hash it"));
  }
  std::error_code ignored;
  const fs::path absolute = fs::absolute(path, ignored);
  return absl::StrCat(absolute.string(), "|", info.st_size, "|",
                      static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec,
                      "|", kind == HashKind::kWholeFile ? "file" : "payload");
}

nlohmann::json ReadCache(const std::string& cache_path) {
  absl::StatusOr<std::string> text = ReadFileToString(cache_path);
  if (!text.ok()) return nlohmann::json::object();
  nlohmann::json cache = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  return cache.is_object() ? cache : nlohmann::json::object();
}

absl::StatusOr<std::string> HashFile(const std::string& path, HashKind kind) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the file to hash it"));
  if (kind == HashKind::kSafetensorsPayload) {
    unsigned char length_bytes[8];
    if (!in.read(reinterpret_cast<char*>(length_bytes), 8)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a safetensors file (too short)"));
    }
    uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = (header << 8) | length_bytes[i];
    if (header > kMaxSafetensorsHeaderBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not a safetensors file (header length ", header, ")"));
    }
    in.seekg(static_cast<std::streamoff>(8 + header));
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                  &EVP_MD_CTX_free);
  EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr);
  std::vector<char> buffer(kReadChunkBytes);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(context.get(), buffer.data(), in.gcount());
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error while hashing"));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(context.get(), digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    char pair[3];
    std::snprintf(pair, sizeof(pair), "%02x", digest[i]);
    hex += pair;
  }
  return hex;
}

}  // namespace

absl::StatusOr<std::string> FileSha256(const std::string& path, HashKind kind) {
  absl::StatusOr<std::string> key = CacheKey(path, kind);
  if (!key.ok()) return key.status();
  const std::string cache_path = CachePath();
  if (!cache_path.empty()) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    const nlohmann::json cache = ReadCache(cache_path);
    if (auto it = cache.find(*key); it != cache.end() && it->is_string()) {
      return it->get<std::string>();
    }
  }
  absl::StatusOr<std::string> hash = HashFile(path, kind);
  if (!hash.ok() || cache_path.empty()) return hash;
  std::lock_guard<std::mutex> lock(cache_mutex);
  nlohmann::json cache = ReadCache(cache_path);
  cache[*key] = *hash;
  std::error_code ignored;
  fs::create_directories(fs::path(cache_path).parent_path(), ignored);
  // The cache is an optimisation: a read-only home must not fail a generation.
  (void)WriteFileAtomically(cache_path, cache.dump(1));
  return hash;
}

absl::StatusOr<std::string> ModelShortHash(const std::string& model_path) {
  std::string file = model_path;
  std::error_code error;
  if (fs::is_directory(model_path, error)) {
    file.clear();
    for (const char* candidate : kUnetWeightFiles) {
      const std::string path = absl::StrCat(model_path, "/", candidate);
      if (fs::exists(path, error)) {
        file = path;
        break;
      }
    }
    if (file.empty()) {
      return absl::NotFoundError(absl::StrCat(model_path, ": no UNet weights to hash"));
    }
  }
  absl::StatusOr<std::string> hash = FileSha256(file, HashKind::kWholeFile);
  if (!hash.ok()) return hash.status();
  return hash->substr(0, kModelShortHashDigits);
}

absl::StatusOr<std::string> LoraShortHash(const std::string& lora_path) {
  absl::StatusOr<std::string> hash = FileSha256(lora_path, HashKind::kSafetensorsPayload);
  if (!hash.ok()) return hash.status();
  return hash->substr(0, kLoraShortHashDigits);
}

}  // namespace likeness::generate
