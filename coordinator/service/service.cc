#include "coordinator/service/service.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "common/json_parse.h"
#include "common/json_util.h"
#include "coordinator/grid/grid_yaml.h"
#include "worker/job_spec.h"

namespace gb::coord {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

grpc::Status rpc_error(grpc::StatusCode code, const std::string& message) { return grpc::Status(code, message); }
grpc::Status internal(const std::string& message) { return rpc_error(grpc::StatusCode::INTERNAL, message); }
grpc::Status invalid(const std::string& message) { return rpc_error(grpc::StatusCode::INVALID_ARGUMENT, message); }
grpc::Status not_found(const std::string& message) { return rpc_error(grpc::StatusCode::NOT_FOUND, message); }
grpc::Status refused(const std::string& message) { return rpc_error(grpc::StatusCode::FAILED_PRECONDITION, message); }

std::string params_text(const Json& params) { return canonical_json(params); }

void to_pb(const StoredJob& j, pb::Job* out) {
  out->set_job_id(j.id);
  out->set_hash(j.hash);
  out->set_kind(j.kind);
  out->set_params_json(j.params.is_null() ? j.params_json : params_text(j.params));
  out->set_repeat(j.repeat);
  out->set_state(std::string(state_name(j.state)));
  out->set_attempts(j.attempts);
  out->set_max_attempts(j.max_attempts);
  out->set_error(j.error);
  out->set_lease_owner(j.lease_owner);
  out->set_progress(j.progress);
  out->set_progress_message(j.progress_message);
}

Json device_to_json(const pb::Device& d) {
  return Json{{"kind", d.kind()},
              {"index", d.index()},
              {"name", d.name()},
              {"memory_bytes", d.memory_bytes()},
              {"compute_capability", d.compute_capability()},
              {"copy_bandwidth_bytes_per_s", d.copy_bandwidth_bytes_per_s()},
              {"matmul_flops_per_s", d.matmul_flops_per_s()}};
}

template <class T>
T json_or(const Json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    return fallback;
  }
}

void device_from_json(const Json& j, pb::Device* d) {
  d->set_kind(json_or<std::string>(j, "kind", ""));
  d->set_index(json_or<int>(j, "index", 0));
  d->set_name(json_or<std::string>(j, "name", ""));
  d->set_memory_bytes(json_or<double>(j, "memory_bytes", 0));
  d->set_compute_capability(json_or<int>(j, "compute_capability", 0));
  d->set_copy_bandwidth_bytes_per_s(json_or<double>(j, "copy_bandwidth_bytes_per_s", 0));
  d->set_matmul_flops_per_s(json_or<double>(j, "matmul_flops_per_s", 0));
}

DeviceCapacity capacity_of(const Json& devices) {
  DeviceCapacity c;
  if (!devices.is_array()) return c;
  for (const Json& d : devices) {
    if (!d.is_object()) continue;
    c.add_device(json_or<std::string>(d, "kind", ""), json_or<double>(d, "memory_bytes", 0));
  }
  return c;
}

std::string normalize_worker_state(const std::string& s) {
  if (s == "active" || s == "online") return "active";
  if (s == "draining") return "draining";
  return "lost";
}

bool all_terminal(const GridSummary& g) {
  for (const auto& [state, n] : g.by_state) {
    std::optional<JobState> st = parse_state(state);
    if (n > 0 && st && !is_terminal(*st)) return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------
// CoordinatorService

CoordinatorService::CoordinatorService(JobStore& store, ServiceOptions options)
    : store_(store), options_(std::move(options)), auth_(options_.token) {}

CoordinatorService::~CoordinatorService() { shutdown(); }

void CoordinatorService::log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

Status CoordinatorService::start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return Status::Ok();
  }
  if (options_.lease_ms <= 0) return Error{"lease_ms must be > 0, got " + std::to_string(options_.lease_ms)};
  if (options_.max_attempts < 1)
    return Error{"max_attempts must be >= 1, got " + std::to_string(options_.max_attempts)};
  const int64_t now = now_ms();
  // The theory jobs this coordinator was computing when it stopped: pending again.
  if (options_.theory_batch_size > 0) {
    Result<int64_t> reclaimed = store_.reclaim_owner(kCoordinatorOwner);
    if (!reclaimed.ok()) return reclaimed.error();
  }
  Result<int64_t> extended = store_.extend_leases(now + options_.lease_ms);
  if (!extended.ok()) return extended.error();
  if (*extended > 0) {
    log(std::to_string(*extended) + " lease(s) from before the restart extended by " +
        std::to_string(options_.lease_ms) + " ms for their workers to renew");
  }
  Result<std::vector<WorkerRecord>> workers = store_.list_workers();
  if (!workers.ok()) return workers.error();
  std::lock_guard lock(mu_);
  started_ms_ = now;
  for (const WorkerRecord& w : *workers) {
    WorkerEntry e;
    e.id = w.id;
    e.capacity = capacity_of(w.devices);
    e.state = normalize_worker_state(w.state);
    // Its last call as recorded; the sweeper gives workers that were alive 3 x
    // lease_ms from now (started_ms_) to call again before they are lost.
    e.last_seen_ms = w.last_seen_ms;
    workers_[w.name] = e;
  }
  started_ = true;
  shutting_down_ = false;
  sweeper_ = std::thread([this] { sweeper_main(); });
  if (options_.theory_batch_size > 0) {
    theory_ = std::make_unique<TheoryThread>(
        store_, options_.lease_ms, options_.theory_batch_size, [this] { notify_state(); },
        [this](const std::string& line) { log(line); });
    Result<std::vector<GridSummary>> grids = store_.list_grids();
    if (!grids.ok()) return grids.error();
    for (const GridSummary& g : *grids) theory_->enqueue(g.name);
  }
  return Status::Ok();
}

void CoordinatorService::shutdown() {
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
    ++work_epoch_;
    ++state_epoch_;
  }
  work_cv_.notify_all();
  state_cv_.notify_all();
  sweep_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  if (theory_) theory_->stop();
}

void CoordinatorService::notify_work() {
  {
    std::lock_guard lock(mu_);
    ++work_epoch_;
  }
  work_cv_.notify_all();
}

void CoordinatorService::notify_state() {
  {
    std::lock_guard lock(mu_);
    ++state_epoch_;
  }
  state_cv_.notify_all();
}

void CoordinatorService::sweeper_main() {
  const milliseconds interval(std::max<int64_t>(options_.lease_ms / 4, 10));
  std::unique_lock lock(mu_);
  while (!shutting_down_) {
    sweep_cv_.wait_for(lock, interval, [&] { return shutting_down_; });
    if (shutting_down_) break;
    lock.unlock();
    sweep();
    lock.lock();
  }
}

void CoordinatorService::sweep() {
  Result<int64_t> expired = store_.expire_leases(now_ms());
  if (!expired.ok()) {
    log("expiring leases: " + expired.message());
  } else if (*expired > 0) {
    metrics_.leases_expired(*expired);
    log(std::to_string(*expired) + " lease(s) expired");
    notify_work();
    notify_state();
  }
  std::vector<WorkerUpdate> updates;
  std::vector<std::string> lost;
  {
    std::lock_guard lock(mu_);
    const int64_t now = now_ms();
    for (auto& [name, w] : workers_) {
      if (w.state != "lost" && now - std::max(w.last_seen_ms, started_ms_) > 3 * options_.lease_ms) {
        w.state = "lost";
        w.dirty = true;
        lost.push_back(name);
      }
      if (w.dirty) {
        updates.push_back({name, w.state, w.last_seen_ms});
        w.dirty = false;
      }
    }
  }
  for (const auto& name : lost)
    log("worker " + name + " lost (no call for " + std::to_string(3 * options_.lease_ms) + " ms)");
  if (!lost.empty()) notify_state();  // watches show the unplaceable jobs
  if (Status st = store_.update_workers(updates); !st.ok()) log("recording worker states: " + st.message());
}

std::string CoordinatorService::caller(int64_t worker_id, const std::string& worker_name, bool must_exist,
                                       grpc::Status* status) {
  *status = grpc::Status::OK;
  std::lock_guard lock(mu_);
  std::string name = worker_name;
  if (name.empty() && worker_id != 0) {
    for (const auto& [n, w] : workers_) {
      if (w.id == worker_id) name = n;
    }
  }
  if (name.empty()) {
    *status = invalid(worker_id != 0 ? "no worker with id " + std::to_string(worker_id) + " is registered"
                                     : "worker_name is required");
    return "";
  }
  auto it = workers_.find(name);
  if (it == workers_.end()) {
    if (must_exist) *status = refused("worker " + name + " is not registered: call RegisterWorker first");
    return name;
  }
  it->second.last_seen_ms = now_ms();
  if (it->second.state == "lost") it->second.state = "active";
  it->second.dirty = true;
  return name;
}

int CoordinatorService::active_workers() {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& [name, w] : workers_) n += w.state == "active";
  return n;
}

DeviceCapacity CoordinatorService::active_capacity() {
  std::lock_guard lock(mu_);
  DeviceCapacity all;
  for (const auto& [name, w] : workers_) {
    if (w.state == "active") all.merge(w.capacity);
  }
  return all;
}

Result<int64_t> CoordinatorService::unplaceable_in(const std::string& grid) {
  Result<std::map<std::string, int64_t>> m = store_.unplaceable(active_capacity(), grid);
  if (!m.ok()) return m.error();
  auto it = m->find(grid);
  return it == m->end() ? int64_t{0} : it->second;
}

grpc::Status CoordinatorService::fill_status(const GridSummary& g, int64_t unplaceable, pb::GridStatus* out) {
  out->set_name(g.name);
  out->set_source(g.source);
  out->set_total(g.total);
  auto* by = out->mutable_by_state();
  for (const auto& [state, n] : g.by_state) (*by)[state] = n;
  out->set_unplaceable(unplaceable);
  out->set_active_workers(active_workers());
  return grpc::Status::OK;
}

// ---- grids ----

grpc::Status CoordinatorService::SubmitGrid(grpc::ServerContext* ctx, const pb::SubmitGridRequest* req,
                                            pb::SubmitGridReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  const std::string source = req->source().empty() ? "grid" : req->source();
  if (req->grid_text().empty()) return invalid(source + ": the grid text is empty");
  const int max_attempts = req->max_attempts() == 0 ? options_.max_attempts : req->max_attempts();
  if (max_attempts < 1)
    return invalid("max_attempts must be >= 1 (0: the coordinator's default), got " +
                   std::to_string(req->max_attempts()));
  Result<Grid> grid = parse_grid_text(req->grid_text(), source);
  if (!grid.ok()) return invalid(grid.message());
  // The coordinator does not know which worker will run a job: a measured result is
  // reused when it came from the coordinator's own build and from a device class of
  // any registered worker (whatever its state), else it runs again.
  Result<std::vector<WorkerRecord>> workers = store_.list_workers();
  if (!workers.ok()) return internal(workers.message());
  ReuseKey reuse{worker::engine_version(), {}};
  for (const WorkerRecord& w : *workers) {
    if (!w.devices.is_array()) continue;
    for (const Json& d : w.devices) {
      std::string cls = device_class(d);
      if (!cls.empty()) reuse.device_classes.push_back(std::move(cls));
    }
  }
  Result<SubmitStats> stats =
      store_.submit_grid(*grid, req->rerun(), max_attempts, options_.requirement, reuse);
  if (!stats.ok()) return internal(stats.message());
  {
    std::lock_guard lock(mu_);
    if (theory_) theory_->enqueue(grid->name);
  }
  notify_work();
  notify_state();
  Result<int64_t> unplaceable = unplaceable_in(grid->name);
  if (!unplaceable.ok()) return internal(unplaceable.message());
  reply->set_name(grid->name);
  reply->set_jobs(stats->jobs);
  reply->set_reused(stats->reused);
  reply->set_queued(stats->queued);
  reply->set_unplaceable(*unplaceable);
  reply->set_active_workers(active_workers());
  reply->set_left_cancelled(stats->left_cancelled);
  log("grid " + grid->name + " submitted from " + source + ": " + std::to_string(stats->jobs) + " jobs, " +
      std::to_string(stats->queued) + " queued, " + std::to_string(stats->reused) + " reused");
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::CancelGrid(grpc::ServerContext* ctx, const pb::CancelGridRequest* req,
                                            pb::CancelGridReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  if (req->name().empty()) return invalid("name is required");
  Result<std::optional<GridSummary>> g = store_.grid_summary(req->name());
  if (!g.ok()) return internal(g.message());
  if (!g->has_value()) return not_found("no grid named '" + req->name() + "'");
  Result<int64_t> n = store_.cancel_grid(req->name());
  if (!n.ok()) return internal(n.message());
  notify_state();
  reply->set_cancelled(*n);
  log("grid " + req->name() + " cancelled: " + std::to_string(*n) + " jobs");
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ListGrids(grpc::ServerContext* ctx, const pb::ListGridsRequest* /*req*/,
                                           pb::ListGridsReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  Result<std::vector<GridSummary>> grids = store_.list_grids();
  if (!grids.ok()) return internal(grids.message());
  Result<std::map<std::string, int64_t>> unplaceable = store_.unplaceable(active_capacity());
  if (!unplaceable.ok()) return internal(unplaceable.message());
  for (const GridSummary& g : *grids) {
    auto it = unplaceable->find(g.name);
    fill_status(g, it == unplaceable->end() ? 0 : it->second, reply->add_grids());
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ListJobs(grpc::ServerContext* ctx, const pb::ListJobsRequest* req,
                                          pb::ListJobsReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  if (req->grid().empty()) return invalid("grid is required");
  std::optional<JobState> filter;
  if (!req->state().empty()) {
    filter = parse_state(req->state());
    if (!filter) {
      return invalid("unknown state '" + req->state() +
                     "' (known: pending, leased, running, succeeded, failed, oom, timeout, cancelled)");
    }
  }
  Result<std::optional<GridSummary>> g = store_.grid_summary(req->grid());
  if (!g.ok()) return internal(g.message());
  if (!g->has_value()) return not_found("no grid named '" + req->grid() + "'");
  Result<std::vector<StoredJob>> jobs = store_.grid_jobs(req->grid());
  if (!jobs.ok()) return internal(jobs.message());
  for (const StoredJob& j : *jobs) {
    if (filter && j.state != *filter) continue;
    to_pb(j, reply->add_jobs());
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetResults(grpc::ServerContext* ctx, const pb::GetResultsRequest* req,
                                            pb::GetResultsReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  if (req->grid().empty()) return invalid("grid is required");
  Result<std::optional<GridSummary>> g = store_.grid_summary(req->grid());
  if (!g.ok()) return internal(g.message());
  if (!g->has_value()) return not_found("no grid named '" + req->grid() + "'");
  Result<std::pair<std::string, std::string>> spec = store_.grid_spec(req->grid());
  if (!spec.ok()) return internal(spec.message());
  if (req->max_jobs() < 0 || req->from_position() < 0)
    return invalid("max_jobs and from_position must be >= 0, got " + std::to_string(req->max_jobs()) + " and " +
                   std::to_string(req->from_position()));
  Result<JobStore::ResultsPage> page = store_.grid_results_page(req->grid(), req->from_position(), req->max_jobs());
  if (!page.ok()) return internal(page.message());
  reply->set_grid_spec_json(spec->first);
  reply->set_source(spec->second);
  reply->set_next_from_position(page->next_from_position);
  std::string params, device;
  int64_t last_job = 0;
  for (const ResultRow& r : page->rows) {
    if (r.job_id != last_job) {
      params = params_text(r.params);
      device = r.device->dump(-1, ' ', false, Json::error_handler_t::replace);
      last_job = r.job_id;
    }
    pb::ResultRow* out = reply->add_rows();
    out->set_hash(r.hash);
    out->set_kind(r.kind);
    out->set_params_json(params);
    out->set_repeat(r.repeat);
    pb::Metric* m = out->mutable_metric();
    m->set_name(r.metric);
    if (r.value) m->set_value(*r.value);
    m->set_unit(r.unit);
    m->set_text(r.text);
    out->set_device_json(device);
    out->set_engine_version(r.engine_version);
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::WatchGrid(grpc::ServerContext* ctx, const pb::WatchGridRequest* req,
                                           grpc::ServerWriter<pb::GridProgress>* writer) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  if (req->name().empty()) return invalid("name is required");
  const milliseconds interval(req->interval_ms() > 0 ? req->interval_ms() : 200);
  const milliseconds heartbeat(req->heartbeat_ms() > 0 ? req->heartbeat_ms()
                                                       : std::max<int64_t>(options_.watch_heartbeat_ms, 1));

  struct Seen {
    JobState state;
    int attempts;
    std::string owner;
  };
  std::map<int64_t, Seen> seen;
  uint64_t epoch = 0;
  {
    std::lock_guard lock(mu_);
    epoch = state_epoch_;
  }
  // One snapshot: the grid's status and the jobs that changed since `seen`.
  auto snapshot = [&](pb::GridProgress* msg, bool first) -> grpc::Status {
    Result<std::optional<GridSummary>> g = store_.grid_summary(req->name());
    if (!g.ok()) return internal(g.message());
    if (!g->has_value()) return not_found("no grid named '" + req->name() + "'");
    Result<std::vector<StoredJob>> jobs = store_.grid_jobs(req->name(), /*parse_params=*/false);
    if (!jobs.ok()) return internal(jobs.message());
    Result<int64_t> unplaceable = unplaceable_in(req->name());
    if (!unplaceable.ok()) return internal(unplaceable.message());
    for (const StoredJob& j : *jobs) {
      auto it = seen.find(j.id);
      const bool changed = it == seen.end() || it->second.state != j.state || it->second.attempts != j.attempts ||
                           it->second.owner != j.lease_owner;
      if (changed && !first) to_pb(j, msg->add_changed());
      seen[j.id] = Seen{j.state, j.attempts, j.lease_owner};
    }
    fill_status(**g, *unplaceable, msg->mutable_status());
    msg->set_done(all_terminal(**g));
    return grpc::Status::OK;
  };

  pb::GridProgress first;
  if (grpc::Status s = snapshot(&first, /*first=*/true); !s.ok()) return s;
  if (!writer->Write(first)) return grpc::Status::OK;  // the client went away
  if (first.done()) return grpc::Status::OK;
  auto last_sent = Clock::now();
  int64_t last_unplaceable = first.status().unplaceable();
  int last_workers = first.status().active_workers();

  while (true) {
    bool woken = false;
    {
      std::unique_lock lock(mu_);
      const auto until = std::min(Clock::now() + milliseconds(250), last_sent + heartbeat);
      state_cv_.wait_until(lock, until, [&] { return state_epoch_ != epoch || shutting_down_; });
      if (shutting_down_) return rpc_error(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down");
      if (ctx->IsCancelled()) return rpc_error(grpc::StatusCode::CANCELLED, "watch cancelled by the client");
      woken = state_epoch_ != epoch;
    }
    // While nothing moves, the status again every heartbeat (a watcher sees the
    // pending and unplaceable jobs that are waiting).
    const bool heartbeat_due = Clock::now() >= last_sent + heartbeat;
    if (!woken && !heartbeat_due) continue;
    // At most one message per interval.
    while (Clock::now() < last_sent + interval) {
      if (ctx->IsCancelled()) return rpc_error(grpc::StatusCode::CANCELLED, "watch cancelled by the client");
      std::this_thread::sleep_for(std::min<Clock::duration>(last_sent + interval - Clock::now(), milliseconds(50)));
    }
    {
      std::lock_guard lock(mu_);
      epoch = state_epoch_;
    }
    pb::GridProgress msg;
    if (grpc::Status s = snapshot(&msg, /*first=*/false); !s.ok()) return s;
    const bool placement_changed = msg.status().unplaceable() != last_unplaceable ||
                                   msg.status().active_workers() != last_workers;
    if (msg.changed_size() == 0 && !msg.done() && !placement_changed && !heartbeat_due) continue;
    if (!writer->Write(msg)) return grpc::Status::OK;
    last_sent = Clock::now();
    last_unplaceable = msg.status().unplaceable();
    last_workers = msg.status().active_workers();
    if (msg.done()) return grpc::Status::OK;
  }
}

// ---- workers ----

grpc::Status CoordinatorService::RegisterWorker(grpc::ServerContext* ctx, const pb::RegisterWorkerRequest* req,
                                                pb::RegisterWorkerReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  if (req->name().empty()) return invalid("name is required");
  if (req->slots() < 0) return invalid("slots must be >= 1 (0: 1), got " + std::to_string(req->slots()));
  const int slots = req->slots() == 0 ? 1 : req->slots();
  if (req->devices().empty()) return invalid("a worker needs at least one device to be given jobs");
  Json devices = Json::array();
  for (const pb::Device& d : req->devices()) {
    if (d.kind().empty()) return invalid("every device needs a kind (\"cpu\" or \"cuda\")");
    if (!(d.memory_bytes() >= 0) || !std::isfinite(d.memory_bytes())) {
      return invalid("device " + d.kind() + ":" + std::to_string(d.index()) + ": memory_bytes must be >= 0");
    }
    devices.push_back(device_to_json(d));
  }
  {
    // Two processes under one name would share its leases: refuse the second while
    // the first (on another host: on one host gridbench-worker itself keeps names
    // apart, so a new process there is the old one restarted) is alive.
    std::lock_guard lock(mu_);
    auto it = workers_.find(req->name());
    const int64_t now = now_ms();
    if (it != workers_.end() && !req->instance().empty() && !it->second.instance.empty() &&
        it->second.instance != req->instance() && it->second.state != "lost" &&
        now - it->second.last_seen_ms <= 3 * options_.lease_ms) {
      const std::string host = req->instance().substr(0, req->instance().find(' '));
      const std::string old_host = it->second.instance.substr(0, it->second.instance.find(' '));
      if (host != old_host) {
        return rpc_error(grpc::StatusCode::ALREADY_EXISTS,
                         "worker name " + req->name() + " is held by another live worker (" + it->second.instance +
                             ", last call " + std::to_string((now - it->second.last_seen_ms) / 1000) +
                             " s ago): give each worker its own --name");
      }
    }
  }
  Result<WorkerRecord> w = store_.register_worker(req->name(), devices, slots, req->engine_version());
  if (!w.ok()) return internal(w.message());
  {
    std::lock_guard lock(mu_);
    WorkerEntry& e = workers_[req->name()];
    e.id = w->id;
    e.capacity = capacity_of(devices);
    e.state = "active";
    // The time the store wrote, not a later now_ms(): after a restart the stored value
    // is all there is, and the two must agree (they differed by a millisecond).
    e.last_seen_ms = w->last_seen_ms;
    e.instance = req->instance();
    e.dirty = false;
  }
  notify_state();  // watches show what is placeable now
  reply->set_worker_id(w->id);
  reply->set_lease_ms(options_.lease_ms);
  std::string desc;
  for (const pb::Device& d : req->devices()) {
    desc += (desc.empty() ? "" : ", ") + d.kind() + ":" + std::to_string(d.index()) +
            (d.name().empty() ? "" : " " + d.name());
  }
  log("worker " + req->name() + " registered (id " + std::to_string(w->id) + ", " + std::to_string(slots) +
      " slots, devices: " + (desc.empty() ? "none" : desc) + ")");
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ListWorkers(grpc::ServerContext* ctx, const pb::ListWorkersRequest* /*req*/,
                                             pb::ListWorkersReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  Result<std::vector<WorkerRecord>> workers = store_.list_workers();
  if (!workers.ok()) return internal(workers.message());
  Result<std::map<std::string, int64_t>> counts = store_.lease_counts();
  if (!counts.ok()) return internal(counts.message());
  std::lock_guard lock(mu_);
  for (const WorkerRecord& w : *workers) {
    pb::WorkerStatus* out = reply->add_workers();
    out->set_worker_id(w.id);
    out->set_name(w.name);
    for (const Json& d : w.devices) device_from_json(d, out->add_devices());
    out->set_slots(w.slots);
    auto it = workers_.find(w.name);
    out->set_state(it != workers_.end() ? it->second.state : normalize_worker_state(w.state));
    out->set_last_seen_ms(it != workers_.end() ? std::max(it->second.last_seen_ms, w.last_seen_ms) : w.last_seen_ms);
    auto c = counts->find(w.name);
    out->set_running(c == counts->end() ? 0 : static_cast<int32_t>(c->second));
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Drain(grpc::ServerContext* ctx, const pb::DrainRequest* req, pb::DrainReply*) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  grpc::Status st;
  std::string name = caller(req->worker_id(), req->worker_name(), /*must_exist=*/true, &st);
  if (!st.ok()) return st.error_code() == grpc::StatusCode::FAILED_PRECONDITION ? not_found(st.error_message()) : st;
  WorkerUpdate update;
  {
    std::lock_guard lock(mu_);
    WorkerEntry& e = workers_[name];
    e.state = "draining";
    e.dirty = false;
    update = {name, e.state, e.last_seen_ms};
    ++work_epoch_;  // its long-polls reply now
  }
  work_cv_.notify_all();
  if (Status s = store_.update_workers({update}); !s.ok()) return internal(s.message());
  log("worker " + name + " draining");
  return grpc::Status::OK;
}

// ---- leases ----

grpc::Status CoordinatorService::LeaseJob(grpc::ServerContext* ctx, const pb::LeaseJobRequest* req,
                                          pb::LeaseJobReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  grpc::Status st;
  const std::string name = caller(req->worker_id(), req->worker_name(), /*must_exist=*/true, &st);
  if (!st.ok()) return st;

  if (req->max_jobs() < 0) return invalid("max_jobs must be >= 0 (0: one job), got " + std::to_string(req->max_jobs()));
  const int max_jobs = std::clamp(req->max_jobs(), 1, kMaxJobsPerLease);
  const auto start = Clock::now();
  const int64_t wait_ms = std::clamp<int64_t>(req->wait_ms(), 0, options_.max_wait_ms);
  auto deadline = start + milliseconds(wait_ms);
  // Reply (with no job) a little before the client's own deadline.
  const auto client_deadline = ctx->deadline();
  if (client_deadline != std::chrono::system_clock::time_point::max()) {
    const auto left = client_deadline - std::chrono::system_clock::now() - milliseconds(50);
    deadline = std::min(deadline, start + std::chrono::duration_cast<Clock::duration>(left));
  }

  // The lease latency is measured from the call, or from the last wake-up when it
  // waited for work.
  auto attempt_start = start;
  while (true) {
    DeviceCapacity capacity;
    uint64_t epoch = 0;
    {
      std::lock_guard lock(mu_);
      auto it = workers_.find(name);
      if (it == workers_.end()) return refused("worker " + name + " is not registered: call RegisterWorker first");
      if (shutting_down_) return rpc_error(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down");
      if (it->second.state == "draining") return grpc::Status::OK;  // no job
      capacity = it->second.capacity;
      epoch = work_epoch_;
    }
    Result<std::vector<Lease>> leases = store_.lease_jobs(name, options_.lease_ms, max_jobs, "", &capacity);
    if (!leases.ok()) return internal(leases.message());
    if (!leases->empty()) {
      if (ctx->IsCancelled()) {
        // Nobody will receive them: give them back without spending an attempt.
        for (const Lease& l : *leases) (void)store_.release(l.run_id, name);
        notify_work();
        return rpc_error(grpc::StatusCode::CANCELLED, "lease request cancelled by the client");
      }
      const double latency_s = std::chrono::duration<double>(Clock::now() - attempt_start).count();
      for (size_t i = 0; i < leases->size(); ++i) {
        const Lease& l = (*leases)[i];
        pb::LeaseJobReply* r = i == 0 ? reply : reply->add_more();
        pb::Job* job = r->mutable_job();
        job->set_job_id(l.job_id);
        job->set_hash(l.hash);
        job->set_kind(l.kind);
        job->set_params_json(params_text(l.params));
        job->set_repeat(l.repeat);
        job->set_state("leased");
        job->set_attempts(l.attempt);
        job->set_lease_owner(name);
        r->set_run_id(l.run_id);
        r->set_attempt(l.attempt);
        r->set_lease_expires_ms(l.expires_ms);
        r->set_lease_ms(options_.lease_ms);
        r->set_timeout_s(options_.job_timeout_s);
        metrics_.lease_granted(latency_s);
      }
      notify_state();
      return grpc::Status::OK;
    }
    std::unique_lock lock(mu_);
    while (work_epoch_ == epoch && !shutting_down_) {
      const auto now = Clock::now();
      if (now >= deadline) return grpc::Status::OK;  // no job
      if (ctx->IsCancelled()) return rpc_error(grpc::StatusCode::CANCELLED, "lease request cancelled by the client");
      work_cv_.wait_until(lock, std::min(deadline, now + milliseconds(500)));
    }
    attempt_start = Clock::now();
  }
}

grpc::Status CoordinatorService::RenewLease(grpc::ServerContext* ctx, const pb::RenewLeaseRequest* req,
                                            pb::RenewLeaseReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  grpc::Status st;
  const std::string name = caller(req->worker_id(), req->worker_name(), /*must_exist=*/false, &st);
  if (!st.ok()) return st;
  Result<JobStore::Heartbeat> hb =
      store_.heartbeat(req->run_id(), name, options_.lease_ms, req->running(), req->progress(), req->message());
  if (hb.ok()) {
    if (hb->started) notify_state();
    reply->set_lease_expires_ms(hb->expires_ms);
    return grpc::Status::OK;
  }
  Result<std::optional<RunInfo>> info = store_.run_info(req->run_id());
  if (!info.ok()) return internal(info.message());
  if (info->has_value()) {
    const RunInfo& r = **info;
    if (r.owner == name && r.state == "cancelled") {
      reply->set_cancelled(true);
      return grpc::Status::OK;
    }
    if (r.held_by(name)) return internal(hb.message());  // not a lease problem
  }
  return refused(hb.message());
}

// A CompleteJob request's record, checked as the store cannot (series lengths, the
// device's JSON); INVALID_ARGUMENT with why.
static grpc::Status record_of(const pb::CompleteJobRequest& req, RunRecord* record) {
  std::set<std::string> names;
  for (const pb::Metric& m : req.metrics()) {
    if (m.name().empty()) return invalid("a metric has no name");
    if (!names.insert(m.name()).second) return invalid("metric '" + m.name() + "' reported twice");
    engine::Metric out{m.name(), std::nullopt, m.unit(), m.text()};
    if (m.has_value()) out.value = m.value();
    record->metrics.push_back(std::move(out));
  }
  names.clear();
  for (const pb::Series& s : req.series()) {
    if (!names.insert(s.name()).second) return invalid("series '" + s.name() + "' reported twice");
    if (s.x_size() != s.y_size()) {
      return invalid("series '" + s.name() + "': " + std::to_string(s.x_size()) + " x values but " +
                     std::to_string(s.y_size()) + " y values");
    }
    engine::Series out{s.name(), s.x_unit(), s.y_unit(), {}};
    out.points.reserve(static_cast<size_t>(s.x_size()));
    for (int i = 0; i < s.x_size(); ++i) out.points.push_back({s.x(i), s.y(i)});
    record->series.push_back(std::move(out));
  }
  if (!req.device_json().empty()) {
    Result<Json> device = parse_json(req.device_json(), "device_json");
    if (!device) return invalid(device.message());
    record->device = std::move(*device);
  }
  record->engine_version = req.engine_version();
  record->wall_ms = req.wall_ms();
  return grpc::Status::OK;
}

// The answer to a completion of `run_id` by `name` that the store refused with
// `done`: OK with *duplicate for a retry of a recorded one, INTERNAL when the lease
// is the caller's (not a lease problem), FAILED_PRECONDITION otherwise.
grpc::Status CoordinatorService::completion_refused(int64_t run_id, const std::string& name, const Status& done,
                                                    bool* duplicate) {
  Result<std::optional<RunInfo>> info = store_.run_info(run_id);
  if (!info.ok()) return internal(info.message());
  if (info->has_value()) {
    const RunInfo& r = **info;
    if (r.owner == name && r.state == "succeeded") {
      *duplicate = true;  // a retry of a completion that was recorded
      return grpc::Status::OK;
    }
    if (r.held_by(name)) return internal(done.message());  // not a lease problem
  }
  return refused(done.message());
}

grpc::Status CoordinatorService::CompleteJob(grpc::ServerContext* ctx, const pb::CompleteJobRequest* req,
                                             pb::CompleteJobReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  grpc::Status st;
  const std::string name = caller(req->worker_id(), req->worker_name(), /*must_exist=*/false, &st);
  if (!st.ok()) return st;
  RunRecord record;
  if (grpc::Status bad = record_of(*req, &record); !bad.ok()) return bad;
  Status done = store_.complete(req->run_id(), name, record);
  if (done.ok()) {
    notify_state();
    reply->set_duplicate(false);
    return grpc::Status::OK;
  }
  bool duplicate = false;
  grpc::Status answer = completion_refused(req->run_id(), name, done, &duplicate);
  reply->set_duplicate(duplicate);
  return answer;
}

grpc::Status CoordinatorService::CompleteJobs(grpc::ServerContext* ctx, const pb::CompleteJobsRequest* req,
                                              pb::CompleteJobsReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  grpc::Status st;
  const std::string name = caller(req->worker_id(), req->worker_name(), /*must_exist=*/false, &st);
  if (!st.ok()) return st;
  if (req->completions_size() > kMaxCompletionsPerCall) {
    return invalid(std::to_string(req->completions_size()) + " completions in one CompleteJobs call; at most " +
                   std::to_string(kMaxCompletionsPerCall));
  }
  // The valid records go to the store together; the others are answered as they are.
  std::vector<grpc::Status> answers(static_cast<size_t>(req->completions_size()));
  std::vector<std::pair<int64_t, RunRecord>> records;
  std::vector<size_t> record_index;
  for (int i = 0; i < req->completions_size(); ++i) {
    RunRecord record;
    answers[i] = record_of(req->completions(i), &record);
    if (!answers[i].ok()) continue;
    records.emplace_back(req->completions(i).run_id(), std::move(record));
    record_index.push_back(static_cast<size_t>(i));
  }
  std::vector<Status> written = store_.complete_each(name, records);
  std::vector<bool> duplicate(answers.size());
  bool any = false;
  for (size_t k = 0; k < written.size(); ++k) {
    const size_t i = record_index[k];
    if (written[k].ok()) {
      any = true;
      continue;
    }
    bool dup = false;
    answers[i] = completion_refused(records[k].first, name, written[k], &dup);
    duplicate[i] = dup;
  }
  if (any) notify_state();
  for (size_t i = 0; i < answers.size(); ++i) {
    pb::CompleteJobResult* r = reply->add_results();
    r->set_run_id(req->completions(static_cast<int>(i)).run_id());
    r->set_code(static_cast<int32_t>(answers[i].error_code()));
    r->set_error(answers[i].error_message());
    r->set_duplicate(duplicate[i]);
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::FailJob(grpc::ServerContext* ctx, const pb::FailJobRequest* req,
                                         pb::FailJobReply* reply) {
  if (auto s = auth_.check(*ctx); !s.ok()) return s;
  grpc::Status st;
  const std::string name = caller(req->worker_id(), req->worker_name(), /*must_exist=*/false, &st);
  if (!st.ok()) return st;
  JobState outcome;
  if (req->outcome() == "failed") {
    outcome = JobState::kFailed;
  } else if (req->outcome() == "oom") {
    outcome = JobState::kOom;
  } else if (req->outcome() == "timeout") {
    outcome = JobState::kTimeout;
  } else if (req->outcome() == "invalid") {
    outcome = JobState::kInvalid;  // ends the job: it cannot run as given
  } else {
    return invalid("outcome must be \"failed\", \"oom\", \"timeout\" or \"invalid\", got \"" + req->outcome() + "\"");
  }
  Status failed = store_.fail(req->run_id(), name, outcome, req->error());
  Result<std::optional<RunInfo>> info = store_.run_info(req->run_id());
  if (!info.ok()) return internal(info.message());
  if (failed.ok()) {
    const JobState next = info->has_value() ? (*info)->job_state : JobState::kPending;
    reply->set_job_state(std::string(state_name(next)));
    if (next == JobState::kPending) notify_work();
    notify_state();
    return grpc::Status::OK;
  }
  if (info->has_value()) {
    const RunInfo& r = **info;
    if (r.owner == name && r.state == state_name(outcome)) {
      // A retry of a failure that was recorded: the job's state now.
      reply->set_job_state(std::string(state_name(r.job_state)));
      return grpc::Status::OK;
    }
    if (r.held_by(name)) return internal(failed.message());  // not a lease problem
  }
  return refused(failed.message());
}

// ---- metrics ----

std::string CoordinatorService::metrics_text() {
  CoordinatorMetrics::Gauges gauges;
  Result<std::vector<GridSummary>> grids = store_.list_grids();
  if (grids.ok()) {
    gauges.grids = std::move(*grids);
  } else {
    gauges.grids_ok = false;
    log("metrics: reading the grids: " + grids.message());
  }
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, w] : workers_) ++gauges.workers_by_state[w.state];
  }
  return metrics_.render(gauges);
}

// ---------------------------------------------------------------------------------
// CoordinatorServer

Result<std::unique_ptr<CoordinatorServer>> CoordinatorServer::start(const ServerOptions& options, bool* db_busy) {
  if (db_busy != nullptr) *db_busy = false;
  Result<ListenAddress> address = parse_listen_address(options.listen);
  if (!address.ok()) return address.error();
  GB_RETURN_IF_ERROR(check_bind_policy(*address, !options.service.token.empty(), options.insecure));
  Result<std::shared_ptr<grpc::ServerCredentials>> creds = make_server_credentials(options.tls);
  if (!creds.ok()) return creds.error();
  if (options.service.lease_ms < 10) {
    return Error{"lease_ms must be >= 10, got " + std::to_string(options.service.lease_ms)};
  }
  if (options.service.max_attempts < 1) {
    return Error{"max_attempts must be >= 1, got " + std::to_string(options.service.max_attempts)};
  }

  // Nothing is created before the port is known to be free and the database ours.
  GB_RETURN_IF_ERROR(probe_listen_address(*address));
  Result<std::unique_ptr<DbLock>> lock = DbLock::acquire(options.db_path, db_busy);
  if (!lock.ok()) return lock.error();
  Result<std::unique_ptr<JobStore>> store = JobStore::open(options.db_path);
  if (!store.ok()) return store.error();
  if (options.checkpoint_interval_ms > 0)
    GB_RETURN_IF_ERROR((*store)->start_background_checkpoints(options.checkpoint_interval_ms));
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer());
  server->db_lock_ = std::move(*lock);
  server->store_ = std::move(*store);
  server->service_ = std::make_unique<CoordinatorService>(*server->store_, options.service);
  GB_RETURN_IF_ERROR(server->service_->start());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address->grpc_address(), *creds, &port);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<int64_t>(options.max_message_bytes, INT32_MAX)));
  // Two coordinators must not share a port (gRPC sets SO_REUSEPORT by default).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Workers may keep idle connections alive with pings every 10 s or more.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  // The synchronous server runs each rpc on a thread of its pool; by default a
  // thread that finishes an rpc ends when 2 others are already polling, so that with
  // many busy workers nearly every rpc creates and ends a thread. Keep up to 64 idle.
  builder.SetSyncServerOption(grpc::ServerBuilder::MAX_POLLERS, 64);
  if (!options.metrics_listen.empty()) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(make_rpc_error_counter(server->service_->metrics()));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || (!address->is_unix() && port == 0)) {
    server->service_->shutdown();
    if (server->server_) server->server_->Shutdown();
    return Error{"cannot listen on " + address->grpc_address() + " (address in use or not available here)"};
  }
  if (auto* health = server->server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus(pb::Coordinator::service_full_name(), true);
  }
  server->port_ = port;
  server->address_ = address->display(port);
  if (!options.metrics_listen.empty()) {
    CoordinatorService* service = server->service_.get();
    std::map<std::string, HttpPage> pages;
    pages["/metrics"] = HttpPage{"text/plain; version=0.0.4; charset=utf-8", [service] { return service->metrics_text(); }};
    Result<std::unique_ptr<HttpEndpoint>> http = HttpEndpoint::start(options.metrics_listen, std::move(pages));
    if (!http.ok()) {
      server->shutdown(0);
      server->wait();
      return http.error();
    }
    server->metrics_http_ = std::move(*http);
  }
  (void)server->db_lock_->describe("serving " + server->address_);  // only a description
  return server;
}

CoordinatorServer::~CoordinatorServer() {
  shutdown(0);
  if (server_) server_->Wait();
}

void CoordinatorServer::shutdown(int grace_ms) {
  std::lock_guard lock(shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (metrics_http_) metrics_http_->stop();
  if (server_) {
    if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
  }
  if (service_) service_->shutdown();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + milliseconds(std::max(grace_ms, 0)));
}

void CoordinatorServer::wait() {
  if (server_) server_->Wait();
}

}  // namespace gb::coord
