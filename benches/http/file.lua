-- Keep-alive GET /file (1 MiB), one request in flight per connection.
wrk.path = "/file"
dofile("report.lua")
