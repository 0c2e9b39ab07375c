-- Trim acknowledged entries off the jobs stream (the keeper; workers may not XDEL, so FINISH only acks): every
-- entry older than the oldest pending one, or up to the group's last delivered id when none is pending, has been
-- acknowledged and goes; an entry not yet delivered or still pending never does.
-- KEYS[1]  the jobs stream
-- ARGV[1]  the consumer group
-- Returns the number of entries trimmed (0 when the stream or group does not exist yet).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = {}
  for i = 1, #group, 2 do g[group[i]] = group[i + 1] end
  if g['name'] == ARGV[1] then last = g['last-delivered-id'] end
end
if not last then return 0 end
local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
local below = summary[2]
if not below then
  local ms, seq = string.match(last, '^(%d+)-(%d+)$')
  below = ms .. '-' .. string.format('%.0f', tonumber(seq) + 1)
end
return redis.call('XTRIM', KEYS[1], 'MINID', below)
