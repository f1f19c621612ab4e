// libFuzzer target over JOB.json (worker/job_spec.h), read as gridbench-job reads
// it (run_job_files): parsed as outside JSON with the limits of read_json_file,
// then job_spec_from_json and job_spec_problems against the job-kind registry. The
// same document is also read as a RESULT.json (job_result_from_json), which the
// worker and the embedded runner read back from a child. Every step must answer
// with a value or an error naming the file, never crash, throw or read out of
// bounds; an accepted spec must write back (job_spec_to_json) to a document that
// reads as the same spec, with the input's own kind, hash and repeat.
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "common/json_parse.h"
#include "worker/job_spec.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_lines_name(const std::string& message, const std::string& where) {
  std::istringstream lines(message);
  for (std::string line; std::getline(lines, line);) check(line.rfind(where + ": ", 0) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string where = "fuzz/JOB.json";
  gb::JsonLimits limits;
  limits.max_bytes = 64 * gb::kMiB;  // as worker::read_json_file
  gb::Result<nlohmann::json> doc =
      gb::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), where, limits);
  if (!doc.ok()) {
    check(doc.message().rfind(where + ": ", 0) == 0);
    return 0;
  }
  gb::Result<gb::worker::JobResult> result = gb::worker::job_result_from_json(*doc, where);
  if (!result.ok()) check(result.message().rfind(where + ": ", 0) == 0);
  else (void)gb::worker::job_result_to_json(*result).dump();

  gb::Result<gb::worker::JobSpec> spec = gb::worker::job_spec_from_json(*doc, where);
  if (!spec.ok()) {
    check(spec.message().rfind(where + ": ", 0) == 0);
    return 0;
  }
  // The spec holds what the document says.
  check(spec->kind == (*doc)["kind"].get<std::string>());
  if (doc->contains("repeat")) check((*doc)["repeat"] == nlohmann::json(spec->repeat));
  const std::string problems = gb::worker::job_spec_problems(*spec, where);
  check_lines_name(problems, where);
  // Written back and read again: the same spec.
  const nlohmann::json again = gb::worker::job_spec_to_json(*spec);
  gb::Result<nlohmann::json> reparsed = gb::parse_json(again.dump(), where, limits);
  check(reparsed.ok());
  gb::Result<gb::worker::JobSpec> back = gb::worker::job_spec_from_json(*reparsed, where);
  check(back.ok() && back->kind == spec->kind && back->hash == spec->hash && back->repeat == spec->repeat &&
        back->params == spec->params);
  return 0;
}
