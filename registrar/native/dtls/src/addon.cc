// Module entry and helpers shared by Context and Session.
#include "dtls.h"

namespace brski_dtls {

std::string DrainErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

void DrainDatagrams(BIO* wbio, size_t mtu, std::vector<std::vector<uint8_t>>& out) {
  size_t pending = BIO_ctrl_pending(wbio);
  if (pending == 0) return;
  std::vector<uint8_t> bytes(pending);
  int n = BIO_read(wbio, bytes.data(), static_cast<int>(pending));
  if (n <= 0) return;
  bytes.resize(static_cast<size_t>(n));
  // DTLS record header: type(1) version(2) epoch(2) sequence(6) length(2).
  constexpr size_t kHeader = 13;
  std::vector<uint8_t> current;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t len = kHeader;
    if (bytes.size() - pos >= kHeader) len += (static_cast<size_t>(bytes[pos + 11]) << 8) | bytes[pos + 12];
    if (len > bytes.size() - pos) len = bytes.size() - pos;  // cannot happen with OpenSSL's own output
    if (!current.empty() && current.size() + len > mtu) {
      out.push_back(std::move(current));
      current.clear();
    }
    current.insert(current.end(), bytes.begin() + pos, bytes.begin() + pos + len);
    pos += len;
  }
  if (!current.empty()) out.push_back(std::move(current));
}

static Napi::Array ToArray(Napi::Env env, const std::vector<std::vector<uint8_t>>& list) {
  Napi::Array arr = Napi::Array::New(env, list.size());
  for (uint32_t i = 0; i < list.size(); i++) arr.Set(i, Napi::Buffer<uint8_t>::Copy(env, list[i].data(), list[i].size()));
  return arr;
}

Napi::Object StepToJs(Napi::Env env, const Step& step) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("out", ToArray(env, step.out));
  o.Set("data", ToArray(env, step.data));
  o.Set("established", step.established);
  o.Set("closed", step.closed);
  if (!step.error.empty()) o.Set("error", step.error);
  return o;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function session = Session::Init(env);
  sessionConstructor = new Napi::FunctionReference(Napi::Persistent(session));
  exports.Set("DtlsSession", session);
  exports.Set("DtlsContext", Context::Init(env));
  exports.Set("opensslVersion", Napi::String::New(env, OpenSSL_version(OPENSSL_VERSION)));
  return exports;
}

NODE_API_MODULE(brski_dtls, Init)

}  // namespace brski_dtls
