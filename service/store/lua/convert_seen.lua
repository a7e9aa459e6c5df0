-- Move trace ids from a seen-set of the format before the buckets (one set of 16-byte digests
-- per acceptance day) into that day's buckets (store/seen_buckets.py), atomically: an id is
-- in one place or the other at every moment, so a conversion stopped anywhere loses nothing
-- and carries on where it stopped (store/dedupe_migration.py).
-- KEYS[1]    the old seen-set of one acceptance day
-- KEYS[2..]  the buckets of that day the ids go to, in the order of their prefix indexes
-- ARGV[1]    ms the buckets must live from now (a duration from the service's clock)
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
  redis.call('PEXPIRE', KEYS[k], ARGV[1])
end
local old = {}
for i = 1, n do
  old[i] = string.sub(digests, i * 16 - 15, i * 16)
end
if n > 0 then
  redis.call('SREM', KEYS[1], unpack(old))
end
return n
