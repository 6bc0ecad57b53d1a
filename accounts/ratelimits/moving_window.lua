-- Counts each window's requests of the last WINDOW seconds (a sorted set of
-- timestamps) and adds this one to all of them only if every one has room.
-- The clock is Redis's, so hosts with skewed clocks still share one window.
-- KEYS: the windows. ARGV: window (ms), a unique member, the limits.
-- Returns: allowed (1/0), now (ms), then per window its count and oldest timestamp.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window, member = tonumber(ARGV[1]), ARGV[2]
local counts, allowed = {}, 1
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  counts[i] = redis.call('ZCARD', key)
  if counts[i] >= tonumber(ARGV[2 + i]) then allowed = 0 end
end
local out = {allowed, now}
for i, key in ipairs(KEYS) do
  if allowed == 1 then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
    counts[i] = counts[i] + 1
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  out[#out + 1] = counts[i]
  out[#out + 1] = tonumber(oldest[2] or now)
end
return out
