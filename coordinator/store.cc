#include "coordinator/store.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/constants.h"

namespace likeness::coordinator {
namespace {

constexpr int kSchemaVersion = 1;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (id TEXT PRIMARY KEY, proto BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, sweep_id TEXT NOT NULL, state INTEGER NOT NULL,
  attempt INTEGER NOT NULL, proto BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_by_sweep ON jobs (sweep_id);
CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, proto BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS job_transitions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, attempt INTEGER NOT NULL,
  from_state INTEGER NOT NULL, to_state INTEGER NOT NULL, worker_id TEXT NOT NULL,
  reason TEXT NOT NULL, time_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS transitions_by_job ON job_transitions (job_id, seq);
)sql";

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void BindText(int i, const std::string& text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const std::string& bytes) {
    sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  }
  void BindInt(int i, int64_t value) { sqlite3_bind_int64(stmt_, i, value); }
  int Step() { return sqlite3_step(stmt_); }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::string Column(int i) {
    const void* data = sqlite3_column_blob(stmt_, i);
    return data == nullptr ? "" : std::string(static_cast<const char*>(data),
                                              sqlite3_column_bytes(stmt_, i));
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

template <typename Proto>
absl::Status LoadProtos(sqlite3* db, const char* sql, const char* what, std::vector<Proto>* out) {
  Statement select(db, sql);
  if (!select.ok()) return absl::InternalError(absl::StrCat("journal: ", sqlite3_errmsg(db)));
  int rc;
  while ((rc = select.Step()) == SQLITE_ROW) {
    Proto proto;
    if (!proto.ParseFromString(select.Column(0))) {
      return absl::DataLossError(absl::StrCat("journal: a ", what, " row does not parse"));
    }
    out->push_back(std::move(proto));
  }
  if (rc != SQLITE_DONE) return absl::InternalError(absl::StrCat("journal: ", sqlite3_errmsg(db)));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat(path, ": cannot open the journal: ", message));
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, kSqliteBusyTimeoutMs);
  // WAL: readers never block the writer; FULL: a commit is on disk before Apply returns.
  LIKENESS_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  LIKENESS_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  LIKENESS_RETURN_IF_ERROR(store->Exec(kSchema));
  Statement version(db, "SELECT version FROM schema_version");
  if (!version.ok()) return store->Error("schema_version");
  if (version.Step() == SQLITE_ROW) {
    const int found = sqlite3_column_int(version.get(), 0);
    if (found != kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": journal schema version ", found, ", this coordinator reads ", kSchemaVersion));
    }
  } else {
    LIKENESS_RETURN_IF_ERROR(store->Exec(
        absl::StrCat("INSERT INTO schema_version VALUES (", kSchemaVersion, ")").c_str()));
  }
  return store;
}

Store::~Store() { sqlite3_close(db_); }

absl::Status Store::Error(const std::string& what) const {
  return absl::InternalError(absl::StrCat("journal: ", what, ": ", sqlite3_errmsg(db_)));
}

absl::Status Store::Exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    return absl::InternalError(absl::StrCat("journal: ", text));
  }
  return absl::OkStatus();
}

absl::Status Store::ApplyRows(const Mutation& mutation) {
  Statement sweep(db_, "INSERT OR REPLACE INTO sweeps (id, proto) VALUES (?, ?)");
  Statement job(db_,
                "INSERT OR REPLACE INTO jobs (id, sweep_id, state, attempt, proto) "
                "VALUES (?, ?, ?, ?, ?)");
  Statement worker(db_, "INSERT OR REPLACE INTO workers (id, proto) VALUES (?, ?)");
  Statement transition(db_,
                       "INSERT INTO job_transitions (job_id, attempt, from_state, to_state, "
                       "worker_id, reason, time_ms) VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!sweep.ok() || !job.ok() || !worker.ok() || !transition.ok()) return Error("prepare");
  for (const auto& [id, value] : mutation.sweeps) {
    sweep.BindText(1, id);
    sweep.BindBlob(2, value.SerializeAsString());
    if (sweep.Step() != SQLITE_DONE) return Error("write sweep " + id);
    sweep.Reset();
  }
  for (const auto& [id, value] : mutation.jobs) {
    job.BindText(1, id);
    job.BindText(2, value.sweep_id());
    job.BindInt(3, value.state());
    job.BindInt(4, value.attempt());
    job.BindBlob(5, value.SerializeAsString());
    if (job.Step() != SQLITE_DONE) return Error("write job " + id);
    job.Reset();
  }
  for (const auto& [id, value] : mutation.workers) {
    worker.BindText(1, id);
    worker.BindBlob(2, value.SerializeAsString());
    if (worker.Step() != SQLITE_DONE) return Error("write worker " + id);
    worker.Reset();
  }
  for (const Transition& row : mutation.transitions) {
    transition.BindText(1, row.job_id);
    transition.BindInt(2, row.attempt);
    transition.BindInt(3, row.from);
    transition.BindInt(4, row.to);
    transition.BindText(5, row.worker_id);
    transition.BindText(6, row.reason);
    transition.BindInt(7, row.time_ms);
    if (transition.Step() != SQLITE_DONE) return Error("write transition of " + row.job_id);
    transition.Reset();
  }
  return absl::OkStatus();
}

absl::Status Store::Apply(const Mutation& mutation) {
  if (mutation.empty()) return absl::OkStatus();
  LIKENESS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status status = ApplyRows(mutation);
  if (status.ok() && armed_crash_point_ == kCrashBeforeCommit) {
    status = absl::AbortedError(absl::StrCat("injected crash at ", kCrashBeforeCommit));
  }
  if (!status.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return status;
  }
  return Exec("COMMIT");
}

absl::StatusOr<Snapshot> Store::Load() {
  Snapshot snapshot;
  LIKENESS_RETURN_IF_ERROR(LoadProtos(db_, "SELECT proto FROM sweeps", "sweep", &snapshot.sweeps));
  LIKENESS_RETURN_IF_ERROR(LoadProtos(db_, "SELECT proto FROM jobs", "job", &snapshot.jobs));
  LIKENESS_RETURN_IF_ERROR(
      LoadProtos(db_, "SELECT proto FROM workers", "worker", &snapshot.workers));
  return snapshot;
}

absl::StatusOr<std::vector<Transition>> Store::Transitions(const std::string& job_id) {
  Statement select(db_,
                   "SELECT attempt, from_state, to_state, worker_id, reason, time_ms "
                   "FROM job_transitions WHERE job_id = ? ORDER BY seq");
  if (!select.ok()) return Error("prepare");
  select.BindText(1, job_id);
  std::vector<Transition> rows;
  int rc;
  while ((rc = select.Step()) == SQLITE_ROW) {
    Transition row;
    row.job_id = job_id;
    row.attempt = sqlite3_column_int(select.get(), 0);
    row.from = static_cast<v1::JobState>(sqlite3_column_int(select.get(), 1));
    row.to = static_cast<v1::JobState>(sqlite3_column_int(select.get(), 2));
    row.worker_id = select.Column(3);
    row.reason = select.Column(4);
    row.time_ms = sqlite3_column_int64(select.get(), 5);
    rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return Error("read transitions");
  return rows;
}

}  // namespace likeness::coordinator
