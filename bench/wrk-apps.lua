-- wrk script of bench/run.sh, scenario "apps": each request names one of
-- APPS applications (app-1 .. app-APPS) drawn at random, APPS being the
-- argument after "--".  The summary is bench/wrk.lua's.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk.lua")

local apps = 100000
local random = math.random
local format = wrk.format
local headers = {}

function init(args)
    apps = tonumber(args[1]) or apps
    math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"),
                                            16) or 0))
end

function request()
    headers["X-App-Id"] = "app-" .. random(apps)
    return format(nil, nil, headers)
end
