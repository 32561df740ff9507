-- acme.lua - serves the ACME http-01 answer hacme-spoa put in
-- txn.acme.keyauth, for HAProxy builds without `http-request return`
-- (1.8 - 2.1). Loaded by haproxy-lua.cfg:
--   lua-load /etc/haproxy/acme.lua
--   http-request use-service lua.acme_challenge if { path_beg /.well-known/acme-challenge/ }

local function acme_reply(applet, status, body)
    applet:set_status(status)
    applet:add_header("content-type", "text/plain")
    applet:add_header("content-length", tostring(string.len(body)))
    applet:add_header("cache-control", "no-store")
    applet:start_response()
    applet:send(body)
end

core.register_service("acme_challenge", "http", function(applet)
    local keyauth = applet:get_var("txn.acme.keyauth")
    if keyauth ~= nil and keyauth ~= "" then
        acme_reply(applet, 200, keyauth)
    elseif applet:get_var("txn.acme.err") ~= nil then
        -- set-on-error: the agent is down or too slow
        acme_reply(applet, 503, "acme agent unavailable")
    else
        acme_reply(applet, 404, "no such challenge")
    end
end)
