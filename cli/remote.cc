#include "cli/remote.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <grpcpp/grpcpp.h>

#include "cli/exit_status.h"
#include "common/coordinator_address.h"
#include "common/json_util.h"
#include "coordinator/grid/grid.h"
#include "coordinator/report.h"
#include "proto/gridbench.grpc.pb.h"

namespace gb::cli {
namespace {

namespace pb = gridbench::v1;

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{path + ": cannot read"};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// One connection: the stub and the bearer token every call carries.
struct Connection {
  std::unique_ptr<pb::Coordinator::Stub> stub;
  std::string address;
  std::string token;

  std::unique_ptr<grpc::ClientContext> context(int timeout_s = 30) const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    if (timeout_s > 0) ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
    return ctx;
  }
  // A failed rpc as an exit: invalid input (an invalid grid, an unknown grid) 2,
  // anything else 1.
  int fail_rpc(const std::string& what, const grpc::Status& s) const {
    if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) return fail(s.error_message(), kExitInvalid);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND)
      return fail(what + ": " + s.error_message() + " (on the coordinator at " + address + ")", kExitInvalid);
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE)
      return fail("cannot reach the coordinator at " + address + ": " + s.error_message());
    if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED)
      return fail(what + ": refused by the coordinator at " + address + ": " + s.error_message() +
                  " (give --token-file or GRIDBENCH_TOKEN)");
    return fail(what + ": " + s.error_message());
  }
};

Result<Connection> connect(const RemoteFlags& r) {
  Connection c;
  c.address = r.coordinator;
  if (c.address.empty()) {
    const char* env = std::getenv("GRIDBENCH_COORDINATOR");
    if (env && *env) c.address = env;
  }
  if (c.address.empty()) return Error{"--coordinator: give the coordinator's HOST:PORT (or GRIDBENCH_COORDINATOR)"};
  Result<std::string> target = coordinator_target(c.address);
  if (!target.ok()) return Error{"--coordinator: " + target.message()};
  c.address = *target;
  if (!r.token_file.empty()) {
    Result<std::string> t = read_text(r.token_file);
    if (!t.ok()) return Error{"--token-file: " + t.message()};
    c.token = trim(*t);
    if (c.token.empty()) return Error{"--token-file: " + r.token_file + " is empty"};
  } else if (const char* env = std::getenv("GRIDBENCH_TOKEN"); env && *env) {
    c.token = trim(env);
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!r.tls_ca.empty()) {
    grpc::SslCredentialsOptions opts;
    Result<std::string> ca = read_text(r.tls_ca);
    if (!ca.ok()) return Error{"--tls-ca: " + ca.message()};
    opts.pem_root_certs = *ca;
    if (!r.tls_cert.empty() || !r.tls_key.empty()) {
      Result<std::string> cert = read_text(r.tls_cert);
      if (!cert.ok()) return Error{"--tls-cert: " + cert.message()};
      Result<std::string> key = read_text(r.tls_key);
      if (!key.ok()) return Error{"--tls-key: " + key.message()};
      opts.pem_cert_chain = *cert;
      opts.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(opts);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  // Replies (GetResults of a large grid, a status listing every job) can exceed
  // gRPC's 4 MiB default; accept what the coordinator accepts as requests.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  c.stub = pb::Coordinator::NewStub(grpc::CreateCustomChannel(c.address, creds, args));
  return c;
}

// Appends a page's rows; a job's parameters and device are parsed once, not once
// per metric, and its rows share them.
void append_rows(const pb::GetResultsReply& reply, std::vector<coord::ResultRow>& rows) {
  const std::string* last_params = nullptr;
  const std::string* last_device = nullptr;
  SharedJson params, device;
  for (const auto& r : reply.rows()) {
    coord::ResultRow row;
    row.hash = r.hash();
    row.kind = r.kind();
    if (last_params == nullptr || *last_params != r.params_json()) {
      params = Json::parse(r.params_json(), nullptr, false);
      last_params = &r.params_json();
    }
    if (last_device == nullptr || *last_device != r.device_json()) {
      device = Json::parse(r.device_json().empty() ? "{}" : r.device_json(), nullptr, false);
      last_device = &r.device_json();
    }
    row.params = params;
    row.device = device;
    row.repeat = r.repeat();
    row.metric = r.metric().name();
    if (r.metric().has_value()) row.value = r.metric().value();
    row.unit = r.metric().unit();
    row.text = r.metric().text();
    row.engine_version = r.engine_version();
    rows.push_back(std::move(row));
  }
}

// The grid's jobs as the report tables need them (states and errors).
std::vector<coord::StoredJob> to_jobs(const pb::ListJobsReply& reply) {
  std::vector<coord::StoredJob> jobs;
  for (const pb::Job& j : reply.jobs()) {
    coord::StoredJob s;
    s.id = j.job_id();
    s.hash = j.hash();
    s.kind = j.kind();
    s.params_json = j.params_json();
    s.params = Json::parse(j.params_json(), nullptr, false);
    if (s.params.is_discarded()) s.params = Json::object();
    s.repeat = j.repeat();
    s.state = coord::parse_state(j.state()).value_or(coord::JobState::kPending);
    s.attempts = j.attempts();
    s.max_attempts = j.max_attempts();
    s.error = j.error();
    jobs.push_back(std::move(s));
  }
  return jobs;
}

int print_results(const Connection& c, const std::string& grid, const std::string& format) {
  Result<coord::TableFormat> fmt = coord::parse_table_format(format);
  if (!fmt.ok()) return fail("--format: " + fmt.message(), kExitInvalid);
  // In pages of kResultsPageJobs jobs (about 20 MB at 22 metrics a job), so that a
  // 100,000-job grid does not need one reply over the channel's limit. A coordinator
  // that predates pages answers everything at once with next_from_position 0.
  constexpr int kResultsPageJobs = 2000;
  pb::GetResultsRequest req;
  req.set_grid(grid);
  req.set_max_jobs(kResultsPageJobs);
  pb::GetResultsReply reply;
  std::vector<coord::ResultRow> rows;
  while (true) {
    pb::GetResultsReply page;
    auto ctx = c.context();
    grpc::Status s = c.stub->GetResults(ctx.get(), req, &page);
    if (!s.ok()) return c.fail_rpc("results of " + grid, s);
    append_rows(page, rows);
    if (req.from_position() == 0) {
      reply.set_grid_spec_json(page.grid_spec_json());
      reply.set_source(page.source());
    }
    if (page.next_from_position() <= req.from_position()) break;
    req.set_from_position(page.next_from_position());
  }
  grpc::Status s;
  pb::ListJobsRequest jobs_req;
  jobs_req.set_grid(grid);
  pb::ListJobsReply jobs;
  auto jobs_ctx = c.context();
  s = c.stub->ListJobs(jobs_ctx.get(), jobs_req, &jobs);
  if (!s.ok()) return c.fail_rpc("jobs of " + grid, s);
  Result<nlohmann::ordered_json> doc =
      parse_ordered_json(reply.grid_spec_json(), "the coordinator's grid spec", coord::grid_json_limits());
  if (!doc.ok()) return fail(doc.message());
  Result<coord::Grid> g = coord::parse_grid(*doc, reply.source());
  if (!g.ok()) return fail(g.message());
  Result<std::vector<coord::Table>> tables = coord::build_tables(*g, rows, to_jobs(jobs));
  if (!tables.ok()) return fail(tables.message());
  std::cout << coord::render_tables(*tables, *fmt);
  return kExitOk;
}

int64_t count(const pb::GridStatus& s, const char* state) {
  auto it = s.by_state().find(state);
  return it == s.by_state().end() ? 0 : it->second;
}

int64_t terminal(const pb::GridStatus& s) {
  return count(s, "succeeded") + count(s, "failed") + count(s, "oom") + count(s, "invalid") + count(s, "timeout") +
         count(s, "cancelled");
}

int64_t bad(const pb::GridStatus& s) {
  return count(s, "failed") + count(s, "invalid") + count(s, "timeout") + count(s, "cancelled");
}

// "[3/8 done] 5 pending (5 unplaceable: no worker is registered), 0 running".
std::string status_line(const pb::GridStatus& s) {
  std::string line = "[" + std::to_string(terminal(s)) + "/" + std::to_string(s.total()) + " done] " +
                     std::to_string(count(s, "pending")) + " pending";
  if (s.unplaceable() > 0) {
    line += " (" + std::to_string(s.unplaceable()) + " unplaceable: " +
            (s.active_workers() == 0 ? "no worker is registered"
                                     : "no active worker has the device kind or memory they need") +
            ")";
  }
  line += ", " + std::to_string(count(s, "running") + count(s, "leased")) + " running";
  if (bad(s) > 0) line += ", " + std::to_string(bad(s)) + " failed";
  return line;
}

// Streams a grid's progress until it is done; returns the last status. Without a
// terminal, each job that changes state is a line, and so is the grid's status
// (status_line) at the start and while nothing moves (the coordinator sends it
// again every few seconds): when it changed, or once a minute. *not_found is set
// when the coordinator knows no such grid.
Result<pb::GridStatus> watch(const Connection& c, const std::string& grid, bool* not_found = nullptr) {
  pb::WatchGridRequest req;
  req.set_name(grid);
  auto ctx = c.context(0);
  std::unique_ptr<grpc::ClientReader<pb::GridProgress>> reader = c.stub->WatchGrid(ctx.get(), req);
  const bool tty = isatty(fileno(stderr));
  pb::GridProgress msg;
  pb::GridStatus last;
  bool done = false, first = true;
  std::string shown;  // the status line printed last
  auto shown_at = std::chrono::steady_clock::now();
  while (reader->Read(&msg)) {
    last = msg.status();
    const int64_t total = last.total(), fin = terminal(last);
    if (tty) {
      const int width = 30;
      int filled = total ? static_cast<int>(width * fin / total) : width;
      std::fprintf(stderr, "\r[%s%s] %lld/%lld done, %lld running, %lld failed, %lld unplaceable%s ",
                   std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(),
                   static_cast<long long>(fin), static_cast<long long>(total),
                   static_cast<long long>(count(last, "running") + count(last, "leased")),
                   static_cast<long long>(bad(last)), static_cast<long long>(last.unplaceable()),
                   last.unplaceable() > 0 && last.active_workers() == 0 ? " (no worker is registered)" : "");
    } else if (!msg.done() && (first || msg.changed_size() == 0)) {
      const std::string line = status_line(last);
      const auto now = std::chrono::steady_clock::now();
      if (line != shown || now - shown_at >= std::chrono::seconds(60)) {
        std::fprintf(stderr, "grid %s: %s\n", grid.c_str(), line.c_str());
        shown = line;
        shown_at = now;
      }
    }
    first = false;
    for (const auto& j : msg.changed()) {
      if (tty && (j.state() == "succeeded" || j.state() == "running" || j.state() == "leased")) continue;
      std::fprintf(stderr, "%s[%lld/%lld] %s %s %s%s%s\n", tty ? "\n" : "", static_cast<long long>(fin),
                   static_cast<long long>(total), j.state().c_str(), j.kind().c_str(), j.hash().c_str(),
                   j.error().empty() ? "" : ": ", j.error().c_str());
    }
    if (msg.done()) done = true;
  }
  if (tty) std::fprintf(stderr, "\n");
  grpc::Status s = reader->Finish();
  if (!s.ok() && !done) {
    if (not_found != nullptr) *not_found = s.error_code() == grpc::StatusCode::NOT_FOUND;
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE)
      return Error{"watch " + grid + ": cannot reach the coordinator at " + c.address + ": " + s.error_message()};
    return Error{"watch " + grid + ": " + s.error_message()};
  }
  return last;
}

}  // namespace

int cmd_submit(const RemoteFlags& r, const std::string& grid_path, bool rerun, bool wait, int max_attempts) {
  // Validate here first: the same errors as `gridbench run`, before any traffic.
  Result<coord::Grid> grid = coord::load_grid(grid_path);
  if (!grid.ok()) return fail(grid.message(), kExitInvalid);
  for (const std::string& w : grid->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  Result<std::string> text = read_text(grid_path);
  if (!text.ok()) return fail(text.message(), kExitInvalid);
  // With files resolved here (coordinator/grid/grid_inputs.h), the coordinator gets the
  // document with its `inputs` (JSON, which a .yaml source also reads as).
  if (grid->spec.contains("inputs")) *text = grid->spec.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  Result<Connection> c = connect(r);
  if (!c.ok()) return fail(c.message(), kExitInvalid);
  pb::SubmitGridRequest req;
  req.set_grid_text(*text);
  req.set_source(grid_path);
  req.set_rerun(rerun);
  req.set_max_attempts(max_attempts);
  pb::SubmitGridReply reply;
  auto ctx = c->context();
  grpc::Status s = c->stub->SubmitGrid(ctx.get(), req, &reply);
  if (!s.ok()) return c->fail_rpc("submit " + grid_path, s);
  std::printf("grid %s: %lld jobs, %lld reused, %lld queued\n", reply.name().c_str(),
              static_cast<long long>(reply.jobs()), static_cast<long long>(reply.reused()),
              static_cast<long long>(reply.queued()));
  if (reply.left_cancelled() > 0)
    std::printf("%lld unfinished jobs that left the grid cancelled\n", static_cast<long long>(reply.left_cancelled()));
  if (reply.unplaceable() > 0 && reply.active_workers() == 0) {
    std::printf("warning: no worker is registered with the coordinator at %s: the %lld queued jobs wait for one "
                "(gridbench-worker --coordinator %s)\n",
                c->address.c_str(), static_cast<long long>(reply.unplaceable()), c->address.c_str());
  } else if (reply.unplaceable() > 0) {
    std::printf("warning: %lld queued jobs fit no registered worker (device kind or memory)\n",
                static_cast<long long>(reply.unplaceable()));
  }
  if (!wait) return kExitOk;
  Result<pb::GridStatus> last = watch(*c, reply.name());
  if (!last.ok()) return fail(last.message());
  int code = print_results(*c, reply.name(), "md");
  if (code != kExitOk) return code;
  return bad(*last) > 0 ? kExitError : kExitOk;
}

int cmd_watch(const RemoteFlags& r, const std::string& grid) {
  Result<Connection> c = connect(r);
  if (!c.ok()) return fail(c.message(), kExitInvalid);
  bool not_found = false;
  Result<pb::GridStatus> last = watch(*c, grid, &not_found);
  if (!last.ok()) return fail(last.message(), not_found ? kExitInvalid : kExitError);
  std::printf("grid %s: %lld jobs, %lld succeeded, %lld failed, %lld oom, %lld invalid, %lld timeout, %lld cancelled\n",
              grid.c_str(), static_cast<long long>(last->total()), static_cast<long long>(count(*last, "succeeded")),
              static_cast<long long>(count(*last, "failed")), static_cast<long long>(count(*last, "oom")),
              static_cast<long long>(count(*last, "invalid")),
              static_cast<long long>(count(*last, "timeout")), static_cast<long long>(count(*last, "cancelled")));
  return bad(*last) > 0 ? kExitError : kExitOk;
}

int cmd_status(const RemoteFlags& r, const std::string& grid, const std::string& format) {
  if (format != "table" && format != "json") return fail("--format: expected table or json", kExitInvalid);
  Result<Connection> c = connect(r);
  if (!c.ok()) return fail(c.message(), kExitInvalid);
  if (grid.empty()) {
    pb::ListGridsReply reply;
    auto ctx = c->context();
    grpc::Status s = c->stub->ListGrids(ctx.get(), pb::ListGridsRequest(), &reply);
    if (!s.ok()) return c->fail_rpc("status", s);
    static const char* kStates[] = {"pending", "leased", "running", "succeeded", "failed", "oom", "invalid",
                                    "timeout", "cancelled"};
    if (format == "json") {
      Json out = Json::array();
      for (const auto& g : reply.grids()) {
        Json by = Json::object();
        for (const auto& [k, v] : g.by_state()) by[k] = v;
        out.push_back({{"name", g.name()}, {"source", g.source()}, {"total", g.total()}, {"by_state", by},
                       {"unplaceable", g.unplaceable()}});
      }
      std::cout << out.dump(2) << "\n";
      return kExitOk;
    }
    std::printf("%-28s %6s", "grid", "jobs");
    for (const char* st : kStates) std::printf(" %9s", st);
    std::printf(" %11s\n", "unplaceable");
    for (const auto& g : reply.grids()) {
      std::printf("%-28s %6lld", g.name().c_str(), static_cast<long long>(g.total()));
      for (const char* st : kStates) std::printf(" %9lld", static_cast<long long>(count(g, st)));
      std::printf(" %11lld\n", static_cast<long long>(g.unplaceable()));
    }
    return kExitOk;
  }
  pb::ListJobsRequest req;
  req.set_grid(grid);
  pb::ListJobsReply reply;
  auto ctx = c->context();
  grpc::Status s = c->stub->ListJobs(ctx.get(), req, &reply);
  if (!s.ok()) return c->fail_rpc("status " + grid, s);
  if (format == "json") {
    Json out = Json::array();
    for (const auto& j : reply.jobs())
      out.push_back({{"hash", j.hash()},
                     {"kind", j.kind()},
                     {"params", Json::parse(j.params_json(), nullptr, false)},
                     {"repeat", j.repeat()},
                     {"state", j.state()},
                     {"attempts", j.attempts()},
                     {"lease_owner", j.lease_owner()},
                     {"error", j.error()}});
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("%-16s  %-9s  %-9s  %3s  %-20s  %s\n", "hash", "kind", "state", "att", "worker", "params / error");
  for (const auto& j : reply.jobs()) {
    std::string tail = j.error().empty() ? j.params_json() : j.error().substr(0, 120);
    std::printf("%-16s  %-9s  %-9s  %3d  %-20s  %s\n", j.hash().c_str(), j.kind().c_str(), j.state().c_str(),
                j.attempts(), j.lease_owner().c_str(), tail.c_str());
  }
  return kExitOk;
}

int cmd_cancel(const RemoteFlags& r, const std::string& grid) {
  Result<Connection> c = connect(r);
  if (!c.ok()) return fail(c.message(), kExitInvalid);
  pb::CancelGridRequest req;
  req.set_name(grid);
  pb::CancelGridReply reply;
  auto ctx = c->context();
  grpc::Status s = c->stub->CancelGrid(ctx.get(), req, &reply);
  if (!s.ok()) return c->fail_rpc("cancel " + grid, s);
  std::printf("grid %s: %lld jobs cancelled\n", grid.c_str(), static_cast<long long>(reply.cancelled()));
  return kExitOk;
}

int cmd_workers(const RemoteFlags& r, const std::string& format) {
  if (format != "table" && format != "json") return fail("--format: expected table or json", kExitInvalid);
  Result<Connection> c = connect(r);
  if (!c.ok()) return fail(c.message(), kExitInvalid);
  pb::ListWorkersReply reply;
  auto ctx = c->context();
  grpc::Status s = c->stub->ListWorkers(ctx.get(), pb::ListWorkersRequest(), &reply);
  if (!s.ok()) return c->fail_rpc("workers", s);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  if (format == "json") {
    Json out = Json::array();
    for (const auto& w : reply.workers()) {
      Json devices = Json::array();
      for (const auto& d : w.devices())
        devices.push_back({{"kind", d.kind()},
                           {"index", d.index()},
                           {"name", d.name()},
                           {"memory_bytes", d.memory_bytes()},
                           {"compute_capability", d.compute_capability()},
                           {"copy_bandwidth_bytes_per_s", d.copy_bandwidth_bytes_per_s()},
                           {"matmul_flops_per_s", d.matmul_flops_per_s()}});
      out.push_back({{"name", w.name()},       {"state", w.state()},     {"slots", w.slots()},
                     {"running", w.running()}, {"devices", devices},     {"last_seen_ms", w.last_seen_ms()}});
    }
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("%-28s  %-9s  %5s  %7s  %8s  %s\n", "worker", "state", "slots", "running", "seen", "devices");
  for (const auto& w : reply.workers()) {
    std::string devices;
    for (const auto& d : w.devices()) {
      char buf[256];
      std::snprintf(buf, sizeof(buf), "%s%s:%d %s %.1f GiB", devices.empty() ? "" : "; ", d.kind().c_str(), d.index(),
                    d.name().c_str(), d.memory_bytes() / (1024.0 * 1024 * 1024));
      devices += buf;
    }
    std::printf("%-28s  %-9s  %5d  %7d  %6llds  %s\n", w.name().c_str(), w.state().c_str(), w.slots(), w.running(),
                static_cast<long long>((now_ms - w.last_seen_ms()) / 1000), devices.c_str());
  }
  return kExitOk;
}

int cmd_remote_results(const RemoteFlags& r, const std::string& grid, const std::string& format) {
  Result<Connection> c = connect(r);
  if (!c.ok()) return fail(c.message(), kExitInvalid);
  return print_results(*c, grid, format);
}

}  // namespace gb::cli
