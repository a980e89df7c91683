// SSL_CTX setup (DTLS 1.2 only, cipher/group lists, certificate + key, client-certificate
// request, stateless cookies) and the listener that runs the HelloVerifyRequest exchange.
#include "dtls.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <ctime>

namespace brski_dtls {

namespace {

constexpr time_t kCookieWindowSeconds = 60;
constexpr unsigned kCookieLength = 32;

unsigned ComputeCookie(const CookieKey* key, const std::string& peer, uint64_t bucket, unsigned char* out) {
  unsigned char msg[8];
  for (int i = 7; i >= 0; i--) { msg[i] = bucket & 0xff; bucket >>= 8; }
  HMAC_CTX* h = HMAC_CTX_new();
  unsigned len = 0;
  unsigned char mac[EVP_MAX_MD_SIZE];
  if (h != nullptr && HMAC_Init_ex(h, key->secret, sizeof key->secret, EVP_sha256(), nullptr) == 1 &&
      HMAC_Update(h, msg, sizeof msg) == 1 &&
      HMAC_Update(h, reinterpret_cast<const unsigned char*>(peer.data()), peer.size()) == 1 &&
      HMAC_Final(h, mac, &len) == 1 && len >= kCookieLength) {
    memcpy(out, mac, kCookieLength);
    len = kCookieLength;
  } else {
    len = 0;
  }
  HMAC_CTX_free(h);
  return len;
}

const CookieKey* KeyOf(SSL* ssl) {
  return static_cast<const CookieKey*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
}

// Cookie = HMAC-SHA256(secret, time bucket || peer address): no per-peer state before the peer
// proved it receives at its source address; valid for the current and the previous minute.
int GenerateCookie(SSL* ssl, unsigned char* cookie, unsigned int* len) {
  const CookieKey* key = KeyOf(ssl);
  const PeerTag* tag = static_cast<const PeerTag*>(SSL_get_app_data(ssl));
  if (key == nullptr || tag == nullptr) return 0;
  unsigned n = ComputeCookie(key, tag->peer, static_cast<uint64_t>(time(nullptr) / kCookieWindowSeconds), cookie);
  if (n == 0) return 0;
  *len = n;
  return 1;
}

int VerifyCookie(SSL* ssl, const unsigned char* cookie, unsigned int len) {
  const CookieKey* key = KeyOf(ssl);
  const PeerTag* tag = static_cast<const PeerTag*>(SSL_get_app_data(ssl));
  if (key == nullptr || tag == nullptr || len != kCookieLength) return 0;
  uint64_t now = static_cast<uint64_t>(time(nullptr) / kCookieWindowSeconds);
  unsigned char expected[kCookieLength];
  for (uint64_t bucket : {now, now - 1}) {
    if (ComputeCookie(key, tag->peer, bucket, expected) == kCookieLength && CRYPTO_memcmp(expected, cookie, kCookieLength) == 0) return 1;
  }
  return 0;
}

// Chain validation belongs to the application (manufacturer anchors differ per pledge, like the
// HTTPS listener's rejectUnauthorized:false). OpenSSL still checks the CertificateVerify
// signature with the certificate's key whatever this callback answers.
int AcceptAnyChain(int, X509_STORE_CTX*) { return 1; }

std::string StringOpt(const Napi::Object& o, const char* name, const std::string& dflt = "") {
  Napi::Value v = o.Get(name);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : dflt;
}

EVP_PKEY* ReadKey(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = b ? PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(b);
  return k;
}

std::vector<X509*> ReadCerts(const std::string& pem) {
  std::vector<X509*> certs;
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (b == nullptr) return certs;
  while (X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr)) certs.push_back(x);
  ERR_clear_error();  // the loop ends on a "no start line" error
  BIO_free(b);
  return certs;
}

}  // namespace

Napi::Function Context::Init(Napi::Env env) {
  return DefineClass(env, "DtlsContext", {
      InstanceMethod("listen", &Context::Listen),
      InstanceMethod("connect", &Context::Connect),
  });
}

Context::Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "DtlsContext(options)").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  server_ = o.Get("server").ToBoolean();
  Napi::Value mtu = o.Get("mtu");
  if (mtu.IsNumber()) mtu_ = mtu.As<Napi::Number>().Uint32Value();
  if (mtu_ < 256 || mtu_ > 16384) {
    Napi::RangeError::New(env, "mtu must be 256..16384").ThrowAsJavaScriptException();
    return;
  }
  // Throws (C++ exceptions are on); the destructor does not run for a failed constructor.
  auto fail = [&](const std::string& what) {
    std::string reason = what + ": " + DrainErrors();
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ctx_ = nullptr;
    delete cookie_;
    cookie_ = nullptr;
    throw Napi::Error::New(env, reason);
  };

  ERR_clear_error();
  ctx_ = SSL_CTX_new(server_ ? DTLS_server_method() : DTLS_client_method());
  if (ctx_ == nullptr) fail("SSL_CTX_new");
  // OpenSSL 3.0 has no DTLS 1.3; pin 1.2 so nothing older is ever negotiated.
  SSL_CTX_set_min_proto_version(ctx_, DTLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx_, DTLS1_2_VERSION);
  // No resumption (a resumed session has no client chain to validate), no renegotiation,
  // MTU from us (memory BIOs cannot be asked), server picks the suite order.
  SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_QUERY_MTU |
                                SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_read_ahead(ctx_, 1);

  std::string ciphers = StringOpt(o, "ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-CCM8");
  if (SSL_CTX_set_cipher_list(ctx_, ciphers.c_str()) != 1) fail("cipher list '" + ciphers + "'");
  std::string groups = StringOpt(o, "groups", "P-256:X25519:P-384");
  if (SSL_CTX_set1_groups_list(ctx_, groups.c_str()) != 1) fail("groups '" + groups + "'");

  std::string certPem = StringOpt(o, "certChain");
  std::string keyPem = StringOpt(o, "key");
  if (!certPem.empty()) {
    std::vector<X509*> certs = ReadCerts(certPem);
    if (certs.empty()) fail("certChain holds no certificate");
    bool ok = SSL_CTX_use_certificate(ctx_, certs[0]) == 1;
    for (size_t i = 1; ok && i < certs.size(); i++) ok = SSL_CTX_add1_chain_cert(ctx_, certs[i]) == 1;
    for (X509* x : certs) X509_free(x);
    if (!ok) fail("certificate");
    EVP_PKEY* key = ReadKey(keyPem);
    if (key == nullptr) fail("private key");
    ok = SSL_CTX_use_PrivateKey(ctx_, key) == 1 && SSL_CTX_check_private_key(ctx_) == 1;
    std::string forged = StringOpt(o, "unsafeCertificateVerifyKey");
    if (ok && !forged.empty()) {
      // TEST ONLY (client role): after the certificate/key match check, replace the key material
      // inside the EVP_PKEY the SSL_CTX references, so CertificateVerify is signed with a key
      // that does not belong to the presented certificate. Lets tests prove the server refuses it.
      EVP_PKEY* other = ReadKey(forged);
      EC_KEY* ec = other ? EVP_PKEY_get1_EC_KEY(other) : nullptr;
      ok = !server_ && ec != nullptr && EVP_PKEY_set1_EC_KEY(key, ec) == 1;
      EC_KEY_free(ec);
      EVP_PKEY_free(other);
    }
    EVP_PKEY_free(key);
    if (!ok) fail("private key does not match the certificate");
  } else if (server_) {
    Napi::Error::New(env, "a DTLS server needs certChain and key").ThrowAsJavaScriptException();
    return;
  }

  if (server_) {
    int mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    if (o.Get("requireClientCert").ToBoolean()) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx_, mode, AcceptAnyChain);
    cookie_ = new CookieKey();
    if (RAND_bytes(cookie_->secret, sizeof cookie_->secret) != 1) fail("RAND_bytes");
    SSL_CTX_set_app_data(ctx_, cookie_);
    SSL_CTX_set_cookie_generate_cb(ctx_, GenerateCookie);
    SSL_CTX_set_cookie_verify_cb(ctx_, VerifyCookie);
  } else {
    // The pledge accepts the registrar provisionally (RFC 8995 §5.1); the application keeps the
    // presented chain and checks it against the voucher's pin. OpenSSL still verifies the
    // ServerKeyExchange signature with the presented certificate's key.
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, AcceptAnyChain);
  }
}

Context::~Context() {
  if (listener_ != nullptr) SSL_free(listener_);
  delete listenerTag_;
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);  // sessions hold their own SSL_CTX reference
  delete cookie_;                           // sessions keep this object (and so this key) alive
}

SSL* Context::NewSsl(const std::string& peer, PeerTag** tag) {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return nullptr;
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    SSL_free(ssl);
    return nullptr;
  }
  // An empty memory BIO must mean "would block", not EOF.
  BIO_set_mem_eof_return(rbio, -1);
  BIO_set_mem_eof_return(wbio, -1);
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_mtu(ssl, static_cast<long>(mtu_));
  *tag = new PeerTag{peer};
  SSL_set_app_data(ssl, *tag);
  return ssl;
}

// listen(peer, datagram) → { session?, out, data, established, closed, error }
// Without `session`, the datagram was answered statelessly (HelloVerifyRequest in `out`) or dropped.
Napi::Value Context::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!server_ || info.Length() < 2 || !info[0].IsString() || !info[1].IsBuffer()) {
    Napi::TypeError::New(env, "listen(peer: string, datagram: Buffer) on a server context").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string peer = info[0].As<Napi::String>().Utf8Value();
  Napi::Buffer<uint8_t> dgram = info[1].As<Napi::Buffer<uint8_t>>();
  if (listener_ == nullptr) {
    listener_ = NewSsl(peer, &listenerTag_);
    if (listener_ == nullptr) {
      Napi::Error::New(env, "SSL_new: " + DrainErrors()).ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  listenerTag_->peer = peer;
  BIO* rbio = SSL_get_rbio(listener_);
  BIO* wbio = SSL_get_wbio(listener_);
  (void)BIO_reset(rbio);
  (void)BIO_reset(wbio);
  BIO_write(rbio, dgram.Data(), static_cast<int>(dgram.Length()));

  ERR_clear_error();
  BIO_ADDR* addr = BIO_ADDR_new();
  int ret = DTLSv1_listen(listener_, addr);
  BIO_ADDR_free(addr);
  Step step;
  if (ret <= 0) {
    DrainDatagrams(wbio, mtu_, step.out);  // the HelloVerifyRequest, if any
    (void)BIO_reset(rbio);
    if (ret < 0) {
      // Fatal for the listener object only: start over with a fresh one next time.
      SSL_free(listener_);
      delete listenerTag_;
      listener_ = nullptr;
      listenerTag_ = nullptr;
      ERR_clear_error();
    }
    return StepToJs(env, step);
  }
  // The peer returned our cookie: this SSL becomes its session and continues the handshake.
  SSL* ssl = listener_;
  PeerTag* tag = listenerTag_;
  listener_ = nullptr;
  listenerTag_ = nullptr;
  Napi::Object session = Session::Wrap(env, Value(), ssl, tag, mtu_);
  Napi::Object result = session.Get("handshake").As<Napi::Function>().Call(session, {}).As<Napi::Object>();
  result.Set("session", session);
  return result;
}

// connect(peer) → Session in the client role; call handshake() to get the ClientHello.
Napi::Value Context::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (server_) {
    Napi::TypeError::New(env, "connect() needs a client context").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string peer = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "server";
  PeerTag* tag = nullptr;
  SSL* ssl = NewSsl(peer, &tag);
  if (ssl == nullptr) {
    Napi::Error::New(env, "SSL_new: " + DrainErrors()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  SSL_set_connect_state(ssl);
  return Session::Wrap(env, Value(), ssl, tag, mtu_);
}

}  // namespace brski_dtls
