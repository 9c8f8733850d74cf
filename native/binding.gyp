{
  "targets": [
    {
      "target_name": "portcullis_native",
      "sources": [
        "src/addon.cc",
        "src/errno_error.cc",
        "src/netns.cc",
        "src/netlink_socket.cc",
        "src/netlink_socket_reader.cc",
        "src/netlink_socket_sender.cc",
        "src/peer_credentials.cc",
        "src/socket_link.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-O2"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-pthread"],
      "conditions": [["OS!='linux'", {"sources!": ["src/netns.cc"]}]]
    }
  ]
}
