-- A part of one counter hash as one packed string "field\tcount\n...": one bulk reply
-- instead of two per field, which a client parses far faster. A part is one HSCAN step, so
-- that no call keeps Redis long whatever the hash's size; the caller repeats with the cursor
-- returned until it is '0'. HSCAN may return a field twice (the hash grew meanwhile): the
-- caller keeps the last count of each field, and checks the data version around the read.
-- KEYS[1] the hash   ARGV[1] cursor ('0' to start)   ARGV[2] HSCAN COUNT
-- Returns {next cursor, packed}.
local reply = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local h = reply[2]
local lines = {}
for j = 1, #h, 2 do
  lines[#lines + 1] = h[j] .. '\t' .. h[j + 1]
end
return {reply[1], table.concat(lines, '\n')}
