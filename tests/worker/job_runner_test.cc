#include "worker/job_runner.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/kv/kv_calibration.h"

namespace gb::worker {
namespace {

std::string temp_dir() {
  auto dir = std::filesystem::path(::testing::TempDir()) /
             ("job_runner_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

Json roofline_params() {
  return Json{{"model", "qwen1.5-7b"}, {"weight_format", "f16"}, {"kv_format", "f16"}, {"device", "rtx4090"}};
}

TEST(JobSpec, RoundTrip) {
  JobSpec s{"roofline", "abc", 2, roofline_params()};
  Result<JobSpec> back = job_spec_from_json(job_spec_to_json(s), "x.json");
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->kind, "roofline");
  EXPECT_EQ(back->hash, "abc");
  EXPECT_EQ(back->repeat, 2);
  EXPECT_EQ(back->params, s.params);
}

TEST(JobSpec, ErrorsNameFileAndPath) {
  auto r = job_spec_from_json(Json{{"kind", 3}}, "job.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "job.json: $.kind: expected a string");
  r = job_spec_from_json(Json{{"kind", "roofline"}, {"extra", 1}}, "job.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("$.extra: unknown key"), std::string::npos);
}

// A repeat past int's range was read as another repeat (4294967296 as 0, the
// first run's repeat) instead of being refused: the input that job_spec_fuzz's
// "the spec holds the document's repeat" check aborts on (written by hand; the
// 300 s fuzz run did not reach it).
TEST(JobSpec, RepeatOutsideIntIsRefused) {
  for (const char* text : {R"({"kind": "roofline", "repeat": 4294967296})", R"({"kind": "roofline", "repeat": 2147483648})",
                           R"({"kind": "roofline", "repeat": 18446744073709551615})", R"({"kind": "roofline", "repeat": -1})"}) {
    auto r = job_spec_from_json(Json::parse(text), "job.json");
    ASSERT_FALSE(r.ok()) << text << " read as repeat " << r->repeat;
    EXPECT_EQ(r.message().rfind("job.json: $.repeat: expected an integer from 0 to 2147483647, got ", 0), 0u) << r.message();
  }
  auto r = job_spec_from_json(Json::parse(R"({"kind": "roofline", "repeat": 2147483647})"), "job.json");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->repeat, 2147483647);
}

TEST(JobResult, RoundTripKeepsTextMetricsAndSeries) {
  JobResult r;
  r.status = JobStatus::kOom;
  r.error = "boom";
  r.output.metrics.push_back({"max_context", std::nullopt, "tokens", "oom"});
  r.output.metrics.push_back({"decode_B_ms", 13.12, "ms", ""});
  r.output.series.push_back({"lat", "tokens", "ms", {{1, 2}, {3, 4}}});
  r.engine_version = "9";
  Result<JobResult> back = job_result_from_json(job_result_to_json(r), "r.json");
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->status, JobStatus::kOom);
  EXPECT_EQ(back->error, "boom");
  ASSERT_EQ(back->output.metrics.size(), 2u);
  EXPECT_FALSE(back->output.metrics[0].value.has_value());
  EXPECT_EQ(back->output.metrics[0].text, "oom");
  EXPECT_DOUBLE_EQ(*back->output.metrics[1].value, 13.12);
  ASSERT_EQ(back->output.series.size(), 1u);
  EXPECT_DOUBLE_EQ(back->output.series[0].points[1].y, 4);
}

TEST(RunJob, RooflineSucceeds) {
  JobResult r = run_job({"roofline", "h", 0, roofline_params()}, nullptr);
  ASSERT_EQ(r.status, JobStatus::kSucceeded) << r.error;
  bool found = false;
  for (const auto& m : r.output.metrics) {
    if (m.name == "decode_B_ms") {
      found = true;
      ASSERT_TRUE(m.value.has_value());
      EXPECT_NEAR(*m.value, 13.12, 0.005);  // reference 003, table 4.4, 7B w16kv16
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(r.engine_version, engine_version());
}

TEST(RunJob, InvalidParamsFail) {
  Json p = roofline_params();
  p["weight_format"] = "int9";
  JobResult r = run_job({"roofline", "h", 0, p}, nullptr);
  EXPECT_EQ(r.status, JobStatus::kInvalid);  // a retry would not change it
  EXPECT_NE(r.error.find("int9"), std::string::npos);
  r = run_job({"no-such-kind", "h", 0, p}, nullptr);
  EXPECT_EQ(r.status, JobStatus::kFailed);
  EXPECT_NE(r.error.find("unknown job kind 'no-such-kind'"), std::string::npos);
}

std::optional<double> metric(const JobResult& r, const std::string& name) {
  for (const auto& m : r.output.metrics)
    if (m.name == name) return m.value;
  return std::nullopt;
}

// Jobs on one (model, weight format) with the quantized-model cache on
// (engine/weights/quantized_cache.h): the first quantizes and saves the model, the
// second loads the saved one (its stderr says so) and holds the very same bytes; the
// size bound evicts the least recently used entry.
TEST(RunJob, SecondJobOnOneModelAndFormatLoadsTheQuantizedCache) {
  namespace fs = std::filesystem;
  const std::string cache = temp_dir() + "/quant-cache";
  fs::remove_all(cache);
  setenv("GRIDBENCH_QUANT_CACHE", cache.c_str(), 1);
  const std::string model = "hf:" + std::string(GB_SOURCE_DIR) + "/tests/data/golden/llama_gqa";
  auto job = [&](const std::string& format, std::string* err) {
    ::testing::internal::CaptureStderr();
    JobResult r = run_job({"speed", "h", 0,
                           Json{{"model", model}, {"weight_format", format}, {"prompt_tokens", 4}, {"gen_tokens", 2},
                                {"warmup_steps", 0}, {"timed_runs", 1}, {"threads", 1}}},
                          nullptr);
    *err = ::testing::internal::GetCapturedStderr();
    return r;
  };
  std::string e1, e2, e3;
  const JobResult first = job("int4-g32", &e1);
  const JobResult second = job("int4-g32", &e2);
  ASSERT_EQ(first.status, JobStatus::kSucceeded) << first.error;
  ASSERT_EQ(second.status, JobStatus::kSucceeded) << second.error;
  EXPECT_NE(e1.find("quantized_to_cache "), std::string::npos) << e1;
  EXPECT_EQ(e1.find("quantized_from_cache"), std::string::npos) << e1;
  EXPECT_NE(e2.find("quantized_from_cache "), std::string::npos) << e2;
  const std::string key = e1.substr(e1.find("quantized_to_cache ") + 19, 16);
  EXPECT_NE(e2.find("quantized_from_cache " + key), std::string::npos) << e2;
  EXPECT_TRUE(fs::exists(cache + "/" + key + "/model.safetensors"));
  EXPECT_EQ(metric(first, "loaded_weight_bytes"), metric(second, "loaded_weight_bytes"));
  std::printf("load_ms: quantized and saved %.1f, from the cache %.1f\n", metric(first, "load_ms").value_or(-1),
              metric(second, "load_ms").value_or(-1));
  // A bound of 0 bytes keeps only the entry just written: the int4 one goes.
  setenv("GRIDBENCH_QUANT_CACHE_GIB", "0", 1);
  const JobResult third = job("int8-channel", &e3);
  unsetenv("GRIDBENCH_QUANT_CACHE_GIB");
  unsetenv("GRIDBENCH_QUANT_CACHE");
  ASSERT_EQ(third.status, JobStatus::kSucceeded) << third.error;
  EXPECT_NE(e3.find("quantized_to_cache "), std::string::npos) << e3;
  EXPECT_FALSE(fs::exists(cache + "/" + key)) << "the least recently used entry was not evicted";
  int entries = 0;
  for (const auto& d : fs::directory_iterator(cache)) entries += d.is_directory() ? 1 : 0;
  EXPECT_EQ(entries, 1);
}

TEST(RunJobFiles, ExitCodesAndResultFile) {
  std::string d = temp_dir();
  ASSERT_TRUE(write_json_file(d + "/job.json", job_spec_to_json({"roofline", "h", 0, roofline_params()})).ok());
  EXPECT_EQ(run_job_files(d + "/job.json", d + "/result.json"), kExitSucceeded);
  Result<Json> doc = read_json_file(d + "/result.json");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["status"], "succeeded");

  EXPECT_EQ(run_job_files(d + "/missing.json", d + "/r2.json"), kExitUsage);
  doc = read_json_file(d + "/r2.json");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["status"], "failed");
  EXPECT_NE((*doc)["error"].get<std::string>().find("missing.json: cannot read"), std::string::npos);

  {
    std::ofstream f(d + "/bad.json");
    f << "{not json";
  }
  EXPECT_EQ(run_job_files(d + "/bad.json", d + "/r3.json"), kExitUsage);

  // A valid job whose dataset is missing on this machine: invalid, exit 5.
  const Json ppl = {{"model", "hf:" + std::string(GB_SOURCE_DIR) + "/tests/data/golden/gpt2"},
                    {"dataset", "text:/nonexistent/wiki.test.raw"}};
  ASSERT_TRUE(write_json_file(d + "/fail.json", job_spec_to_json({"ppl", "h", 0, ppl})).ok());
  EXPECT_EQ(run_job_files(d + "/fail.json", d + "/r4.json"), kExitInvalid);
  doc = read_json_file(d + "/r4.json");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["status"], "invalid");
  EXPECT_NE((*doc)["error"].get<std::string>().find("/nonexistent/wiki.test.raw does not exist on this machine"),
            std::string::npos);
  // A job that fails as it runs (the dataset exists but holds nothing to score): exit 1.
  {
    std::ofstream(d + "/blank.txt") << "   \n";
  }
  const Json blank = {{"model", "hf:" + std::string(GB_SOURCE_DIR) + "/tests/data/golden/gpt2"},
                      {"dataset", "text:" + d + "/blank.txt"},
                      {"tokenizer", std::string(GB_SOURCE_DIR) + "/tests/data/ppl/byte_tokenizer.json"}};
  ASSERT_TRUE(write_json_file(d + "/fail5.json", job_spec_to_json({"ppl", "h", 0, blank})).ok());
  EXPECT_EQ(run_job_files(d + "/fail5.json", d + "/r5.json"), kExitFailed);

  EXPECT_EQ(run_job_files(d + "/job.json", d + "/no-such-dir/r.json"), kExitIo);
}

// A job's files (kv_calibrate's calibration) are written beside RESULT.json, and
// RESULT.json's metric names the file by its absolute path, which reads back as a
// calibration.
TEST(RunJobFiles, KvCalibrateWritesItsCalibrationBesideTheResult) {
  const std::string d = temp_dir(), data = std::string(GB_SOURCE_DIR) + "/tests/data/reference_model";
  const Json p = {{"model", "hf:" + data}, {"dataset", "text:" + data + "/heldout.txt"}, {"context", 8},
                  {"calib_samples", 2}, {"threads", 1}};
  ASSERT_TRUE(write_json_file(d + "/job.json", job_spec_to_json({"kv_calibrate", "h", 0, p})).ok());
  ASSERT_EQ(run_job_files(d + "/job.json", d + "/result.json"), kExitSucceeded);
  Result<Json> doc = read_json_file(d + "/result.json");
  ASSERT_TRUE(doc.ok());
  std::string file;
  for (const Json& m : (*doc)["metrics"])
    if (m["name"] == "calibration_file") file = m["text"].get<std::string>();
  EXPECT_EQ(file, (std::filesystem::absolute(d) / "kv_calibration.json").string());
  Result<engine::KvCalibration> cal = engine::read_kv_calibration(file);
  ASSERT_TRUE(cal.ok()) << cal.error().message;
  EXPECT_EQ(cal->keys, "rotated");
  EXPECT_EQ(cal->model, "hf:" + data);
  EXPECT_FALSE(std::filesystem::exists(file + ".tmp"));
}

// An invalid JOB.json (a parameter missing, unknown, of the wrong type or outside
// its domain) is a usage error, exit 2 as the help says, and every message names
// the file and the JSON path (issue 15: exit 1, no file, no path).
TEST(RunJobFiles, InvalidJobJsonExits2WithFileAndPath) {
  std::string d = temp_dir();
  Json p = roofline_params();
  p.erase("model");
  p["batch_size"] = "four";
  p["colour"] = "red";
  p["device"] = "no-such-device";
  const std::string spec = d + "/invalid.json";
  ASSERT_TRUE(write_json_file(spec, job_spec_to_json({"roofline", "h", 0, p})).ok());
  EXPECT_EQ(run_job_files(spec, d + "/r.json"), kExitUsage);
  Result<Json> doc = read_json_file(d + "/r.json");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["status"], "failed");
  const std::string error = (*doc)["error"].get<std::string>();
  std::vector<std::string> lines;
  for (size_t start = 0; start <= error.size();) {
    size_t end = error.find('\n', start);
    if (end == std::string::npos) end = error.size();
    lines.push_back(error.substr(start, end - start));
    start = end + 1;
  }
  ASSERT_EQ(lines.size(), 4u) << error;
  EXPECT_EQ(lines[0], spec + ": $.params: job kind 'roofline' needs parameter 'model'");
  EXPECT_EQ(lines[1].rfind(spec + ": $.params.batch_size: ", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind(spec + ": $.params.colour: unknown parameter 'colour' (roofline takes: model, ", 0), 0u)
      << lines[2];
  EXPECT_EQ(lines[3].rfind(spec + ": $.params.device: ", 0), 0u) << lines[3];
  EXPECT_NE(lines[3].find("no-such-device"), std::string::npos) << lines[3];

  ASSERT_TRUE(write_json_file(spec, job_spec_to_json({"rooflin", "h", 0, roofline_params()})).ok());
  EXPECT_EQ(run_job_files(spec, d + "/r.json"), kExitUsage);
  doc = read_json_file(d + "/r.json");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["error"].get<std::string>().rfind(spec + ": $.kind: unknown job kind 'rooflin' (known: ", 0), 0u);
}

}  // namespace
}  // namespace gb::worker
