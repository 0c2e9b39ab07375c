-- start(key, now, worker): start one delivery of a job (a library: joined in front of the scripts that use it,
-- after note.lua, whose final() it uses).
--   key     the job's status hash
--   now     epoch seconds, written as started_at
--   worker  the consumer name, written as worker
-- Returns -1 for an unknown job, 0 for a job already final (done, failed, canceled), else the delivery count after this one.
local function start(key, now, worker)
  local state = redis.call('HGET', key, 'state')
  if not state then return -1 end
  if final(state) then return 0 end  -- done, failed or canceled: a canceled queued job never starts
  local deliveries = redis.call('HINCRBY', key, 'deliveries', 1)
  redis.call('HSET', key, 'state', 'running', 'started_at', now, 'stage', 'starting', 'worker', worker)
  return deliveries
end
