// The audit log: the one front the request path talks to. append() seals a record into the
// hash chain and returns once every sink accepted it.
//
// Group commit: appends queue up; one writer thread takes everything queued (up to
// maxBatchRecords), seals it, writes it to the file as one buffer, syncs per the fsync policy,
// hands the same batch to the extra sinks, then wakes the callers. So 16 concurrent callers
// cost one write and at most one fdatasync, not sixteen.
//
// Order and failure: the file is written first. If the file write (or, with kEveryBatch, its
// fdatasync) fails, the batch is cut back out of the file and the chain rolls back: those
// records get an error and are not in the chain (no seq gap). If an extra sink (syslog,
// PostgreSQL) fails after the file write succeeded, the records stay in the file (they are part
// of the chain and cannot be removed without breaking it), the callers still get the error so
// that fail-closed can refuse the call, and the sink is offered the records again with the
// next batch (sinks drop duplicates by seq). healthy() is false from a failure until a later
// batch succeeds everywhere.
//
// Internal records, all HMAC-signed with the audit key like any other: "start" when the log
// opens, "file_start" as the first line of every file (names the previous file and its last mac,
// so the chain continues across rotation), "checkpoint" every checkpointEvery records,
// every checkpointInterval, before rotation and at close ({file, first_seq, records_in_file}),
// "retention" before files are deleted (written and synced first, then the files are removed),
// and "recovered" when open() repaired a crash tail or found records missing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_chain.hpp"
#include "audit/audit_sink.hpp"
#include "audit/file_sink.hpp"
#include "common/expected.hpp"

namespace mcphost::audit {

struct AuditSettings {
  std::string directory;
  std::string key;                           // raw HMAC key bytes, at least 32
  std::uint64_t maxFileBytes = 64ull << 20;  // rotate when the file reaches this size
  std::chrono::seconds rotateEvery{86400};   // 0 = by size only
  std::chrono::seconds retainFor{0};         // delete files that ended longer ago; 0 = forever
  std::size_t retainFiles = 0;               // keep at most this many files; 0 = no limit
  // kEveryBatch: append returns after fdatasync (survives power loss). kInterval: after
  // write(2) (survives kill -9); a timer fdatasyncs every fsyncInterval. kNever: the kernel decides.
  enum class Fsync { kEveryBatch, kInterval, kNever } fsync = Fsync::kInterval;
  std::chrono::milliseconds fsyncInterval{100};
  std::uint64_t checkpointEvery = 1000;
  std::chrono::seconds checkpointInterval{60};
  std::string hostVersion;
  std::size_t maxBatchRecords = 4096;  // bounds one write's buffer
  // Tests: a clock to drive rotation, retention and checkpoints; null = system_clock::now.
  std::function<std::chrono::system_clock::time_point()> clock;
  // Tests: system calls of the file sink (fault injection); null = the real ones.
  std::shared_ptr<FileOps> fileOps;
};

class AuditLog {
 public:
  // Opens (or creates) the directory, repairs a crash tail, writes the start record and syncs.
  // Fails if the directory cannot be written, is locked by another writer, or its last record
  // does not verify with the key. A failing extra sink does not fail open(): healthy() tells.
  static Expected<std::unique_ptr<AuditLog>, std::string> open(
      AuditSettings settings, std::vector<std::unique_ptr<AuditSink>> extraSinks = {});
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Seals one record of type "request" (or fields["type"], which may not be an internal type)
  // and returns its seq once every sink has accepted it: for the file that means written with
  // write(2), and with kEveryBatch also fdatasync'd. fields must be an object without the
  // members seq, time, prev and mac. Safe from many threads. Returns the error of the failed
  // sink ("file: write ...: No space left on device").
  Expected<std::uint64_t, std::string> append(nlohmann::ordered_json fields);

  [[nodiscard]] bool healthy() const;
  [[nodiscard]] std::string lastError() const;
  // The last seq in the chain (0 before any record).
  [[nodiscard]] std::uint64_t lastSeq() const;
  // Writes a final checkpoint, syncs and closes every sink. Idempotent; later appends fail.
  void close();

 private:
  struct Waiter;
  struct ExtraSink;
  struct Snapshot {
    ChainState chain;
    std::uint64_t sinceCheckpoint = 0;
    std::chrono::system_clock::time_point lastCheckpointAt;
  };

  AuditLog(AuditSettings settings, std::unique_ptr<FileSink> file,
           std::vector<std::unique_ptr<AuditSink>> extras);
  std::chrono::system_clock::time_point now() const;
  Status start();
  void run();
  void processRound(const std::vector<Waiter*>& waiters);
  void housekeeping(std::chrono::system_clock::time_point at);
  void finish();

  Snapshot snapshot() const;
  void restore(const Snapshot& snapshot);
  SealedRecord seal(std::string_view type, const nlohmann::ordered_json& fields,
                    std::chrono::system_clock::time_point at);
  SealedRecord sealCheckpoint(std::chrono::system_clock::time_point at);
  enum class SyncMode { kPolicy, kForce, kSkip };
  // Writes records to the file (rolling the chain back to `before` if that fails), syncs per
  // mode, and queues them for the extra sinks.
  Status commit(std::vector<SealedRecord> records, const Snapshot& before, SyncMode sync);
  Status deliver();
  Status syncAll();
  Status writeHead();
  bool rotationDue(std::chrono::system_clock::time_point at) const;
  Status rotate(std::chrono::system_clock::time_point at);
  Status runRetention(std::chrono::system_clock::time_point at);
  void publishHealth();

  AuditSettings settings_;
  std::unique_ptr<FileSink> file_;
  std::vector<std::unique_ptr<ExtraSink>> extras_;

  // Writer thread state (also used by start() and finish(), before and after the thread runs).
  AuditChain chain_;
  std::uint64_t sinceCheckpoint_ = 0;
  std::chrono::system_clock::time_point lastCheckpointAt_;
  std::vector<SealedRecord> undelivered_;  // committed to the file, not yet given to extra sinks
  bool unsynced_ = false;
  std::chrono::steady_clock::time_point lastSync_;
  std::string writeError_;  // the last write (batch, checkpoint, rotation) failed; empty once one succeeds
  std::string syncError_;   // a failed interval sync keeps the log unhealthy until one succeeds
  bool retentionDue_ = false;
  std::chrono::steady_clock::time_point nextRotationAttempt_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<Waiter*> queue_;
  // Who may touch the chain, the files and the sinks right now: an appending thread that leads
  // a batch (leader/follower group commit: no hand-off to another thread on the fast path), or
  // the housekeeping thread. Guarded by mutex_; done_ announces when it is released.
  bool writing_ = false;
  bool stopping_ = false;
  bool closed_ = false;
  bool healthy_ = true;
  std::string lastError_;
  std::uint64_t lastSeq_ = 0;
  std::thread writer_;
  std::mutex closeMutex_;
};

}  // namespace mcphost::audit
