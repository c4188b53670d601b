-- palisade-ratelimit: one atomic decision over every window of a policy.
-- Mirrors src/algo.rs; times are microseconds since the Unix epoch.
--
-- KEYS[i]: the state of window i (all in one hash-tag slot).
-- ARGV[1]: now, or '' to read the clock of Redis (TIME)
-- ARGV[2]: cost; ARGV[3]: '1' to take a lease; ARGV[4]: lease max; ARGV[5]: lease divisor
-- ARGV[6 + 5(i-1) ...]: algorithm code, limit, period, burst, emission interval
-- Returns: now, allowed, units charged, then per window:
--          allowed, remaining, recovery time (0 = recovered), retry time (-1 = never)

local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local cost = tonumber(ARGV[2])
local lease = ARGV[3] == '1'
local lease_max = tonumber(ARGV[4])
local lease_div = tonumber(ARGV[5])

local function floor_div(a, b)
  return (a - math.fmod(a, b)) / b
end

local function parse(v, n)
  local out = {}
  if v then
    for part in string.gmatch(v, '%d+') do
      out[#out + 1] = tonumber(part)
    end
  end
  if #out ~= n then
    return nil
  end
  return out
end

local ws = {}
local allowed = true
local smallest = nil
for i = 1, #KEYS do
  local b = 5 + (i - 1) * 5
  local w = {
    key = KEYS[i],
    algo = ARGV[b + 1],
    L = tonumber(ARGV[b + 2]),
    P = tonumber(ARGV[b + 3]),
    B = tonumber(ARGV[b + 4]),
    T = tonumber(ARGV[b + 5]),
  }
  local a = w.algo
  if a == 'l' then
    redis.call('ZREMRANGEBYSCORE', w.key, '-inf', now - w.P)
    w.used = redis.call('ZCARD', w.key)
    w.quota = w.L
    w.avail = math.max(0, w.L - w.used)
  else
    local s
    if a == 'f' or a == 't' or a == 'k' or a == 's' then
      s = parse(redis.call('GET', w.key), a == 's' and 3 or 2)
    else
      s = parse(redis.call('GET', w.key), 1)
    end
    local current = now - math.fmod(now, w.P)
    if a == 'f' then
      w.quota = w.L
      if not s then s = {current, 0} end
      if current > s[1] then s = {current, 0} end
      w.avail = math.max(0, w.L - s[2])
    elseif a == 's' then
      w.quota = w.L
      if not s then s = {current, 0, 0} end
      if current > s[1] then
        if current == s[1] + w.P then s = {current, s[3], 0} else s = {current, 0, 0} end
      end
      local elapsed = math.min(now - s[1], w.P)
      local x = math.max(0, w.L - s[3]) * w.P - s[2] * (w.P - elapsed)
      if x < 0 then x = 0 end
      w.avail = floor_div(x, w.P)
    elseif a == 't' then
      w.quota = w.B
      if not s then s = {w.B, now} end
      if s[1] >= w.B then
        s = {w.B, now}
      elseif now > s[2] then
        local added = floor_div(now - s[2], w.T)
        local tokens = math.min(w.B, s[1] + added)
        if tokens == w.B then s = {tokens, now} else s = {tokens, s[2] + added * w.T} end
      end
      w.avail = s[1]
    elseif a == 'k' then
      w.quota = w.B
      if not s then s = {0, now} end
      if s[1] == 0 then
        s = {0, now}
      elseif now > s[2] then
        local leaked = floor_div(now - s[2], w.T)
        local level = math.max(0, s[1] - leaked)
        if level == 0 then s = {0, now} else s = {level, s[2] + leaked * w.T} end
      end
      w.avail = math.max(0, w.B - s[1])
    else -- 'g'
      w.quota = w.B
      if not s then s = {now} end
      if s[1] < now then s = {now} end
      local x = w.B * w.T - (s[1] - now)
      if x < 0 then x = 0 end
      w.avail = floor_div(x, w.T)
    end
    w.s = s
  end
  if w.avail < cost then allowed = false end
  if smallest == nil or w.avail < smallest then smallest = w.avail end
  ws[i] = w
end

local grant = 0
if allowed then
  grant = cost
  if lease then
    grant = math.min(floor_div(smallest, math.max(lease_div, 1)), lease_max)
    grant = math.min(math.max(grant, cost), smallest)
  end
end

local out = {now, allowed and 1 or 0, grant}
for i = 1, #ws do
  local w = ws[i]
  local a = w.algo
  local s = w.s
  local window_allowed = w.avail >= cost
  local avail = w.avail
  if allowed and grant > 0 then
    avail = avail - grant
    if a == 'l' then
      local last = redis.call('ZRANGE', w.key, -1, -1, 'WITHSCORES')
      local seq = 0
      if last[2] and tonumber(last[2]) == now then
        seq = tonumber(string.match(last[1], ':(%d+)$')) + 1
      end
      for j = 0, grant - 1 do
        redis.call('ZADD', w.key, now, string.format('%d:%010d', now, seq + j))
      end
      w.used = w.used + grant
    elseif a == 'f' or a == 's' then
      s[#s] = s[#s] + grant
    elseif a == 't' then
      s[1] = s[1] - grant
    elseif a == 'k' then
      s[1] = s[1] + grant
    else
      s[1] = s[1] + grant * w.T
    end
  end
  -- Recovery time: when the state equals a fresh one.
  local recovery = 0
  if a == 'l' then
    local last = redis.call('ZRANGE', w.key, -1, -1, 'WITHSCORES')
    if last[2] then recovery = tonumber(last[2]) + w.P end
  elseif a == 'f' then
    if s[2] > 0 then recovery = s[1] + w.P end
  elseif a == 's' then
    if s[3] > 0 then recovery = s[1] + 2 * w.P elseif s[2] > 0 then recovery = s[1] + w.P end
  elseif a == 't' then
    if s[1] < w.B then recovery = s[2] + (w.B - s[1]) * w.T end
  elseif a == 'k' then
    if s[1] > 0 then recovery = s[2] + s[1] * w.T end
  else
    recovery = s[1]
  end
  if recovery <= now then recovery = 0 end
  -- Write back only what changed; the TTL ends when the state has recovered.
  if allowed and grant > 0 then
    local ttl = math.ceil((recovery - now) / 1000)
    if a == 'l' then
      if ttl > 0 then redis.call('PEXPIRE', w.key, ttl) end
    elseif ttl > 0 then
      local parts = {}
      for j = 1, #s do parts[j] = string.format('%d', s[j]) end
      redis.call('SET', w.key, table.concat(parts, ' '), 'PX', ttl)
    else
      redis.call('DEL', w.key)
    end
  end
  -- Retry time for a window that denies.
  local retry = now
  if not window_allowed then
    if cost > w.quota then
      retry = -1
    elseif a == 'f' then
      retry = s[1] + w.P
    elseif a == 's' then
      local need = w.L - cost
      if s[3] <= need then
        if s[2] == 0 then
          retry = now
        else
          retry = s[1] + w.P - floor_div((need - s[3]) * w.P, s[2])
        end
      else
        retry = s[1] + 2 * w.P - floor_div(need * w.P, s[3])
      end
    elseif a == 'l' then
      local excess = w.used + cost - w.L
      local entry = redis.call('ZRANGE', w.key, excess - 1, excess - 1, 'WITHSCORES')
      if entry[2] then retry = tonumber(entry[2]) + w.P end
    elseif a == 't' then
      retry = s[2] + (cost - s[1]) * w.T
    elseif a == 'k' then
      retry = s[2] + (s[1] + cost - w.B) * w.T
    else
      retry = s[1] + cost * w.T - w.B * w.T
    end
    if retry ~= -1 and retry < now then retry = now end
  end
  out[#out + 1] = window_allowed and 1 or 0
  out[#out + 1] = math.max(0, avail)
  out[#out + 1] = recovery
  out[#out + 1] = retry
end
return out
