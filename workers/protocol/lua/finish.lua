-- Set the completion note only if the job is not already done or failed, so a job that runs twice leaves one
-- note. A written note also goes on the recent list and is counted (workers/protocol/stats.py): done or failed,
-- in total and per minute, and the build time. With an entry id, the stream entry is then acknowledged and
-- deleted in the same script: never an ack without its note.
-- KEYS[1]  the job's status hash
-- KEYS[2]  the recent-jobs list
-- KEYS[3]  the jobs stream
-- KEYS[4]  the stats hash
-- KEYS[5]  this minute's stats hash
-- ARGV[1]  TTL of the status hash (seconds)
-- ARGV[2]  length of the recent list
-- ARGV[3]  the job id
-- ARGV[4]  the consumer group
-- ARGV[5]  the entry id to acknowledge, or ''
-- ARGV[6]  the build-time histogram bucket field, or '' (not counted)
-- ARGV[7]  the build seconds
-- ARGV[8]  TTL of the minute's stats hash (seconds)
-- ARGV[9]… field/value pairs of the note; the first pair is the state (its value is the counter to bump)
-- Returns 1 written, 0 already final, -1 no such job.
local function note()
  local state = redis.call('HGET', KEYS[1], 'state')
  if not state then return -1 end
  if state == 'done' or state == 'failed' then return 0 end
  redis.call('HSET', KEYS[1], unpack(ARGV, 9))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('LPUSH', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
  redis.call('HINCRBY', KEYS[4], ARGV[10], 1)
  redis.call('HINCRBY', KEYS[5], ARGV[10], 1)
  redis.call('EXPIRE', KEYS[5], ARGV[8])
  if ARGV[6] ~= '' then
    redis.call('HINCRBY', KEYS[4], ARGV[6], 1)
    redis.call('HINCRBY', KEYS[4], 'build_seconds_count', 1)
    redis.call('HINCRBYFLOAT', KEYS[4], 'build_seconds_sum', ARGV[7])
  end
  return 1
end
local written = note()
if ARGV[5] ~= '' then
  redis.call('XACK', KEYS[3], ARGV[4], ARGV[5])
  redis.call('XDEL', KEYS[3], ARGV[5])
end
return written
