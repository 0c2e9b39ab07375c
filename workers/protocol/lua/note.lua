-- note(first): the completion note of FINISH (a library: joined in front of finish.lua and dead_letter.lua, so
-- the note, its TTL, the recent list and the counters have one copy). It reads the KEYS and ARGV[1..8] laid out
-- as finish.lua's header says; the note's field/value pairs start at ARGV[first] (the first pair is the state,
-- its value the counter to bump); ``outbox`` is the caller's KEYS entry of the webhook outbox.
-- Returns 1 written, 0 already final, -1 no such job.
-- final(state): whether a job in ``state`` has its completion note (the one such check: START, UPDATE and CANCEL
-- join this file for it).
local function final(state)
  return state == 'done' or state == 'failed' or state == 'canceled'
end
local function note(first, outbox)
  local state = redis.call('HGET', KEYS[1], 'state')
  if not state then return -1 end
  if final(state) then return 0 end
  redis.call('HSET', KEYS[1], unpack(ARGV, first))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  -- expires_at: when the hash goes (the status shows it; the web's sweep takes the result then), by Redis's clock
  redis.call('HSET', KEYS[1], 'expires_at', tonumber(redis.call('TIME')[1]) + tonumber(ARGV[1]))
  if tonumber(ARGV[2]) > 0 then  -- 0: a job kept shorter than jobs.result_ttl, left off the list (see status.py)
    redis.call('LPUSH', KEYS[2], ARGV[3])
    redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
  end
  redis.call('HINCRBY', KEYS[4], ARGV[first + 1], 1)
  redis.call('HINCRBY', KEYS[5], ARGV[first + 1], 1)
  redis.call('EXPIRE', KEYS[5], ARGV[8])
  -- a job with a webhook goes on the outbox (KEYS of the caller, ``outbox``) with its note, in this same call, so no
  -- final state is missed even if its worker dies right after; `tessera webhooks` sends it (lua/webhook_*.lua)
  if outbox and redis.call('HGET', KEYS[1], 'webhook') then
    redis.call('HSET', KEYS[1], 'webhook', 'pending', 'webhook_attempts', 0, 'webhook_first_at', '')  -- a new message
    redis.call('ZADD', outbox, 0, ARGV[3])
  end
  if ARGV[6] ~= '' then
    redis.call('HINCRBY', KEYS[4], ARGV[6], 1)
    redis.call('HINCRBY', KEYS[4], 'build_seconds_count', 1)
    redis.call('HINCRBYFLOAT', KEYS[4], 'build_seconds_sum', ARGV[7])
    -- the recent build time a queued job's eta is made of (stats.RECENT_BUILD): each build moves it a fifth
    local recent = tonumber(redis.call('HGET', KEYS[4], 'build_seconds_recent'))
    local seconds = tonumber(ARGV[7])
    redis.call('HSET', KEYS[4], 'build_seconds_recent', recent and recent + (seconds - recent) * 0.2 or seconds)
    -- seconds per work unit (stats.RECENT_PER_WORK, the backlog's cost: protocol/backlog.py), from the job's `work`
    -- (status.initial_fields); one sample moves it a fifth, clamped to 4x either way so an outlier cannot swing it
    local work = tonumber(redis.call('HGET', KEYS[1], 'work'))
    if work and work > 0 then
      local rate = seconds / work
      local per = tonumber(redis.call('HGET', KEYS[4], 'seconds_per_work_recent'))
      if per then rate = per + (math.min(math.max(rate, per / 4), per * 4) - per) * 0.2 end
      redis.call('HSET', KEYS[4], 'seconds_per_work_recent', rate)
    end
  end
  return 1
end
