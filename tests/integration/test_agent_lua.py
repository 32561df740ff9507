#!/usr/bin/env python3
"""The cases of test_agent.py through haproxy-conf/haproxy-lua.cfg: the Lua
applet (acme.lua) serves the answer, as on HAProxy 1.8-2.1 builds without
`http-request return`."""
import sys

from test_agent import run

if __name__ == '__main__':
    sys.exit(run('haproxy-lua.cfg'))
