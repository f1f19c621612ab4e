#include "coordinator/service/auth.h"

#include <arpa/inet.h>
#include <grpcpp/security/server_credentials.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace gb::coord {

namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

Result<std::string> read_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Error{path + ": cannot read " + what + ": is a directory"};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot read " + what + ": " + std::strerror(errno)};
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error{path + ": cannot read " + what + ": " + std::strerror(errno)};
  return ss.str();
}

std::array<unsigned char, 32> digest_of(std::string_view s) {
  std::array<unsigned char, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

bool parse_port(std::string_view text, int* port) {
  if (text.empty() || text.size() > 5) return false;
  int p = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + (c - '0');
  }
  if (p > 65535) return false;
  *port = p;
  return true;
}

}  // namespace

Result<std::string> load_token(const std::string& token_file, const char* env_var) {
  if (!token_file.empty()) {
    Result<std::string> text = read_file(token_file, "the token");
    if (!text.ok()) return text.error();
    std::string token = trim(*text);
    if (token.empty()) return Error{token_file + ": the token file is empty"};
    if (token.find_first_of("\r\n") != std::string::npos) {
      return Error{token_file + ": the token must be one line"};
    }
    return token;
  }
  if (env_var != nullptr) {
    if (const char* v = std::getenv(env_var); v != nullptr) return trim(v);
  }
  return std::string();
}

TokenAuth::TokenAuth(const std::string& token) : enabled_(!token.empty()) {
  if (enabled_) digest_ = digest_of(token);
}

bool TokenAuth::accepts(std::string_view authorization) const {
  if (!enabled_) return true;
  constexpr std::string_view kBearer = "Bearer ";
  if (!starts_with_nocase(authorization, kBearer)) return false;
  const std::array<unsigned char, 32> presented = digest_of(authorization.substr(kBearer.size()));
  return CRYPTO_memcmp(presented.data(), digest_.data(), digest_.size()) == 0;
}

grpc::Status TokenAuth::check(const grpc::ServerContext& ctx) const {
  if (!enabled_) return grpc::Status::OK;
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this coordinator requires a token: metadata \"authorization: Bearer TOKEN\"");
  }
  if (!accepts(std::string_view(it->second.data(), it->second.size()))) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong token");
  }
  return grpc::Status::OK;
}

std::string ListenAddress::grpc_address() const {
  if (is_unix()) return "unix:" + unix_path;
  return display(port);
}

std::string ListenAddress::display(int bound_port) const {
  if (is_unix()) return "unix:" + unix_path;
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(bound_port);
}

Result<ListenAddress> parse_listen_address(const std::string& listen) {
  const std::string expected = "--listen '" + listen + "': expected HOST:PORT, [IPV6]:PORT or unix:PATH";
  ListenAddress a;
  if (listen.rfind("unix:", 0) == 0) {
    a.unix_path = listen.substr(5);
    if (a.unix_path.empty()) return Error{expected};
    return a;
  }
  std::string port_text;
  if (!listen.empty() && listen[0] == '[') {
    size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') return Error{expected};
    a.host = listen.substr(1, close - 1);
    port_text = listen.substr(close + 2);
    in6_addr v6{};
    if (inet_pton(AF_INET6, a.host.c_str(), &v6) != 1)
      return Error{expected + " ('" + a.host + "' is not an IPv6 address)"};
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0) return Error{expected};
    a.host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
    if (a.host.find(':') != std::string::npos) return Error{expected + " (write an IPv6 host in brackets)"};
  }
  if (!parse_port(port_text, &a.port)) return Error{expected + " (a port from 0 to 65535)"};
  return a;
}

bool is_loopback(const ListenAddress& address) {
  if (address.is_unix()) return true;
  std::string host = address.host;
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host == "localhost" || host == "ip6-localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return v6.s6_addr[12] == 127;
  }
  return false;
}

Status check_bind_policy(const ListenAddress& address, bool has_token, bool insecure) {
  if (has_token || insecure || is_loopback(address)) return Status::Ok();
  return Error{"refusing to listen on " + address.grpc_address() +
               " without a token: it is not a loopback address. Give --token-file FILE (or set " +
               std::string(kTokenEnv) + "), or --insecure to accept every caller"};
}

Result<std::shared_ptr<grpc::ServerCredentials>> make_server_credentials(const TlsFiles& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  if (tls.cert.empty() || tls.key.empty()) {
    return Error{"TLS needs both --tls-cert and --tls-key" +
                 std::string(tls.client_ca.empty() ? "" : " (--tls-client-ca alone is not enough)")};
  }
  Result<std::string> cert = read_file(tls.cert, "the TLS certificate");
  if (!cert.ok()) return cert.error();
  Result<std::string> key = read_file(tls.key, "the TLS key");
  if (!key.ok()) return key.error();
  if (cert->find("-----BEGIN") == std::string::npos) return Error{tls.cert + ": not a PEM certificate"};
  if (key->find("-----BEGIN") == std::string::npos) return Error{tls.key + ": not a PEM private key"};
  grpc::SslServerCredentialsOptions opts(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  opts.pem_key_cert_pairs.push_back({*key, *cert});
  if (!tls.client_ca.empty()) {
    Result<std::string> ca = read_file(tls.client_ca, "the client CA");
    if (!ca.ok()) return ca.error();
    if (ca->find("-----BEGIN") == std::string::npos) return Error{tls.client_ca + ": not a PEM certificate"};
    opts.pem_root_certs = *ca;
    opts.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(opts);
}

}  // namespace gb::coord
