// Loads the socket-owner BPF programs (native/bpf/owners.bpf.c, embedded as a
// libbpf skeleton) and attaches them with BPF links: the cgroup hooks at the
// cgroup v2 root, the tracepoints globally. Nothing is pinned: the links and
// maps live as long as this object (or the process) does.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

struct owners_bpf;
struct bpf_link;

class BpfLoader {
 public:
  // Which map a lookup reads.
  enum MapId { kFlows = 0, kExecs = 1 };

  BpfLoader() = default;
  ~BpfLoader();
  BpfLoader(const BpfLoader&) = delete;
  BpfLoader& operator=(const BpfLoader&) = delete;

  // Opens, loads (a program the kernel refuses is disabled and the rest
  // loaded again) and attaches. Programs named in `disable` are not loaded.
  // Returns 0, or an errno with *stage and *detail (libbpf's last words) set
  // when nothing could be attached.
  int Open(const std::string& cgroupRoot, const std::set<std::string>& disable,
           std::string* stage, std::string* detail);

  // Every program: "attached", or why it is not.
  const std::map<std::string, std::string>& Programs() const { return programs_; }
  // Kernel ids of the attached programs (tests check they go away on Close).
  const std::vector<unsigned>& ProgramIds() const { return progIds_; }

  // Copies the value for `key` into `value`: 0, ENOENT, or another errno
  // (EINVAL for sizes that do not match the map's).
  int Lookup(MapId map, const void* key, size_t keySize, void* value, size_t valueSize) const;
  // The counters summed over every CPU.
  int Counters(std::vector<unsigned long long>* out) const;

  bool IsOpen() const { return skel_ != nullptr; }
  void Close();

 private:
  int LoadWithRetries(const std::set<std::string>& disable, std::string* stage,
                      std::string* detail);
  void Attach(int cgroupFd);

  owners_bpf* skel_ = nullptr;
  std::vector<bpf_link*> links_;
  std::map<std::string, std::string> programs_;
  std::vector<unsigned> progIds_;
};

// The network namespace cookie of the caller's namespace (nsPath empty) or of
// the namespace at nsPath (SO_NETNS_COOKIE, Linux 5.14). 0 with *err set on failure.
unsigned long long NetnsCookie(const std::string& nsPath, int* err, const char** stage);
