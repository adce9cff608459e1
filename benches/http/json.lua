-- Keep-alive GET /json, one request in flight per connection.
wrk.path = "/json"
dofile("report.lua")
