-- Move trace ids from one of 0.1.0's seen-sets (16-byte digests) into buckets of one acceptance
-- day (store/seen_buckets.py), atomically: an id is in one place or the other at every moment,
-- so a conversion stopped anywhere loses nothing and carries on where it stopped
-- (store/dedupe_migration.py).
-- KEYS[1]    the old seen-set
-- KEYS[2..]  the buckets the ids go to, in the order of their prefix indexes
-- ARGV[1]    ms the buckets must live at least from now (a duration from the service's clock;
--            a bucket that already lives longer keeps its lifetime)
-- ARGV[2]    the n old members (16-byte digests), concatenated
-- ARGV[3]    n bytes: each id's prefix index (0-based, into KEYS[2..])
-- ARGV[4..]  the n new members, in the same order
-- Returns the number of ids moved.
local digests, prefixes = ARGV[2], ARGV[3]
local n = #prefixes
local by_bucket = {}
for i = 1, n do
  local k = string.byte(prefixes, i) + 2
  local list = by_bucket[k]
  if not list then
    list = {}
    by_bucket[k] = list
  end
  list[#list + 1] = ARGV[3 + i]
end
for k, list in pairs(by_bucket) do
  redis.call('SADD', KEYS[k], unpack(list))
  local left = redis.call('PTTL', KEYS[k])
  if left >= 0 and left < tonumber(ARGV[1]) or left == -1 then
    redis.call('PEXPIRE', KEYS[k], ARGV[1])
  end
end
local old = {}
for i = 1, n do
  old[i] = string.sub(digests, i * 16 - 15, i * 16)
end
if n > 0 then
  redis.call('SREM', KEYS[1], unpack(old))
end
return n
