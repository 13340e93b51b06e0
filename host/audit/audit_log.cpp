#include "audit/audit_log.hpp"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <optional>

namespace mcphost::audit {

namespace {

// Records an extra sink may fall behind by before the oldest are dropped (and counted), so
// that a long syslog outage cannot exhaust memory.
constexpr std::size_t kMaxBacklog = 100000;
// A failed rotation is retried no sooner than this, so a broken disk does not get a new
// checkpoint record on every batch.
constexpr std::chrono::seconds kRotationRetry{1};
// Room for seq, time, type, prev and mac around the caller's fields within verify's line cap.
constexpr std::size_t kRecordOverhead = 512;

const char* fsyncName(AuditSettings::Fsync fsync) {
  switch (fsync) {
    case AuditSettings::Fsync::kEveryBatch:
      return "every_batch";
    case AuditSettings::Fsync::kInterval:
      return "interval";
    case AuditSettings::Fsync::kNever:
      return "never";
  }
  return "interval";
}

std::string sinkError(const AuditSink& sink, const std::string& error) {
  const std::string prefix = std::string(sink.name()) + ":";
  return error.rfind(prefix, 0) == 0 ? error : prefix + " " + error;
}

}  // namespace

struct AuditLog::Waiter {
  std::string type;
  std::string fieldsText;
  std::uint64_t seq = 0;
  std::optional<Expected<std::uint64_t, std::string>> result;
};

struct AuditLog::ExtraSink {
  std::unique_ptr<AuditSink> sink;
  std::vector<SealedRecord> backlog;  // committed to the file, not yet accepted by this sink
  std::uint64_t dropped = 0;
};

AuditLog::AuditLog(AuditSettings settings, std::unique_ptr<FileSink> file,
                   std::vector<std::unique_ptr<AuditSink>> extras)
    : settings_(std::move(settings)), file_(std::move(file)), chain_(settings_.key, file_->recovery().chain) {
  for (auto& sink : extras) {
    if (!sink) continue;
    auto extra = std::make_unique<ExtraSink>();
    extra->sink = std::move(sink);
    extras_.push_back(std::move(extra));
  }
  lastSync_ = std::chrono::steady_clock::now();
  // After a restart nobody knows whether the last record was a checkpoint: assume not.
  sinceCheckpoint_ = file_->recovery().fresh ? 0 : 1;
}

Expected<std::unique_ptr<AuditLog>, std::string> AuditLog::open(
    AuditSettings settings, std::vector<std::unique_ptr<AuditSink>> extraSinks) {
  if (settings.directory.empty()) return unexpected(std::string("audit: no directory configured"));
  if (settings.key.size() < kMinKeyBytes)
    return unexpected("audit: the key must be at least " + std::to_string(kMinKeyBytes) + " bytes");
  if (settings.maxFileBytes < 4096)
    return unexpected(std::string("audit: maxFileBytes must be at least 4096"));
  if (settings.maxBatchRecords == 0) settings.maxBatchRecords = 1;
  auto file = FileSink::open(FileSinkOptions{settings.directory, settings.key, settings.fileOps});
  if (!file) return unexpected(file.error());
  std::unique_ptr<AuditLog> log(
      new AuditLog(std::move(settings), std::move(*file), std::move(extraSinks)));  // NOLINT
  if (auto started = log->start(); !started) {
    log->file_->close();
    log->closed_ = true;
    return unexpected(started.error());
  }
  log->writer_ = std::thread([raw = log.get()] { raw->run(); });
  return log;
}

AuditLog::~AuditLog() {
  close();
}

std::chrono::system_clock::time_point AuditLog::now() const {
  return settings_.clock ? settings_.clock() : std::chrono::system_clock::now();
}

AuditLog::Snapshot AuditLog::snapshot() const {
  return Snapshot{chain_.state(), sinceCheckpoint_, lastCheckpointAt_};
}

void AuditLog::restore(const Snapshot& snapshot) {
  chain_.restore(snapshot.chain);
  sinceCheckpoint_ = snapshot.sinceCheckpoint;
  lastCheckpointAt_ = snapshot.lastCheckpointAt;
}

SealedRecord AuditLog::seal(std::string_view type, const nlohmann::ordered_json& fields,
                            std::chrono::system_clock::time_point at) {
  ++sinceCheckpoint_;
  return chain_.sealFields(type, fields, at);
}

SealedRecord AuditLog::sealCheckpoint(std::chrono::system_clock::time_point at) {
  nlohmann::ordered_json fields;
  fields["file"] = file_->currentFile();
  fields["first_seq"] = file_->currentFirstSeq();
  fields["records_in_file"] = chain_.state().nextSeq - file_->currentFirstSeq();
  sinceCheckpoint_ = 0;
  lastCheckpointAt_ = at;
  return chain_.sealFields(kTypeCheckpoint, fields, at);
}

Status AuditLog::start() {
  const auto at = now();
  lastCheckpointAt_ = at;
  const Recovery& recovery = file_->recovery();
  nlohmann::ordered_json recovered;
  if (recovery.truncatedBytes > 0) {
    recovered["truncated_file"] = recovery.truncatedFile;
    recovered["truncated_bytes"] = recovery.truncatedBytes;
  }
  if (!recovery.removedEmptyFiles.empty()) recovered["removed_empty_files"] = recovery.removedEmptyFiles;
  if (!recovery.headProblem.empty()) recovered["head_problem"] = recovery.headProblem;
  std::optional<HeadAnchor> continueFrom;
  if (recovery.head) {
    const std::uint64_t last = recovery.chain.nextSeq - 1;
    if (recovery.head->seq > last) {
      // The anchor names records the files no longer hold: they were lost (power loss with
      // fsync never) or removed. Say so in a signed record; verify reports it.
      recovered["lost_after_seq"] = last;
      recovered["lost_through_seq"] = recovery.head->seq;
      if (recovery.fresh) continueFrom = recovery.head;
    } else if (recovery.head->seq == last && recovery.head->mac != recovery.chain.lastMac) {
      recovered["head_mismatch_seq"] = last;
    }
  }
  if (continueFrom) {
    // Every file is gone but the anchor survived: continue its chain rather than restart at
    // seq 1, so that verify can tell the missing files from a new log.
    chain_.restore(ChainState{continueFrom->seq + 1, continueFrom->mac});
  }

  const Snapshot before = snapshot();
  std::vector<SealedRecord> records;
  if (recovery.fresh) {
    if (auto started = file_->startFile(at, chain_.state().nextSeq); !started) return started;
    nlohmann::ordered_json fields;
    fields["file"] = file_->currentFile();
    fields["previous_file"] =
        continueFrom ? nlohmann::ordered_json(continueFrom->file) : nlohmann::ordered_json();
    fields["previous_last_seq"] = chain_.state().nextSeq - 1;
    fields["previous_last_mac"] = chain_.state().lastMac;
    fields["key_id"] = keyId(settings_.key);
    records.push_back(seal(kTypeFileStart, fields, at));
  } else if (rotationDue(at)) {
    if (auto rotated = rotate(at); !rotated) return rotated;
  }
  if (!recovered.empty()) {
    recovered["file"] = file_->currentFile();
    records.push_back(seal(kTypeRecovered, recovered, at));
  }
  nlohmann::ordered_json startFields;
  startFields["host_version"] = settings_.hostVersion;
  startFields["key_id"] = keyId(settings_.key);
  startFields["pid"] = static_cast<std::int64_t>(::getpid());
  startFields["fsync"] = fsyncName(settings_.fsync);
  records.push_back(seal(kTypeStart, startFields, at));
  if (auto committed = commit(std::move(records), before, SyncMode::kForce); !committed)
    return unexpected("audit: cannot write the start record: " + committed.error());
  if (auto head = writeHead(); !head) writeError_ = head.error();
  if (auto delivered = deliver(); !delivered) writeError_ = delivered.error();
  retentionDue_ = true;
  if (auto retained = runRetention(at); !retained) writeError_ = retained.error();
  publishHealth();
  return Done{};
}

Expected<std::uint64_t, std::string> AuditLog::append(nlohmann::ordered_json fields) {
  if (fields.is_null()) fields = nlohmann::ordered_json::object();
  if (!fields.is_object()) return unexpected(std::string("audit: a record must be a JSON object"));
  Waiter waiter;
  waiter.type = std::string(kTypeRequest);
  if (auto type = fields.find("type"); type != fields.end()) {
    if (!type->is_string()) return unexpected(std::string("audit: the record type must be a string"));
    waiter.type = type->get<std::string>();
    if (waiter.type.empty() || isInternalType(waiter.type))
      return unexpected("audit: the record type '" + waiter.type + "' is reserved");
    fields.erase(type);
  }
  for (const char* reserved : {"seq", "time", "prev", "mac"}) {
    if (fields.contains(reserved))
      return unexpected("audit: the member '" + std::string(reserved) + "' is set by the audit log");
  }
  waiter.fieldsText = serializeFields(fields);  // on the caller's thread: the writer only seals
  if (waiter.fieldsText.size() + waiter.type.size() + kRecordOverhead > kMaxLineBytes)
    return unexpected("audit: the record is larger than " + std::to_string(kMaxLineBytes) + " bytes");
  std::unique_lock lock(mutex_);
  if (stopping_) return unexpected(std::string("audit: the audit log is closed"));
  queue_.push_back(&waiter);
  // Group commit without a hand-off: when nobody is writing, this thread writes everything
  // queued (its own record included); records that arrive meanwhile wait and are written by
  // the next leader in one write (and one fdatasync with every_batch).
  while (!waiter.result.has_value()) {
    if (writing_ || queue_.empty()) {
      done_.wait(lock);
      continue;
    }
    writing_ = true;
    const std::size_t count = std::min(queue_.size(), settings_.maxBatchRecords);
    std::vector<Waiter*> taken(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(count));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(count));
    lock.unlock();
    processRound(taken);
    lock.lock();
    writing_ = false;
    done_.notify_all();  // a waiting follower leads the next batch
  }
  return std::move(*waiter.result);
}

bool AuditLog::healthy() const {
  std::lock_guard lock(mutex_);
  return healthy_;
}

std::string AuditLog::lastError() const {
  std::lock_guard lock(mutex_);
  return lastError_;
}

std::uint64_t AuditLog::lastSeq() const {
  std::lock_guard lock(mutex_);
  return lastSeq_;
}

void AuditLog::close() {
  std::lock_guard closing(closeMutex_);
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  std::lock_guard lock(mutex_);
  closed_ = true;
}

void AuditLog::run() {
  // Housekeeping only (interval fsync, checkpoints by time, rotation by time, retention); the
  // appending threads write their own batches.
  std::unique_lock lock(mutex_);
  for (;;) {
    // unsynced_ and lastSync_ belong to whoever writes, so the tick does not read them here.
    auto tick = std::chrono::milliseconds(1000);
    if (settings_.fsync == AuditSettings::Fsync::kInterval) tick = std::min(tick, settings_.fsyncInterval);
    wake_.wait_until(lock, std::chrono::steady_clock::now() + tick, [&] { return stopping_; });
    done_.wait(lock, [&] { return !writing_; });
    writing_ = true;
    std::vector<Waiter*> taken;  // records no leader has taken yet (their threads are waiting)
    const std::size_t count = std::min(queue_.size(), settings_.maxBatchRecords);
    taken.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(count));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(count));
    const bool stop = stopping_ && queue_.empty();
    lock.unlock();
    if (!taken.empty()) processRound(taken);
    housekeeping(now());
    if (stop) {
      finish();
      lock.lock();
      writing_ = false;
      done_.notify_all();
      return;
    }
    lock.lock();
    writing_ = false;
    done_.notify_all();
  }
}

void AuditLog::processRound(const std::vector<Waiter*>& waiters) {
  const auto at = now();
  std::string rotationError;
  if (rotationDue(at)) {
    // A failed rotation does not fail the batch: it goes to the current file instead.
    if (auto rotated = rotate(at); !rotated) rotationError = rotated.error();
  }
  const Snapshot before = snapshot();
  std::vector<SealedRecord> records;
  records.reserve(waiters.size() + 1);
  for (Waiter* waiter : waiters) {
    records.push_back(chain_.seal(waiter->type, waiter->fieldsText, at));
    waiter->seq = records.back().seq;
    if (++sinceCheckpoint_ >= settings_.checkpointEvery && settings_.checkpointEvery > 0)
      records.push_back(sealCheckpoint(at));
  }
  const Status committed = commit(std::move(records), before, SyncMode::kPolicy);
  const Status delivered = deliver();  // also what the rotation committed, even if the batch failed
  std::string extraError = delivered ? std::string() : delivered.error();
  std::string headError;
  if (committed) {
    if (settings_.fsync == AuditSettings::Fsync::kEveryBatch) {
      for (auto& extra : extras_) {
        if (auto synced = extra->sink->sync(); !synced && extraError.empty())
          extraError = sinkError(*extra->sink, synced.error());
      }
    }
    if (settings_.fsync != AuditSettings::Fsync::kInterval) {
      if (auto head = writeHead(); !head) headError = head.error();
    }
  }
  writeError_ = !committed ? committed.error() : !extraError.empty() ? extraError : headError;
  if (writeError_.empty()) writeError_ = rotationError;
  {
    std::lock_guard lock(mutex_);
    for (Waiter* waiter : waiters) {
      if (!committed) {
        waiter->result = unexpected(committed.error());
      } else if (!extraError.empty()) {
        waiter->result = unexpected("audit: seq " + std::to_string(waiter->seq) +
                                    " is in the audit file, but a sink failed: " + extraError);
      } else {
        waiter->result = waiter->seq;
      }
    }
  }
  publishHealth();
  done_.notify_all();
}

void AuditLog::housekeeping(std::chrono::system_clock::time_point at) {
  bool acted = false;
  std::string error;
  auto note = [&](const Status& status) {
    acted = true;
    if (!status && error.empty()) error = status.error();
  };
  if (rotationDue(at)) note(rotate(at));
  if (retentionDue_) note(runRetention(at));
  if (sinceCheckpoint_ > 0 && settings_.checkpointInterval.count() > 0 &&
      at - lastCheckpointAt_ >= settings_.checkpointInterval) {
    const Snapshot before = snapshot();
    note(commit({sealCheckpoint(at)}, before, SyncMode::kPolicy));
  }
  if (!undelivered_.empty()) note(deliver());
  if (unsynced_ && settings_.fsync == AuditSettings::Fsync::kInterval &&
      std::chrono::steady_clock::now() - lastSync_ >= settings_.fsyncInterval) {
    // The records were acknowledged already; a failed sync cannot be undone, only reported
    // (healthy() stays false) and retried on the next tick.
    if (auto synced = syncAll(); !synced) {
      syncError_ = synced.error();
    } else {
      syncError_.clear();
      if (auto head = writeHead(); !head) syncError_ = head.error();
    }
    publishHealth();
  } else if (acted && settings_.fsync != AuditSettings::Fsync::kInterval && error.empty()) {
    if (auto head = writeHead(); !head) error = head.error();
  }
  if (acted) {
    writeError_ = error;
    publishHealth();
  }
}

void AuditLog::finish() {
  const auto at = now();
  if (sinceCheckpoint_ > 0) {
    const Snapshot before = snapshot();
    if (auto committed = commit({sealCheckpoint(at)}, before, SyncMode::kPolicy); !committed)
      writeError_ = committed.error();
  }
  (void)deliver();
  if (auto synced = syncAll(); synced) (void)writeHead();
  for (auto& extra : extras_) extra->sink->close();
  file_->close();
}

Status AuditLog::commit(std::vector<SealedRecord> records, const Snapshot& before, SyncMode sync) {
  if (records.empty()) return Done{};
  const std::uint64_t offsetBefore = file_->currentBytes();
  if (auto written = file_->write(records); !written) {
    restore(before);
    return written;
  }
  if (sync == SyncMode::kForce ||
      (sync == SyncMode::kPolicy && settings_.fsync == AuditSettings::Fsync::kEveryBatch)) {
    if (auto synced = file_->sync(); !synced) {
      // Not durable, and the caller will be told so: take the records out of the file and the
      // chain, as if the write had failed.
      std::string error = synced.error();
      if (auto cut = file_->truncateTo(offsetBefore); !cut) error += "; " + cut.error();
      restore(before);
      return unexpected(error);
    }
    unsynced_ = false;
    lastSync_ = std::chrono::steady_clock::now();
  } else {
    unsynced_ = true;
  }
  undelivered_.insert(undelivered_.end(), std::make_move_iterator(records.begin()),
                      std::make_move_iterator(records.end()));
  std::lock_guard lock(mutex_);
  lastSeq_ = chain_.state().nextSeq - 1;
  return Done{};
}

Status AuditLog::deliver() {
  if (undelivered_.empty()) return Done{};
  std::string error;
  for (auto& extra : extras_) {
    auto& backlog = extra->backlog;
    backlog.insert(backlog.end(), undelivered_.begin(), undelivered_.end());
    if (backlog.size() > kMaxBacklog) {
      const std::size_t excess = backlog.size() - kMaxBacklog;
      backlog.erase(backlog.begin(), backlog.begin() + static_cast<std::ptrdiff_t>(excess));
      extra->dropped += excess;
    }
    if (auto written = extra->sink->write(backlog); written) {
      backlog.clear();
    } else if (error.empty()) {
      error = sinkError(*extra->sink, written.error());
      if (extra->dropped > 0)
        error += " (" + std::to_string(extra->dropped) + " records were dropped from its backlog)";
    }
  }
  undelivered_.clear();
  if (!error.empty()) return unexpected(error);
  return Done{};
}

Status AuditLog::syncAll() {
  if (auto synced = file_->sync(); !synced) return synced;
  unsynced_ = false;
  lastSync_ = std::chrono::steady_clock::now();
  for (auto& extra : extras_) {
    if (auto synced = extra->sink->sync(); !synced)
      return unexpected(sinkError(*extra->sink, synced.error()));
  }
  return Done{};
}

Status AuditLog::writeHead() {
  const ChainState& state = chain_.state();
  if (state.nextSeq <= 1) return Done{};
  return file_->writeHead(HeadAnchor{state.nextSeq - 1, state.lastMac, file_->currentFile()});
}

bool AuditLog::rotationDue(std::chrono::system_clock::time_point at) const {
  if (!file_->hasFile() || std::chrono::steady_clock::now() < nextRotationAttempt_) return false;
  if (file_->currentBytes() >= settings_.maxFileBytes) return true;
  return settings_.rotateEvery.count() > 0 && at - file_->currentStart() >= settings_.rotateEvery;
}

Status AuditLog::rotate(std::chrono::system_clock::time_point at) {
  auto backOff = [&](Status status) {
    nextRotationAttempt_ = std::chrono::steady_clock::now() + kRotationRetry;
    return status;
  };
  const bool syncOld = settings_.fsync != AuditSettings::Fsync::kNever;
  // Close the old file with a checkpoint and make it durable: nothing syncs it after this.
  if (sinceCheckpoint_ > 0) {
    const Snapshot before = snapshot();
    if (auto committed = commit({sealCheckpoint(at)}, before, syncOld ? SyncMode::kForce : SyncMode::kPolicy);
        !committed)
      return backOff(committed);
  } else if (syncOld && unsynced_) {
    if (auto synced = file_->sync(); !synced) return backOff(synced);
  }
  const std::string previousFile = file_->currentFile();
  const ChainState end = chain_.state();
  if (auto started = file_->startFile(at, end.nextSeq); !started) return backOff(started);
  nlohmann::ordered_json fields;
  fields["file"] = file_->currentFile();
  fields["previous_file"] = previousFile;
  fields["previous_last_seq"] = end.nextSeq - 1;
  fields["previous_last_mac"] = end.lastMac;
  fields["key_id"] = keyId(settings_.key);
  const Snapshot before = snapshot();
  std::vector<SealedRecord> records{seal(kTypeFileStart, fields, at)};
  // Not synced on its own: a sync failure would cut the file back to empty but keep it current.
  // The next batch's sync (or the interval timer) covers it.
  if (auto committed = commit(std::move(records), before, SyncMode::kSkip); !committed)
    return backOff(committed);
  retentionDue_ = true;
  return Done{};
}

Status AuditLog::runRetention(std::chrono::system_clock::time_point at) {
  if (settings_.retainFiles == 0 && settings_.retainFor.count() == 0) {
    retentionDue_ = false;
    return Done{};
  }
  auto files = file_->listFiles();
  if (!files) return unexpected(files.error());
  const auto current = std::find_if(files->begin(), files->end(),
                                    [&](const AuditFileName& f) { return f.name == file_->currentFile(); });
  const auto older = static_cast<std::size_t>(current - files->begin());
  std::size_t byCount = 0;
  if (settings_.retainFiles > 0 && older + 1 > settings_.retainFiles)
    byCount = older + 1 - settings_.retainFiles;
  std::size_t byAge = 0;
  if (settings_.retainFor.count() > 0) {
    // A file ended when the next one started; only a prefix goes, so the rest stays contiguous.
    while (byAge < older && at - (*files)[byAge + 1].start >= settings_.retainFor) ++byAge;
  }
  const std::size_t remove = std::max(byCount, byAge);
  if (remove == 0) {
    retentionDue_ = false;
    return Done{};
  }
  auto deleted = nlohmann::ordered_json::array();
  std::vector<std::string> names;
  for (std::size_t i = 0; i < remove; ++i) {
    auto summary = file_->summarize((*files)[i]);
    if (!summary) return unexpected(summary.error());
    nlohmann::ordered_json entry;
    entry["file"] = summary->file;
    entry["first_seq"] = summary->firstSeq;
    entry["last_seq"] = summary->lastSeq;
    entry["last_mac"] = summary->lastMac;
    entry["reason"] = i < byAge ? "age" : "count";
    deleted.push_back(std::move(entry));
    names.push_back(summary->file);
  }
  nlohmann::ordered_json fields;
  fields["reason"] =
      byAge >= byCount ? (byCount > 0 ? "age+count" : "age") : (byAge > 0 ? "count+age" : "count");
  fields["deleted"] = std::move(deleted);
  fields["first_kept"] = (*files)[remove].name;
  if (settings_.retainFor.count() > 0) fields["retain_for_s"] = settings_.retainFor.count();
  if (settings_.retainFiles > 0) fields["retain_files"] = settings_.retainFiles;
  const Snapshot before = snapshot();
  // The record of what is deleted must be on disk before anything is deleted, whatever the policy.
  if (auto committed = commit({seal(kTypeRetention, fields, at)}, before, SyncMode::kForce); !committed)
    return committed;
  (void)deliver();
  if (auto removed = file_->removeFiles(names); !removed) return removed;
  retentionDue_ = false;
  return Done{};
}

void AuditLog::publishHealth() {
  std::lock_guard lock(mutex_);
  const std::string& error = !writeError_.empty() ? writeError_ : syncError_;
  healthy_ = error.empty();
  if (!error.empty()) lastError_ = error;
}

}  // namespace mcphost::audit
