{
  # DTLS 1.2 over memory BIOs, linked against the OpenSSL that the node binary itself exports
  # (headers under <nodedir>/include/node/openssl). No system libssl is linked: the addon
  # resolves every OpenSSL symbol from the running node process, so the TLS library is the
  # one Node ships and patches. See docs/dtls.md.
  "targets": [
    {
      "target_name": "brski_dtls",
      "sources": ["src/addon.cc", "src/context.cc", "src/session.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "OPENSSL_API_COMPAT=0x10100000L", "OPENSSL_SUPPRESS_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS=='win'", { "defines": ["_HAS_EXCEPTIONS=1"] }]
      ]
    }
  ]
}
