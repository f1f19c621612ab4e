// Every example query of docs/RESULTS_SCHEMA.md runs against a database made by
// small grids through the real `gridbench run`, and returns rows (issue 15: three
// returned nothing or the wrong rows). The database holds: a grid named
// `cpu-engine` (the doc's example grid: the golden tiny GPT-2, two KV formats,
// ppl, speed and memory, 2 repeats, run twice so that a rerun replaced results),
// a roofline grid on the h100-sxm preset (theory, which "measured results" must
// not return), a grid whose jobs fail twice each, and a job running while the
// queries run (for the lease queries). The doc's placeholder hash
// 3f2a9c0d4e5b6a71 is replaced by the hash of one of cpu-engine's speed jobs.
#include <signal.h>
#include <sqlite3.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/cli/cli_helpers.h"

namespace gb {
namespace {

using namespace cli_testing;

struct Query {
  std::string title;  // the paragraph before it
  std::string sql;
};

// The ```sql blocks of a Markdown file, each with the last paragraph line above it.
std::vector<Query> sql_blocks(const std::string& path) {
  std::ifstream in(path);
  std::vector<Query> out;
  std::string line, last_text, sql;
  bool in_sql = false, in_other = false;
  while (std::getline(in, line)) {
    if (in_sql) {
      if (line.rfind("```", 0) == 0) {
        out.push_back({last_text, sql});
        in_sql = false;
      } else {
        sql += line + "\n";
      }
    } else if (in_other) {
      if (line.rfind("```", 0) == 0) in_other = false;
    } else if (line.rfind("```sql", 0) == 0) {
      in_sql = true;
      sql.clear();
    } else if (line.rfind("```", 0) == 0) {
      in_other = true;
    } else if (!line.empty()) {
      last_text = line;
    }
  }
  return out;
}

using Row = std::map<std::string, std::optional<std::string>>;

// Every row of `sql` by column name, or an error.
std::vector<Row> run_query(const std::string& db, const std::string& sql, std::string* error) {
  sqlite3* h = nullptr;
  std::vector<Row> rows;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    *error = "cannot open " + db;
    return rows;
  }
  sqlite3_busy_timeout(h, 5000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    *error = sqlite3_errmsg(h);
  } else {
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      Row r;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        r[sqlite3_column_name(st, i)] = t ? std::optional<std::string>(reinterpret_cast<const char*>(t)) : std::nullopt;
      }
      rows.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) *error = sqlite3_errmsg(h);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return rows;
}

std::string query_text(const std::string& db, const std::string& sql) {
  std::string error;
  std::vector<Row> rows = run_query(db, sql, &error);
  if (rows.empty() || rows[0].empty() || !rows[0].begin()->second) return "";
  return *rows[0].begin()->second;
}

TEST(ResultsSchemaDoc, EveryExampleQueryReturnsRows) {
  const std::string d = temp_dir("docs_");
  const std::string data = kSource + "/tests/data";
  const std::string db = d + "/gridbench.db";
  auto gridbench = [&](const std::vector<std::string>& args) { return run_program(d, "gridbench", args); };

  write_file(d + "/cpu-engine.json", R"({"name": "cpu-engine", "axes": {"kv_format": ["f32", "f16"]},
    "fixed": {"model": "hf:)" + data + R"(/golden/gpt2", "batch_size": 1, "context": 32, "chunks": 2,
              "prompt_tokens": 8, "gen_tokens": 4, "dataset": "text:)" + data + R"(/corpus/opticks-book1-part1.txt",
              "tokenizer": ")" + data + R"(/ppl/byte_tokenizer.json"},
    "measure": ["ppl", "speed", "memory"], "repeats": 2})");
  write_file(d + "/theory.json", R"({"name": "theory", "axes": {"model": ["qwen1.5-7b"]},
    "fixed": {"weight_format": "f16", "kv_format": "f16", "device": "h100-sxm"}, "measure": ["roofline"]})");
  write_file(d + "/broken.json", R"({"name": "broken", "axes": {"kv_format": ["f32"]},
    "fixed": {"model": "hf:)" + data + R"(/golden/gpt2", "dataset": "text:${GB_DOCS_UNSET_DIR}/corpus.txt",
              "tokenizer": ")" + data + R"(/ppl/byte_tokenizer.json"},
    "measure": ["ppl"]})");
  write_file(d + "/naps.json", R"({"name": "naps", "axes": {"seconds": [60]}, "measure": ["sleep"]})");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"run", d + "/cpu-engine.json", "--db", db, "--out", d + "/out"},
        std::vector<std::string>{"run", d + "/cpu-engine.json", "--db", db, "--out", d + "/out", "--rerun"},
        std::vector<std::string>{"run", d + "/theory.json", "--db", db, "--out", d + "/out-theory"}}) {
    Output o = gridbench(args);
    ASSERT_EQ(o.code, 0) << o.out << o.err;
  }
  EXPECT_EQ(gridbench({"run", d + "/broken.json", "--db", db, "--out", d + "/out-broken", "--max-attempts", "2"}).code,
            1);

  // A job that runs while the queries run (its lease held), interrupted afterwards.
  Result<pid_t> naps = spawn_process({kBin + "gridbench", "run", d + "/naps.json", "--db", db, "--out", d + "/out-naps"},
                                     d + "/naps.out", d + "/naps.err");
  ASSERT_TRUE(naps.ok());
  bool running = false;
  for (int i = 0; i < 200 && !running; ++i) {
    running = query_int(db, "SELECT COUNT(*) FROM jobs WHERE state = 'running'") == 1;
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(running) << slurp(d + "/naps.err");

  const std::string hash = query_text(db, "SELECT job_hash FROM v_jobs WHERE grid = 'cpu-engine' AND kind = 'speed' "
                                          "AND repeat = 0 ORDER BY position LIMIT 1");
  ASSERT_EQ(hash.size(), 16u);
  std::vector<Query> queries = sql_blocks(kSource + "/docs/RESULTS_SCHEMA.md");
  EXPECT_GE(queries.size(), 10u);
  for (Query& q : queries) {
    for (size_t at; (at = q.sql.find("3f2a9c0d4e5b6a71")) != std::string::npos;) q.sql.replace(at, 16, hash);
    std::string error;
    std::vector<Row> rows = run_query(db, q.sql, &error);
    EXPECT_EQ(error, "") << q.title << "\n" << q.sql;
    EXPECT_FALSE(rows.empty()) << "no rows: " << q.title << "\n" << q.sql;
    // What the three queries of issue 15 got wrong.
    if (q.sql.find("AS tok_per_s") != std::string::npos) {
      bool both = false;
      for (const Row& r : rows) both = both || (r.at("ppl") && r.at("tok_per_s") && r.at("peak_rss"));
      EXPECT_TRUE(both) << "no row holds ppl, tok/s and peak RSS together: " << q.title;
    }
    if (q.sql.find("FROM series") != std::string::npos) {
      EXPECT_EQ(rows.size(), 4u) << q.title;  // one point per generated token
    }
    // "Measured" results are not theory: no roofline job among them.
    std::string title = q.title;
    for (char& c : title) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (title.find("measured") != std::string::npos) {
      for (const Row& r : rows) {
        std::optional<std::string> kind;
        if (r.count("kind")) kind = r.at("kind");
        if (r.count("job_hash") && r.at("job_hash"))
          kind = query_text(db, "SELECT kind FROM jobs WHERE hash = '" + *r.at("job_hash") + "'");
        EXPECT_TRUE(kind.has_value()) << "a measured-results query should say which kind: " << q.title;
        EXPECT_NE(kind, std::optional<std::string>("roofline")) << "theory among measured results: " << q.title;
      }
    }
  }

  kill(*naps, SIGINT);
  ExitInfo e = wait_process(*naps);
  EXPECT_TRUE(e.exited && e.code == 130) << slurp(d + "/naps.err");
}

}  // namespace
}  // namespace gb
