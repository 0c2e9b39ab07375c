-- Admit queued jobs to the stream (the keeper, workers/service/keeper.py): the web tier and the reconcilers may
-- only LPUSH a job id on the inbox; only the keeper may XADD to the jobs stream, so no role that faces users or
-- runs on a worker node can trim it (XADD MAXLEN) or write an entry. The keeper BLMOVEs one id from the inbox to
-- its admitting list and calls this: every id on the admitting list, then up to ARGV[2] more from the inbox,
-- goes on the stream with the package its status hash holds, all in one function, so a keeper killed between
-- the two calls leaves the id on the admitting list for the next call and nothing is lost or added twice.
-- KEYS[1]  the inbox (list; LPUSH at the head, admitted from the tail, oldest first)
-- KEYS[2]  the admitting list
-- KEYS[3]  the jobs stream
-- ARGV[1]  the status-hash prefix (Keys.job_prefix); the job id is appended to it
-- ARGV[2]  most ids taken from the inbox in this call
-- ARGV[3]  the consumer group
-- Each admitted job's hash gets `seq`, its entry's number in the stream (the stream's entries-added after its
-- XADD); with the group's entries-read, the number of entries delivered so far, that is the job's place in the
-- queue without a scan (workers/protocol/queue.py waiting). Redis answers a nil entries-read until the group's first
-- delivery (read as 0) and a nil lag when it cannot count (entries deleted ahead of the group: then no seq).
-- Returns the number of entries added (an id whose job is gone or no longer queued adds none).
local added = 0
local seq = false
if redis.call('EXISTS', KEYS[3]) == 1 then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[3])) do
    local g = {}
    for i = 1, #group, 2 do g[group[i]] = group[i + 1] end
    if g['name'] == ARGV[3] and g['lag'] then seq = (g['entries-read'] or 0) + g['lag'] end
  end
end
local function admit(job)
  local f = redis.call('HMGET', ARGV[1] .. job, 'state', 'package')
  if f[1] == 'queued' and f[2] then
    redis.call('XADD', KEYS[3], '*', 'id', job, 'package', f[2])
    added = added + 1
    if seq then
      seq = seq + 1
      redis.call('HSET', ARGV[1] .. job, 'seq', seq)
    end
  end
end
local held = redis.call('LRANGE', KEYS[2], 0, -1)
for i = #held, 1, -1 do admit(held[i]) end
if #held > 0 then redis.call('DEL', KEYS[2]) end
local more = redis.call('RPOP', KEYS[1], tonumber(ARGV[2]))
if more then for _, job in ipairs(more) do admit(job) end end
return added
