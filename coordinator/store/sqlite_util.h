// Thin SQLite helpers: every sqlite3 return code goes through sqlite::check, which
// turns a failure into an Error that names what was being done (the SQL text) and
// carries sqlite3_errmsg. Stmt is an RAII prepared statement, StmtCache keeps
// prepared statements for reuse, Transaction an RAII BEGIN [IMMEDIATE] ... COMMIT
// that rolls back unless committed. Messages (and the shortened SQL text in them)
// are only built when something fails.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace gb::sqlite {

// The one place where a SQLite return code becomes a Status. SQLITE_OK, SQLITE_ROW
// and SQLITE_DONE are fine; anything else is Error{"sqlite: CONTEXT: ERRMSG"}.
Status check(sqlite3* db, int rc, std::string_view context);

// SQL text shortened for messages: whitespace runs collapsed, at most ~160 chars.
std::string brief_sql(std::string_view sql);

// Runs one or more statements that return no rows we need.
Status exec(sqlite3* db, std::string_view sql);

class StmtCache;

class Stmt {
 public:
  static Result<Stmt> prepare(sqlite3* db, std::string_view sql);
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  // Finalizes the statement, or, for one borrowed from a StmtCache, resets it, clears
  // its bindings and gives it back.
  ~Stmt();

  // Parameters are 1-based. A failed bind is remembered and returned by the next
  // step()/run(), so that call sites can chain binds.
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, double v);
  Stmt& bind(int i, std::optional<double> v);
  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind_null(int i);

  // One step: true when a row is available, false when the statement is done.
  Result<bool> step();
  // Steps to the end (for statements whose rows are not needed).
  Status run();
  // Resets the statement and clears its bindings, for another execution.
  Status reset();
  // Rows changed by the last completed INSERT/UPDATE/DELETE on this connection.
  int64_t changes() const;

  bool is_null(int col) const;
  int64_t int64(int col) const;  // NULL reads as 0
  double real(int col) const;
  std::optional<double> opt_real(int col) const;  // NULL -> nullopt
  std::string text(int col) const;                // NULL reads as ""

  std::string sql() const;

 private:
  friend class StmtCache;
  Stmt(sqlite3* db, sqlite3_stmt* stmt, bool* borrowed);
  void note_bind(int rc, int i);
  void release();
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  bool* borrowed_ = nullptr;  // the cache's in-use flag when borrowed from a StmtCache
  std::optional<std::string> bind_error_;
};

// Prepared statements of one connection, kept (SQLITE_PREPARE_PERSISTENT) and keyed
// by their SQL text. get() lends the statement, ready to bind; it goes back (reset,
// bindings cleared) when the Stmt is destroyed. A statement that is lent already
// (the same SQL used twice at once) is prepared afresh for the second user. Used by
// one thread at a time; destroy it before closing the connection.
class StmtCache {
 public:
  explicit StmtCache(sqlite3* db) : db_(db) {}
  ~StmtCache();
  StmtCache(const StmtCache&) = delete;
  StmtCache& operator=(const StmtCache&) = delete;

  Result<Stmt> get(std::string_view sql);
  sqlite3* db() const { return db_; }

 private:
  struct Entry {
    sqlite3_stmt* stmt = nullptr;
    bool busy = false;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  sqlite3* db_;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
};

// Runs `sql` (one statement, binding nothing) and returns the first column of the
// first row; Error when there is no row.
Result<int64_t> query_int(sqlite3* db, std::string_view sql);

class Transaction {
 public:
  enum class Mode {
    kRead,   // BEGIN (deferred): a consistent snapshot for several reads
    kWrite,  // BEGIN IMMEDIATE: takes the write lock now (waits up to busy_timeout)
  };
  static Result<Transaction> begin(sqlite3* db, Mode mode);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();  // rolls back when not committed

  Status commit();

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;  // null once committed or moved from
};

}  // namespace gb::sqlite
