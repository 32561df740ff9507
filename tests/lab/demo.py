#!/usr/bin/env python3
"""make demo: shows the part of the path that exists so far.
Replaced step by step as the agent, the ACME client and deploy land."""
import os, subprocess, sys
build = os.environ.get('HACME_BUILD', 'build')
for b in ('spoa/hacme-spoa', 'acme/hacme'):
    p = os.path.join(build, b)
    print('%-20s %s' % (b, 'built' if os.path.exists(p) else 'not built yet'))
sys.exit(0)
