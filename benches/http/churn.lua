-- Connection churn: GET /plaintext, every 25th request with
-- `Connection: close`, so the server answers and closes and wrk reconnects.
local n = 0

init = function(args)
   keep = wrk.format(nil, "/plaintext")
   close = wrk.format(nil, "/plaintext", { ["Connection"] = "close" })
end

request = function()
   n = n + 1
   if n % 25 == 0 then
      return close
   end
   return keep
end

dofile("report.lua")
