// Security of the coordinator daemon: the shared token (file or environment),
// checked on every Coordinator rpc in constant time; the listen address and the
// rule that a non-loopback bind needs a token (or --insecure); TLS credentials.
#pragma once

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gb::coord {

// The environment variable that holds the token when no token file is given.
inline constexpr const char* kTokenEnv = "GRIDBENCH_TOKEN";

// The shared token: the content of `token_file` when given (surrounding whitespace
// and the trailing newline removed; an empty file is an error), else the value of
// the environment variable `env_var` (trimmed), else "" (no token).
Result<std::string> load_token(const std::string& token_file, const char* env_var = kTokenEnv);

// Checks the metadata "authorization: Bearer TOKEN" of a call. The comparison is of
// SHA-256 digests with CRYPTO_memcmp, so it takes the same time whatever the
// presented token is and however long it is.
class TokenAuth {
 public:
  explicit TokenAuth(const std::string& token);  // "": every call is allowed
  bool enabled() const { return enabled_; }
  // OK, or UNAUTHENTICATED saying whether the token was missing or wrong.
  grpc::Status check(const grpc::ServerContext& ctx) const;
  // Whether an authorization header value ("Bearer TOKEN") carries the token.
  bool accepts(std::string_view authorization) const;

 private:
  bool enabled_ = false;
  std::array<unsigned char, 32> digest_{};
};

// A --listen address: "HOST:PORT", "[IPV6]:PORT", or "unix:PATH" (a local socket).
struct ListenAddress {
  std::string host;  // without brackets; empty for a unix socket
  int port = 0;      // 0: the system picks a free port
  std::string unix_path;
  bool is_unix() const { return !unix_path.empty(); }
  // The address as gRPC's AddListeningPort takes it.
  std::string grpc_address() const;
  // The address with `bound_port` (the port actually bound) for "listening on ...".
  std::string display(int bound_port) const;
};

// Parses --listen. Errors say what was expected ("expected HOST:PORT, [IPV6]:PORT or unix:PATH").
Result<ListenAddress> parse_listen_address(const std::string& listen);

// localhost, 127.0.0.0/8, ::1 and IPv4-mapped loopback; unix sockets are local too.
bool is_loopback(const ListenAddress& address);

// A non-loopback bind without a token is refused unless `insecure`.
Status check_bind_policy(const ListenAddress& address, bool has_token, bool insecure);

struct TlsFiles {
  std::string cert;       // PEM server certificate chain
  std::string key;        // PEM private key
  std::string client_ca;  // PEM CA bundle: when set, clients must present a certificate it signed
  bool enabled() const { return !cert.empty() || !key.empty() || !client_ca.empty(); }
};

// grpc::SslServerCredentials from the files (errors name the file), or insecure
// credentials when `tls` names none. A client CA without a certificate and key is
// an error.
Result<std::shared_ptr<grpc::ServerCredentials>> make_server_credentials(const TlsFiles& tls);

}  // namespace gb::coord
