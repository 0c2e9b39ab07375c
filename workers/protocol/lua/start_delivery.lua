-- Start one delivery of one job (runs after start.lua).
-- KEYS[1]  the job's status hash
-- ARGV[1]  now (epoch seconds)
-- ARGV[2]  the worker (consumer name)
-- Returns as start(): -1 unknown job, 0 already final, else the delivery count.
return start(KEYS[1], ARGV[1], ARGV[2])
