#include "bpf_loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <mutex>
#include <regex>

#include "netns.h"
#include "owners.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace {

constexpr long kTracefsMagic = 0x74726163;

// libbpf reports through one process-wide print callback: keep what it says
// while this loader runs (warnings and info only; debug is the verifier log).
std::mutex logMutex;
std::string* logSink = nullptr;

int CaptureLog(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || logSink == nullptr) return 0;
  char line[1024];
  int n = vsnprintf(line, sizeof(line), format, args);
  if (n > 0 && logSink->size() < 64 * 1024) logSink->append(line);
  return n;
}

struct LogCapture {
  std::lock_guard<std::mutex> hold{logMutex};
  std::string text;
  libbpf_print_fn_t previous;
  LogCapture() {
    logSink = &text;
    previous = libbpf_set_print(CaptureLog);
  }
  ~LogCapture() {
    libbpf_set_print(previous);
    logSink = nullptr;
  }
};

// The program libbpf names in its last "prog 'NAME': failed ..." line.
std::string FailedProgram(const std::string& log) {
  static const std::regex failed("prog '([A-Za-z0-9_]+)': (failed|error|relo)");
  std::string name;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), failed); it != std::sregex_iterator();
       ++it) {
    name = (*it)[1].str();
  }
  return name;
}

std::string LastLine(const std::string& log) {
  std::string text = log;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  size_t nl = text.rfind('\n');
  std::string line = nl == std::string::npos ? text : text.substr(nl + 1);
  if (line.rfind("libbpf: ", 0) == 0) line = line.substr(8);
  return line;
}

bool IsTracefs(const char* path) {
  struct statfs fs;
  return statfs(path, &fs) == 0 && static_cast<long>(fs.f_type) == kTracefsMagic;
}

// Classic tracepoints are found by their id under tracefs. Mount it at its
// standard place when the system has not (only then: never over anything).
void EnsureTracefs() {
  if (IsTracefs("/sys/kernel/tracing") || IsTracefs("/sys/kernel/debug/tracing")) return;
  struct stat st;
  if (stat("/sys/kernel/tracing", &st) != 0 || !S_ISDIR(st.st_mode)) return;
  mount("tracefs", "/sys/kernel/tracing", "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
}

bool IsCgroupProgram(const bpf_program* prog) {
  switch (bpf_program__type(prog)) {
    case BPF_PROG_TYPE_CGROUP_SOCK_ADDR:
    case BPF_PROG_TYPE_SOCK_OPS:
    case BPF_PROG_TYPE_CGROUP_SOCK:
      return true;
    default:
      return false;
  }
}

std::string ErrnoWords(int err) { return std::string(strerror(err)) + " (errno " + std::to_string(err) + ")"; }

}  // namespace

BpfLoader::~BpfLoader() { Close(); }

int BpfLoader::Open(const std::string& cgroupRoot, const std::set<std::string>& disable,
                    std::string* stage, std::string* detail) {
  if (skel_) return EBUSY;
  int cg = open(cgroupRoot.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) {
    *stage = "open cgroup2 root " + cgroupRoot;
    return errno;
  }
  int err = LoadWithRetries(disable, stage, detail);
  if (err == 0) {
    EnsureTracefs();
    LogCapture log;
    Attach(cg);
    if (links_.empty()) {
      *stage = "attach";
      *detail = LastLine(log.text);
      err = EPERM;
      for (auto& [name, state] : programs_) {
        (void)name;
        if (state != "attached") *detail = state;
      }
      Close();
    }
  }
  close(cg);
  return err;
}

int BpfLoader::LoadWithRetries(const std::set<std::string>& disable, std::string* stage,
                               std::string* detail) {
  std::set<std::string> off = disable;
  std::map<std::string, std::string> refused;
  for (;;) {
    LogCapture log;
    owners_bpf* skel = owners_bpf__open();
    if (!skel) {
      *stage = "bpf_object__open";
      *detail = LastLine(log.text);
      return errno ? errno : EINVAL;
    }
    bpf_program* prog;
    size_t enabled = 0;
    bpf_object__for_each_program(prog, skel->obj) {
      if (off.count(bpf_program__name(prog))) {
        bpf_program__set_autoload(prog, false);
      } else {
        enabled++;
      }
    }
    int err = enabled == 0 ? -ENOENT : owners_bpf__load(skel);
    if (err == 0) {
      skel_ = skel;
      bpf_object__for_each_program(prog, skel->obj) {
        std::string name = bpf_program__name(prog);
        if (refused.count(name)) {
          programs_[name] = refused[name];
        } else if (off.count(name)) {
          programs_[name] = "disabled by the caller";
        }
      }
      return 0;
    }
    err = -err;
    std::string failed = FailedProgram(log.text);
    owners_bpf__destroy(skel);
    if (enabled == 0 || failed.empty() || off.count(failed)) {
      *stage = enabled == 0 ? "load (every program refused)" : "bpf_object__load";
      *detail = LastLine(log.text);
      if (detail->empty() && !refused.empty()) *detail = refused.begin()->second;
      return err;
    }
    off.insert(failed);
    refused[failed] = "refused by the kernel: " + ErrnoWords(err);
  }
}

void BpfLoader::Attach(int cgroupFd) {
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    std::string name = bpf_program__name(prog);
    if (!bpf_program__autoload(prog)) continue;  // status set at load
    bool cgroup = IsCgroupProgram(prog);
    bpf_link* link = cgroup ? bpf_program__attach_cgroup(prog, cgroupFd) : bpf_program__attach(prog);
    if (!link) {
      int err = errno;
      programs_[name] = std::string("attach refused: ") + ErrnoWords(err) +
                        (cgroup ? "" : " (tracepoints need tracefs at /sys/kernel/tracing)");
      continue;
    }
    links_.push_back(link);
    programs_[name] = "attached";
    struct bpf_prog_info info;
    memset(&info, 0, sizeof(info));
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) progIds_.push_back(info.id);
  }
}

int BpfLoader::Lookup(MapId map, const void* key, size_t keySize, void* value,
                      size_t valueSize) const {
  if (!skel_) return EBADF;
  const bpf_map* m = map == kFlows ? skel_->maps.flows : skel_->maps.execs;
  if (keySize != bpf_map__key_size(m) || valueSize != bpf_map__value_size(m)) return EINVAL;
  return bpf_map_lookup_elem(bpf_map__fd(m), key, value) == 0 ? 0 : errno;
}

int BpfLoader::Counters(std::vector<unsigned long long>* out) const {
  if (!skel_) return EBADF;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return -cpus;
  const bpf_map* m = skel_->maps.counters;
  unsigned entries = bpf_map__max_entries(m);
  std::vector<unsigned long long> perCpu(cpus);
  out->assign(entries, 0);
  for (unsigned i = 0; i < entries; i++) {
    if (bpf_map_lookup_elem(bpf_map__fd(m), &i, perCpu.data()) != 0) return errno;
    for (int c = 0; c < cpus; c++) (*out)[i] += perCpu[c];
  }
  return 0;
}

void BpfLoader::Close() {
  for (bpf_link* link : links_) bpf_link__destroy(link);
  links_.clear();
  progIds_.clear();
  if (skel_) owners_bpf__destroy(skel_);
  skel_ = nullptr;
}

unsigned long long NetnsCookie(const std::string& nsPath, int* err, const char** stage) {
  int fd;
  if (nsPath.empty()) {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *err = errno;
      *stage = "socket";
      return 0;
    }
  } else {
    fd = SocketInNetns(nsPath, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0, err, stage);
    if (fd < 0) return 0;
  }
  unsigned long long cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) < 0) {
    *err = errno;
    *stage = "getsockopt(SO_NETNS_COOKIE)";
    cookie = 0;
  }
  close(fd);
  return cookie;
}
