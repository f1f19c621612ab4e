// SQL that takes a database back past a migration, for the tests that replay
// migrations on a database made by today's schema (they rewind user_version and
// schema_migrations themselves).
#pragma once

namespace gb::coord::testing {

// Undoes migration 7: `results` a table again, a row per metric, with
// results_data's metrics; results_data gone. (legacy_alter_table: the rename
// leaves v_results, which names `results`, as it is.)
inline constexpr const char* kUndoMigration7 = R"sql(
CREATE TABLE results_v6 (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  metric TEXT NOT NULL,
  value  REAL,
  unit   TEXT NOT NULL DEFAULT '',
  text   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, metric)
);
INSERT INTO results_v6 SELECT run_id, metric, value, unit, text FROM results;
DROP VIEW results;
DROP TABLE results_data;
PRAGMA legacy_alter_table = ON;
ALTER TABLE results_v6 RENAME TO results;
PRAGMA legacy_alter_table = OFF;
)sql";

// Undoes migration 6: `series` a table again, a row per point, with series_data's
// points; series_data gone.
inline constexpr const char* kUndoMigration6 = R"sql(
CREATE TABLE series_v5 (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  name   TEXT NOT NULL,
  idx    INTEGER NOT NULL,
  x      REAL,
  y      REAL,
  x_unit TEXT NOT NULL DEFAULT '',
  y_unit TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, name, idx)
);
INSERT INTO series_v5 SELECT run_id, name, idx, x, y, x_unit, y_unit FROM series;
DROP VIEW series;
DROP TABLE series_data;
ALTER TABLE series_v5 RENAME TO series;
)sql";

}  // namespace gb::coord::testing
