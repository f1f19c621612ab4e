#include "worker/job_runner.h"

#include "engine/backend/cuda_backend.h"
#include "engine/jobs/job_inputs.h"
#include "engine/jobs/placement.h"
#include "engine/measure/engine_session.h"
#include "engine/measure/measures.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>

namespace gb::worker {

JobResult run_job(const JobSpec& spec, const engine::ProgressFn& progress) {
  JobResult r;
  r.engine_version = engine_version();
  auto t0 = std::chrono::steady_clock::now();
  const engine::JobKind* kind = engine::find_job_kind(spec.kind);
  if (kind == nullptr) {
    r.status = JobStatus::kFailed;
    r.error = "unknown job kind '" + spec.kind + "'";
    return r;
  }
  // What will not change on a retry is `invalid`: parameters the registry refuses, an
  // unset ${VAR} (engine/jobs/job_inputs.h), a file that is not there.
  if (Status st = engine::check_job(spec.kind, spec.params); !st.ok()) {
    r.status = JobStatus::kInvalid;
    r.error = st.message();
    return r;
  }
  Json params = spec.params;
  if (Status st = engine::expand_job_vars(params); !st.ok()) {
    r.status = JobStatus::kInvalid;
    r.error = st.message();
    return r;
  }
  for (const auto& [name, v] : params.items()) {
    if (!engine::is_file_param(name) || !v.is_string()) continue;
    const std::string file = engine::file_part(name, v.get<std::string>());
    std::error_code ec;
    if (!file.empty() && !std::filesystem::exists(file, ec)) {
      r.status = JobStatus::kInvalid;
      r.error = "$.params." + name + ": " + v.get<std::string>() + ": " + file + " does not exist on this machine";
      return r;
    }
  }
  // A cuda job on a build or machine without CUDA is invalid: a retry here cannot help.
  const engine::Requirement need = engine::job_requirement(*kind, params);
  if (need.device == "cuda") {
    if (auto why = engine::cuda_unavailable(engine::kSessionCudaDevice)) {
      r.status = JobStatus::kInvalid;
      r.error = *why;
      return r;
    }
  }
  // A model that cannot fit ends now as oom, before anything is loaded: host memory
  // for cpu jobs, the device's free memory for cuda jobs.
  if (auto short_of = engine::host_memory_shortfall(need, "this job")) {
    r.status = JobStatus::kOom;
    r.error = *short_of;
    return r;
  }
  if (need.device == "cuda") {
    if (auto short_of = engine::device_memory_shortfall(need.memory_bytes, engine::kSessionCudaDevice, "this job")) {
      r.status = JobStatus::kOom;
      r.error = *short_of;
      return r;
    }
  }
  const engine::MeasureFn* measure = engine::find_measure(spec.kind);
  if (measure == nullptr) {
    r.status = JobStatus::kFailed;
    r.error = "job kind '" + spec.kind + "' has no run function in this gridbench-job";
    return r;
  }
  try {
    Result<engine::JobOutput> out = (*measure)(engine::project_params(*kind, params), progress);
    if (out.ok()) {
      r.output = std::move(out).value();
    } else {
      // A device allocation that failed while running (engine/backend/cuda_backend.h).
      const bool device_oom = out.message().find(engine::kDeviceOutOfMemory) != std::string::npos;
      r.status = device_oom ? JobStatus::kOom : JobStatus::kFailed;
      r.error = out.message();
    }
  } catch (const std::bad_alloc&) {
    r.status = JobStatus::kOom;
    r.error = "out of host memory (std::bad_alloc)";
  }
  r.wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

int exit_code_for(const JobResult& r) {
  switch (r.status) {
    case JobStatus::kSucceeded: return kExitSucceeded;
    case JobStatus::kFailed: return kExitFailed;
    case JobStatus::kOom: return kExitOom;
    case JobStatus::kInvalid: return kExitInvalid;
  }
  return kExitFailed;
}

Status write_output_files(JobResult& r, const std::string& result_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::absolute(fs::path(result_path), ec).parent_path();
  if (ec) return Error{"cannot resolve " + result_path + ": " + ec.message()};
  for (const engine::OutputFile& f : r.output.files) {
    const fs::path path = dir / f.name;
    const fs::path tmp = dir / (f.name + ".tmp");
    {
      std::FILE* out = std::fopen(tmp.c_str(), "wb");
      if (out == nullptr) return Error{"cannot write " + tmp.string() + ": " + std::strerror(errno)};
      const bool ok = std::fwrite(f.content.data(), 1, f.content.size(), out) == f.content.size();
      if ((std::fclose(out) != 0) || !ok) return Error{"cannot write " + tmp.string() + ": " + std::strerror(errno)};
    }
    fs::rename(tmp, path, ec);
    if (ec) return Error{"cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message()};
    for (engine::Metric& m : r.output.metrics)
      if (m.name == f.metric) m.text = path.string();
  }
  return Status::Ok();
}

int run_job_files(const std::string& spec_path, const std::string& out_path) {
  auto write_failure = [&](const std::string& error, int code) {
    std::fprintf(stderr, "gridbench-job: %s\n", error.c_str());
    if (!out_path.empty()) {
      JobResult r;
      r.status = JobStatus::kFailed;
      r.error = error;
      r.engine_version = engine_version();
      if (Status st = write_json_file(out_path, job_result_to_json(r)); !st.ok()) {
        std::fprintf(stderr, "gridbench-job: %s\n", st.message().c_str());
        return static_cast<int>(kExitIo);
      }
    }
    return code;
  };
  Result<Json> doc = read_json_file(spec_path);
  if (!doc.ok()) return write_failure(doc.message(), kExitUsage);
  Result<JobSpec> spec = job_spec_from_json(*doc, spec_path);
  if (!spec.ok()) return write_failure(spec.message(), kExitUsage);
  // An invalid JOB.json is a usage error (exit 2), not a job that failed.
  if (std::string problems = job_spec_problems(*spec, spec_path); !problems.empty())
    return write_failure(problems, kExitUsage);

  JobResult r = run_job(*spec, [](double fraction, const std::string& message) {
    std::fprintf(stderr, "progress %.4f %s\n", fraction, message.c_str());
    std::fflush(stderr);
  });
  if (r.status == JobStatus::kSucceeded)
    if (Status st = write_output_files(r, out_path); !st.ok()) {
      r.status = JobStatus::kFailed;
      r.error = st.message();
    }
  if (r.status != JobStatus::kSucceeded) std::fprintf(stderr, "gridbench-job: %s\n", r.error.c_str());
  if (Status st = write_json_file(out_path, job_result_to_json(r)); !st.ok()) {
    std::fprintf(stderr, "gridbench-job: %s\n", st.message().c_str());
    return kExitIo;
  }
  return exit_code_for(r);
}

}  // namespace gb::worker
