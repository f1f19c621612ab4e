// JobStore (job_store.h), part 2 of 5: the schema and its migrations
// (job_store_schema_version), and the life of the database connection: open (which
// applies pending migrations and turns on WAL), the constructor and destructor,
// schema_version, and background WAL checkpoints (start_background_checkpoints,
// checkpoint_loop). Not here: grid submission and the worker registry
// (job_store.cc), leases (job_store_leases.cc), the read queries
// (job_store_queries.cc).
#include "coordinator/store/job_store.h"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <sqlite3.h>

#include "coordinator/store/job_store_internal.h"
#include "coordinator/store/sqlite_util.h"

namespace gb::coord {

using namespace store_internal;

namespace {

using sqlite::Stmt;
using sqlite::Transaction;

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
      // Metric names no longer carry the backend (it is the job's `backend`
      // parameter and the run's device_json.backend): the engine kinds' cpu_ names
      // lose their prefix, in stored results and in the report columns of stored
      // grid specs.
      {3, "metric names without the backend (cpu_tpot_ms -> tpot_ms, ...)", R"sql(
UPDATE results SET metric = substr(metric, 5)
WHERE metric IN ('cpu_prefill_ms', 'cpu_prefill_tokens_per_s', 'cpu_tpot_ms', 'cpu_decode_tokens_per_s',
                 'cpu_decode_weight_gb_s', 'cpu_load_ms', 'cpu_eval_s', 'cpu_peak_rss_bytes')
  AND run_id IN (SELECT r.id FROM runs r JOIN jobs j ON j.id = r.job_id WHERE j.kind IN ('ppl', 'memory', 'speed'));
UPDATE grids SET spec_json =
  replace(replace(replace(replace(replace(replace(replace(replace(spec_json,
    '"cpu_prefill_ms"', '"prefill_ms"'), '"cpu_prefill_tokens_per_s"', '"prefill_tokens_per_s"'),
    '"cpu_tpot_ms"', '"tpot_ms"'), '"cpu_decode_tokens_per_s"', '"decode_tokens_per_s"'),
    '"cpu_decode_weight_gb_s"', '"decode_weight_gb_s"'), '"cpu_load_ms"', '"load_ms"'),
    '"cpu_eval_s"', '"eval_s"'), '"cpu_peak_rss_bytes"', '"peak_rss_bytes"');
)sql"},
      // The invalid outcome gets a state of its own (it was stored as failed with an
      // error starting "invalid: "). SQLite cannot change a CHECK constraint, so jobs
      // and runs are rebuilt (https://sqlite.org/lang_altertable.html, "making other
      // kinds of table schema changes"; open() runs migrations with foreign keys off
      // and checks them before the commit), their indexes and the views that read
      // them made again; runs keeps its AUTOINCREMENT counter.
      {4, "the invalid job state (was failed with an \"invalid: \" error)", R"sql(
DROP VIEW v_results;
DROP VIEW v_grid_status;
DROP VIEW v_jobs;

CREATE TABLE jobs_new (
  id               INTEGER PRIMARY KEY,
  hash             TEXT NOT NULL UNIQUE,
  kind             TEXT NOT NULL,
  params_json      TEXT NOT NULL,
  repeat           INTEGER NOT NULL DEFAULT 0,
  state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN
                     ('pending','leased','running','succeeded','failed','oom','invalid','timeout','cancelled')),
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
  req_device       TEXT NOT NULL DEFAULT 'any' CHECK (req_device IN ('any', 'cpu', 'cuda')),
  req_memory_bytes INTEGER NOT NULL DEFAULT 0 CHECK (req_memory_bytes >= 0),
  queue_key        INTEGER,
  -- a job holds a lease exactly while it is leased or running
  CHECK ((state IN ('leased','running')) =
         (lease_run_id IS NOT NULL AND lease_owner IS NOT NULL AND lease_expires_ms IS NOT NULL))
);
INSERT INTO jobs_new(id, hash, kind, params_json, repeat, state, attempts, max_attempts, lease_owner,
                     lease_expires_ms, lease_run_id, error, created_ms, started_ms, finished_ms,
                     result_run_id, req_device, req_memory_bytes, queue_key)
SELECT id, hash, kind, params_json, repeat,
       CASE WHEN state = 'failed' AND substr(error, 1, 9) = 'invalid: ' THEN 'invalid' ELSE state END,
       attempts, max_attempts, lease_owner, lease_expires_ms, lease_run_id,
       CASE WHEN state = 'failed' AND substr(error, 1, 9) = 'invalid: ' THEN substr(error, 10) ELSE error END,
       created_ms, started_ms, finished_ms, result_run_id, req_device, req_memory_bytes, queue_key
FROM jobs;

CREATE TABLE runs_new (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id           INTEGER NOT NULL REFERENCES jobs(id),
  attempt          INTEGER NOT NULL,
  owner            TEXT NOT NULL,
  state            TEXT NOT NULL CHECK (state IN
                     ('leased','running','succeeded','failed','oom','invalid','timeout','released','expired',
                      'cancelled')),
  started_ms       INTEGER NOT NULL,
  finished_ms      INTEGER,
  wall_ms          REAL,
  device_json      TEXT,
  engine_version   TEXT,
  error            TEXT NOT NULL DEFAULT '',
  progress         REAL,
  progress_message TEXT NOT NULL DEFAULT ''
);
INSERT INTO runs_new(id, job_id, attempt, owner, state, started_ms, finished_ms, wall_ms, device_json,
                     engine_version, error, progress, progress_message)
SELECT id, job_id, attempt, owner,
       CASE WHEN state = 'failed' AND substr(error, 1, 9) = 'invalid: ' THEN 'invalid' ELSE state END,
       started_ms, finished_ms, wall_ms, device_json, engine_version,
       CASE WHEN state = 'failed' AND substr(error, 1, 9) = 'invalid: ' THEN substr(error, 10) ELSE error END,
       progress, progress_message
FROM runs;
INSERT INTO sqlite_sequence(name, seq)
SELECT 'runs_new', seq FROM sqlite_sequence WHERE name = 'runs'
  AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'runs_new');
UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'runs'))
WHERE name = 'runs_new' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'runs');

DROP TABLE jobs;
DROP TABLE runs;
ALTER TABLE jobs_new RENAME TO jobs;
ALTER TABLE runs_new RENAME TO runs;

CREATE INDEX jobs_lease_expiry ON jobs(state, lease_expires_ms);
CREATE INDEX jobs_lease_owner ON jobs(lease_owner);
CREATE INDEX jobs_queue ON jobs(state, queue_key);
CREATE INDEX runs_job ON runs(job_id, attempt);
CREATE INDEX runs_state ON runs(state);

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
       j.result_run_id AS result_run_id, j.req_device AS req_device,
       j.req_memory_bytes AS req_memory_bytes
FROM grids g
JOIN grid_jobs gj ON gj.grid_id = g.id
JOIN jobs j       ON j.id = gj.job_id;
)sql"},
      // Fewer index writes per lease and completion (each job changes state twice):
      // the queue and lease-expiry indexes hold only the jobs their queries ask
      // for (pending; leased or running), so a finished job leaves both and is in
      // neither, and a lease moves one entry from one to the other. The queries by
      // lease owner filter state IN ('leased', 'running') first, which
      // jobs_lease_expiry serves; no query selects runs by state.
      {5, "partial queue and lease indexes; drop the unread jobs_lease_owner and runs_state", R"sql(
DROP INDEX IF EXISTS jobs_lease_owner;
DROP INDEX IF EXISTS runs_state;
DROP INDEX jobs_queue;
CREATE INDEX jobs_queue ON jobs(queue_key) WHERE state = 'pending';
DROP INDEX jobs_lease_expiry;
CREATE INDEX jobs_lease_expiry ON jobs(lease_expires_ms) WHERE state IN ('leased', 'running');
)sql"},
      // A series is one row (its points as a JSON array of [x, y] pairs,
      // coordinator/store/codecs/series_points.h) instead of one row per point: a roofline
      // job's 101-point curve cost 101 inserts and their index entries. `series`
      // becomes a view with the old table's columns, a row per point, so queries
      // written against it read the same rows. Points keep their idx order and
      // their exact values (17 significant digits; json_array would write 15), and
      // the series of a run the order they were stored in.
      {6, "series: one row per series in series_data, the per-point table a view", R"sql(
CREATE TABLE series_data (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  name   TEXT NOT NULL,
  x_unit TEXT NOT NULL DEFAULT '',
  y_unit TEXT NOT NULL DEFAULT '',
  points TEXT NOT NULL,
  PRIMARY KEY (run_id, name)
);
INSERT INTO series_data(run_id, name, x_unit, y_unit, points)
SELECT run_id, name, MIN(x_unit), MIN(y_unit), '[' || group_concat('[' || xt || ',' || yt || ']', ',') || ']'
FROM (SELECT rowid AS point_rowid, run_id, name, x_unit, y_unit,
             CASE WHEN x IS NULL OR abs(x) > 1.7976931348623157e308 THEN 'null' ELSE printf('%.17g', x) END AS xt,
             CASE WHEN y IS NULL OR abs(y) > 1.7976931348623157e308 THEN 'null' ELSE printf('%.17g', y) END AS yt
      FROM series ORDER BY run_id, name, idx)
GROUP BY run_id, name
ORDER BY MIN(point_rowid);
DROP TABLE series;
CREATE VIEW series AS
SELECT d.run_id AS run_id, d.name AS name, CAST(p.key AS INTEGER) AS idx,
       CAST(json_extract(p.value, '$[0]') AS REAL) AS x, CAST(json_extract(p.value, '$[1]') AS REAL) AS y,
       d.x_unit AS x_unit, d.y_unit AS y_unit
FROM series_data d, json_each(d.points) p;
)sql"},
      // Version 7: a run's metrics are one row of results_data (a JSON array of
      // [name, value, unit, text], coordinator/store/codecs/run_metrics.h) instead of
      // a row each: a roofline job's 19 metrics cost 19 inserts and their index
      // entries, and reading 20,000 jobs back 380,000 rows. `results` becomes a view
      // with the old table's columns, a row per metric in the order they were
      // stored; values keep their exact bits (17 significant digits).
      {7, "results: one row per run in results_data, the per-metric table a view", R"sql(
DROP VIEW v_results;
CREATE TABLE results_data (
  run_id  INTEGER PRIMARY KEY REFERENCES runs(id),
  metrics TEXT NOT NULL
);
INSERT INTO results_data(run_id, metrics)
SELECT run_id, '[' || group_concat('[' || json_quote(metric) || ',' || vt || ',' || json_quote(unit) || ',' ||
                                   json_quote(text) || ']', ',') || ']'
FROM (SELECT run_id, metric, unit, text,
             CASE WHEN value IS NULL OR abs(value) > 1.7976931348623157e308 THEN 'null'
                  ELSE printf('%.17g', value) END AS vt
      FROM results ORDER BY run_id, rowid)
GROUP BY run_id;
DROP TABLE results;
CREATE VIEW results AS
SELECT d.run_id AS run_id, json_extract(m.value, '$[0]') AS metric,
       CAST(json_extract(m.value, '$[1]') AS REAL) AS value,
       json_extract(m.value, '$[2]') AS unit, json_extract(m.value, '$[3]') AS text
FROM results_data d, json_each(d.metrics) m;
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
)sql"},
  };
  return kMigrations;
}

Error db_error(const std::string& path, const std::string& what) { return Error{path + ": " + what}; }

}  // namespace

// ---------------------------------------------------------------------------------

int job_store_schema_version() { return migrations().back().version; }

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
  if (!st.ok()) return fail(st);
  st = sqlite::exec(db, "PRAGMA temp_store=MEMORY");
  if (!st.ok()) return fail(st);

  // Migrations: re-read the version under the write lock, so that two processes
  // opening a fresh file at once apply each migration once. Foreign keys are off
  // while they run (a migration may rebuild a table others refer to; the pragma
  // cannot change inside a transaction) and checked before the commit.
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
    if (*current < known) {
      auto violations = sqlite::query_int(db, "SELECT COUNT(*) FROM pragma_foreign_key_check");
      if (!violations.ok()) return fail(violations.status());
      if (*violations != 0) {
        return db_error(path, "migrations left " + std::to_string(*violations) +
                                  " rows whose foreign keys name no row (PRAGMA foreign_key_check lists them)");
      }
    }
    st = txn->commit();
    if (!st.ok()) return fail(st);
  }
  st = sqlite::exec(db, "PRAGMA foreign_keys=ON");
  if (!st.ok()) return fail(st);
  auto fk = sqlite::query_int(db, "PRAGMA foreign_keys");
  if (!fk.ok()) return fail(fk.status());
  if (*fk != 1) return db_error(path, "cannot turn on foreign keys");
  store->schema_version_ = known;
  return store;
}

}  // namespace gb::coord
