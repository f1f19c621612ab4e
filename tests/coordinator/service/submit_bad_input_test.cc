// The coordinator under hostile SubmitGrid payloads, sent by a raw gRPC client
// (grpc::GenericStub with hand-made bytes, so that nothing on the client side
// validates or re-encodes them): every bad grid text is answered
// INVALID_ARGUMENT with a "SOURCE: ..." message, bytes that are not a
// SubmitGridRequest are refused by gRPC, nothing is written, and the server keeps
// answering afterwards.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include <future>
#include <string>
#include <vector>

#include "tests/coordinator/service/service_fixture.h"

namespace gb::coord::service_testing {
namespace {

class SubmitBadInputTest : public ServiceTest {
 protected:
  // One unary SubmitGrid call carrying `bytes` as its serialized request.
  grpc::Status raw_submit(const std::string& bytes) {
    grpc::GenericStub generic(channel_);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    auto c = ctx(20000);
    generic.UnaryCall(c.get(), "/gridbench.v1.Coordinator/SubmitGrid", grpc::StubOptions(), &request, &response,
                      [&](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  static std::string request_bytes(const std::string& grid_text, const std::string& source) {
    pb::SubmitGridRequest req;
    req.set_grid_text(grid_text);
    req.set_source(source);
    return req.SerializeAsString();
  }
};

TEST_F(SubmitBadInputTest, EveryBadGridIsInvalidArgumentAndTheServerSurvives) {
  start();
  struct Case {
    std::string name, source, text, expected;
  };
  const std::string deep_json = std::string(100000, '[') + std::string(100000, ']');
  const std::string deep_yaml = "a: " + std::string(100000, '[') + std::string(100000, ']') + "\n";
  const std::string huge(17 << 20, ' ');
  const std::vector<Case> cases = {
      {"not JSON", "g.json", "{\"name\": ", "g.json: line 1 column 10: syntax error"},
      {"nested 100,000 deep (JSON)", "g.json", deep_json, "g.json: $"},
      {"nested 100,000 deep (YAML)", "g.yaml", deep_yaml, "nested deeper than 64 levels"},
      {"a number past a double", "g.json",
       R"({"name": "n", "axes": {"seconds": [1e400]}, "measure": ["sleep"]})",
       "g.json: $.axes.seconds[0]: number 1e400 is outside the range of a double"},
      {"a number past a double (YAML)", "g.yaml", "name: n\naxes: {seconds: [1e400]}\nmeasure: [sleep]\n",
       "g.yaml: $.axes.seconds[0]: number 1e400 is outside the range of a double"},
      {"wrong types", "g.json", R"({"name": 7, "axes": "seconds", "measure": {"sleep": 1}})", "g.json: $.name"},
      {"over 16 MiB", "g.json", "{" + huge + "}", "g.json: 17825794 bytes, more than the limit of 16 MiB"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    grpc::Status s = raw_submit(request_bytes(c.text, c.source));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message().substr(0, 300);
    EXPECT_NE(s.error_message().find(c.expected), std::string::npos) << s.error_message().substr(0, 300);
  }
  // Bytes that are no SubmitGridRequest at all: gRPC refuses them before the service.
  for (const std::string& junk : {std::string("\xff\xff\xff\xff\xff"), std::string(1000, '\x0a')}) {
    grpc::Status s = raw_submit(junk);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  }
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM grids"), 0);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM jobs"), 0);
  // Still serving: a good grid goes in.
  grpc::Status ok = raw_submit(request_bytes(kNaps, "naps.json"));
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM jobs"), 3);
}

}  // namespace
}  // namespace gb::coord::service_testing
