#include "hw_model/process.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace itn::hw {

Process::Process() : mm_(make_ref<AddressSpace>()) {}

Process::Process(Ref<AddressSpace> mm, FileTable files) : mm_(std::move(mm)) {
  MutexLock l(mu_);
  next_fd_ = files.empty() ? 3 : files.rbegin()->first + 1;
  files_ = std::move(files);
}

Process::~Process() { exit(); }

absl::StatusOr<Ref<Process>> Process::fork() {
  FileTable files;
  {
    MutexLock l(mu_);
    if (exited_) return absl::FailedPreconditionError("fork: the process has exited");
    files = files_;
  }
  absl::StatusOr<Ref<AddressSpace>> child_mm = mm_->fork();
  if (!child_mm.ok()) return child_mm.status();
  return make_ref<Process>(*std::move(child_mm), std::move(files));
}

absl::StatusOr<int> Process::install(Ref<OpenFile> file) {
  MutexLock l(mu_);
  if (exited_) return absl::FailedPreconditionError("install: the process has exited");
  const int fd = next_fd_++;
  files_.emplace(fd, std::move(file));
  return fd;
}

absl::Status Process::close(int fd) {
  Ref<OpenFile> closing;  // released after the lock: the driver's release may block
  {
    MutexLock l(mu_);
    auto it = files_.find(fd);
    if (it == files_.end()) return absl::NotFoundError(absl::StrCat("close: no descriptor ", fd));
    closing = std::move(it->second);
    files_.erase(it);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Process::pass_file(int fd, Process& to) {
  absl::StatusOr<Ref<OpenFile>> passed = file(fd);
  if (!passed.ok()) {
    return absl::NotFoundError(absl::StrCat("pass_file: ", passed.status().message()));
  }
  return to.install(*std::move(passed));
}

absl::StatusOr<Ref<OpenFile>> Process::file(int fd) const {
  MutexLock l(mu_);
  auto it = files_.find(fd);
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat("no descriptor ", fd));
  return it->second;
}

void Process::exit() {
  {
    MutexLock l(mu_);
    if (exited_) return;
    exited_ = true;  // no new descriptors from here on
  }
  mm_->mmput();  // exit_mm: the address space may die here, releasing every notifier
  // exit_files: only now do the descriptors go (a release above still finds them), and
  // the files close after the lock, drivers unbinding.
  FileTable files;
  {
    MutexLock l(mu_);
    files = std::move(files_);
    files_.clear();
  }
  files.clear();
}

bool Process::exited() const {
  MutexLock l(mu_);
  return exited_;
}

}  // namespace itn::hw
