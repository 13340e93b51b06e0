#include "connectors/worker/worker_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "common/frame_channel.hpp"
#include "observe/log.hpp"

namespace mcphost::connectors {

namespace {

constexpr std::size_t kMaxLogLine = 8192;
constexpr std::size_t kMaxLineMessage = std::size_t{8} << 20;

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Owns the descriptors created for one spawn until they are handed over.
struct Fds {
  std::vector<int> fds;
  ~Fds() {
    for (int& fd : fds) closeFd(fd);
  }
  int add(int fd) {
    fds.push_back(fd);
    return fd;
  }
  int release(int fd) {
    for (int& f : fds) {
      if (f == fd) f = -1;
    }
    return fd;
  }
};

}  // namespace

std::string describeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    std::string text =
        "killed by signal " + std::to_string(sig) + " (" + (name != nullptr ? name : "?") + ")";
    if (sig == SIGSYS) text += ": the sandbox's seccomp filter stopped a forbidden system call";
    if (sig == SIGXCPU) text += ": the CPU-time limit was reached";
    return text;
  }
  return "ended (status " + std::to_string(status) + ")";
}

Expected<std::unique_ptr<WorkerProcess>, std::string> WorkerProcess::spawn(const WorkerLaunch& launch,
                                                                           Callbacks callbacks) {
  std::unique_ptr<WorkerProcess> self(new WorkerProcess());  // private constructor
  self->launch_ = launch;
  self->callbacks_ = std::move(callbacks);
  Fds fds;
  int sv[2] = {-1, -1};
  int in[2] = {-1, -1};
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  if (launch.lineProtocol) {
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
      return unexpected(std::string("pipe: ") + std::strerror(errno));
    fds.add(in[0]), fds.add(in[1]), fds.add(out[0]), fds.add(out[1]);
  } else {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return unexpected(std::string("socketpair: ") + std::strerror(errno));
    fds.add(sv[0]), fds.add(sv[1]);
    if (::pipe2(out, O_CLOEXEC) != 0) return unexpected(std::string("pipe: ") + std::strerror(errno));
    fds.add(out[0]), fds.add(out[1]);
  }
  if (::pipe2(err, O_CLOEXEC) != 0) return unexpected(std::string("pipe: ") + std::strerror(errno));
  fds.add(err[0]), fds.add(err[1]);
  if (::pipe2(self->wake_, O_CLOEXEC | O_NONBLOCK) != 0)
    return unexpected(std::string("pipe: ") + std::strerror(errno));

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (launch.lineProtocol) {
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, sv[1], 3);
  }
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGHUP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: killing the group takes its children too
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> argvStore;
  argvStore.reserve(launch.args.size() + 1);
  argvStore.push_back(launch.program);
  for (const auto& a : launch.args) argvStore.push_back(a);
  std::vector<char*> argv;
  argv.reserve(argvStore.size() + 1);
  for (auto& a : argvStore) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> envStore = launch.env;
  std::vector<char*> envp;
  envp.reserve(envStore.size() + 1);
  for (auto& e : envStore) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  const bool search = launch.program.find('/') == std::string::npos;
  const int rc = search
                     ? ::posix_spawnp(&pid, launch.program.c_str(), &actions, &attr, argv.data(), envp.data())
                     : ::posix_spawn(&pid, launch.program.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return unexpected("cannot start " + launch.program + ": " + std::strerror(rc));
  self->pid_ = pid;
  if (launch.lineProtocol) {
    self->channel_ = fds.release(in[1]);
    self->channelOut_ = fds.release(out[0]);
  } else {
    self->channel_ = fds.release(sv[0]);
    self->stdout_ = fds.release(out[0]);
  }
  self->stderr_ = fds.release(err[0]);
  WorkerProcess* raw = self.get();
  self->io_ = std::thread([raw] { raw->ioLoop(); });
  return self;
}

WorkerProcess::~WorkerProcess() {
  kill("the host released the worker");
  if (io_.joinable()) io_.join();
  closeFd(channel_);
  closeFd(channelOut_);
  closeFd(stdout_);
  closeFd(stderr_);
  closeFd(wake_[0]);
  closeFd(wake_[1]);
}

bool WorkerProcess::send(const Json& message) {
  if (exited_) return false;
  const std::string text = message.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::lock_guard lock(writeMutex_);
  if (channel_ < 0) return false;
  if (launch_.lineProtocol) return writeAll(channel_, text + "\n");
  std::string frame;
  appendFrame(frame, text);
  return writeAll(channel_, frame);
}

void WorkerProcess::closeInput() {
  std::lock_guard lock(writeMutex_);
  if (launch_.lineProtocol && channel_ >= 0) {
    ::close(channel_);
    channel_ = -1;
  }
}

void WorkerProcess::kill(const std::string& reason) {
  {
    std::lock_guard lock(killMutex_);
    if (exited_ || !killReason_.empty()) return;
    killReason_ = reason;
  }
  if (pid_ > 0) ::kill(-pid_, SIGKILL);
  if (wake_[1] >= 0) {
    const char c = 'k';
    [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);
  }
}

void WorkerProcess::logLine(const char* stream, std::string_view line) {
  if (line.size() > kMaxLogLine) line = line.substr(0, kMaxLogLine);
  const bool sandboxNote = line.starts_with("mcphost-sandbox:");
  const Json fields = {{"connector", launch_.connectorId}, {"stream", stream}, {"pid", pid_}};
  if (sandboxNote) {
    log::warn("sandbox", std::string(line), fields);
  } else {
    log::info("connector-output", std::string(line), fields);
  }
}

void WorkerProcess::ioLoop() {
  FrameDecoder decoder;
  std::string outLine;
  std::string errLine;
  std::string channelLine;
  const protocol::ParseLimits limits{kDefaultMaxFrameBytes, 64};
  std::string violation;
  auto deliver = [&](std::string_view text) {
    auto parsed = protocol::parseJson(text, limits);
    if (!parsed || !parsed->is_object()) {
      violation = "sent a malformed message on the host channel (not a JSON object)";
      return false;
    }
    if (callbacks_.onMessage) callbacks_.onMessage(std::move(parsed.value()));
    return true;
  };
  int readFd = launch_.lineProtocol ? channelOut_ : channel_;
  bool channelOpen = true;
  bool outOpen = stdout_ >= 0;
  bool errOpen = stderr_ >= 0;
  char buf[65536];
  while (violation.empty() && (channelOpen || outOpen || errOpen)) {
    pollfd p[4] = {{channelOpen ? readFd : -1, POLLIN, 0},
                   {outOpen ? stdout_ : -1, POLLIN, 0},
                   {errOpen ? stderr_ : -1, POLLIN, 0},
                   {wake_[0], POLLIN, 0}};
    if (::poll(p, 4, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[3].revents != 0) break;  // killed by the host
    if (p[0].revents != 0) {
      const ssize_t n = ::read(readFd, buf, sizeof buf);
      if (n <= 0) {
        channelOpen = false;
      } else if (launch_.lineProtocol) {
        channelLine.append(buf, static_cast<std::size_t>(n));
        std::size_t pos = 0;
        while (violation.empty() && (pos = channelLine.find('\n')) != std::string::npos) {
          std::string line = channelLine.substr(0, pos);
          channelLine.erase(0, pos + 1);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (line.empty()) continue;
          if (line.front() != '{') {  // stdio servers sometimes print banners; MCP forbids it
            logLine("stdout", line);
            continue;
          }
          deliver(line);
        }
        if (channelLine.size() > kMaxLineMessage) violation = "sent a message above the size limit";
      } else {
        decoder.feed(buf, static_cast<std::size_t>(n));
        for (;;) {
          auto frame = decoder.next();
          if (!frame) {
            violation = "broke the host channel's framing: " + frame.error();
            break;
          }
          if (frame->empty() || !deliver(*frame)) break;
        }
      }
      // Once the channel is gone the worker is useless: don't wait for it to close its pipes.
      if (!channelOpen) break;
    }
    auto pumpLines = [&](int fd, std::string& pending, bool& open, const char* stream) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) {
        if (!pending.empty()) logLine(stream, pending);
        pending.clear();
        open = false;
        return;
      }
      pending.append(buf, static_cast<std::size_t>(n));
      std::size_t pos = 0;
      while ((pos = pending.find('\n')) != std::string::npos) {
        logLine(stream, std::string_view(pending).substr(0, pos));
        pending.erase(0, pos + 1);
      }
      if (pending.size() > kMaxLogLine) {
        logLine(stream, pending);
        pending.clear();
      }
    };
    if (p[1].revents != 0) pumpLines(stdout_, outLine, outOpen, "stdout");
    if (p[2].revents != 0) pumpLines(stderr_, errLine, errOpen, "stderr");
  }
  if (!violation.empty()) {
    log::error("connector", "worker " + violation + "; stopping it",
               {{"connector", launch_.connectorId}, {"pid", pid_}});
    kill("the worker " + violation);
  }
  const std::string reason = reap();
  // Drain what the worker wrote to stderr before it died: it often says why.
  if (errOpen && stderr_ >= 0) {
    const int flags = ::fcntl(stderr_, F_GETFL);
    ::fcntl(stderr_, F_SETFL, flags | O_NONBLOCK);
    ssize_t n = 0;
    while ((n = ::read(stderr_, buf, sizeof buf)) > 0) errLine.append(buf, static_cast<std::size_t>(n));
    std::size_t pos = 0;
    while ((pos = errLine.find('\n')) != std::string::npos) {
      logLine("stderr", std::string_view(errLine).substr(0, pos));
      errLine.erase(0, pos + 1);
    }
    if (!errLine.empty()) logLine("stderr", errLine);
  }
  exited_ = true;
  if (callbacks_.onExit) callbacks_.onExit(reason);
}

std::string WorkerProcess::reap() {
  int status = 0;
  // The channel closed: the worker is exiting or misbehaving. Give it a moment, then force it.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  pid_t r = 0;
  while ((r = ::waitpid(pid_, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (r == 0) {
    ::kill(-pid_, SIGKILL);
    r = ::waitpid(pid_, &status, 0);
  }
  ::kill(-pid_, SIGKILL);  // whatever it forked into its group goes with it
  std::string how = r == pid_ ? describeExit(status) : "vanished";
  std::lock_guard lock(killMutex_);
  if (!killReason_.empty()) return killReason_ + " (" + how + ")";
  return how;
}

}  // namespace mcphost::connectors
