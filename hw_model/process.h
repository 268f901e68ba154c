// hw_model/process.h
//
// itn::hw::Process and itn::hw::OpenFile: a task with an address space and a table of open
// device files, and the exit ordering that makes device lifetimes hard (R6).
//
// exit() runs the kernel's do_exit() order: exit_mm first (mmput: if this was the last
// user, the address space is torn down and every notifier hears release()), exit_files
// after (each file's last close runs its driver's release, typically unbind). So a device
// always sees the address space die BEFORE its file closes, and must cope (I20).
//
// An OpenFile is shared like a struct file: fork() duplicates the table and pass_file()
// installs the same file in another process; the driver's release runs once, when the
// last descriptor naming it is closed, on the thread that closes it.
//
// Thread safety: every method may be called from any thread.
// Lifetime: both are created with make_ref. A Process holds a user of its address space
// until exit() and a grab (a Ref) until destroyed; destroying a live Process exits it.
// Memory ordering: everything done through a file happens-before its release runs.
#ifndef ITN_HW_MODEL_PROCESS_H_
#define ITN_HW_MODEL_PROCESS_H_

#include <functional>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hw_model/address_space.h"
#include "sync/mutex.h"
#include "sync/ref.h"

namespace itn::hw {

class OpenFile : public RefCounted {
 public:
  // `on_last_close` is the driver's release (e.g. unbind), run when the last descriptor
  // naming this file is closed. `private_data` is the driver's object behind the file
  // (the kernel's file->private_data), kept alive until after the release.
  OpenFile(std::string name, std::function<void()> on_last_close,
           Ref<RefCounted> private_data = nullptr)
      : name_(std::move(name)),
        on_last_close_(std::move(on_last_close)),
        private_data_(std::move(private_data)) {}
  ~OpenFile() override {
    if (on_last_close_) on_last_close_();
  }
  const std::string& name() const { return name_; }
  RefCounted* private_data() const { return private_data_.get(); }

 private:
  const std::string name_;
  const std::function<void()> on_last_close_;
  const Ref<RefCounted> private_data_;
};

class Process : public RefCounted {
 public:
  // A process with a fresh, empty address space.
  Process();
  ~Process() override;

  // Process::mm()
  //
  // The address space. Valid for the Process's lifetime (it holds a grab), usable until
  // exit() (then its operations fail with kFailedPrecondition).
  AddressSpace& mm() const { return *mm_; }
  const Ref<AddressSpace>& mm_ref() const { return mm_; }

  // Process::fork()
  //
  // A child with a copy-on-write copy of the address space and the same open files.
  // Errors: kFailedPrecondition after exit().
  [[nodiscard]] absl::StatusOr<Ref<Process>> fork() ABSL_LOCKS_EXCLUDED(mu_);

  // Process::install() / close() / pass_file()
  //
  // install() gives `file` a descriptor here. close() drops one (the last descriptor of a
  // file anywhere runs its release). pass_file() installs the file behind `fd` in `to`
  // (SCM_RIGHTS) and returns its descriptor there.
  // Errors: kNotFound for an unknown descriptor (exit() closes them all);
  // kFailedPrecondition for install() after exit().
  [[nodiscard]] absl::StatusOr<int> install(Ref<OpenFile> file) ABSL_LOCKS_EXCLUDED(mu_);
  [[nodiscard]] absl::Status close(int fd) ABSL_LOCKS_EXCLUDED(mu_);
  [[nodiscard]] absl::StatusOr<int> pass_file(int fd, Process& to) ABSL_LOCKS_EXCLUDED(mu_);

  // Process::file()
  //
  // The file behind descriptor `fd` (the Ref keeps it open until dropped).
  // Errors: kNotFound for an unknown descriptor (none after exit()).
  [[nodiscard]] absl::StatusOr<Ref<OpenFile>> file(int fd) const ABSL_LOCKS_EXCLUDED(mu_);

  // Process::exit()
  //
  // exit_mm (drops this process's user of the address space), then exit_files (closes
  // every descriptor; until then they stay, so a release run by exit_mm still finds them,
  // though none can be added). A second call does nothing.
  // Context: may block (teardown and drivers' releases run on this thread).
  void exit() ABSL_LOCKS_EXCLUDED(mu_);
  bool exited() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  template <class U, class... Args>
  friend Ref<U> itn::make_ref(Args&&... args);  // fork() builds a child with the constructor below
  using FileTable = std::map<int, Ref<OpenFile>>;
  Process(Ref<AddressSpace> mm, FileTable files);

  const Ref<AddressSpace> mm_;
  mutable Mutex mu_;
  FileTable files_ ABSL_GUARDED_BY(mu_);
  int next_fd_ ABSL_GUARDED_BY(mu_) = 3;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace itn::hw

#endif  // ITN_HW_MODEL_PROCESS_H_
