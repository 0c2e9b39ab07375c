-- note(first): the completion note of FINISH (a library: joined in front of finish.lua and dead_letter.lua, so
-- the note, its TTL, the recent list and the counters have one copy). It reads the KEYS and ARGV[1..8] laid out
-- as finish.lua's header says; the note's field/value pairs start at ARGV[first] (the first pair is the state,
-- its value the counter to bump).
-- Returns 1 written, 0 already final, -1 no such job.
local function note(first)
  local state = redis.call('HGET', KEYS[1], 'state')
  if not state then return -1 end
  if state == 'done' or state == 'failed' then return 0 end
  redis.call('HSET', KEYS[1], unpack(ARGV, first))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('LPUSH', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
  redis.call('HINCRBY', KEYS[4], ARGV[first + 1], 1)
  redis.call('HINCRBY', KEYS[5], ARGV[first + 1], 1)
  redis.call('EXPIRE', KEYS[5], ARGV[8])
  if ARGV[6] ~= '' then
    redis.call('HINCRBY', KEYS[4], ARGV[6], 1)
    redis.call('HINCRBY', KEYS[4], 'build_seconds_count', 1)
    redis.call('HINCRBYFLOAT', KEYS[4], 'build_seconds_sum', ARGV[7])
  end
  return 1
end
