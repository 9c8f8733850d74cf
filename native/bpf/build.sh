#!/bin/sh
# Builds the socket-owner BPF object and its libbpf skeleton into OUTDIR (run by
# node-gyp from native/binding.gyp before the addon compiles):
#   sh bpf/build.sh OUTDIR
# Debian's clang targets BPF; the object keeps its BTF (CO-RE relocations need
# it) and `bpftool gen object` drops the DWARF. The skeleton embeds the object
# in the addon, so there is no separate file to find or replace at run time.
set -eu
here=$(dirname "$0")
out=$1
mkdir -p "$out"
bpftool=$(command -v bpftool || echo /usr/sbin/bpftool)
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
clang -target bpf -O2 -g -Wall -Werror -idirafter "/usr/include/$multiarch" \
  -c "$here/owners.bpf.c" -o "$out/owners.bpf.o"
"$bpftool" gen object "$out/owners.o" "$out/owners.bpf.o"
"$bpftool" gen skeleton "$out/owners.o" name owners_bpf > "$out/owners.skel.h.tmp"
mv "$out/owners.skel.h.tmp" "$out/owners.skel.h"
