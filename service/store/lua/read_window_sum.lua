-- The counters of a window of days summed, with the data version and connector definitions
-- read together with them, atomically; runs of days come from their cached sums when valid.
-- A cached sum is stamped with the newest version among its days (the data version of the
-- last fold into each day, which fold.lua records). A fold into any of those days makes that
-- newest version larger than every version before it, so a sum is reused only while none of
-- its days has changed; otherwise it is summed again here, from its parts, and stored.
-- KEYS[1] meta hash   KEYS[2] connector definitions hash
-- KEYS[3 .. 2+D]      the window's daily counter hashes, oldest first (D = ARGV[1])
-- KEYS[3+D .. 2+2D]   the same days' version strings
-- KEYS[3+2D ..]       the cached sums (hash: stamp, sums), one per run
-- ARGV[1] D   ARGV[2..] the plan (core/sum_plan.py), parts in order, each one of:
--   "d <day>"                                 a day, read as it is
--   "r <key> <first> <last> <life ms> <size>" a run of days first..last with its cached sum
--                                              in KEYS[key], kept for at most <life ms>; the
--                                              next <size> ARGV entries are the parts it is
--                                              summed from when not cached
-- Days are positions in the window, from 1. Every day is in exactly one part of the window.
-- Packed sums: "field\tcount\n..." (counter fields never contain control characters).
-- Returns {version, data_as_of_ms, definitions (flat field/value list), packed sums}.
local days = tonumber(ARGV[1])
local tonumber, pairs, gmatch = tonumber, pairs, string.gmatch

local function add_day(into, day)
  local h = redis.call('HGETALL', KEYS[2 + day])
  for j = 1, #h, 2 do
    local f = h[j]
    into[f] = (into[f] or 0) + h[j + 1] -- Lua's own string-to-number coercion: no call
  end
end

local function pack(sums)
  local lines, n = {}, 0
  for f, count in pairs(sums) do
    n = n + 1
    lines[n] = f .. '\t' .. count
  end
  return table.concat(lines, '\n')
end

local at = 2 -- the ARGV index of the next part

local function add_part(into)
  local part = ARGV[at]
  at = at + 1
  if string.sub(part, 1, 1) == 'd' then
    add_day(into, tonumber(string.sub(part, 3)))
    return
  end
  local key, first, last, life, size =
    string.match(part, '^r (%d+) (%d+) (%d+) (%d+) (%d+)$')
  key, first, last = KEYS[tonumber(key)], tonumber(first), tonumber(last)
  life, size = tonumber(life), tonumber(size)
  local stamp = 0
  local versions = redis.call('MGET', unpack(KEYS, 2 + days + first, 2 + days + last))
  for i = 1, last - first + 1 do
    local v = tonumber(versions[i]) or 0
    if v > stamp then stamp = v end
  end
  local cached = redis.call('HMGET', key, 'stamp', 'sums')
  if tonumber(cached[1]) == stamp and cached[2] then
    for f, count in gmatch(cached[2], '([^\t\n]+)\t(%d+)') do
      into[f] = (into[f] or 0) + tonumber(count)
    end
    at = at + size
    return
  end
  local run = {}
  local stop = at + size
  while at < stop do add_part(run) end
  -- Never outlive a day summed here: a window is never meant to count an expired day.
  -- (Each day's counters expire at a fixed moment, so blocks of different days expire apart.)
  for k = 2 + first, 2 + last do
    local ttl = redis.call('PTTL', KEYS[k])
    if ttl > 0 and ttl < life then life = ttl end
  end
  -- Caching is best effort: at Redis's memory limit the write is refused and the report is
  -- still answered, from the days.
  if type(redis.pcall('HSET', key, 'stamp', stamp, 'sums', pack(run))) == 'number' then
    redis.call('PEXPIRE', key, life)
  end
  for f, count in pairs(run) do
    into[f] = (into[f] or 0) + count
  end
end

local sums = {}
while at <= #ARGV do add_part(sums) end
local version = redis.call('HGET', KEYS[1], 'version') or '0'
local as_of = redis.call('HGET', KEYS[1], 'data_as_of_ms') or ''
return {version, as_of, redis.call('HGETALL', KEYS[2]), pack(sums)}
