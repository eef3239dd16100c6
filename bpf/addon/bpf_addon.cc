// The node-addon-api addon over libbpf: open an object file with its tunables, load it,
// attach its programs (cgroup, tracepoint, raw tracepoint), read maps in batches into Buffers (decoded in
// TypeScript, bpf/counters.ts), delete entries, read a program's run-time statistics, and
// destroy links and the object. Every libbpf failure becomes a JS Error carrying `errno`,
// `code` (EPERM, ...), `operation`, and `libbpfLog` (what libbpf printed, e.g. the
// verifier's log).

#include <napi.h>
#include <uv.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

// What libbpf printed since the last operation began (warnings and info; no debug).
std::string g_log;

int CaptureLibbpf(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[2048];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  if (n > 0) {
    g_log.append(buf, std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1));
    if (g_log.size() > 64 * 1024) g_log.erase(0, g_log.size() - 32 * 1024);
  }
  return 0;
}

void BeginOperation() { g_log.clear(); }

Napi::Error LibbpfError(Napi::Env env, const std::string& operation, int err) {
  if (err < 0) err = -err;
  if (err == 0) err = EINVAL;
  const char* code = uv_err_name(-err);
  std::string message = operation + ": " + strerror(err) + " (errno " + std::to_string(err) + ", " + code + ")";
  std::string log = g_log;
  // The verifier's last lines say why a program was refused: keep them in the message.
  if (!log.empty()) {
    std::string tail = log.size() > 1500 ? log.substr(log.size() - 1500) : log;
    message += "\nlibbpf: " + tail;
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, code));
  e.Set("operation", Napi::String::New(env, operation));
  e.Set("libbpfLog", Napi::String::New(env, log));
  return e;
}

Napi::Error UsageError(Napi::Env env, const std::string& message) {
  Napi::Error e = Napi::TypeError::New(env, message);
  e.Set("code", Napi::String::New(env, "ERR_BPF_USAGE"));
  return e;
}

// One attachment, shared by its JS Link and the object it came from: detached by
// Link.destroy(), by the object's destroy(), or when both are gone (garbage collected, or
// the process exits: the kernel detaches a link whose last fd closes).
struct LinkHandle {
  bpf_link* link = nullptr;
  std::string description;
  int Release() {
    if (!link) return 0;
    int err = bpf_link__destroy(link);
    link = nullptr;
    return err;
  }
  ~LinkHandle() { Release(); }
};

class Link : public Napi::ObjectWrap<Link> {
 public:
  static Napi::FunctionReference* constructor;

  static Napi::Function Init(Napi::Env env) {
    Napi::Function f = DefineClass(env, "Link",
                                   {
                                       InstanceMethod("destroy", &Link::Destroy),
                                       InstanceAccessor("attached", &Link::Attached, nullptr),
                                       InstanceAccessor("description", &Link::Description, nullptr),
                                   });
    constructor = new Napi::FunctionReference(Napi::Persistent(f));
    return f;
  }

  explicit Link(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Link>(info) {}

  void Set(std::shared_ptr<LinkHandle> handle) { handle_ = std::move(handle); }

 private:
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    if (!handle_) return info.Env().Undefined();
    BeginOperation();
    int err = handle_->Release();
    if (err) throw LibbpfError(info.Env(), "detaching " + handle_->description, err);
    return info.Env().Undefined();
  }
  Napi::Value Attached(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), handle_ && handle_->link != nullptr); }
  Napi::Value Description(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), handle_ ? handle_->description : ""); }

  std::shared_ptr<LinkHandle> handle_;
};

Napi::FunctionReference* Link::constructor = nullptr;

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {
                           InstanceMethod("load", &BpfObject::Load),
                           InstanceMethod("attachCgroup", &BpfObject::AttachCgroup),
                           InstanceMethod("attachTracepoint", &BpfObject::AttachTracepoint),
                           InstanceMethod("attachRawTracepoint", &BpfObject::AttachRawTracepoint),
                           InstanceMethod("readMap", &BpfObject::ReadMap),
                           InstanceMethod("deleteKeys", &BpfObject::DeleteKeys),
                           InstanceMethod("programStats", &BpfObject::ProgramStats),
                           InstanceMethod("destroy", &BpfObject::Destroy),
                           InstanceAccessor("programs", &BpfObject::Programs, nullptr),
                           InstanceAccessor("maps", &BpfObject::Maps, nullptr),
                       });
  }

  // new BpfObject(path, { tunables?: {name: number|bigint|boolean}, maxEntries?: {map: number} })
  explicit BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw UsageError(env, "BpfObject(path, options): path must be a string");
    path_ = info[0].As<Napi::String>().Utf8Value();
    Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    BeginOperation();
    obj_ = bpf_object__open_file(path_.c_str(), nullptr);
    if (!obj_) {
      int err = errno;
      throw LibbpfError(env, "opening BPF object " + path_, err);
    }
    try {
      if (opts.Has("maxEntries") && opts.Get("maxEntries").IsObject()) SetMaxEntries(env, opts.Get("maxEntries").As<Napi::Object>());
      if (opts.Has("tunables") && opts.Get("tunables").IsObject()) SetTunables(env, opts.Get("tunables").As<Napi::Object>());
    } catch (...) {
      bpf_object__close(obj_);
      obj_ = nullptr;
      throw;
    }
  }

  ~BpfObject() override { Close(); }

 private:
  void Close() {
    for (auto& h : links_) h->Release();
    links_.clear();
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
  }

  bpf_object* Need(Napi::Env env) {
    if (!obj_) throw UsageError(env, "BPF object " + path_ + " was destroyed");
    return obj_;
  }

  void SetMaxEntries(Napi::Env env, Napi::Object entries) {
    Napi::Array names = entries.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); i++) {
      std::string name = names.Get(i).As<Napi::String>().Utf8Value();
      Napi::Value v = entries.Get(name);
      if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 1) throw UsageError(env, "maxEntries." + name + " must be a positive number");
      bpf_map* map = bpf_object__find_map_by_name(obj_, name.c_str());
      if (!map) throw UsageError(env, "maxEntries: " + path_ + " has no map named " + name);
      int err = bpf_map__set_max_entries(map, v.As<Napi::Number>().Uint32Value());
      if (err) throw LibbpfError(env, "setting max_entries of map " + name, err);
    }
  }

  // Tunables are `const volatile` globals in .rodata, written before the object is loaded.
  void SetTunables(Napi::Env env, Napi::Object tunables) {
    Napi::Array names = tunables.GetPropertyNames();
    if (names.Length() == 0) return;
    bpf_map* rodata = bpf_object__find_map_by_name(obj_, ".rodata");
    btf* b = bpf_object__btf(obj_);
    if (!rodata || !b) throw UsageError(env, path_ + " has no tunables (.rodata with BTF)");
    size_t size = 0;
    const void* initial = bpf_map__initial_value(rodata, &size);
    int sec = btf__find_by_name_kind(b, ".rodata", BTF_KIND_DATASEC);
    if (!initial || sec < 0) throw UsageError(env, path_ + " has no tunables (.rodata with BTF)");
    std::vector<char> buffer(static_cast<const char*>(initial), static_cast<const char*>(initial) + size);
    char* data = buffer.data();
    const btf_type* t = btf__type_by_id(b, sec);
    for (uint32_t i = 0; i < names.Length(); i++) {
      std::string name = names.Get(i).As<Napi::String>().Utf8Value();
      Napi::Value v = tunables.Get(name);
      uint64_t value;
      if (v.IsBoolean()) value = v.As<Napi::Boolean>().Value() ? 1 : 0;
      else if (v.IsBigInt()) {
        bool lossless = true;
        value = v.As<Napi::BigInt>().Uint64Value(&lossless);
      } else if (v.IsNumber()) {
        double d = v.As<Napi::Number>().DoubleValue();
        if (d != static_cast<double>(static_cast<int64_t>(d))) throw UsageError(env, "tunable " + name + " must be an integer");
        value = static_cast<uint64_t>(static_cast<int64_t>(d));
      } else {
        throw UsageError(env, "tunable " + name + " must be a number, bigint or boolean");
      }
      bool found = false;
      std::string known;
      const btf_var_secinfo* vsi = btf_var_secinfos(t);
      for (int j = 0; j < btf_vlen(t); j++, vsi++) {
        const btf_type* var = btf__type_by_id(b, vsi->type);
        std::string vname = btf__name_by_offset(b, var->name_off);
        known += (known.empty() ? "" : ", ") + vname;
        if (vname != name) continue;
        if (vsi->offset + vsi->size > size) throw UsageError(env, "tunable " + name + " lies outside .rodata");
        char* p = data + vsi->offset;
        switch (vsi->size) {
          case 1: { uint8_t x = static_cast<uint8_t>(value); memcpy(p, &x, 1); break; }
          case 2: { uint16_t x = static_cast<uint16_t>(value); memcpy(p, &x, 2); break; }
          case 4: { uint32_t x = static_cast<uint32_t>(value); memcpy(p, &x, 4); break; }
          case 8: memcpy(p, &value, 8); break;
          default: throw UsageError(env, "tunable " + name + " has size " + std::to_string(vsi->size) + ", not an integer");
        }
        found = true;
      }
      if (!found) throw UsageError(env, "unknown tunable " + name + " in " + path_ + "; it has: " + known);
    }
    int err = bpf_map__set_initial_value(rodata, buffer.data(), buffer.size());
    if (err) throw LibbpfError(env, "setting the tunables of " + path_, err);
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    BeginOperation();
    int err = bpf_object__load(Need(env));
    if (err) throw LibbpfError(env, "loading BPF object " + path_, err);
    loaded_ = true;
    return env.Undefined();
  }

  bpf_program* Program(Napi::Env env, const Napi::Value& v) {
    if (!v.IsString()) throw UsageError(env, "program name must be a string");
    std::string name = v.As<Napi::String>().Utf8Value();
    bpf_program* p = bpf_object__find_program_by_name(Need(env), name.c_str());
    if (!p) throw UsageError(env, path_ + " has no program named " + name);
    if (!loaded_) throw UsageError(env, "program " + name + ": load() the object first");
    return p;
  }

  bpf_map* Map(Napi::Env env, const Napi::Value& v) {
    if (!v.IsString()) throw UsageError(env, "map name must be a string");
    std::string name = v.As<Napi::String>().Utf8Value();
    bpf_map* m = bpf_object__find_map_by_name(Need(env), name.c_str());
    if (!m) throw UsageError(env, path_ + " has no map named " + name);
    if (!loaded_) throw UsageError(env, "map " + name + ": load() the object first");
    return m;
  }

  Napi::Value MakeLink(Napi::Env env, bpf_link* link, const std::string& description) {
    auto handle = std::make_shared<LinkHandle>();
    handle->link = link;
    handle->description = description;
    links_.push_back(handle);
    Napi::Object o = Link::constructor->New({});
    Link::Unwrap(o)->Set(handle);
    return o;
  }

  // attachCgroup(program, cgroupPath): a bpf_link; detached when destroyed (or the process exits).
  Napi::Value AttachCgroup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_program* p = Program(env, info[0]);
    if (info.Length() < 2 || !info[1].IsString()) throw UsageError(env, "attachCgroup(program, cgroupPath): cgroupPath must be a string");
    std::string path = info[1].As<Napi::String>().Utf8Value();
    std::string what = std::string("program ") + bpf_program__name(p) + " to cgroup " + path;
    BeginOperation();
    int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw LibbpfError(env, "opening cgroup " + path, errno);
    bpf_link* link = bpf_program__attach_cgroup(p, fd);
    int err = errno;
    close(fd);
    if (!link) throw LibbpfError(env, "attaching " + what, err);
    return MakeLink(env, link, what);
  }

  // attachTracepoint(program, category, name)
  Napi::Value AttachTracepoint(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_program* p = Program(env, info[0]);
    if (info.Length() < 3 || !info[1].IsString() || !info[2].IsString()) throw UsageError(env, "attachTracepoint(program, category, name)");
    std::string category = info[1].As<Napi::String>().Utf8Value();
    std::string name = info[2].As<Napi::String>().Utf8Value();
    std::string what = std::string("program ") + bpf_program__name(p) + " to tracepoint " + category + ":" + name;
    BeginOperation();
    bpf_link* link = bpf_program__attach_tracepoint(p, category.c_str(), name.c_str());
    if (!link) throw LibbpfError(env, "attaching " + what, errno);
    return MakeLink(env, link, what);
  }

  // attachRawTracepoint(program, name): BPF_RAW_TRACEPOINT_OPEN by the tracepoint's name,
  // which needs no tracefs (attachTracepoint reads the tracepoint's id there).
  Napi::Value AttachRawTracepoint(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_program* p = Program(env, info[0]);
    if (info.Length() < 2 || !info[1].IsString()) throw UsageError(env, "attachRawTracepoint(program, name)");
    std::string name = info[1].As<Napi::String>().Utf8Value();
    std::string what = std::string("program ") + bpf_program__name(p) + " to raw tracepoint " + name;
    BeginOperation();
    bpf_link* link = bpf_program__attach_raw_tracepoint(p, name.c_str());
    if (!link) throw LibbpfError(env, "attaching " + what, errno);
    return MakeLink(env, link, what);
  }

  // readMap(name) → { keySize, valueSize, count, cpus, keys: Buffer, values: Buffer }. For
  // per-CPU maps each value is `cpus` slots of valueSize rounded up to 8 bytes.
  Napi::Value ReadMap(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* m = Map(env, info[0]);
    const uint32_t keySize = bpf_map__key_size(m);
    const uint32_t valueSize = bpf_map__value_size(m);
    const bpf_map_type type = bpf_map__type(m);
    const bool perCpu = type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
    const int cpus = perCpu ? libbpf_num_possible_cpus() : 1;
    if (cpus <= 0) throw LibbpfError(env, "counting possible CPUs", cpus);
    const size_t slot = perCpu ? ((valueSize + 7) / 8) * 8 : valueSize;
    const size_t stride = slot * static_cast<size_t>(cpus);
    const uint32_t capacity = bpf_map__max_entries(m);
    const int fd = bpf_map__fd(m);
    std::vector<char> keys(static_cast<size_t>(capacity) * keySize);
    std::vector<char> values(static_cast<size_t>(capacity) * stride);
    uint32_t total = 0;
    BeginOperation();
    const bool isArray = type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
    if (isArray) {
      for (uint32_t k = 0; k < capacity; k++) {
        memcpy(keys.data() + static_cast<size_t>(k) * keySize, &k, std::min<size_t>(keySize, sizeof(k)));
        if (bpf_map_lookup_elem(fd, &k, values.data() + static_cast<size_t>(k) * stride)) throw LibbpfError(env, std::string("reading map ") + bpf_map__name(m), errno);
      }
      total = capacity;
    } else {
      // Batches until the map is exhausted (ENOENT ends it, with the last entries returned).
      std::vector<char> inBatch(keySize > 8 ? keySize : 8), outBatch(keySize > 8 ? keySize : 8);
      bool first = true;
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      while (total < capacity) {
        uint32_t n = capacity - total;
        int err = bpf_map_lookup_batch(fd, first ? nullptr : inBatch.data(), outBatch.data(), keys.data() + static_cast<size_t>(total) * keySize,
                                       values.data() + static_cast<size_t>(total) * stride, &n, &opts);
        int e = errno;
        total += n;
        if (err) {
          if (e == ENOENT) break;
          throw LibbpfError(env, std::string("reading map ") + bpf_map__name(m), e);
        }
        first = false;
        memcpy(inBatch.data(), outBatch.data(), inBatch.size());
      }
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("keySize", Napi::Number::New(env, keySize));
    out.Set("valueSize", Napi::Number::New(env, valueSize));
    out.Set("slotSize", Napi::Number::New(env, static_cast<double>(slot)));
    out.Set("cpus", Napi::Number::New(env, cpus));
    out.Set("count", Napi::Number::New(env, total));
    out.Set("keys", Napi::Buffer<char>::Copy(env, keys.data(), static_cast<size_t>(total) * keySize));
    out.Set("values", Napi::Buffer<char>::Copy(env, values.data(), static_cast<size_t>(total) * stride));
    return out;
  }

  // deleteKeys(name, keys: Buffer) → how many were deleted (keys already gone are skipped).
  Napi::Value DeleteKeys(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* m = Map(env, info[0]);
    if (info.Length() < 2 || !info[1].IsBuffer()) throw UsageError(env, "deleteKeys(map, keys): keys must be a Buffer");
    Napi::Buffer<char> keys = info[1].As<Napi::Buffer<char>>();
    const uint32_t keySize = bpf_map__key_size(m);
    if (keys.Length() % keySize != 0) throw UsageError(env, "deleteKeys: the Buffer's length is not a multiple of the key size " + std::to_string(keySize));
    BeginOperation();
    uint32_t deleted = 0;
    for (size_t off = 0; off < keys.Length(); off += keySize) {
      if (bpf_map_delete_elem(bpf_map__fd(m), keys.Data() + off) == 0) deleted++;
      else if (errno != ENOENT) throw LibbpfError(env, std::string("deleting from map ") + bpf_map__name(m), errno);
    }
    return Napi::Number::New(env, deleted);
  }

  // programStats(name) → { id, runTimeNs, runCount } (bigints; counted while kernel.bpf_stats_enabled=1).
  Napi::Value ProgramStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_program* p = Program(env, info[0]);
    bpf_prog_info pi;
    memset(&pi, 0, sizeof(pi));
    uint32_t len = sizeof(pi);
    BeginOperation();
    int err = bpf_obj_get_info_by_fd(bpf_program__fd(p), &pi, &len);
    if (err) throw LibbpfError(env, std::string("reading the info of program ") + bpf_program__name(p), errno);
    Napi::Object out = Napi::Object::New(env);
    out.Set("id", Napi::Number::New(env, pi.id));
    out.Set("runTimeNs", Napi::BigInt::New(env, static_cast<uint64_t>(pi.run_time_ns)));
    out.Set("runCount", Napi::BigInt::New(env, static_cast<uint64_t>(pi.run_cnt)));
    out.Set("xlatedBytes", Napi::Number::New(env, pi.xlated_prog_len));
    return out;
  }

  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    bpf_program* p;
    uint32_t i = 0;
    bpf_object__for_each_program(p, Need(env)) out.Set(i++, Napi::String::New(env, bpf_program__name(p)));
    return out;
  }

  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    bpf_map* m;
    uint32_t i = 0;
    bpf_object__for_each_map(m, Need(env)) out.Set(i++, Napi::String::New(env, bpf_map__name(m)));
    return out;
  }

  // Detaches every link made from this object, then unloads it. Idempotent.
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  std::string path_;
  bpf_object* obj_ = nullptr;
  bool loaded_ = false;
  std::vector<std::shared_ptr<LinkHandle>> links_;
};

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(CaptureLibbpf);
  exports.Set("Link", Link::Init(env));
  exports.Set("BpfObject", BpfObject::Init(env));
  exports.Set("possibleCpus", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
  }));
  return exports;
}

}  // namespace

NODE_API_MODULE(bamel_bpf, InitAll)
