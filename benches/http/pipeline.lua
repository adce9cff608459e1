-- Pipelined GET /plaintext: each connection writes `depth` requests at once
-- (wrk counts them from the concatenated string) and waits for all the
-- responses before the next batch. `depth` is the first script argument
-- (`wrk ... -- 16`), 16 by default.
init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/plaintext")
   end
   req = table.concat(r)
end

request = function()
   return req
end

dofile("report.lua")
