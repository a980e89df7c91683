// DTLS 1.2 engine over OpenSSL memory BIOs. JavaScript owns the UDP socket and the peer table;
// this addon only turns datagrams into plaintext and back. Every OpenSSL symbol comes from the
// node binary (which exports its bundled OpenSSL), see docs/dtls.md.
#pragma once

#include <napi.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>
#include <string>
#include <vector>

namespace brski_dtls {

// Shared by a context and every session made from it (cookie callbacks run on both the
// listener SSL and the session SSL, which re-verifies the cookie of the second ClientHello).
struct CookieKey {
  unsigned char secret[32];
};

// Per-SSL application data: the transport address the datagrams came from. Cookies bind to it.
struct PeerTag {
  std::string peer;
};

// Output of one step of the engine.
struct Step {
  std::vector<std::vector<uint8_t>> out;   // datagrams to send to the peer
  std::vector<std::vector<uint8_t>> data;  // decrypted application data
  bool established = false;                // handshake finished during this step
  bool closed = false;                     // session is over (alert, close_notify, fatal error)
  std::string error;                       // OpenSSL's reason when closed by an error
};

std::string DrainErrors();
// Reads everything OpenSSL wrote into the memory BIO and regroups the DTLS records into
// datagrams of at most `mtu` bytes (records are never split).
void DrainDatagrams(BIO* wbio, size_t mtu, std::vector<std::vector<uint8_t>>& out);
Napi::Object StepToJs(Napi::Env env, const Step& step);

class Context : public Napi::ObjectWrap<Context> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Context(const Napi::CallbackInfo& info);
  ~Context() override;

  SSL_CTX* ctx() const { return ctx_; }
  size_t mtu() const { return mtu_; }
  bool server() const { return server_; }

 private:
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  SSL* NewSsl(const std::string& peer, PeerTag** tag);

  SSL_CTX* ctx_ = nullptr;
  CookieKey* cookie_ = nullptr;
  bool server_ = true;
  size_t mtu_ = 1024;
  // Stateless cookie exchange: one SSL answers every first ClientHello with a HelloVerifyRequest;
  // only when a ClientHello returns a valid cookie does it become that peer's session.
  SSL* listener_ = nullptr;
  PeerTag* listenerTag_ = nullptr;
};

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, Napi::Object context, SSL* ssl, PeerTag* tag, size_t mtu);
  explicit Session(const Napi::CallbackInfo& info);
  ~Session() override;

 private:
  Napi::Value Feed(const Napi::CallbackInfo& info);
  Napi::Value Handshake(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value TimeoutMs(const Napi::CallbackInfo& info);
  Napi::Value HandleTimeout(const Napi::CallbackInfo& info);
  Napi::Value PeerChain(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);

  void Advance(Step& step);
  void Fail(Step& step, int ret);
  void Free();

  SSL* ssl_ = nullptr;
  PeerTag* tag_ = nullptr;
  size_t mtu_ = 1024;
  bool established_ = false;
  bool closed_ = false;
  Napi::ObjectReference context_;  // keeps the SSL_CTX's cookie key alive
};

extern Napi::FunctionReference* sessionConstructor;

}  // namespace brski_dtls
