#include "coordinator/store/sqlite_util.h"

#include <cstdio>
#include <utility>

#include <sqlite3.h>

namespace gb::sqlite {

namespace {

std::string errmsg_of(sqlite3* db, int rc) {
  std::string msg;
  if (db != nullptr && sqlite3_errcode(db) != SQLITE_OK) {
    msg += sqlite3_errmsg(db);
  } else {
    msg += sqlite3_errstr(rc);
  }
  msg += " (code " + std::to_string(rc) + ")";
  return msg;
}

bool is_ok(int rc) { return rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE; }

// check() with a context that is only built when rc is an error.
template <class F>
Status check_lazy(sqlite3* db, int rc, F&& context) {
  if (is_ok(rc)) return Status::Ok();
  return check(db, rc, context());
}

}  // namespace

std::string brief_sql(std::string_view sql) {
  std::string out;
  bool space = false;
  for (char c : sql) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
    if (out.size() > 160) {
      out += "...";
      break;
    }
  }
  return out;
}

Status check(sqlite3* db, int rc, std::string_view context) {
  if (is_ok(rc)) return Status::Ok();
  std::string msg = "sqlite: ";
  msg += context;
  msg += ": ";
  msg += errmsg_of(db, rc);
  return Error{std::move(msg)};
}

Status exec(sqlite3* db, std::string_view sql) {
  std::string s(sql);
  return check_lazy(db, sqlite3_exec(db, s.c_str(), nullptr, nullptr, nullptr), [&] { return brief_sql(sql); });
}

namespace {

Result<sqlite3_stmt*> prepare_raw(sqlite3* db, std::string_view sql, unsigned flags) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), flags, &stmt, nullptr);
  if (!is_ok(rc)) {
    Status st = check(db, rc, "prepare `" + brief_sql(sql) + "`");
    sqlite3_finalize(stmt);
    return Error{st.message()};
  }
  if (stmt == nullptr) return Error{"sqlite: prepare `" + brief_sql(sql) + "`: empty statement"};
  return stmt;
}

}  // namespace

Result<Stmt> Stmt::prepare(sqlite3* db, std::string_view sql) {
  auto stmt = prepare_raw(db, sql, 0);
  if (!stmt.ok()) return stmt.error();
  return Stmt(db, *stmt, nullptr);
}

Stmt::Stmt(sqlite3* db, sqlite3_stmt* stmt, bool* borrowed) : db_(db), stmt_(stmt), borrowed_(borrowed) {}

Stmt::Stmt(Stmt&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      borrowed_(std::exchange(other.borrowed_, nullptr)),
      bind_error_(std::move(other.bind_error_)) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    release();
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
    borrowed_ = std::exchange(other.borrowed_, nullptr);
    bind_error_ = std::move(other.bind_error_);
  }
  return *this;
}

void Stmt::release() {
  if (stmt_ == nullptr) return;
  if (borrowed_ != nullptr) {
    // Back to the cache: reset (its return code repeats the last step's error,
    // which step() already reported) and unbound, so that it holds no read snapshot.
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *borrowed_ = false;
    borrowed_ = nullptr;
  } else {
    sqlite3_finalize(stmt_);  // its return code repeats the last step's error: nothing new
  }
  stmt_ = nullptr;
}

Stmt::~Stmt() { release(); }

std::string Stmt::sql() const {
  const char* s = stmt_ != nullptr ? sqlite3_sql(stmt_) : nullptr;
  return s != nullptr ? std::string(s) : std::string();
}

void Stmt::note_bind(int rc, int i) {
  if (is_ok(rc) || bind_error_.has_value()) return;
  Status st = check(db_, rc, "bind ?" + std::to_string(i) + " of `" + brief_sql(sql()) + "`");
  bind_error_ = st.message();
}

Stmt& Stmt::bind(int i, int64_t v) {
  note_bind(sqlite3_bind_int64(stmt_, i, v), i);
  return *this;
}

Stmt& Stmt::bind(int i, double v) {
  note_bind(sqlite3_bind_double(stmt_, i, v), i);  // NaN is stored as NULL by SQLite
  return *this;
}

Stmt& Stmt::bind(int i, std::optional<double> v) {
  return v.has_value() ? bind(i, *v) : bind_null(i);
}

Stmt& Stmt::bind(int i, std::string_view v) {
  note_bind(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8), i);
  return *this;
}

Stmt& Stmt::bind_null(int i) {
  note_bind(sqlite3_bind_null(stmt_, i), i);
  return *this;
}

Result<bool> Stmt::step() {
  if (bind_error_.has_value()) return Error{*bind_error_};
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status st = check(db_, rc, "`" + brief_sql(sql()) + "`");
  if (st.ok()) return Error{"sqlite: `" + brief_sql(sql()) + "`: unexpected step result " + std::to_string(rc)};
  return Error{st.message()};
}

Status Stmt::run() {
  while (true) {
    auto row = step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
  }
}

Status Stmt::reset() {
  bind_error_.reset();
  // sqlite3_reset repeats the error of the last step, which step() already reported.
  sqlite3_reset(stmt_);
  return check_lazy(db_, sqlite3_clear_bindings(stmt_), [&] { return "clear bindings of `" + brief_sql(sql()) + "`"; });
}

int64_t Stmt::changes() const { return sqlite3_changes64(db_); }

bool Stmt::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

int64_t Stmt::int64(int col) const { return sqlite3_column_int64(stmt_, col); }

double Stmt::real(int col) const { return sqlite3_column_double(stmt_, col); }

std::optional<double> Stmt::opt_real(int col) const {
  if (is_null(col)) return std::nullopt;
  return sqlite3_column_double(stmt_, col);
}

std::string Stmt::text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

StmtCache::~StmtCache() {
  for (auto& [sql, e] : entries_) sqlite3_finalize(e.stmt);
}

Result<Stmt> StmtCache::get(std::string_view sql) {
  auto it = entries_.find(sql);
  if (it == entries_.end()) {
    auto stmt = prepare_raw(db_, sql, SQLITE_PREPARE_PERSISTENT);
    if (!stmt.ok()) return stmt.error();
    it = entries_.emplace(std::string(sql), Entry{*stmt, false}).first;
  }
  if (it->second.busy) return Stmt::prepare(db_, sql);  // lent already: a private copy
  it->second.busy = true;
  return Stmt(db_, it->second.stmt, &it->second.busy);
}

Result<int64_t> query_int(sqlite3* db, std::string_view sql) {
  auto st = Stmt::prepare(db, sql);
  if (!st.ok()) return st.error();
  auto row = st->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error{"sqlite: `" + brief_sql(sql) + "`: returned no row"};
  return st->int64(0);
}

Result<Transaction> Transaction::begin(sqlite3* db, Mode mode) {
  GB_RETURN_IF_ERROR(exec(db, mode == Mode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN"));
  return Transaction(db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  if (db_ == nullptr) return;
  // A failed statement may already have rolled the transaction back; only roll back
  // when one is still open. A failing ROLLBACK cannot be returned from here.
  if (sqlite3_get_autocommit(db_) == 0) {
    Status st = exec(db_, "ROLLBACK");
    if (!st.ok()) std::fprintf(stderr, "gridbench: %s\n", st.message().c_str());
  }
}

Status Transaction::commit() {
  GB_CHECK(db_ != nullptr);
  Status st = exec(db_, "COMMIT");
  if (st.ok()) db_ = nullptr;  // on failure the destructor rolls back
  return st;
}

}  // namespace gb::sqlite
