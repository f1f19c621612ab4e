// Report tables from hand-made grids and results: pivots, repeats, baselines, text
// cells, number printing and the three output formats.
#include "coordinator/report.h"

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace gb::coord {
namespace {

ResultRow result(const Json& params, const std::string& metric, std::optional<double> value,
                 const std::string& text = "", const std::string& kind = "speed", int repeat = 0) {
  ResultRow r;
  r.kind = kind;
  r.params = params;
  r.metric = metric;
  r.value = value;
  r.text = text;
  r.repeat = repeat;
  r.hash = "h" + std::to_string(std::hash<std::string>{}(params.dump() + kind) % 100000);
  return r;
}

ReportColumn col(const std::string& metric, const std::string& label = "", int digits = -1,
                 double scale = 1, const std::string& suffix = "", bool truncate = false) {
  return ReportColumn::plain(metric, label, digits, scale, suffix, truncate);
}

Grid grid_with(const ReportSpec& spec) {
  Grid g;
  g.name = "test-grid";
  g.source = "experiments/test.json";
  g.axis_names = {"weight_format", "kv_format"};
  g.reports = {spec};
  return g;
}

std::vector<Table> build(const Grid& g, const std::vector<ResultRow>& rows) {
  auto t = build_tables(g, rows);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.message());
  return t.ok() ? t.value() : std::vector<Table>{};
}

std::vector<std::string> texts(const std::vector<TableCell>& row) {
  std::vector<std::string> out;
  for (const auto& c : row) out.push_back(c.text);
  return out;
}

using Strings = std::vector<std::string>;

TEST(FormatNumber, FixedDigitsRoundHalfAwayFromZero) {
  EXPECT_EQ(format_number(2.5, 0), "3");
  EXPECT_EQ(format_number(-2.5, 0), "-3");
  EXPECT_EQ(format_number(0.125, 2), "0.13");
  EXPECT_EQ(format_number(1.005, 2), "1.01");  // as the decimal reads, not 1.00499...
  EXPECT_EQ(format_number(2.675, 2), "2.68");
  EXPECT_EQ(format_number(9.995, 2), "10.00");
  EXPECT_EQ(format_number(3, 2), "3.00");
  EXPECT_EQ(format_number(-0.001, 2), "0.00");  // no "-0.00"
  EXPECT_EQ(format_number(12.3449, 1), "12.3");
}

TEST(FormatNumber, TruncateFloors) {
  EXPECT_EQ(format_number(12.99, 0, 1, "", true), "12");
  EXPECT_EQ(format_number(0.29, 2, 1, "", true), "0.29");
  EXPECT_EQ(format_number(-1.21, 1, 1, "", true), "-1.3");
  EXPECT_EQ(format_number(126975.9, -1, 1, "", true), "126975");
}

TEST(FormatNumber, ScaleAndSuffix) {
  EXPECT_EQ(format_number(1536, 1, 1024, "K"), "1.5K");
  EXPECT_EQ(format_number(3.0e9, 2, 1e9, " GB"), "3.00 GB");
  EXPECT_EQ(format_number(1073741824, -1, 1073741824.0, "GiB"), "1GiB");
}

TEST(FormatNumber, Automatic) {
  EXPECT_EQ(format_number(42.0), "42");
  EXPECT_EQ(format_number(1000000), "1000000");
  EXPECT_EQ(format_number(-7), "-7");
  EXPECT_EQ(format_number(12.3456), "12.35");
  EXPECT_EQ(format_number(1234.5678), "1235");
  EXPECT_EQ(format_number(123456.7), "123457");
  EXPECT_EQ(format_number(0.00123456), "0.001235");
  EXPECT_EQ(format_number(1.5), "1.5");
  EXPECT_EQ(format_number(9.99996), "10");
  EXPECT_EQ(format_number(-0.5), "-0.5");
}

TEST(ParamText, Spellings) {
  EXPECT_EQ(param_text(Json("f16")), "f16");
  EXPECT_EQ(param_text(Json(8)), "8");
  EXPECT_EQ(param_text(Json(8.0)), "8");
  EXPECT_EQ(param_text(Json(0.5)), "0.5");
  EXPECT_EQ(param_text(Json(true)), "true");
  EXPECT_EQ(param_text(Json(nullptr)), "");
}

TEST(BuildTables, PivotHeadersAndRowOrder) {
  ReportSpec s;
  s.title = "decode";
  s.rows = {"weight_format"};
  s.pivot = "kv_format";
  s.columns = {col("tpot_ms", "decode_B_ms", 2), col("tok_per_s", "", 1)};
  std::vector<ResultRow> rows = {
      result({{"weight_format", "nf4"}, {"kv_format", "f16"}}, "tpot_ms", 10.0),
      result({{"weight_format", "nf4"}, {"kv_format", "f16"}}, "tok_per_s", 100.0),
      result({{"weight_format", "f16"}, {"kv_format", "f16"}}, "tpot_ms", 20.0),
      result({{"weight_format", "f16"}, {"kv_format", "f16"}}, "tok_per_s", 50.0),
      result({{"weight_format", "nf4"}, {"kv_format", "int8"}}, "tpot_ms", 9.0),
      result({{"weight_format", "nf4"}, {"kv_format", "int8"}}, "tok_per_s", 111.11),
  };
  auto tables = build(grid_with(s), rows);
  ASSERT_EQ(tables.size(), 1u);
  const Table& t = tables[0];
  EXPECT_EQ(t.title, "decode");
  EXPECT_EQ(t.header, (Strings{"weight_format", "f16 decode_B_ms", "f16 tok_per_s",
                               "int8 decode_B_ms", "int8 tok_per_s"}));
  EXPECT_EQ(t.key_columns, 1);
  ASSERT_EQ(t.columns.size(), t.header.size());
  EXPECT_TRUE(t.columns[0].key);
  EXPECT_EQ(t.columns[3].pivot_value, "int8");
  EXPECT_EQ(t.columns[3].label, "decode_B_ms");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(texts(t.rows[0]), (Strings{"nf4", "10.00", "100.0", "9.00", "111.1"}));
  EXPECT_EQ(texts(t.rows[1]), (Strings{"f16", "20.00", "50.0", "", ""}));  // missing cells
  EXPECT_FALSE(t.rows[1][3].value.has_value());
  EXPECT_EQ(t.rows[1][3].n, 0);

  std::string md = render_tables(tables, TableFormat::kMarkdown);
  EXPECT_NE(md.find("### decode"), std::string::npos);
  // Numbers right-aligned, missing cells "-".
  EXPECT_NE(md.find("| weight_format | f16 decode_B_ms | f16 tok_per_s | int8 decode_B_ms | int8 tok_per_s |\n"
                    "| ------------- | --------------: | ------------: | ---------------: | -------------: |\n"
                    "| nf4           |           10.00 |         100.0 |             9.00 |          111.1 |\n"
                    "| f16           |           20.00 |          50.0 |                - |              - |\n"),
            std::string::npos)
      << md;
}

TEST(BuildTables, RepeatsGiveMeanAndSampleStddev) {
  ReportSpec s;
  s.title = "speed";
  s.rows = {"weight_format"};
  s.columns = {col("tok_per_s")};
  Json p = {{"weight_format", "f16"}, {"kv_format", "f16"}};
  std::vector<ResultRow> rows = {result(p, "tok_per_s", 10.0, "", "speed", 0),
                                 result(p, "tok_per_s", 12.0, "", "speed", 1),
                                 result(p, "tok_per_s", 14.0, "", "speed", 2)};
  auto tables = build(grid_with(s), rows);
  ASSERT_EQ(tables.size(), 1u);
  ASSERT_EQ(tables[0].rows.size(), 1u);
  const TableCell& c = tables[0].rows[0][1];
  ASSERT_TRUE(c.value.has_value());
  EXPECT_DOUBLE_EQ(*c.value, 12.0);
  EXPECT_EQ(c.n, 3);
  EXPECT_DOUBLE_EQ(c.stddev, 2.0);
  EXPECT_EQ(c.text, "12");

  // One result: n = 1, stddev 0.
  auto one = build(grid_with(s), {rows[0]});
  EXPECT_EQ(one[0].rows[0][1].n, 1);
  EXPECT_EQ(one[0].rows[0][1].stddev, 0);
}

// `spread`: the mean over repeats with its standard deviation or its range
// (10, 12, 14: sd 2, range [10, 14]); one repeat prints the mean alone.
TEST(BuildTables, SpreadPrintsTheStddevOrTheRangeOfRepeats) {
  ReportSpec s;
  s.title = "speed";
  s.rows = {"weight_format"};
  ReportColumn sd = col("tok_per_s", "sd", 1), range = col("tok_per_s", "range", 1);
  sd.spread = "sd";
  range.spread = "range";
  s.columns = {sd, range};
  Json p = {{"weight_format", "f16"}, {"kv_format", "f16"}};
  std::vector<ResultRow> rows = {result(p, "tok_per_s", 10.0, "", "speed", 0),
                                 result(p, "tok_per_s", 12.0, "", "speed", 1),
                                 result(p, "tok_per_s", 14.0, "", "speed", 2)};
  auto tables = build(grid_with(s), rows);
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(texts(tables[0].rows[0]), (std::vector<std::string>{"f16", "12.0 ± 2.0", "12.0 [10.0, 14.0]"}));
  auto one = build(grid_with(s), {rows[0]});
  EXPECT_EQ(texts(one[0].rows[0]), (std::vector<std::string>{"f16", "10.0", "10.0"}));
}

TEST(BuildTables, BaselineRowDeltas) {
  ReportSpec s;
  s.title = "quant";
  s.rows = {"weight_format", "kv_format"};
  s.columns = {col("tpot_ms", "", 2), col("ppl", "", 2), col("note")};
  s.baseline = {{"weight_format", "f16"}};
  std::vector<ResultRow> rows = {
      result({{"weight_format", "f16"}, {"kv_format", "f16"}}, "tpot_ms", 24.74),
      result({{"weight_format", "f16"}, {"kv_format", "f16"}}, "ppl", 10.0),
      result({{"weight_format", "f16"}, {"kv_format", "int8"}}, "tpot_ms", 20.0),
      result({{"weight_format", "nf4"}, {"kv_format", "f16"}}, "tpot_ms", 12.37),
      result({{"weight_format", "nf4"}, {"kv_format", "f16"}}, "ppl", 11.0),
      result({{"weight_format", "nf4"}, {"kv_format", "f16"}}, "note", std::nullopt, "oom"),
      result({{"weight_format", "nf4"}, {"kv_format", "int8"}}, "tpot_ms", 10.0),
      result({{"weight_format", "int8"}, {"kv_format", "fp8"}}, "tpot_ms", 5.0),  // no baseline row
  };
  auto tables = build(grid_with(s), rows);
  ASSERT_EQ(tables.size(), 1u);
  const Table& t = tables[0];
  ASSERT_EQ(t.rows.size(), 5u);
  // The baseline rows themselves carry no delta.
  EXPECT_EQ(texts(t.rows[0]), (Strings{"f16", "f16", "24.74", "10.00", ""}));
  EXPECT_FALSE(t.rows[0][2].delta_pct.has_value());
  EXPECT_EQ(texts(t.rows[1]), (Strings{"f16", "int8", "20.00", "", ""}));
  // nf4/f16 against f16/f16.
  EXPECT_EQ(texts(t.rows[2]), (Strings{"nf4", "f16", "12.37 (-50.0%)", "11.00 (+10.0%)", "oom"}));
  ASSERT_TRUE(t.rows[2][2].delta_pct.has_value());
  EXPECT_NEAR(*t.rows[2][2].delta_pct, -50.0, 1e-9);
  EXPECT_FALSE(t.rows[2][4].delta_pct.has_value());
  EXPECT_FALSE(t.rows[2][4].value.has_value());
  // nf4/int8 against f16/int8 (the baseline overrides only its own keys).
  EXPECT_EQ(t.rows[3][2].text, "10.00 (-50.0%)");
  // int8/fp8: no f16/fp8 row, no delta.
  EXPECT_EQ(t.rows[4][2].text, "5.00");
  EXPECT_FALSE(t.rows[4][2].delta_pct.has_value());

  std::string md = render_tables(tables, TableFormat::kMarkdown);
  EXPECT_NE(md.find("12.37 (-50.0%)"), std::string::npos);
}

TEST(BuildTables, PivotBaselineComparesColumnGroups) {
  ReportSpec s;
  s.title = "kv";
  s.rows = {"batch_size"};
  s.pivot = "kv_format";
  s.columns = {col("peak_mem", "MiB", 0, 1048576)};
  s.baseline = {{"kv_format", "f16"}};
  std::vector<ResultRow> rows = {
      result({{"batch_size", 8}, {"kv_format", "f16"}}, "peak_mem", 2048.0 * 1048576),
      result({{"batch_size", 8}, {"kv_format", "int8"}}, "peak_mem", 1536.0 * 1048576),
      result({{"batch_size", 16}, {"kv_format", "f16"}}, "peak_mem", 4096.0 * 1048576),
      result({{"batch_size", 16}, {"kv_format", "int8"}}, "peak_mem", 5120.0 * 1048576),
  };
  auto tables = build(grid_with(s), rows);
  ASSERT_EQ(tables.size(), 1u);
  const Table& t = tables[0];
  EXPECT_EQ(t.header, (Strings{"batch_size", "f16 MiB", "int8 MiB"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(texts(t.rows[0]), (Strings{"8", "2048", "1536 (-25.0%)"}));
  EXPECT_EQ(texts(t.rows[1]), (Strings{"16", "4096", "5120 (+25.0%)"}));
  EXPECT_FALSE(t.rows[0][1].delta_pct.has_value());
  EXPECT_NEAR(*t.rows[1][2].delta_pct, 25.0, 1e-9);
  EXPECT_DOUBLE_EQ(*t.rows[0][1].value, 2048.0 * 1048576);  // value stays unscaled
}

TEST(BuildTables, BaselineKeyMustBeRowOrPivot) {
  ReportSpec s;
  s.title = "bad";
  s.rows = {"weight_format"};
  s.columns = {col("tpot_ms")};
  s.baseline = {{"dataset", "wiki"}};
  auto t = build_tables(grid_with(s), {result({{"weight_format", "f16"}}, "tpot_ms", 1.0)});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find("dataset"), std::string::npos);
}

TEST(BuildTables, ParameterColumnsKindAndFilter) {
  ReportSpec s;
  s.title = "ctx";
  s.kind = "max_context";
  s.rows = {"model"};
  s.columns = {col("batch_size", "bs"), col("max_context", "ctx", -1, 1, "", true),
               col("knee")};
  s.filter = {{"weight_format", "int4-g128"}};
  std::vector<ResultRow> rows = {
      result({{"model", "a"}, {"weight_format", "int4-g128"}, {"batch_size", 1}}, "max_context",
             126975.9, "", "max_context"),
      result({{"model", "a"}, {"weight_format", "int4-g128"}, {"batch_size", 1}}, "knee",
             std::nullopt, "none", "max_context"),
      result({{"model", "a"}, {"weight_format", "f16"}, {"batch_size", 1}}, "max_context", 5.0, "",
             "max_context"),  // filtered out
      result({{"model", "b"}, {"weight_format", "int4-g128"}, {"batch_size", 1}}, "max_context",
             7.0, "", "speed"),  // other kind
  };
  auto tables = build(grid_with(s), rows);
  ASSERT_EQ(tables.size(), 1u);
  ASSERT_EQ(tables[0].rows.size(), 1u);
  EXPECT_EQ(texts(tables[0].rows[0]), (Strings{"a", "1", "126975", "none"}));
  EXPECT_FALSE(tables[0].columns[1].metric);
  EXPECT_TRUE(tables[0].columns[2].metric);
}

// Reference 001's layout: one metric in two columns by their own filters, beside
// another kind's; 002's diff (minus), 004's ratio (over) and change (vs), where the
// other value may sit in another row (vs bf16) or the same row (kv_format filters).
TEST(BuildTables, ColumnFiltersAndDerivedColumns) {
  ReportSpec s;
  s.title = "001";
  s.rows = {"weight_format"};
  ReportColumn wiki = col("ppl", "Wiki PPL", 2), pg19 = col("ppl", "PG19 PPL", 2), tpot = col("tpot_ms", "TPOT", 1);
  wiki.filter = {{"dataset", "wiki"}};
  pg19.filter = {{"dataset", "pg19"}};
  ReportColumn diff = col("ppl", "wiki - pg19", 2);
  diff.filter = {{"dataset", "wiki"}};
  diff.minus = {{"dataset", "pg19"}};
  ReportColumn ratio = col("ppl", "wiki / pg19", 3);
  ratio.filter = {{"dataset", "wiki"}};
  ratio.over = {{"dataset", "pg19"}};
  ReportColumn vs = col("ppl", "vs f16");
  vs.filter = {{"dataset", "wiki"}};
  vs.vs = {{"weight_format", "f16"}};
  s.columns = {wiki, pg19, tpot, diff, ratio, vs};
  std::vector<ResultRow> rows = {
      result({{"weight_format", "f16"}, {"dataset", "wiki"}}, "ppl", 7.0, "", "ppl"),
      result({{"weight_format", "f16"}, {"dataset", "pg19"}}, "ppl", 8.0, "", "ppl"),
      result({{"weight_format", "f16"}}, "tpot_ms", 42.25),
      result({{"weight_format", "nf4"}, {"dataset", "wiki"}}, "ppl", 10.5, "", "ppl"),
      result({{"weight_format", "nf4"}, {"dataset", "pg19"}}, "ppl", std::nullopt, "failed", "ppl"),
      result({{"weight_format", "nf4"}}, "tpot_ms", 52.73),
      result({{"weight_format", "int8"}}, "tpot_ms", 108.5),  // no ppl at all
  };
  auto tables = build(grid_with(s), rows);
  ASSERT_EQ(tables.size(), 1u);
  const Table& t = tables[0];
  EXPECT_EQ(t.header, (Strings{"weight_format", "Wiki PPL", "PG19 PPL", "TPOT", "wiki - pg19", "wiki / pg19",
                               "vs f16"}));
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(texts(t.rows[0]), (Strings{"f16", "7.00", "8.00", "42.3", "-1.00", "0.875", "+0.00%"}));
  // A text cell on the other side leaves the derived cell empty; vs f16 reads the f16 row.
  EXPECT_EQ(texts(t.rows[1]), (Strings{"nf4", "10.50", "failed", "52.7", "", "", "+50.00%"}));
  EXPECT_NEAR(*t.rows[1][6].value, 50.0, 1e-12);
  EXPECT_EQ(texts(t.rows[2]), (Strings{"int8", "", "", "108.5", "", "", ""}));
  EXPECT_DOUBLE_EQ(*t.rows[0][4].value, -1.0);
}

TEST(BuildTables, DefaultTableUsesAxesAndEveryMetric) {
  Grid g;
  g.name = "demo";
  g.axis_names = {"weight_format", "batch_size"};
  std::vector<ResultRow> rows = {
      result({{"weight_format", "f16"}, {"batch_size", 1}}, "ttft_ms", 3.25),
      result({{"weight_format", "f16"}, {"batch_size", 1}}, "tok_per_s", 100),
      result({{"weight_format", "f16"}, {"batch_size", 2}}, "ttft_ms", 4.0),
      result({{"weight_format", "f16"}, {"batch_size", 2}}, "peak_mem_gib", 1.25, "", "memory"),
  };
  auto tables = build(g, rows);
  ASSERT_EQ(tables.size(), 1u);
  const Table& t = tables[0];
  EXPECT_EQ(t.title, "demo");
  EXPECT_EQ(t.header, (Strings{"weight_format", "batch_size", "ttft_ms", "tok_per_s", "peak_mem_gib"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(texts(t.rows[0]), (Strings{"f16", "1", "3.25", "100", ""}));
  EXPECT_EQ(texts(t.rows[1]), (Strings{"f16", "2", "4", "", "1.25"}));
}

StoredJob stored(const std::string& hash, const std::string& kind, const Json& params, JobState state,
                 const std::string& error = "", int attempts = 1) {
  StoredJob j;
  j.hash = hash;
  j.kind = kind;
  j.params = params;
  j.state = state;
  j.error = error;
  j.attempts = attempts;
  j.max_attempts = 3;
  return j;
}

// Jobs that failed or timed out show as cells like oom ones, and each is listed
// with its error after the report's tables (issue 15: they vanished, leaving a
// header without rows).
TEST(BuildTables, FailedAndTimedOutJobsShowAsCellsAndAreListed) {
  ReportSpec s;
  s.title = "decode";
  s.kind = "speed";
  s.rows = {"kv_format"};
  s.columns = {col("tpot_ms", "ms", 2), col("decode_tokens_per_s", "tok/s", 1)};
  s.baseline = {{"kv_format", "f32"}};
  const Json f32 = {{"kv_format", "f32"}}, f16 = {{"kv_format", "f16"}}, bf16 = {{"kv_format", "bf16"}},
             int8 = {{"kv_format", "int8"}};
  ResultRow a = result(f32, "tpot_ms", 10), b = result(f32, "decode_tokens_per_s", 100);
  a.hash = b.hash = "aaaa";
  std::vector<StoredJob> jobs = {
      stored("aaaa", "speed", f32, JobState::kSucceeded),
      stored("bbbb", "speed", f16, JobState::kFailed, "gridbench-job exited 1:\nsomething broke", 3),
      stored("cccc", "speed", bf16, JobState::kTimeout, "timed out after 2 s", 3),
      stored("dddd", "speed", int8, JobState::kPending),
  };
  auto t = build_tables(grid_with(s), {a, b}, jobs);
  ASSERT_TRUE(t.ok()) << t.message();
  ASSERT_EQ(t->size(), 2u);
  const Table& table = (*t)[0];
  ASSERT_EQ(table.rows.size(), 3u);  // the pending job has no cells yet
  EXPECT_EQ(texts(table.rows[0]), (Strings{"f32", "10.00", "100.0"}));
  EXPECT_EQ(texts(table.rows[1]), (Strings{"f16", "failed", "failed"}));
  EXPECT_EQ(texts(table.rows[2]), (Strings{"bf16", "timeout", "timeout"}));
  EXPECT_FALSE(table.rows[1][1].value.has_value());
  const Table& failures = (*t)[1];
  EXPECT_EQ(failures.title, "Failed jobs (failed, timeout, oom, invalid)");
  EXPECT_TRUE(failures.job_failures);
  EXPECT_FALSE(table.job_failures);
  EXPECT_EQ(failures.header, (Strings{"job", "kind", "state", "attempts", "parameters", "error"}));
  ASSERT_EQ(failures.rows.size(), 2u);
  EXPECT_EQ(texts(failures.rows[0]),
            (Strings{"bbbb", "speed", "failed", "3/3", R"({"kv_format":"f16"})", "gridbench-job exited 1: something broke"}));
  EXPECT_EQ(texts(failures.rows[1]),
            (Strings{"cccc", "speed", "timeout", "3/3", R"({"kv_format":"bf16"})", "timed out after 2 s"}));
  const std::string md = render_tables(*t, TableFormat::kMarkdown);
  EXPECT_NE(md.find("| f16       |  failed |  failed |"), std::string::npos) << md;
  EXPECT_NE(md.find("### Failed jobs"), std::string::npos) << md;

  // A grid whose every job failed: a table of failed cells, not "no results".
  auto all_failed = build_tables(grid_with(s), {}, {jobs[1]});
  ASSERT_TRUE(all_failed.ok());
  ASSERT_EQ((*all_failed)[0].rows.size(), 1u);
  EXPECT_EQ(texts((*all_failed)[0].rows[0]), (Strings{"f16", "failed", "failed"}));
}

// Without report sections: one table per measured kind, and a parameter that varies
// without being an axis (an include point's) is a row too, so no cell mixes jobs.
TEST(BuildTables, DefaultTablesSplitKindsAndShowEveryVaryingParameter) {
  Grid g;
  g.name = "mixed";
  g.axis_names = {"kv_format"};
  g.measures = {"speed", "memory"};
  const Json p1 = {{"kv_format", "f16"}, {"model", "synthetic:gpt2"}};
  Json p2 = {{"kv_format", "f16"}, {"model", "synthetic:gpt2"}, {"batch_size", 4}};
  g.jobs = {{"s1", "speed", p1, 0}, {"s2", "speed", p2, 0}, {"m1", "memory", p1, 0}};
  std::vector<ResultRow> rows = {result(p1, "tpot_ms", 2, "", "speed"), result(p2, "tpot_ms", 3, "", "speed"),
                                 result(p1, "kv_bytes_per_token", 512, "", "memory")};
  auto tables = build(g, rows);
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[0].title, "mixed: speed");
  EXPECT_EQ(tables[0].header, (Strings{"kv_format", "batch_size", "tpot_ms"}));
  ASSERT_EQ(tables[0].rows.size(), 2u);
  EXPECT_EQ(texts(tables[0].rows[0]), (Strings{"f16", "", "2"}));
  EXPECT_EQ(texts(tables[0].rows[1]), (Strings{"f16", "4", "3"}));
  EXPECT_EQ(tables[1].title, "mixed: memory");
  EXPECT_EQ(tables[1].header, (Strings{"kv_format", "kv_bytes_per_token"}));
}

TEST(RenderTables, CsvQuotingAndSeveralTables) {
  Table a;
  a.title = "first";
  a.header = {"name", "value"};
  TableCell c1, c2, c3, c4;
  c1.text = "a,b";
  c2.text = "say \"hi\"";
  c3.text = "line\nbreak";
  c4.text = "plain";
  a.rows = {{c1, c2}, {c3, c4}};
  std::string one = render_tables({a}, TableFormat::kCsv);
  EXPECT_EQ(one, "name,value\n\"a,b\",\"say \"\"hi\"\"\"\n\"line\nbreak\",plain\n");

  Table b;
  b.title = "second";
  b.header = {"x"};
  TableCell c5;
  c5.text = "1";
  b.rows = {{c5}};
  std::string two = render_tables({a, b}, TableFormat::kCsv);
  EXPECT_EQ(two.rfind("# first\nname,value\n", 0), 0u) << two;
  EXPECT_NE(two.find("plain\n\n# second\nx\n1\n"), std::string::npos) << two;
}

TEST(RenderTables, MarkdownEscapesPipes) {
  Table a;
  a.title = "t";
  a.header = {"k|v"};
  TableCell c;
  c.text = "x|y";
  a.rows = {{c}};
  std::string md = render_tables({a}, TableFormat::kMarkdown);
  EXPECT_NE(md.find("k\\|v"), std::string::npos);
  EXPECT_NE(md.find("x\\|y"), std::string::npos);
  EXPECT_EQ(md.rfind("### t\n\n|", 0), 0u) << md;
}

TEST(RenderTables, JsonShape) {
  ReportSpec s;
  s.title = "j";
  s.rows = {"weight_format"};
  s.columns = {col("tpot_ms", "", 1), col("status")};
  s.baseline = {{"weight_format", "f16"}};
  std::vector<ResultRow> rows = {
      result({{"weight_format", "f16"}}, "tpot_ms", 10.0),
      result({{"weight_format", "f16"}}, "tpot_ms", 12.0, "", "speed", 1),
      result({{"weight_format", "nf4"}}, "tpot_ms", 5.5),
      result({{"weight_format", "nf4"}}, "status", std::nullopt, "oom"),
  };
  auto tables = build(grid_with(s), rows);
  Json j = Json::parse(render_tables(tables, TableFormat::kJson));
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["title"], "j");
  EXPECT_EQ(j[0]["header"], Json({"weight_format", "tpot_ms", "status"}));
  ASSERT_EQ(j[0]["rows"].size(), 2u);
  const Json& base = j[0]["rows"][0][1];
  EXPECT_EQ(base["text"], "11.0");
  EXPECT_DOUBLE_EQ(base["value"].get<double>(), 11.0);
  EXPECT_EQ(base["n"], 2);
  EXPECT_NEAR(base["stddev"].get<double>(), std::sqrt(2.0), 1e-12);
  EXPECT_TRUE(base["delta_pct"].is_null());
  const Json& other = j[0]["rows"][1][1];
  EXPECT_EQ(other["text"], "5.5 (-50.0%)");
  EXPECT_NEAR(other["delta_pct"].get<double>(), -50.0, 1e-9);
  const Json& text = j[0]["rows"][1][2];
  EXPECT_EQ(text["text"], "oom");
  EXPECT_TRUE(text["value"].is_null());
  const Json& missing = j[0]["rows"][0][2];
  EXPECT_EQ(missing["text"], "");
  EXPECT_EQ(missing["n"], 0);
  for (const auto& cell : j[0]["rows"][0]) {
    for (const char* key : {"text", "value", "n", "stddev", "delta_pct"}) {
      EXPECT_TRUE(cell.contains(key)) << key;
    }
  }
}

TEST(ParseTableFormat, NamesAndError) {
  EXPECT_EQ(parse_table_format("md").value(), TableFormat::kMarkdown);
  EXPECT_EQ(parse_table_format("markdown").value(), TableFormat::kMarkdown);
  EXPECT_EQ(parse_table_format("csv").value(), TableFormat::kCsv);
  EXPECT_EQ(parse_table_format("json").value(), TableFormat::kJson);
  auto bad = parse_table_format("xml");
  ASSERT_FALSE(bad.ok());
  for (const char* name : {"xml", "md", "markdown", "csv", "json"}) {
    EXPECT_NE(bad.message().find(name), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace gb::coord
