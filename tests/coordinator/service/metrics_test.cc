// The coordinator's Prometheus endpoint, scraped over HTTP as Prometheus does, with
// the text parsed here (families, labels, escapes, histogram invariants): every
// family is present from the start; leases raise the granted counter and the
// latency histogram; submissions, leases, expiries and completions move the jobs
// gauges; registration and drain move the workers gauge; refused rpcs are counted
// by method and code. Also the HTTP endpoint's replies to what is not a scrape.
// promtool and a real Prometheus scrape the daemon in
// tests/integration/metrics_prometheus_test.sh.
#include "coordinator/service/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "coordinator/service/http_endpoint.h"
#include "coordinator/service/service.h"

namespace gb::coord {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// ---- an HTTP client and an exposition-format parser ----

struct HttpReply {
  int status = 0;
  std::string headers;
  std::string body;
};

// One request on a fresh connection to 127.0.0.1:port; the reply read to EOF.
HttpReply http(int port, const std::string& request) {
  HttpReply out;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    ADD_FAILURE() << "cannot connect to 127.0.0.1:" << port;
    return out;
  }
  const timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  std::string all;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) all.append(buf, static_cast<size_t>(n));
  ::close(fd);
  const size_t end = all.find("\r\n\r\n");
  if (end == std::string::npos) {
    ADD_FAILURE() << "no HTTP header end in: " << all;
    return out;
  }
  out.headers = all.substr(0, end);
  out.body = all.substr(end + 4);
  if (all.rfind("HTTP/1.1 ", 0) == 0) out.status = std::stoi(all.substr(9, 3));
  return out;
}

std::string get(int port, const std::string& path) {
  HttpReply r = http(port, "GET " + path + " HTTP/1.1\r\nHost: test\r\nAccept: text/plain\r\n\r\n");
  EXPECT_EQ(r.status, 200) << r.headers;
  EXPECT_NE(r.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r.headers;
  EXPECT_NE(r.headers.find("Content-Length: " + std::to_string(r.body.size())), std::string::npos) << r.headers;
  return r.body;
}

// A scrape: samples by "name{k="v",...}" with the labels sorted by key, and the
// TYPE of each family.
struct Scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::set<std::string> helps;

  double value(const std::string& key) const {
    auto it = samples.find(key);
    if (it == samples.end()) {
      ADD_FAILURE() << "no sample " << key;
      return NAN;
    }
    return it->second;
  }
  bool has(const std::string& key) const { return samples.count(key) != 0; }
};

// Parses the text format strictly enough to catch what Prometheus would reject:
// every sample's family declared by HELP and TYPE before it, label values quoted
// with \\ \" \n escapes, a number after the labels.
void parse_into(const std::string& text, Scrape& s) {
  std::stringstream lines(text);
  std::string family_of_last_type;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0) {
      s.helps.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::stringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      EXPECT_TRUE(s.helps.count(name)) << "TYPE before HELP: " << line;
      s.types[name] = type;
      continue;
    }
    ASSERT_NE(line[0], '#') << line;
    size_t i = 0;
    while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == ':')) ++i;
    const std::string name = line.substr(0, i);
    std::map<std::string, std::string> labels;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const size_t eq = line.find('=', i);
        ASSERT_NE(eq, std::string::npos) << line;
        const std::string key = line.substr(i, eq - i);
        ASSERT_EQ(line[eq + 1], '"') << line;
        std::string value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\') {
            ++j;
            ASSERT_LT(j, line.size()) << line;
            ASSERT_TRUE(line[j] == '\\' || line[j] == '"' || line[j] == 'n') << "bad escape in " << line;
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        ASSERT_LT(j, line.size()) << "unterminated label value: " << line;
        labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ASSERT_LT(i, line.size()) << line;
      ++i;  // '}'
    }
    ASSERT_EQ(line[i], ' ') << line;
    const std::string number = line.substr(i + 1);
    char* end = nullptr;
    const double v = number == "+Inf" ? INFINITY : std::strtod(number.c_str(), &end);
    if (number != "+Inf") {
      ASSERT_TRUE(end != nullptr && *end == '\0') << "not a number: " << line;
    }
    // Which family: histograms' samples carry _bucket/_sum/_count.
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string sfx = suffix;
      if (family.size() > sfx.size() && family.compare(family.size() - sfx.size(), sfx.size(), sfx) == 0 &&
          s.types.count(family.substr(0, family.size() - sfx.size())) &&
          s.types[family.substr(0, family.size() - sfx.size())] == "histogram") {
        family = family.substr(0, family.size() - sfx.size());
      }
    }
    EXPECT_TRUE(s.types.count(family)) << "sample without a TYPE: " << line;
    std::string key = name;
    if (!labels.empty()) {
      key += "{";
      bool first = true;
      for (const auto& [k, v2] : labels) {
        key += (first ? "" : ",") + k + "=\"" + v2 + "\"";
        first = false;
      }
      key += "}";
    }
    EXPECT_FALSE(s.samples.count(key)) << "duplicate sample " << key;
    s.samples[key] = v;
  }
  // Histogram buckets are cumulative and end at +Inf == _count.
  for (const auto& [family, type] : s.types) {
    if (type != "histogram") continue;
    double last = 0;
    for (double le : kLeaseLatencyBuckets) {
      char b[64];
      std::snprintf(b, sizeof(b), "%g", le);
      const std::string key = family + "_bucket{le=\"" + b + "\"}";
      EXPECT_TRUE(s.samples.count(key)) << "missing " << key;
      EXPECT_GE(s.samples[key], last) << key;
      last = s.samples[key];
    }
    EXPECT_GE(s.samples[family + "_bucket{le=\"+Inf\"}"], last);
    EXPECT_EQ(s.samples[family + "_bucket{le=\"+Inf\"}"], s.samples[family + "_count"]);
  }
}

Scrape parse(const std::string& text) {
  Scrape s;
  parse_into(text, s);
  return s;
}

// ---- the service in-process, with its metrics endpoint ----

constexpr const char* kNaps = R"({"name": "naps", "axes": {"seconds": [0, 0.001, 0.002]}, "measure": ["sleep"]})";

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("gb_metrics_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    stub_.reset();
    if (server_) {
      server_->shutdown(200);
      server_->wait();
      server_.reset();
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void start(int64_t lease_ms = 2000, const std::string& token = "") {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.db_path = (dir_ / "coord.db").string();
    o.metrics_listen = "127.0.0.1:0";
    o.service.lease_ms = lease_ms;
    o.service.token = token;
    token_ = token;
    auto server = CoordinatorServer::start(o);
    ASSERT_TRUE(server.ok()) << server.message();
    server_ = std::move(*server);
    const std::string m = server_->metrics_address();
    ASSERT_EQ(m.rfind("127.0.0.1:", 0), 0u) << m;
    metrics_port_ = std::stoi(m.substr(10));
    ASSERT_GT(metrics_port_, 0);
    stub_ = pb::Coordinator::NewStub(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }
  std::unique_ptr<grpc::ClientContext> ctx(bool with_token = true) {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + milliseconds(5000));
    if (with_token && !token_.empty()) c->AddMetadata("authorization", "Bearer " + token_);
    return c;
  }
  Scrape scrape() { return parse(get(metrics_port_, "/metrics")); }

  void submit(const std::string& text = kNaps) {
    pb::SubmitGridRequest req;
    req.set_grid_text(text);
    req.set_source("naps.json");
    pb::SubmitGridReply reply;
    ASSERT_TRUE(stub_->SubmitGrid(ctx().get(), req, &reply).ok());
  }
  void register_worker(const std::string& name) {
    pb::RegisterWorkerRequest req;
    req.set_name(name);
    req.set_slots(1);
    pb::Device* d = req.add_devices();
    d->set_kind("cpu");
    d->set_memory_bytes(64e9);
    pb::RegisterWorkerReply reply;
    ASSERT_TRUE(stub_->RegisterWorker(ctx().get(), req, &reply).ok());
  }
  grpc::Status lease(const std::string& worker, pb::LeaseJobReply* reply) {
    pb::LeaseJobRequest req;
    req.set_worker_name(worker);
    return stub_->LeaseJob(ctx().get(), req, reply);
  }

  fs::path dir_;
  std::string token_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<pb::Coordinator::Stub> stub_;
  int metrics_port_ = 0;
};

TEST_F(MetricsTest, EveryFamilyIsThereFromTheStart) {
  start();
  Scrape s = scrape();
  for (const auto& [name, type] : std::map<std::string, std::string>{{"gridbench_jobs", "gauge"},
                                                                     {"gridbench_leases_granted_total", "counter"},
                                                                     {"gridbench_leases_expired_total", "counter"},
                                                                     {"gridbench_lease_latency_seconds", "histogram"},
                                                                     {"gridbench_workers", "gauge"},
                                                                     {"gridbench_rpc_errors_total", "counter"},
                                                                     {"gridbench_build_info", "gauge"}}) {
    EXPECT_EQ(s.types[name], type) << name;
  }
  EXPECT_EQ(s.value("gridbench_leases_granted_total"), 0);
  EXPECT_EQ(s.value("gridbench_leases_expired_total"), 0);
  EXPECT_EQ(s.value("gridbench_lease_latency_seconds_count"), 0);
  EXPECT_EQ(s.value("gridbench_workers{state=\"active\"}"), 0);
  EXPECT_EQ(s.value("gridbench_workers{state=\"draining\"}"), 0);
  EXPECT_EQ(s.value("gridbench_workers{state=\"lost\"}"), 0);
  EXPECT_EQ(s.value("gridbench_build_info{version=\"" GRIDBENCH_VERSION "\"}"), 1);
}

TEST_F(MetricsTest, LeasesExpiriesAndCompletionsMoveTheCountersAndGauges) {
  start(/*lease_ms=*/300);
  submit();
  Scrape s = scrape();
  EXPECT_EQ(s.value("gridbench_jobs{grid=\"naps\",state=\"pending\"}"), 3);
  EXPECT_EQ(s.value("gridbench_jobs{grid=\"naps\",state=\"leased\"}"), 0);
  EXPECT_EQ(s.value("gridbench_jobs{grid=\"naps\",state=\"cancelled\"}"), 0);
  EXPECT_EQ(s.value("gridbench_jobs{grid=\"naps\",state=\"invalid\"}"), 0);  // every state, zeros included

  register_worker("w1");
  EXPECT_EQ(scrape().value("gridbench_workers{state=\"active\"}"), 1);

  // A lease: +1 granted, one latency observation, one job leased.
  pb::LeaseJobReply first;
  ASSERT_TRUE(lease("w1", &first).ok());
  ASSERT_TRUE(first.has_job());
  s = scrape();
  EXPECT_EQ(s.value("gridbench_leases_granted_total"), 1);
  EXPECT_EQ(s.value("gridbench_lease_latency_seconds_count"), 1);
  EXPECT_GT(s.value("gridbench_lease_latency_seconds_sum"), 0);
  EXPECT_LT(s.value("gridbench_lease_latency_seconds_sum"), 2.5) << "no long-poll wait in it";
  EXPECT_EQ(s.value("gridbench_jobs{grid=\"naps\",state=\"pending\"}"), 2);
  EXPECT_EQ(s.value("gridbench_jobs{grid=\"naps\",state=\"leased\"}"), 1);

  // Not renewed: it expires (the sweeper runs every lease_ms / 4).
  const auto t0 = std::chrono::steady_clock::now();
  while (scrape().value("gridbench_leases_expired_total") < 1 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  s = scrape();
  EXPECT_EQ(s.value("gridbench_leases_expired_total"), 1);
  EXPECT_EQ(s.value("gridbench_jobs{grid=\"naps\",state=\"pending\"}"), 3);
  EXPECT_EQ(s.value("gridbench_jobs{grid=\"naps\",state=\"leased\"}"), 0);

  // A lease completed: +1 granted, one job succeeded.
  pb::LeaseJobReply second;
  ASSERT_TRUE(lease("w1", &second).ok());
  ASSERT_TRUE(second.has_job());
  pb::CompleteJobRequest done;
  done.set_worker_name("w1");
  done.set_run_id(second.run_id());
  pb::Metric* m = done.add_metrics();
  m->set_name("slept_s");
  m->set_value(0);
  pb::CompleteJobReply done_reply;
  ASSERT_TRUE(stub_->CompleteJob(ctx().get(), done, &done_reply).ok());
  s = scrape();
  EXPECT_EQ(s.value("gridbench_leases_granted_total"), 2);
  EXPECT_EQ(s.value("gridbench_lease_latency_seconds_count"), 2);
  EXPECT_EQ(s.value("gridbench_jobs{grid=\"naps\",state=\"succeeded\"}"), 1);
  EXPECT_EQ(s.value("gridbench_jobs{grid=\"naps\",state=\"pending\"}"), 2);

  // Draining moves the worker between states.
  pb::DrainRequest drain;
  drain.set_worker_name("w1");
  pb::DrainReply drain_reply;
  ASSERT_TRUE(stub_->Drain(ctx().get(), drain, &drain_reply).ok());
  s = scrape();
  EXPECT_EQ(s.value("gridbench_workers{state=\"active\"}"), 0);
  EXPECT_EQ(s.value("gridbench_workers{state=\"draining\"}"), 1);
}

TEST_F(MetricsTest, RefusedRpcsAreCountedByMethodAndCode) {
  start(2000, "the-token");
  EXPECT_FALSE(scrape().has("gridbench_rpc_errors_total{code=\"UNAUTHENTICATED\",method=\"ListGrids\"}"));
  pb::ListGridsReply grids;
  EXPECT_EQ(stub_->ListGrids(ctx(/*with_token=*/false).get(), pb::ListGridsRequest(), &grids).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(stub_->ListGrids(ctx(/*with_token=*/false).get(), pb::ListGridsRequest(), &grids).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  pb::LeaseJobReply l;
  EXPECT_EQ(lease("nobody", &l).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // A successful call counts nowhere.
  EXPECT_TRUE(stub_->ListGrids(ctx().get(), pb::ListGridsRequest(), &grids).ok());
  Scrape s = scrape();
  EXPECT_EQ(s.value("gridbench_rpc_errors_total{code=\"UNAUTHENTICATED\",method=\"ListGrids\"}"), 2);
  EXPECT_EQ(s.value("gridbench_rpc_errors_total{code=\"FAILED_PRECONDITION\",method=\"LeaseJob\"}"), 1);
  int64_t total = 0;
  for (const auto& [key, v] : s.samples)
    if (key.rfind("gridbench_rpc_errors_total", 0) == 0) total += static_cast<int64_t>(v);
  EXPECT_EQ(total, 3);
}

TEST(Metrics, LabelValuesAreEscapedAndLatenciesBucketed) {
  CoordinatorMetrics m;
  m.lease_granted(0.0004);  // first bucket
  m.lease_granted(0.003);   // le 0.005
  m.lease_granted(7.0);     // only +Inf
  m.rpc_failed("/gridbench.v1.Coordinator/Drain", 5);
  m.rpc_failed("/grpc.health.v1.Health/Check", 5);
  CoordinatorMetrics::Gauges g;
  GridSummary grid;
  grid.name = "a \"quoted\" \\ grid\nname";
  grid.by_state = {{"pending", 4}};
  g.grids.push_back(grid);
  Scrape s = parse(m.render(g));
  EXPECT_EQ(s.value("gridbench_jobs{grid=\"a \"quoted\" \\ grid\nname\",state=\"pending\"}"), 4);
  EXPECT_EQ(s.value("gridbench_lease_latency_seconds_bucket{le=\"0.0005\"}"), 1);
  EXPECT_EQ(s.value("gridbench_lease_latency_seconds_bucket{le=\"0.0025\"}"), 1);
  EXPECT_EQ(s.value("gridbench_lease_latency_seconds_bucket{le=\"0.005\"}"), 2);
  EXPECT_EQ(s.value("gridbench_lease_latency_seconds_bucket{le=\"2.5\"}"), 2);
  EXPECT_EQ(s.value("gridbench_lease_latency_seconds_bucket{le=\"+Inf\"}"), 3);
  EXPECT_NEAR(s.value("gridbench_lease_latency_seconds_sum"), 7.0034, 1e-9);
  EXPECT_EQ(s.value("gridbench_rpc_errors_total{code=\"NOT_FOUND\",method=\"Drain\"}"), 1);
  EXPECT_EQ(s.value("gridbench_rpc_errors_total{code=\"NOT_FOUND\",method=\"grpc.health.v1.Health/Check\"}"), 1);
  EXPECT_EQ(escape_label_value("x\\y\"z\n"), "x\\\\y\\\"z\\n");
  EXPECT_EQ(status_code_name(16), "UNAUTHENTICATED");
  EXPECT_EQ(status_code_name(99), "99");
}

TEST(HttpEndpoint, AnswersGetAndHeadAndRefusesTheRest) {
  int calls = 0;
  std::map<std::string, HttpPage> pages;
  pages["/metrics"] = HttpPage{"text/plain; version=0.0.4; charset=utf-8", [&calls] {
                                 ++calls;
                                 return std::string("x 1\n");
                               }};
  Result<std::unique_ptr<HttpEndpoint>> ep = HttpEndpoint::start("127.0.0.1:0", std::move(pages));
  ASSERT_TRUE(ep.ok()) << ep.message();
  const int port = (*ep)->port();
  EXPECT_EQ(get(port, "/metrics"), "x 1\n");
  EXPECT_EQ(get(port, "/metrics?name[]=x"), "x 1\n");
  HttpReply head = http(port, "HEAD /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_NE(head.headers.find("Content-Length: 4"), std::string::npos) << head.headers;
  EXPECT_EQ(http(port, "GET /other HTTP/1.1\r\n\r\n").status, 404);
  HttpReply post = http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET, HEAD"), std::string::npos);
  EXPECT_EQ(http(port, "garbage\r\n\r\n").status, 400);
  EXPECT_EQ(calls, 3);  // two GETs and the HEAD
  (*ep)->stop();
  (*ep)->stop();  // idempotent

  EXPECT_FALSE(HttpEndpoint::start("unix:/tmp/x.sock", {}).ok());
  Result<std::unique_ptr<HttpEndpoint>> bad = HttpEndpoint::start("127.0.0.1", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("--metrics-listen"), std::string::npos) << bad.message();
}

TEST(HttpEndpoint, ABusyPortIsAnError) {
  Result<std::unique_ptr<HttpEndpoint>> a = HttpEndpoint::start("127.0.0.1:0", {});
  ASSERT_TRUE(a.ok()) << a.message();
  Result<std::unique_ptr<HttpEndpoint>> b = HttpEndpoint::start("127.0.0.1:" + std::to_string((*a)->port()), {});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.message().find("cannot listen"), std::string::npos) << b.message();
}

}  // namespace
}  // namespace gb::coord
