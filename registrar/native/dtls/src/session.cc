// One DTLS association: datagrams in, plaintext + datagrams out, retransmission timer, peer chain.
#include "dtls.h"

#include <sys/time.h>

namespace brski_dtls {

Napi::FunctionReference* sessionConstructor = nullptr;

Napi::Function Session::Init(Napi::Env env) {
  return DefineClass(env, "DtlsSession", {
      InstanceMethod("feed", &Session::Feed),
      InstanceMethod("handshake", &Session::Handshake),
      InstanceMethod("write", &Session::Write),
      InstanceMethod("timeoutMs", &Session::TimeoutMs),
      InstanceMethod("handleTimeout", &Session::HandleTimeout),
      InstanceMethod("peerChain", &Session::PeerChain),
      InstanceMethod("info", &Session::Info),
      InstanceMethod("shutdown", &Session::Shutdown),
      InstanceMethod("destroy", &Session::Destroy),
  });
}

// Sessions are only made by Context (listen/connect); JS cannot construct a usable one.
Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "DtlsSession is created by DtlsContext").ThrowAsJavaScriptException();
  }
}

Napi::Object Session::Wrap(Napi::Env env, Napi::Object context, SSL* ssl, PeerTag* tag, size_t mtu) {
  Napi::Object obj = sessionConstructor->New({Napi::External<void>::New(env, nullptr)});
  Session* s = Napi::ObjectWrap<Session>::Unwrap(obj);
  s->ssl_ = ssl;
  s->tag_ = tag;
  s->mtu_ = mtu;
  s->context_ = Napi::Persistent(context);
  return obj;
}

Session::~Session() { Free(); }

void Session::Free() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // also frees both memory BIOs
  ssl_ = nullptr;
  delete tag_;
  tag_ = nullptr;
  closed_ = true;
  if (!context_.IsEmpty()) context_.Reset();
}

void Session::Fail(Step& step, int ret) {
  int err = SSL_get_error(ssl_, ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
  step.closed = true;
  closed_ = true;
  if (err == SSL_ERROR_ZERO_RETURN) {
    step.error = "";  // orderly close_notify from the peer
  } else {
    std::string reason = DrainErrors();
    step.error = reason.empty() ? "DTLS error " + std::to_string(err) : reason;
  }
}

// Runs the handshake as far as the buffered input allows, then reads all application records.
void Session::Advance(Step& step) {
  if (closed_ || ssl_ == nullptr) {
    step.closed = true;
    return;
  }
  ERR_clear_error();
  if (!established_) {
    int ret = SSL_do_handshake(ssl_);
    if (ret == 1) {
      established_ = true;
      step.established = true;
    } else {
      Fail(step, ret);
    }
  }
  if (established_ && !closed_) {
    std::vector<uint8_t> buf(16384);
    for (;;) {
      int n = SSL_read(ssl_, buf.data(), static_cast<int>(buf.size()));
      if (n > 0) {
        step.data.emplace_back(buf.begin(), buf.begin() + n);
        continue;
      }
      Fail(step, n);
      break;
    }
  }
  DrainDatagrams(SSL_get_wbio(ssl_), mtu_, step.out);
  // Whatever OpenSSL did not consume (a record for an epoch it dropped) is not carried over
  // into the next datagram: each datagram is processed on its own.
  (void)BIO_reset(SSL_get_rbio(ssl_));
}

Napi::Value Session::Feed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) {
    Napi::TypeError::New(env, "feed(datagram: Buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Step step;
  if (ssl_ != nullptr && !closed_) {
    Napi::Buffer<uint8_t> d = info[0].As<Napi::Buffer<uint8_t>>();
    if (d.Length() > 0) BIO_write(SSL_get_rbio(ssl_), d.Data(), static_cast<int>(d.Length()));
  }
  Advance(step);
  return StepToJs(env, step);
}

Napi::Value Session::Handshake(const Napi::CallbackInfo& info) {
  Step step;
  Advance(step);
  return StepToJs(info.Env(), step);
}

Napi::Value Session::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) {
    Napi::TypeError::New(env, "write(plaintext: Buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Step step;
  if (ssl_ == nullptr || closed_ || !established_) {
    Napi::Error::New(env, "DTLS session is not established").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> d = info[0].As<Napi::Buffer<uint8_t>>();
  ERR_clear_error();
  int n = SSL_write(ssl_, d.Data(), static_cast<int>(d.Length()));
  if (n <= 0) Fail(step, n);
  DrainDatagrams(SSL_get_wbio(ssl_), mtu_, step.out);
  return StepToJs(env, step);
}

// Milliseconds until the handshake retransmission timer fires; -1 when no timer runs.
Napi::Value Session::TimeoutMs(const Napi::CallbackInfo& info) {
  struct timeval tv;
  if (ssl_ == nullptr || closed_ || DTLSv1_get_timeout(ssl_, &tv) != 1) return Napi::Number::New(info.Env(), -1);
  return Napi::Number::New(info.Env(), static_cast<double>(tv.tv_sec) * 1000.0 + tv.tv_usec / 1000.0);
}

Napi::Value Session::HandleTimeout(const Napi::CallbackInfo& info) {
  Step step;
  if (ssl_ != nullptr && !closed_) {
    ERR_clear_error();
    int ret = DTLSv1_handle_timeout(ssl_);
    if (ret < 0) Fail(step, ret);  // too many retransmissions
    DrainDatagrams(SSL_get_wbio(ssl_), mtu_, step.out);
  } else {
    step.closed = true;
  }
  return StepToJs(info.Env(), step);
}

// DER of the peer's certificates, leaf first (server side: OpenSSL keeps the leaf apart).
Napi::Value Session::PeerChain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array arr = Napi::Array::New(env);
  if (ssl_ == nullptr) return arr;
  uint32_t i = 0;
  auto push = [&](X509* x) {
    int len = i2d_X509(x, nullptr);
    if (len <= 0) return;
    Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(len));
    unsigned char* p = b.Data();
    i2d_X509(x, &p);
    arr.Set(i++, b);
  };
  X509* leaf = SSL_get0_peer_certificate(ssl_);
  if (leaf == nullptr) return arr;
  push(leaf);
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl_);
  for (int k = 0; chain != nullptr && k < sk_X509_num(chain); k++) {
    X509* x = sk_X509_value(chain, k);
    if (X509_cmp(x, leaf) != 0) push(x);
  }
  return arr;
}

Napi::Value Session::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("established", established_);
  o.Set("closed", closed_);
  if (ssl_ != nullptr && established_) {
    o.Set("version", SSL_get_version(ssl_));
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
    if (c != nullptr) {
      o.Set("cipher", SSL_CIPHER_get_name(c));
      o.Set("cipherStandardName", SSL_CIPHER_standard_name(c));
    }
  }
  return o;
}

// Sends close_notify (if established) and marks the session closed; destroy() frees it.
Napi::Value Session::Shutdown(const Napi::CallbackInfo& info) {
  Step step;
  if (ssl_ != nullptr && established_ && !closed_) {
    ERR_clear_error();
    SSL_shutdown(ssl_);
    DrainDatagrams(SSL_get_wbio(ssl_), mtu_, step.out);
    ERR_clear_error();
  }
  closed_ = true;
  step.closed = true;
  return StepToJs(info.Env(), step);
}

Napi::Value Session::Destroy(const Napi::CallbackInfo& info) {
  Free();
  return info.Env().Undefined();
}

}  // namespace brski_dtls
