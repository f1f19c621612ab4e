#include "coordinator/job_store.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <functional>
#include <set>
#include <unordered_map>
#include <utility>

#include <sqlite3.h>

#include "coordinator/sqlite_util.h"

namespace gb::coord {

namespace {

using sqlite::Stmt;
using sqlite::Transaction;

constexpr std::array<std::string_view, 8> kStateNames = {
    "pending", "leased", "running", "succeeded", "failed", "oom", "timeout", "cancelled"};

// ---------------------------------------------------------------------------------
// Schema. Migrations are applied in order, each in the same transaction as the
// bump of PRAGMA user_version and its row in schema_migrations. Never edit a
// migration that has shipped: add the next one.
struct Migration {
  int version;
  const char* name;
  const char* sql;
};

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "initial schema", R"sql(
CREATE TABLE schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_ms INTEGER NOT NULL
);

CREATE TABLE grids (
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL UNIQUE,
  source       TEXT NOT NULL DEFAULT '',
  spec_json    TEXT NOT NULL DEFAULT '{}',
  created_ms   INTEGER NOT NULL,
  updated_ms   INTEGER NOT NULL,
  cancelled_ms INTEGER
);

CREATE TABLE jobs (
  id               INTEGER PRIMARY KEY,
  hash             TEXT NOT NULL UNIQUE,
  kind             TEXT NOT NULL,
  params_json      TEXT NOT NULL,
  repeat           INTEGER NOT NULL DEFAULT 0,
  state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN
                     ('pending','leased','running','succeeded','failed','oom','timeout','cancelled')),
  attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts     INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
  lease_owner      TEXT,
  lease_expires_ms INTEGER,
  lease_run_id     INTEGER REFERENCES runs(id),
  error            TEXT NOT NULL DEFAULT '',
  created_ms       INTEGER NOT NULL,
  started_ms       INTEGER,
  finished_ms      INTEGER,
  result_run_id    INTEGER REFERENCES runs(id),
  -- a job holds a lease exactly while it is leased or running
  CHECK ((state IN ('leased','running')) =
         (lease_run_id IS NOT NULL AND lease_owner IS NOT NULL AND lease_expires_ms IS NOT NULL))
);

CREATE TABLE grid_jobs (
  grid_id  INTEGER NOT NULL REFERENCES grids(id) ON DELETE CASCADE,
  job_id   INTEGER NOT NULL REFERENCES jobs(id),
  position INTEGER NOT NULL,
  PRIMARY KEY (grid_id, job_id)
);

CREATE TABLE runs (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id         INTEGER NOT NULL REFERENCES jobs(id),
  attempt        INTEGER NOT NULL,
  owner          TEXT NOT NULL,
  state          TEXT NOT NULL CHECK (state IN
                   ('leased','running','succeeded','failed','oom','timeout','released','expired','cancelled')),
  started_ms     INTEGER NOT NULL,
  finished_ms    INTEGER,
  wall_ms        REAL,
  device_json    TEXT,
  engine_version TEXT,
  error          TEXT NOT NULL DEFAULT ''
);

CREATE TABLE results (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  metric TEXT NOT NULL,
  value  REAL,
  unit   TEXT NOT NULL DEFAULT '',
  text   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, metric)
);

CREATE TABLE series (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  name   TEXT NOT NULL,
  idx    INTEGER NOT NULL,
  x      REAL,
  y      REAL,
  x_unit TEXT NOT NULL DEFAULT '',
  y_unit TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, name, idx)
);

CREATE TABLE workers (
  id            INTEGER PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  device_json   TEXT NOT NULL DEFAULT '{}',
  slots         INTEGER NOT NULL DEFAULT 1,
  registered_ms INTEGER NOT NULL,
  last_seen_ms  INTEGER NOT NULL,
  state         TEXT NOT NULL DEFAULT 'online'
);

CREATE INDEX jobs_state ON jobs(state);
CREATE INDEX jobs_lease_expiry ON jobs(state, lease_expires_ms);
CREATE INDEX jobs_lease_owner ON jobs(lease_owner);
CREATE INDEX grid_jobs_position ON grid_jobs(grid_id, position);
CREATE INDEX grid_jobs_job ON grid_jobs(job_id);
CREATE INDEX runs_job ON runs(job_id, attempt);
CREATE INDEX runs_state ON runs(state);
CREATE INDEX workers_state ON workers(state);

CREATE VIEW v_results AS
SELECT g.name            AS grid,
       gj.position       AS position,
       j.id              AS job_id,
       j.hash            AS job_hash,
       j.kind            AS kind,
       j.params_json     AS params_json,
       j.repeat          AS repeat,
       ru.id             AS run_id,
       r.metric          AS metric,
       r.value           AS value,
       r.unit            AS unit,
       r.text            AS text,
       ru.engine_version AS engine_version,
       ru.device_json    AS device_json
FROM grids g
JOIN grid_jobs gj ON gj.grid_id = g.id
JOIN jobs j       ON j.id = gj.job_id
JOIN runs ru      ON ru.id = j.result_run_id
JOIN results r    ON r.run_id = ru.id;

CREATE VIEW v_grid_status AS
SELECT g.name AS grid, j.state AS state, COUNT(*) AS count
FROM grids g
JOIN grid_jobs gj ON gj.grid_id = g.id
JOIN jobs j       ON j.id = gj.job_id
GROUP BY g.name, j.state;

CREATE VIEW v_jobs AS
SELECT g.name AS grid, gj.position AS position, j.id AS job_id, j.hash AS job_hash,
       j.kind AS kind, j.params_json AS params_json, j.repeat AS repeat, j.state AS state,
       j.attempts AS attempts, j.max_attempts AS max_attempts, j.lease_owner AS lease_owner,
       j.lease_expires_ms AS lease_expires_ms, j.error AS error,
       j.result_run_id AS result_run_id
FROM grids g
JOIN grid_jobs gj ON gj.grid_id = g.id
JOIN jobs j       ON j.id = gj.job_id;
)sql"},
      {2, "placement requirements, run progress, worker states", R"sql(
ALTER TABLE jobs ADD COLUMN req_device TEXT NOT NULL DEFAULT 'any'
  CHECK (req_device IN ('any', 'cpu', 'cuda'));
ALTER TABLE jobs ADD COLUMN req_memory_bytes INTEGER NOT NULL DEFAULT 0 CHECK (req_memory_bytes >= 0);
ALTER TABLE runs ADD COLUMN progress REAL;
ALTER TABLE runs ADD COLUMN progress_message TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN engine_version TEXT NOT NULL DEFAULT '';
-- Lease order without a sort: the smallest (grid_id << 32) + position over the
-- grids that link the job; NULL when none does.
ALTER TABLE jobs ADD COLUMN queue_key INTEGER;
UPDATE jobs SET queue_key = (SELECT MIN((gj.grid_id << 32) + gj.position) FROM grid_jobs gj
                             WHERE gj.job_id = jobs.id);
CREATE INDEX jobs_queue ON jobs(state, queue_key);
-- jobs_queue and jobs_lease_expiry both start with state: one index less to update.
DROP INDEX jobs_state;
UPDATE workers SET state = CASE state WHEN 'online' THEN 'active' WHEN 'offline' THEN 'lost' ELSE state END;

DROP VIEW v_jobs;
CREATE VIEW v_jobs AS
SELECT g.name AS grid, gj.position AS position, j.id AS job_id, j.hash AS job_hash,
       j.kind AS kind, j.params_json AS params_json, j.repeat AS repeat, j.state AS state,
       j.attempts AS attempts, j.max_attempts AS max_attempts, j.lease_owner AS lease_owner,
       j.lease_expires_ms AS lease_expires_ms, j.error AS error,
       j.result_run_id AS result_run_id, j.req_device AS req_device,
       j.req_memory_bytes AS req_memory_bytes
FROM grids g
JOIN grid_jobs gj ON gj.grid_id = g.id
JOIN jobs j       ON j.id = gj.job_id;
)sql"},
  };
  return kMigrations;
}

std::string str(JobState s) { return std::string(state_name(s)); }

Error db_error(const std::string& path, const std::string& what) { return Error{path + ": " + what}; }

std::string dump_json(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Result<Json> parse_json_column(const std::string& text, const std::string& what) {
  if (text.empty()) return Json::object();
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{what + " is not valid JSON"};
  return j;
}

Result<JobState> parse_state_column(const std::string& s, const std::string& what) {
  auto st = parse_state(s);
  if (!st) return Error{what + ": unknown state '" + s + "'"};
  return *st;
}

Result<int64_t> grid_id_of(sqlite::StmtCache& db, const std::string& name, const std::string& path) {
  auto st = db.get("SELECT id FROM grids WHERE name = ?1");
  if (!st.ok()) return st.error();
  st->bind(1, name);
  auto row = st->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error{"no grid named '" + name + "' in " + path};
  return st->int64(0);
}

// The job a run belongs to, when that run is the job's current lease held by `owner`.
struct HeldLease {
  int64_t job_id = 0;
  std::string hash;
  JobState state = JobState::kPending;
  int attempts = 0;
  int max_attempts = 0;
};

Result<HeldLease> check_lease(sqlite::StmtCache& db, int64_t run_id, const std::string& owner) {
  auto st = db.get("SELECT j.id, j.hash, j.state, j.lease_owner, j.lease_run_id, j.attempts, "
                   "j.max_attempts FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?1");
  if (!st.ok()) return st.error();
  st->bind(1, run_id);
  auto row = st->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error{"run " + std::to_string(run_id) + " does not exist"};
  HeldLease h;
  h.job_id = st->int64(0);
  h.hash = st->text(1);
  auto state = parse_state_column(st->text(2), "job " + h.hash);
  if (!state.ok()) return state.error();
  h.state = *state;
  std::string lease_owner = st->is_null(3) ? "" : st->text(3);
  int64_t lease_run = st->is_null(4) ? 0 : st->int64(4);
  h.attempts = static_cast<int>(st->int64(5));
  h.max_attempts = static_cast<int>(st->int64(6));
  bool held = (h.state == JobState::kLeased || h.state == JobState::kRunning) &&
              lease_run == run_id && lease_owner == owner;
  if (!held) {
    return Error{"run " + std::to_string(run_id) + " of job " + h.hash + " is not leased by " + owner +
                 " (state " + str(h.state) + ", owner " + (lease_owner.empty() ? "none" : lease_owner) +
                 ", current run " + (lease_run == 0 ? "none" : std::to_string(lease_run)) + ")"};
  }
  return h;
}

Status exec_bound(sqlite3* db, const char* sql, const std::function<void(Stmt&)>& bind) {
  auto st = Stmt::prepare(db, sql);
  if (!st.ok()) return st.status();
  bind(*st);
  return st->run();
}

Status exec_bound(sqlite::StmtCache& db, const char* sql, const std::function<void(Stmt&)>& bind) {
  auto st = db.get(sql);
  if (!st.ok()) return st.status();
  bind(*st);
  return st->run();
}

// Ends the run `run_id` in `run_state` with `run_error` and clears the lease of its
// job, which goes to `job_state` (pending or terminal) with `job_error`; when
// `give_back_attempt`, the run does not count as an attempt.
Status end_lease(sqlite::StmtCache& db, int64_t job_id, int64_t run_id, std::string_view run_state,
                 JobState job_state, const std::string& run_error, const std::string& job_error,
                 int64_t now, bool give_back_attempt) {
  GB_RETURN_IF_ERROR(exec_bound(
      db, "UPDATE runs SET state = ?2, finished_ms = ?3, error = ?4 WHERE id = ?1", [&](Stmt& s) {
        s.bind(1, run_id).bind(2, run_state).bind(3, now).bind(4, run_error);
      }));
  return exec_bound(db,
                    "UPDATE jobs SET state = ?2, lease_owner = NULL, lease_expires_ms = NULL, "
                    "lease_run_id = NULL, error = ?3, "
                    "finished_ms = CASE WHEN ?2 = 'pending' THEN NULL ELSE ?4 END, "
                    "attempts = CASE WHEN ?5 THEN MAX(attempts - 1, 0) ELSE attempts END "
                    "WHERE id = ?1",
                    [&](Stmt& s) {
                      s.bind(1, job_id).bind(2, state_name(job_state)).bind(3, job_error).bind(4, now);
                      s.bind(5, give_back_attempt ? 1 : 0);
                    });
}

// Returns the leases chosen by `select_sql` (columns: job id, run id, owner, attempts,
// max_attempts; parameter ?1 bound by `bind`) to pending, or to failed when their
// attempts are spent. Runs end as 'expired'.
Result<int64_t> return_leases(sqlite::StmtCache& db, const char* select_sql, const std::function<void(Stmt&)>& bind,
                              const std::string& why, int64_t now) {
  struct Row {
    int64_t job_id, run_id;
    std::string owner;
    int64_t attempts, max_attempts;
  };
  std::vector<Row> rows;
  {
    auto st = db.get(select_sql);
    if (!st.ok()) return st.error();
    bind(*st);
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      rows.push_back({st->int64(0), st->int64(1), st->text(2), st->int64(3), st->int64(4)});
    }
  }
  for (const Row& r : rows) {
    std::string run_error = why + " (owner " + r.owner + ")";
    bool spent = r.attempts >= r.max_attempts;
    std::string job_error =
        spent ? why + " after " + std::to_string(r.attempts) + " attempts (last owner " + r.owner + ")"
              : run_error;
    GB_RETURN_IF_ERROR(end_lease(db, r.job_id, r.run_id, "expired",
                                 spent ? JobState::kFailed : JobState::kPending, run_error, job_error,
                                 now, /*give_back_attempt=*/false));
  }
  return static_cast<int64_t>(rows.size());
}

Result<StoredJob> read_stored_job(const Stmt& st, int first_col, bool parse_params) {
  // Columns: id, hash, kind, params_json, repeat, state, attempts, max_attempts,
  // lease_owner, lease_expires_ms, error, result_run_id.
  int c = first_col;
  StoredJob j;
  j.id = st.int64(c + 0);
  j.hash = st.text(c + 1);
  j.kind = st.text(c + 2);
  j.params_json = st.text(c + 3);
  if (parse_params) {
    auto params = parse_json_column(j.params_json, "params_json of job " + j.hash);
    if (!params.ok()) return params.error();
    j.params = std::move(*params);
  }
  j.repeat = static_cast<int>(st.int64(c + 4));
  auto state = parse_state_column(st.text(c + 5), "job " + j.hash);
  if (!state.ok()) return state.error();
  j.state = *state;
  j.attempts = static_cast<int>(st.int64(c + 6));
  j.max_attempts = static_cast<int>(st.int64(c + 7));
  j.lease_owner = st.text(c + 8);
  j.lease_expires_ms = st.int64(c + 9);
  j.error = st.text(c + 10);
  j.result_run_id = st.int64(c + 11);
  j.req_device = st.text(c + 12);
  j.req_memory_bytes = st.int64(c + 13);
  j.progress = st.real(c + 14);
  j.progress_message = st.text(c + 15);
  return j;
}

// Needs "LEFT JOIN runs lr ON lr.id = j.lease_run_id" (the current run's progress).
constexpr const char* kStoredJobColumns =
    "j.id, j.hash, j.kind, j.params_json, j.repeat, j.state, j.attempts, j.max_attempts, "
    "j.lease_owner, j.lease_expires_ms, j.error, j.result_run_id, j.req_device, j.req_memory_bytes, "
    "IFNULL(lr.progress, 0), IFNULL(lr.progress_message, '')";

// Binds a capacity as three parameters from `first` on: the largest memory for
// "any", "cpu" and "cuda" jobs (-1: none of that kind). Used with fits_capacity_sql.
void bind_capacity(Stmt& st, int first, const DeviceCapacity& c) {
  st.bind(first, c.any).bind(first + 1, c.cpu).bind(first + 2, c.cuda);
}

// SQL: job j fits the capacity bound at ?first, ?first+1, ?first+2.
std::string fits_capacity_sql(int first) {
  auto p = [&](int k) { return "?" + std::to_string(first + k); };
  return "((j.req_device = 'any' AND j.req_memory_bytes <= " + p(0) + ") OR (j.req_device = 'cpu' AND " +
         "j.req_memory_bytes <= " + p(1) + ") OR (j.req_device = 'cuda' AND j.req_memory_bytes <= " + p(2) +
         "))";
}

Result<WorkerRecord> read_worker(const Stmt& st) {
  // Columns: id, name, device_json, slots, engine_version, state, registered_ms, last_seen_ms.
  WorkerRecord w;
  w.id = st.int64(0);
  w.name = st.text(1);
  auto devices = parse_json_column(st.text(2), "device_json of worker " + w.name);
  if (!devices.ok()) return devices.error();
  w.devices = devices->is_array() ? std::move(*devices) : Json::array();
  w.slots = static_cast<int>(st.int64(3));
  w.engine_version = st.text(4);
  w.state = st.text(5);
  w.registered_ms = st.int64(6);
  w.last_seen_ms = st.int64(7);
  return w;
}

constexpr const char* kWorkerColumns =
    "id, name, device_json, slots, engine_version, state, registered_ms, last_seen_ms";

}  // namespace

// ---------------------------------------------------------------------------------

std::string_view state_name(JobState s) { return kStateNames[static_cast<size_t>(s)]; }

std::optional<JobState> parse_state(std::string_view s) {
  for (size_t i = 0; i < kStateNames.size(); ++i) {
    if (kStateNames[i] == s) return static_cast<JobState>(i);
  }
  return std::nullopt;
}

bool is_terminal(JobState s) {
  switch (s) {
    case JobState::kSucceeded:
    case JobState::kFailed:
    case JobState::kOom:
    case JobState::kTimeout:
    case JobState::kCancelled:
      return true;
    default:
      return false;
  }
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int job_store_schema_version() { return migrations().back().version; }

void DeviceCapacity::add_device(std::string_view kind, double memory_bytes) {
  any = std::max(any, memory_bytes);
  if (kind == "cpu") cpu = std::max(cpu, memory_bytes);
  if (kind == "cuda") cuda = std::max(cuda, memory_bytes);
}

void DeviceCapacity::merge(const DeviceCapacity& other) {
  any = std::max(any, other.any);
  cpu = std::max(cpu, other.cpu);
  cuda = std::max(cuda, other.cuda);
}

bool DeviceCapacity::can_run(std::string_view req_device, double memory_bytes) const {
  if (req_device == "any") return memory_bytes <= any;
  if (req_device == "cpu") return memory_bytes <= cpu;
  if (req_device == "cuda") return memory_bytes <= cuda;
  return false;
}

JobStore::JobStore(sqlite3* db, std::string path)
    : db_(db), stmts_(std::make_unique<sqlite::StmtCache>(db)), path_(std::move(path)) {}

JobStore::~JobStore() {
  if (checkpointer_.joinable()) {
    {
      std::lock_guard lock(checkpoint_mu_);
      checkpoint_stop_ = true;
    }
    checkpoint_cv_.notify_all();
    checkpointer_.join();
  }
  stmts_.reset();  // finalizes the prepared statements before the connection closes
  int rc = sqlite3_close_v2(db_);
  if (rc != SQLITE_OK) std::fprintf(stderr, "gridbench: closing %s: %s\n", path_.c_str(), sqlite3_errstr(rc));
}

int JobStore::schema_version() const { return schema_version_; }

Status JobStore::start_background_checkpoints(int interval_ms) {
  if (interval_ms < 1) return Error{"checkpoint interval must be >= 1 ms"};
  if (checkpointer_.joinable()) return Error{path_ + ": background checkpoints already started"};
  sqlite3* conn = nullptr;
  int rc = sqlite3_open_v2(path_.c_str(), &conn, SQLITE_OPEN_READWRITE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = conn != nullptr ? sqlite3_errmsg(conn) : sqlite3_errstr(rc);
    sqlite3_close_v2(conn);
    return db_error(path_, "cannot open a checkpoint connection: " + msg);
  }
  sqlite3_busy_timeout(conn, 1000);
  // A connection learns that the database is in WAL mode when it first reads it;
  // until then a checkpoint does nothing.
  if (Status st = sqlite::exec(conn, "SELECT COUNT(*) FROM sqlite_master"); !st.ok()) {
    sqlite3_close_v2(conn);
    return db_error(path_, "checkpoint connection: " + st.message());
  }
  {
    std::lock_guard lock(mu_);
    if (Status st = sqlite::exec(db_, "PRAGMA wal_autocheckpoint=0"); !st.ok()) {
      sqlite3_close_v2(conn);
      return db_error(path_, st.message());
    }
  }
  checkpointer_ = std::thread([this, conn, interval_ms] { checkpoint_loop(conn, interval_ms); });
  return Status();
}

void JobStore::checkpoint_loop(sqlite3* conn, int interval_ms) {
  std::unique_lock lock(checkpoint_mu_);
  while (!checkpoint_cv_.wait_for(lock, std::chrono::milliseconds(interval_ms), [&] { return checkpoint_stop_; })) {
    lock.unlock();
    int wal_frames = 0, checkpointed = 0;
    const int rc = sqlite3_wal_checkpoint_v2(conn, nullptr, SQLITE_CHECKPOINT_PASSIVE, &wal_frames, &checkpointed);
    // Under constant writes the WAL is never found fully copied at the start of a
    // write, so it is never rewound and would grow without bound: past
    // kRestartFrames, wait for the writers once and rewind it.
    constexpr int kRestartFrames = 8000;  // 32 MiB of 4 KiB pages
    if (rc == SQLITE_OK && wal_frames > kRestartFrames)
      sqlite3_wal_checkpoint_v2(conn, nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
      std::fprintf(stderr, "gridbench: checkpointing %s: %s\n", path_.c_str(), sqlite3_errmsg(conn));
    lock.lock();
  }
  lock.unlock();
  sqlite3_wal_checkpoint_v2(conn, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  sqlite3_close_v2(conn);
}

Result<std::unique_ptr<JobStore>> JobStore::open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  // The JobStore owns the handle from here on, so every early return closes it.
  std::unique_ptr<JobStore> store(new JobStore(raw, path));
  if (rc != SQLITE_OK) {
    std::string msg = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return db_error(path, "cannot open database: " + msg);
  }
  sqlite3* db = raw;
  auto fail = [&](const Status& st) { return db_error(path, st.message()); };

  Status st = sqlite::check(db, sqlite3_extended_result_codes(db, 1), "enable extended result codes");
  if (st.ok()) st = sqlite::check(db, sqlite3_busy_timeout(db, 5000), "set busy_timeout 5000");
  if (!st.ok()) return fail(st);

  const int known = job_store_schema_version();
  auto version = sqlite::query_int(db, "PRAGMA user_version");
  if (!version.ok()) return fail(version.status());
  auto newer = [&](int64_t v) {
    return db_error(path, "database schema version " + std::to_string(v) +
                              " is newer than this gridbench knows (" + std::to_string(known) +
                              "); use a newer gridbench");
  };
  if (*version > known) return newer(*version);

  {
    auto mode = Stmt::prepare(db, "PRAGMA journal_mode=WAL");
    if (!mode.ok()) return fail(mode.status());
    auto row = mode->step();
    if (!row.ok()) return fail(row.status());
    std::string m = *row ? mode->text(0) : "";
    if (m != "wal" && m != "memory") return db_error(path, "cannot turn on WAL (journal_mode is '" + m + "')");
  }
  st = sqlite::exec(db, "PRAGMA synchronous=NORMAL");
  if (st.ok()) st = sqlite::exec(db, "PRAGMA foreign_keys=ON");
  if (!st.ok()) return fail(st);

  // Migrations: re-read the version under the write lock, so that two processes
  // opening a fresh file at once apply each migration once.
  {
    auto txn = Transaction::begin(db, Transaction::Mode::kWrite);
    if (!txn.ok()) return fail(txn.status());
    auto current = sqlite::query_int(db, "PRAGMA user_version");
    if (!current.ok()) return fail(current.status());
    if (*current > known) return newer(*current);
    int64_t applied_ms = now_ms();
    for (const Migration& m : migrations()) {
      if (m.version <= *current) continue;
      st = sqlite::exec(db, m.sql);
      if (st.ok()) {
        st = exec_bound(db, "INSERT INTO schema_migrations(version, name, applied_ms) VALUES(?1, ?2, ?3)",
                        [&](Stmt& s) { s.bind(1, m.version).bind(2, m.name).bind(3, applied_ms); });
      }
      if (st.ok()) st = sqlite::exec(db, "PRAGMA user_version = " + std::to_string(m.version));
      if (!st.ok()) {
        return db_error(path, "migration " + std::to_string(m.version) + " (" + m.name + "): " + st.message());
      }
    }
    st = txn->commit();
    if (!st.ok()) return fail(st);
  }
  auto fk = sqlite::query_int(db, "PRAGMA foreign_keys");
  if (!fk.ok()) return fail(fk.status());
  if (*fk != 1) return db_error(path, "cannot turn on foreign keys");
  store->schema_version_ = known;
  return store;
}

// ---------------------------------------------------------------------------------
// Grids

Result<SubmitStats> JobStore::submit_grid(const Grid& grid, bool rerun, int max_attempts,
                                          const RequirementFn& requirement) {
  if (grid.name.empty()) return Error{"submit_grid: the grid has no name"};
  if (max_attempts < 1) return Error{"submit_grid: max_attempts must be >= 1, got " + std::to_string(max_attempts)};
  // Placement requirements, computed before taking the write lock.
  std::vector<engine::Requirement> reqs;
  reqs.reserve(grid.jobs.size());
  for (const GridJob& gj : grid.jobs) {
    engine::Requirement r;
    if (requirement) {
      r = requirement(gj);
    } else if (const engine::JobKind* k = engine::find_job_kind(gj.kind)) {
      r = engine::job_requirement(*k, gj.params);
    }
    if (!engine::valid_requirement_device(r.device) || r.memory_bytes < 0) {
      return Error{"submit_grid: job " + gj.hash + " has an invalid requirement (device '" + r.device +
                   "', " + std::to_string(r.memory_bytes) + " bytes)"};
    }
    reqs.push_back(std::move(r));
  }
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  const int64_t now = now_ms();
  SubmitStats stats;

  GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                "INSERT INTO grids(name, source, spec_json, created_ms, updated_ms) "
                                "VALUES(?1, ?2, ?3, ?4, ?4) ON CONFLICT(name) DO UPDATE SET "
                                "source = excluded.source, spec_json = excluded.spec_json, "
                                "updated_ms = excluded.updated_ms, cancelled_ms = NULL",
                                [&](Stmt& s) {
                                  s.bind(1, grid.name).bind(2, grid.source);
                                  s.bind(3, grid.spec.dump(-1, ' ', false, Json::error_handler_t::replace));
                                  s.bind(4, now);
                                }));
  auto gid = grid_id_of(*stmts_, grid.name, path_);
  if (!gid.ok()) return gid.error();
  stats.grid_id = *gid;
  // Relinked below: jobs that left the grid stay in `jobs`, only unlinked.
  GB_RETURN_IF_ERROR(exec_bound(*stmts_, "DELETE FROM grid_jobs WHERE grid_id = ?1",
                                [&](Stmt& s) { s.bind(1, stats.grid_id); }));

  auto insert = stmts_->get("INSERT INTO jobs(hash, kind, params_json, repeat, state, attempts, "
                            "max_attempts, created_ms) VALUES(?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6) "
                            "ON CONFLICT(hash) DO NOTHING");
  auto select = stmts_->get("SELECT id, state FROM jobs WHERE hash = ?1");
  auto reset = stmts_->get("UPDATE jobs SET state = 'pending', attempts = 0, max_attempts = ?2, "
                           "error = '', started_ms = NULL, finished_ms = NULL WHERE id = ?1");
  auto set_max = stmts_->get("UPDATE jobs SET max_attempts = ?2 WHERE id = ?1");
  auto link = stmts_->get("INSERT INTO grid_jobs(grid_id, job_id, position) VALUES(?1, ?2, ?3)");
  auto set_req = stmts_->get("UPDATE jobs SET req_device = ?2, req_memory_bytes = ?3 "
                             "WHERE id = ?1 AND (req_device <> ?2 OR req_memory_bytes <> ?3)");
  for (auto* s : {&insert, &select, &reset, &set_max, &link, &set_req}) {
    if (!s->ok()) return s->error();
  }

  std::set<std::string> seen;
  for (size_t pos = 0; pos < grid.jobs.size(); ++pos) {
    const GridJob& gj = grid.jobs[pos];
    if (!seen.insert(gj.hash).second) continue;  // the same job twice: its first position counts
    GB_RETURN_IF_ERROR(insert->reset());
    insert->bind(1, gj.hash).bind(2, gj.kind).bind(3, dump_json(gj.params)).bind(4, gj.repeat);
    insert->bind(5, max_attempts).bind(6, now);
    GB_RETURN_IF_ERROR(insert->run());

    GB_RETURN_IF_ERROR(select->reset());
    select->bind(1, gj.hash);
    auto row = select->step();
    if (!row.ok()) return row.error();
    if (!*row) return Error{"submit_grid: job " + gj.hash + " vanished after insert"};
    const int64_t job_id = select->int64(0);
    auto state = parse_state_column(select->text(1), "job " + gj.hash);
    if (!state.ok()) return state.error();

    bool do_reset = false;
    switch (*state) {
      case JobState::kSucceeded:
        if (rerun) {
          do_reset = true;
        } else {
          ++stats.reused;
        }
        break;
      case JobState::kFailed:
      case JobState::kOom:
      case JobState::kTimeout:
      case JobState::kCancelled:
        do_reset = true;
        break;
      case JobState::kPending:
        GB_RETURN_IF_ERROR(set_max->reset());
        set_max->bind(1, job_id).bind(2, max_attempts);
        GB_RETURN_IF_ERROR(set_max->run());
        ++stats.queued;
        break;
      case JobState::kLeased:
      case JobState::kRunning:
        ++stats.queued;  // unfinished: left to its lease holder
        break;
    }
    if (do_reset) {
      // result_run_id is kept: the old result stays the job's result until a new
      // success replaces it.
      GB_RETURN_IF_ERROR(reset->reset());
      reset->bind(1, job_id).bind(2, max_attempts);
      GB_RETURN_IF_ERROR(reset->run());
      ++stats.queued;
    }
    GB_RETURN_IF_ERROR(link->reset());
    link->bind(1, stats.grid_id).bind(2, job_id).bind(3, static_cast<int64_t>(pos));
    GB_RETURN_IF_ERROR(link->run());
    GB_RETURN_IF_ERROR(set_req->reset());
    set_req->bind(1, job_id).bind(2, reqs[pos].device).bind(3, reqs[pos].memory_bytes);
    GB_RETURN_IF_ERROR(set_req->run());
  }
  // Lease order (queue_key) of this grid's jobs, and of pending jobs that left it.
  GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                "UPDATE jobs SET queue_key = (SELECT MIN((gj.grid_id << 32) + gj.position) "
                                "FROM grid_jobs gj WHERE gj.job_id = jobs.id) "
                                "WHERE id IN (SELECT job_id FROM grid_jobs WHERE grid_id = ?1) "
                                "OR (state = 'pending' AND queue_key BETWEEN (?1 << 32) AND ((?1 + 1) << 32) - 1)",
                                [&](Stmt& s) { s.bind(1, stats.grid_id); }));
  stats.jobs = static_cast<int64_t>(seen.size());
  GB_RETURN_IF_ERROR(txn->commit());
  return stats;
}

Result<int64_t> JobStore::cancel_grid(const std::string& name) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  const int64_t now = now_ms();
  auto gid = grid_id_of(*stmts_, name, path_);
  if (!gid.ok()) return gid.error();
  GB_RETURN_IF_ERROR(exec_bound(*stmts_, "UPDATE grids SET cancelled_ms = ?2 WHERE id = ?1",
                                [&](Stmt& s) { s.bind(1, *gid).bind(2, now); }));

  struct Row {
    int64_t job_id;
    int64_t run_id;  // 0: not leased
  };
  std::vector<Row> rows;
  {
    // Unfinished jobs of this grid that no other grid still wants (one that has not
    // been cancelled itself).
    auto st = stmts_->get("SELECT j.id, IFNULL(j.lease_run_id, 0) FROM grid_jobs gj "
                          "JOIN jobs j ON j.id = gj.job_id "
                          "WHERE gj.grid_id = ?1 AND j.state IN ('pending', 'leased', 'running') "
                          "AND NOT EXISTS (SELECT 1 FROM grid_jobs o JOIN grids og ON og.id = o.grid_id "
                          "  WHERE o.job_id = j.id AND o.grid_id <> ?1 AND og.cancelled_ms IS NULL)");
    if (!st.ok()) return st.error();
    st->bind(1, *gid);
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      rows.push_back({st->int64(0), st->int64(1)});
    }
  }
  const std::string why = "grid " + name + " cancelled";
  for (const Row& r : rows) {
    if (r.run_id != 0) {
      GB_RETURN_IF_ERROR(end_lease(*stmts_, r.job_id, r.run_id, "cancelled", JobState::kCancelled, why, why, now,
                                   /*give_back_attempt=*/false));
    } else {
      GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                    "UPDATE jobs SET state = 'cancelled', error = ?2, finished_ms = ?3 "
                                    "WHERE id = ?1",
                                    [&](Stmt& s) { s.bind(1, r.job_id).bind(2, why).bind(3, now); }));
    }
  }
  GB_RETURN_IF_ERROR(txn->commit());
  return static_cast<int64_t>(rows.size());
}

// ---------------------------------------------------------------------------------
// Leases

// Group commit. A write that arrives while another batch is being written waits in
// group_queue_; the next batch takes every waiting write and runs each in its own
// SAVEPOINT of one BEGIN IMMEDIATE transaction, so that a refused or failed write
// leaves no trace and does not affect the others, then commits once. Each caller
// gets its own result only after the COMMIT that made its write durable (or the
// error that prevented it). The thread whose write is first in the queue writes the
// batch (no extra thread, no hand-over when nothing else is waiting).
struct JobStore::GroupOp {
  const std::function<Status()>* body = nullptr;
  Status status;
  int state = 0;  // 0: waiting, 1: done (status set), 2: write the next batch
  std::condition_variable cv;
};

Status JobStore::grouped(const std::function<Status()>& body) {
  GroupOp op;
  op.body = &body;
  {
    std::unique_lock q(group_mu_);
    group_queue_.push_back(&op);
    if (group_leader_) {
      op.cv.wait(q, [&] { return op.state != 0; });
      if (op.state == 1) return std::move(op.status);
    } else {
      group_leader_ = true;
    }
  }
  // This thread writes the next batch, which holds its own write.
  std::vector<GroupOp*> batch;
  {
    std::lock_guard q(group_mu_);
    batch.swap(group_queue_);
  }
  {
    std::lock_guard lock(mu_);
    run_batch(batch);
  }
  std::lock_guard q(group_mu_);
  for (GroupOp* o : batch) {
    if (o == &op) continue;
    o->state = 1;
    o->cv.notify_one();  // under group_mu_: the waiter cannot return (and free o) before
  }
  if (!group_queue_.empty()) {
    GroupOp* next = group_queue_.front();
    next->state = 2;
    next->cv.notify_one();
  } else {
    group_leader_ = false;
  }
  return std::move(op.status);
}

void JobStore::run_batch(const std::vector<GroupOp*>& batch) {
  std::vector<GroupOp*> written;  // in the open transaction, not committed yet
  std::optional<Transaction> txn;
  auto fail_written = [&](const std::string& why) {
    for (GroupOp* w : written) w->status = Error{why};
    written.clear();
  };
  auto savepoint = [&](const char* sql) -> Status {
    auto st = stmts_->get(sql);
    if (!st.ok()) return st.status();
    return st->run();
  };
  std::optional<Status> no_txn;  // BEGIN failed (e.g. busy): the rest of the batch fails alike
  for (GroupOp* o : batch) {
    if (no_txn) {
      o->status = *no_txn;
      continue;
    }
    if (!txn) {
      auto t = Transaction::begin(db_, Transaction::Mode::kWrite);
      if (!t.ok()) {
        no_txn = t.status();
        o->status = *no_txn;
        continue;
      }
      txn.emplace(std::move(*t));
    }
    if (Status sp = savepoint("SAVEPOINT gb_write"); !sp.ok()) {
      o->status = sp;
      continue;
    }
    Status st;
    try {
      st = (*o->body)();
    } catch (const std::exception& e) {
      st = Error{std::string("unexpected exception: ") + e.what()};
    }
    if (st.ok()) st = savepoint("RELEASE gb_write");
    o->status = st;
    if (st.ok()) {
      written.push_back(o);
      continue;
    }
    if (sqlite3_get_autocommit(db_) != 0) {
      // SQLite rolled the whole transaction back (I/O error, disk full, ...): the
      // writes before this one are lost too. The next write starts a new one.
      fail_written("sqlite rolled back the transaction: " + st.message());
      txn.reset();
      continue;
    }
    Status undo = savepoint("ROLLBACK TO gb_write");
    if (undo.ok()) undo = savepoint("RELEASE gb_write");
    if (!undo.ok()) {
      // Cannot undo this write alone: give up the whole transaction.
      fail_written("cannot roll back a refused write: " + undo.message());
      txn.reset();  // rolls back
    }
  }
  if (txn) {
    Status c = txn->commit();
    if (!c.ok()) {
      fail_written(c.message());
      txn.reset();  // rolls back
    }
  }
}

Result<std::optional<Lease>> JobStore::lease_next(const std::string& owner, int64_t lease_ms,
                                                  const std::string& grid_name,
                                                  const DeviceCapacity* capacity) {
  if (owner.empty()) return Error{"lease_next: the lease owner must not be empty"};
  if (lease_ms <= 0) return Error{"lease_next: lease_ms must be > 0, got " + std::to_string(lease_ms)};
  // Oldest grid first, then grid order. Jobs that no grid links any more are not
  // handed out.
  // With a capacity, only jobs it can run. Of any grid: in queue_key order (an index
  // walk of jobs_queue, no sort); of one grid: in that grid's order.
  static const std::string kPickAny =
      "SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, j.attempts FROM jobs j "
      "WHERE j.state = 'pending' AND j.queue_key IS NOT NULL AND ?1 = 0 "
      "AND EXISTS (SELECT 1 FROM grid_jobs gj WHERE gj.job_id = j.id) "
      "ORDER BY j.queue_key LIMIT 1";
  static const std::string kPickAnyFits =
      "SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, j.attempts FROM jobs j "
      "WHERE j.state = 'pending' AND j.queue_key IS NOT NULL AND ?1 = 0 AND " +
      fits_capacity_sql(2) +
      " AND EXISTS (SELECT 1 FROM grid_jobs gj WHERE gj.job_id = j.id) "
      "ORDER BY j.queue_key LIMIT 1";
  static const std::string kPickGrid =
      "SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, j.attempts "
      "FROM jobs j JOIN grid_jobs gj ON gj.job_id = j.id "
      "WHERE j.state = 'pending' AND gj.grid_id = ?1 ORDER BY gj.position LIMIT 1";
  static const std::string kPickGridFits =
      "SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, j.attempts "
      "FROM jobs j JOIN grid_jobs gj ON gj.job_id = j.id "
      "WHERE j.state = 'pending' AND gj.grid_id = ?1 AND " +
      fits_capacity_sql(2) + " ORDER BY gj.position LIMIT 1";

  std::optional<Lease> out;
  const std::function<Status()> body = [&]() -> Status {
    const int64_t now = now_ms();
    int64_t grid_id = 0;
    if (!grid_name.empty()) {
      auto gid = grid_id_of(*stmts_, grid_name, path_);
      if (!gid.ok()) return gid.status();
      grid_id = *gid;
    }
    const std::string& sql = grid_id == 0 ? (capacity != nullptr ? kPickAnyFits : kPickAny)
                                          : (capacity != nullptr ? kPickGridFits : kPickGrid);
    auto pick = stmts_->get(sql);
    if (!pick.ok()) return pick.status();
    pick->bind(1, grid_id);
    if (capacity != nullptr) bind_capacity(*pick, 2, *capacity);
    auto row = pick->step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();

    Lease lease;
    lease.job_id = pick->int64(0);
    lease.hash = pick->text(1);
    lease.kind = pick->text(2);
    auto params = parse_json_column(pick->text(3), "params_json of job " + lease.hash);
    if (!params.ok()) return params.status();
    lease.params = std::move(*params);
    lease.repeat = static_cast<int>(pick->int64(4));
    lease.attempt = static_cast<int>(pick->int64(5)) + 1;
    lease.expires_ms = now + lease_ms;

    GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                  "INSERT INTO runs(job_id, attempt, owner, state, started_ms) "
                                  "VALUES(?1, ?2, ?3, 'leased', ?4)",
                                  [&](Stmt& s) {
                                    s.bind(1, lease.job_id).bind(2, lease.attempt).bind(3, owner).bind(4, now);
                                  }));
    lease.run_id = sqlite3_last_insert_rowid(db_);
    auto update = stmts_->get("UPDATE jobs SET state = 'leased', attempts = ?2, lease_owner = ?3, "
                              "lease_expires_ms = ?4, lease_run_id = ?5, started_ms = ?6 "
                              "WHERE id = ?1 AND state = 'pending'");
    if (!update.ok()) return update.status();
    update->bind(1, lease.job_id).bind(2, lease.attempt).bind(3, owner).bind(4, lease.expires_ms);
    update->bind(5, lease.run_id).bind(6, now);
    GB_RETURN_IF_ERROR(update->run());
    if (update->changes() != 1) return Error{"lease_next: job " + lease.hash + " changed under the write lock"};
    out = std::move(lease);
    return Status::Ok();
  };
  GB_RETURN_IF_ERROR(grouped(body));
  return out;
}

Status JobStore::mark_running(int64_t run_id, const std::string& owner, int64_t lease_ms) {
  if (lease_ms <= 0) return Error{"mark_running: lease_ms must be > 0, got " + std::to_string(lease_ms)};
  return grouped([&]() -> Status {
    const int64_t now = now_ms();
    auto held = check_lease(*stmts_, run_id, owner);
    if (!held.ok()) return held.status();
    GB_RETURN_IF_ERROR(exec_bound(*stmts_, "UPDATE jobs SET state = 'running', lease_expires_ms = ?2 WHERE id = ?1",
                                  [&](Stmt& s) { s.bind(1, held->job_id).bind(2, now + lease_ms); }));
    return exec_bound(*stmts_, "UPDATE runs SET state = 'running' WHERE id = ?1",
                      [&](Stmt& s) { s.bind(1, run_id); });
  });
}

Status JobStore::renew_lease(int64_t run_id, const std::string& owner, int64_t lease_ms) {
  if (lease_ms <= 0) return Error{"renew_lease: lease_ms must be > 0, got " + std::to_string(lease_ms)};
  return grouped([&]() -> Status {
    const int64_t now = now_ms();
    auto held = check_lease(*stmts_, run_id, owner);
    if (!held.ok()) return held.status();
    return exec_bound(*stmts_, "UPDATE jobs SET lease_expires_ms = ?2 WHERE id = ?1",
                      [&](Stmt& s) { s.bind(1, held->job_id).bind(2, now + lease_ms); });
  });
}

Result<JobStore::Heartbeat> JobStore::heartbeat(int64_t run_id, const std::string& owner, int64_t lease_ms, bool running,
                                    std::optional<double> progress, const std::string& message) {
  if (lease_ms <= 0) return Error{"heartbeat: lease_ms must be > 0, got " + std::to_string(lease_ms)};
  Heartbeat out;
  GB_RETURN_IF_ERROR(grouped([&]() -> Status {
    const int64_t now = now_ms();
    auto held = check_lease(*stmts_, run_id, owner);
    if (!held.ok()) return held.status();
    const int64_t expires = now + lease_ms;
    GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                  "UPDATE jobs SET lease_expires_ms = ?2, "
                                  "state = CASE WHEN ?3 THEN 'running' ELSE state END WHERE id = ?1",
                                  [&](Stmt& s) { s.bind(1, held->job_id).bind(2, expires).bind(3, running ? 1 : 0); }));
    if (running || progress) {
      double p = progress ? *progress : 0.0;
      p = std::isnan(p) ? 0.0 : std::clamp(p, 0.0, 1.0);
      GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                    "UPDATE runs SET state = CASE WHEN ?2 THEN 'running' ELSE state END, "
                                    "progress = CASE WHEN ?3 THEN ?4 ELSE progress END, "
                                    "progress_message = CASE WHEN ?3 THEN ?5 ELSE progress_message END "
                                    "WHERE id = ?1",
                                    [&](Stmt& s) {
                                      s.bind(1, run_id).bind(2, running ? 1 : 0).bind(3, progress ? 1 : 0);
                                      s.bind(4, p).bind(5, message);
                                    }));
    }
    out = Heartbeat{expires, running && held->state == JobState::kLeased};
    return Status::Ok();
  }));
  return out;
}

Status JobStore::complete(int64_t run_id, const std::string& owner, const RunRecord& record) {
  {
    std::set<std::string> names;
    for (const auto& m : record.metrics) {
      if (m.name.empty()) return Error{"run " + std::to_string(run_id) + ": a metric has no name"};
      if (!names.insert(m.name).second) {
        return Error{"run " + std::to_string(run_id) + ": metric '" + m.name + "' reported twice"};
      }
    }
    names.clear();
    for (const auto& s : record.series) {
      if (!names.insert(s.name).second) {
        return Error{"run " + std::to_string(run_id) + ": series '" + s.name + "' reported twice"};
      }
    }
  }
  const std::string device_json = dump_json(record.device);
  return grouped([&]() -> Status {
    const int64_t now = now_ms();
    // The lease check and the job's update in one statement: it changes the job only
    // when `run_id` is its current lease held by `owner`.
    {
      auto job = stmts_->get("UPDATE jobs SET state = 'succeeded', result_run_id = ?1, lease_owner = NULL, "
                             "lease_expires_ms = NULL, lease_run_id = NULL, error = '', finished_ms = ?3 "
                             "WHERE id = (SELECT job_id FROM runs WHERE id = ?1) AND lease_run_id = ?1 "
                             "AND lease_owner = ?2 AND state IN ('leased', 'running')");
      if (!job.ok()) return job.status();
      job->bind(1, run_id).bind(2, owner).bind(3, now);
      GB_RETURN_IF_ERROR(job->run());
      if (job->changes() != 1) {
        // Not held: check_lease says why (nothing was written).
        auto held = check_lease(*stmts_, run_id, owner);
        if (!held.ok()) return held.status();
        return Error{"run " + std::to_string(run_id) + ": the job's lease changed while completing it"};
      }
    }
    auto metric = stmts_->get("INSERT INTO results(run_id, metric, value, unit, text) VALUES(?1, ?2, ?3, ?4, ?5)");
    if (!metric.ok()) return metric.status();
    for (const auto& m : record.metrics) {
      GB_RETURN_IF_ERROR(metric->reset());
      metric->bind(1, run_id).bind(2, m.name).bind(3, m.value).bind(4, m.unit).bind(5, m.text);
      GB_RETURN_IF_ERROR(metric->run());
    }
    if (!record.series.empty()) {
      auto point = stmts_->get("INSERT INTO series(run_id, name, idx, x, y, x_unit, y_unit) "
                               "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
      if (!point.ok()) return point.status();
      for (const auto& s : record.series) {
        for (size_t i = 0; i < s.points.size(); ++i) {
          GB_RETURN_IF_ERROR(point->reset());
          point->bind(1, run_id).bind(2, s.name).bind(3, static_cast<int64_t>(i));
          point->bind(4, s.points[i].x).bind(5, s.points[i].y).bind(6, s.x_unit).bind(7, s.y_unit);
          GB_RETURN_IF_ERROR(point->run());
        }
      }
    }
    return exec_bound(*stmts_,
                      "UPDATE runs SET state = 'succeeded', finished_ms = ?2, wall_ms = ?3, "
                      "device_json = ?4, engine_version = ?5, error = '' WHERE id = ?1",
                      [&](Stmt& s) {
                        s.bind(1, run_id).bind(2, now).bind(3, record.wall_ms);
                        s.bind(4, device_json).bind(5, record.engine_version);
                      });
  });
}

Status JobStore::fail(int64_t run_id, const std::string& owner, JobState outcome, const std::string& error) {
  if (outcome != JobState::kFailed && outcome != JobState::kOom && outcome != JobState::kTimeout) {
    return Error{"fail: outcome must be failed, oom or timeout, got " + str(outcome)};
  }
  return grouped([&]() -> Status {
    const int64_t now = now_ms();
    auto held = check_lease(*stmts_, run_id, owner);
    if (!held.ok()) return held.status();
    JobState next = outcome;
    if (outcome != JobState::kOom && held->attempts < held->max_attempts) next = JobState::kPending;
    return end_lease(*stmts_, held->job_id, run_id, state_name(outcome), next, error, error, now,
                     /*give_back_attempt=*/false);
  });
}

Status JobStore::release(int64_t run_id, const std::string& owner) {
  return grouped([&]() -> Status {
    const int64_t now = now_ms();
    auto held = check_lease(*stmts_, run_id, owner);
    if (!held.ok()) return held.status();
    // The job's error stays what it was: a release is not a failure.
    std::string job_error;
    {
      auto error = stmts_->get("SELECT error FROM jobs WHERE id = ?1");
      if (!error.ok()) return error.status();
      error->bind(1, held->job_id);
      auto row = error->step();
      if (!row.ok()) return row.status();
      job_error = *row ? error->text(0) : "";
    }
    return end_lease(*stmts_, held->job_id, run_id, "released", JobState::kPending, "released by " + owner,
                     job_error, now, /*give_back_attempt=*/true);
  });
}

Result<int64_t> JobStore::expire_leases(int64_t now) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  auto n = return_leases(*stmts_,
                         "SELECT id, lease_run_id, lease_owner, attempts, max_attempts FROM jobs "
                         "WHERE state IN ('leased', 'running') AND lease_expires_ms < ?1 ORDER BY id",
                         [&](Stmt& s) { s.bind(1, now); }, "lease expired", now);
  if (!n.ok()) return n.error();
  GB_RETURN_IF_ERROR(txn->commit());
  return *n;
}

Result<int64_t> JobStore::reclaim_owner(const std::string& owner) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  auto n = return_leases(*stmts_,
                         "SELECT id, lease_run_id, lease_owner, attempts, max_attempts FROM jobs "
                         "WHERE state IN ('leased', 'running') AND lease_owner = ?1 ORDER BY id",
                         [&](Stmt& s) { s.bind(1, owner); }, "lease holder lost", now_ms());
  if (!n.ok()) return n.error();
  GB_RETURN_IF_ERROR(txn->commit());
  return *n;
}

Result<int64_t> JobStore::extend_leases(int64_t min_expires_ms) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  auto st = stmts_->get("UPDATE jobs SET lease_expires_ms = ?1 "
                        "WHERE state IN ('leased', 'running') AND lease_expires_ms < ?1");
  if (!st.ok()) return st.error();
  st->bind(1, min_expires_ms);
  GB_RETURN_IF_ERROR(st->run());
  const int64_t n = st->changes();
  GB_RETURN_IF_ERROR(txn->commit());
  return n;
}

Result<std::optional<RunInfo>> JobStore::run_info(int64_t run_id) {
  std::lock_guard lock(mu_);
  auto st = stmts_->get("SELECT r.id, r.job_id, j.hash, r.attempt, r.owner, r.state, j.state, "
                        "IFNULL(j.lease_run_id, 0), IFNULL(j.lease_owner, '') "
                        "FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?1");
  if (!st.ok()) return st.error();
  st->bind(1, run_id);
  auto row = st->step();
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<RunInfo>();
  RunInfo info;
  info.run_id = st->int64(0);
  info.job_id = st->int64(1);
  info.hash = st->text(2);
  info.attempt = static_cast<int>(st->int64(3));
  info.owner = st->text(4);
  info.state = st->text(5);
  auto state = parse_state_column(st->text(6), "job " + info.hash);
  if (!state.ok()) return state.error();
  info.job_state = *state;
  info.job_lease_run_id = st->int64(7);
  info.job_lease_owner = st->text(8);
  return std::optional<RunInfo>(std::move(info));
}

Result<std::vector<std::string>> JobStore::lease_owners() {
  std::lock_guard lock(mu_);
  auto st = stmts_->get("SELECT DISTINCT lease_owner FROM jobs WHERE state IN ('leased', 'running') "
                        "ORDER BY lease_owner");
  if (!st.ok()) return st.error();
  std::vector<std::string> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(st->text(0));
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Reads

namespace {

Result<std::vector<GridSummary>> read_summaries(sqlite::StmtCache& db, const std::string* name) {
  std::vector<GridSummary> out;
  std::unordered_map<int64_t, size_t> index;
  {
    auto st = db.get("SELECT id, name, source, created_ms, updated_ms FROM grids "
                     "WHERE ?1 IS NULL OR name = ?1 ORDER BY id");
    if (!st.ok()) return st.error();
    if (name != nullptr) st->bind(1, *name);
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      GridSummary g;
      g.id = st->int64(0);
      g.name = st->text(1);
      g.source = st->text(2);
      g.created_ms = st->int64(3);
      g.updated_ms = st->int64(4);
      for (auto s : kStateNames) g.by_state[std::string(s)] = 0;
      index[g.id] = out.size();
      out.push_back(std::move(g));
    }
  }
  auto st = db.get("SELECT gj.grid_id, j.state, COUNT(*) FROM grid_jobs gj "
                   "JOIN jobs j ON j.id = gj.job_id JOIN grids g ON g.id = gj.grid_id "
                   "WHERE ?1 IS NULL OR g.name = ?1 GROUP BY gj.grid_id, j.state");
  if (!st.ok()) return st.error();
  if (name != nullptr) st->bind(1, *name);
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto it = index.find(st->int64(0));
    if (it == index.end()) continue;
    GridSummary& g = out[it->second];
    g.by_state[st->text(1)] += st->int64(2);
    g.total += st->int64(2);
  }
  return out;
}

}  // namespace

Result<std::vector<GridSummary>> JobStore::list_grids() {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  auto out = read_summaries(*stmts_, nullptr);
  if (!out.ok()) return out.error();
  GB_RETURN_IF_ERROR(txn->commit());
  return out;
}

Result<std::optional<GridSummary>> JobStore::grid_summary(const std::string& name) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  auto out = read_summaries(*stmts_, &name);
  if (!out.ok()) return out.error();
  GB_RETURN_IF_ERROR(txn->commit());
  if (out->empty()) return std::optional<GridSummary>();
  return std::optional<GridSummary>(std::move(out->front()));
}

Result<std::vector<StoredJob>> JobStore::grid_jobs(const std::string& name, bool parse_params) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  auto gid = grid_id_of(*stmts_, name, path_);
  if (!gid.ok()) return gid.error();
  auto st = stmts_->get(std::string("SELECT ") + kStoredJobColumns +
                                   " FROM grid_jobs gj JOIN jobs j ON j.id = gj.job_id "
                                   "LEFT JOIN runs lr ON lr.id = j.lease_run_id "
                                   "WHERE gj.grid_id = ?1 ORDER BY gj.position");
  if (!st.ok()) return st.error();
  st->bind(1, *gid);
  std::vector<StoredJob> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto job = read_stored_job(*st, 0, parse_params);
    if (!job.ok()) return job.error();
    out.push_back(std::move(*job));
  }
  GB_RETURN_IF_ERROR(txn->commit());
  return out;
}

Result<std::pair<std::string, std::string>> JobStore::grid_spec(const std::string& name) {
  std::lock_guard lock(mu_);
  auto st = stmts_->get("SELECT spec_json, source FROM grids WHERE name = ?1");
  if (!st.ok()) return st.error();
  st->bind(1, name);
  auto row = st->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error{"no grid named '" + name + "' in " + path_};
  return std::make_pair(st->text(0), st->text(1));
}

Result<std::vector<ResultRow>> JobStore::grid_results(const std::string& name) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  auto gid = grid_id_of(*stmts_, name, path_);
  if (!gid.ok()) return gid.error();
  auto st = stmts_->get("SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, r.metric, r.value, r.unit, "
                        "r.text, ru.device_json, ru.engine_version "
                        "FROM grid_jobs gj JOIN jobs j ON j.id = gj.job_id "
                        "JOIN runs ru ON ru.id = j.result_run_id "
                        "JOIN results r ON r.run_id = ru.id "
                        "WHERE gj.grid_id = ?1 ORDER BY gj.position, r.rowid");
  if (!st.ok()) return st.error();
  st->bind(1, *gid);
  std::vector<ResultRow> out;
  int64_t last_job = 0;
  Json params, device;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    ResultRow r;
    r.job_id = st->int64(0);
    r.hash = st->text(1);
    r.kind = st->text(2);
    if (r.job_id != last_job) {
      auto p = parse_json_column(st->text(3), "params_json of job " + r.hash);
      if (!p.ok()) return p.error();
      auto d = parse_json_column(st->text(9), "device_json of the result of job " + r.hash);
      if (!d.ok()) return d.error();
      params = std::move(*p);
      device = std::move(*d);
      last_job = r.job_id;
    }
    r.params = params;
    r.repeat = static_cast<int>(st->int64(4));
    r.metric = st->text(5);
    r.value = st->opt_real(6);
    r.unit = st->text(7);
    r.text = st->text(8);
    r.device = device;
    r.engine_version = st->text(10);
    out.push_back(std::move(r));
  }
  GB_RETURN_IF_ERROR(txn->commit());
  return out;
}

Result<std::vector<engine::Series>> JobStore::job_series(int64_t job_id) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  int64_t run_id = 0;
  {
    auto st = stmts_->get("SELECT IFNULL(result_run_id, 0) FROM jobs WHERE id = ?1");
    if (!st.ok()) return st.error();
    st->bind(1, job_id);
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) return Error{"no job with id " + std::to_string(job_id) + " in " + path_};
    run_id = st->int64(0);
  }
  std::vector<engine::Series> out;
  if (run_id != 0) {
    auto st = stmts_->get("SELECT name, x, y, x_unit, y_unit FROM series WHERE run_id = ?1 "
                          "ORDER BY rowid");
    if (!st.ok()) return st.error();
    st->bind(1, run_id);
    std::unordered_map<std::string, size_t> index;
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      std::string name = st->text(0);
      auto it = index.find(name);
      if (it == index.end()) {
        engine::Series s;
        s.name = name;
        s.x_unit = st->text(3);
        s.y_unit = st->text(4);
        it = index.emplace(name, out.size()).first;
        out.push_back(std::move(s));
      }
      out[it->second].points.push_back({st->real(1), st->real(2)});
    }
  }
  GB_RETURN_IF_ERROR(txn->commit());
  return out;
}

// ---------------------------------------------------------------------------------
// Placement and workers

Result<std::map<std::string, int64_t>> JobStore::unplaceable(const DeviceCapacity& capacity,
                                                            const std::string& grid_name) {
  std::lock_guard lock(mu_);
  auto st = stmts_->get("SELECT g.name, COUNT(*) FROM grid_jobs gj JOIN jobs j ON j.id = gj.job_id "
                        "JOIN grids g ON g.id = gj.grid_id "
                        "WHERE j.state = 'pending' AND (?1 = '' OR g.name = ?1) AND NOT " +
                              fits_capacity_sql(2) + " GROUP BY g.name");
  if (!st.ok()) return st.error();
  st->bind(1, grid_name);
  bind_capacity(*st, 2, capacity);
  std::map<std::string, int64_t> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out[st->text(0)] = st->int64(1);
  }
  return out;
}

Result<WorkerRecord> JobStore::register_worker(const std::string& name, const Json& devices, int slots,
                                               const std::string& engine_version) {
  if (name.empty()) return Error{"register_worker: the worker name must not be empty"};
  if (slots < 1) return Error{"register_worker: slots must be >= 1, got " + std::to_string(slots)};
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  const int64_t now = now_ms();
  GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                "INSERT INTO workers(name, device_json, slots, registered_ms, last_seen_ms, "
                                "state, engine_version) VALUES(?1, ?2, ?3, ?4, ?4, 'active', ?5) "
                                "ON CONFLICT(name) DO UPDATE SET device_json = excluded.device_json, "
                                "slots = excluded.slots, last_seen_ms = excluded.last_seen_ms, "
                                "state = 'active', engine_version = excluded.engine_version",
                                [&](Stmt& s) {
                                  s.bind(1, name).bind(2, dump_json(devices)).bind(3, slots).bind(4, now);
                                  s.bind(5, engine_version);
                                }));
  auto st = stmts_->get(std::string("SELECT ") + kWorkerColumns + " FROM workers WHERE name = ?1");
  if (!st.ok()) return st.error();
  st->bind(1, name);
  auto row = st->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error{"register_worker: worker " + name + " vanished after insert"};
  auto w = read_worker(*st);
  if (!w.ok()) return w.error();
  GB_RETURN_IF_ERROR(txn->commit());
  return w;
}

Result<std::vector<WorkerRecord>> JobStore::list_workers() {
  std::lock_guard lock(mu_);
  auto st = stmts_->get(std::string("SELECT ") + kWorkerColumns + " FROM workers ORDER BY id");
  if (!st.ok()) return st.error();
  std::vector<WorkerRecord> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto w = read_worker(*st);
    if (!w.ok()) return w.error();
    out.push_back(std::move(*w));
  }
  return out;
}

Status JobStore::update_workers(const std::vector<WorkerUpdate>& updates) {
  if (updates.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.status();
  auto st = stmts_->get("UPDATE workers SET state = ?2, last_seen_ms = MAX(last_seen_ms, ?3) WHERE name = ?1");
  if (!st.ok()) return st.status();
  for (const WorkerUpdate& u : updates) {
    GB_RETURN_IF_ERROR(st->reset());
    st->bind(1, u.name).bind(2, u.state).bind(3, u.last_seen_ms);
    GB_RETURN_IF_ERROR(st->run());
  }
  return txn->commit();
}

Result<std::map<std::string, int64_t>> JobStore::lease_counts() {
  std::lock_guard lock(mu_);
  auto st = stmts_->get("SELECT lease_owner, COUNT(*) FROM jobs WHERE state IN ('leased', 'running') "
                        "GROUP BY lease_owner");
  if (!st.ok()) return st.error();
  std::map<std::string, int64_t> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out[st->text(0)] = st->int64(1);
  }
  return out;
}

}  // namespace gb::coord
