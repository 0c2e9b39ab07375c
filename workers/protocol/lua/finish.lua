-- Set the completion note only if the job is not already done or failed, so a job that runs twice leaves one
-- note. A written note also goes on the recent list and is counted (workers/protocol/stats.py): done or failed,
-- in total and per minute, and the build time. With an entry id, the stream entry is then acknowledged in the
-- same script: never an ack without its note (the keeper trims acknowledged entries: lua/trim.lua).
-- KEYS[1]  the job's status hash
-- KEYS[2]  the recent-jobs list
-- KEYS[3]  the jobs stream
-- KEYS[4]  the stats hash
-- KEYS[5]  this minute's stats hash
-- KEYS[6]  the webhook outbox (note.lua)
-- ARGV[1]  TTL of the status hash (seconds)
-- ARGV[2]  length of the recent list
-- ARGV[3]  the job id
-- ARGV[4]  the consumer group
-- ARGV[5]  the entry id to acknowledge, or ''
-- ARGV[6]  the build-time histogram bucket field, or '' (not counted)
-- ARGV[7]  the build seconds
-- ARGV[8]  TTL of the minute's stats hash (seconds)
-- ARGV[9]… field/value pairs of the note; the first pair is the state (its value is the counter to bump)
-- (runs after note.lua)
-- Returns 1 written, 0 already final, -1 no such job.
local written = note(9, KEYS[6])
if ARGV[5] ~= '' then
  redis.call('XACK', KEYS[3], ARGV[4], ARGV[5])
end
return written
