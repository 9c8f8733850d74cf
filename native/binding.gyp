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
    },
    {
      # The socket-owner BPF programs, an addon of their own: it links libbpf
      # (libbpf.so.1; Debian's libbpf.a is not position-independent), and a
      # system without libbpf must still load the main addon and run the
      # helper on the /proc path (helper/attribution/ebpf/kernel-owners.ts).
      "target_name": "portcullis_bpf",
      "sources": [
        "src/bpf_addon.cc",
        "src/bpf_loader.cc",
        "src/bpf_owners.cc",
        "src/errno_error.cc",
        "src/netns.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<(SHARED_INTERMEDIATE_DIR)/bpf"
      ],
      "actions": [
        {
          "action_name": "owners_bpf_skeleton",
          "inputs": ["bpf/build.sh", "bpf/owners.bpf.c", "bpf/owners.h"],
          "outputs": ["<(SHARED_INTERMEDIATE_DIR)/bpf/owners.skel.h"],
          "action": ["sh", "bpf/build.sh", "<(SHARED_INTERMEDIATE_DIR)/bpf"],
          "message": "BPF: owners.bpf.c -> owners.skel.h"
        }
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-O2"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-pthread"],
      "libraries": ["-lbpf"]
    }
  ]
}
