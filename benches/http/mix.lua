-- Skewed mix: 1 request in 16 is GET /burn (about 1 ms of server CPU), the
-- rest GET /plaintext. Latency percentiles cover both kinds.
local n = 0

init = function(args)
   plain = wrk.format(nil, "/plaintext")
   heavy = wrk.format(nil, "/burn")
end

request = function()
   n = n + 1
   if n % 16 == 0 then
      return heavy
   end
   return plain
end

dofile("report.lua")
