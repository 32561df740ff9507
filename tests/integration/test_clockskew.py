#!/usr/bin/env python3
"""Clock skew does not make an order loop (real pebble, HAProxy, hacme run
under libfaketime): the host clock runs 5 days ahead of the CA's and pebble
issues 4-day certificates, so every certificate is expired on arrival by
the local clock. hacme used to store it, find it due at once and order
again: 205 orders in 20 s. Now the certificate is refused before it is
stored, the log names clock skew, and the failure backs off: at most 2
orders in 20 s."""

import glob
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()
LIBS = glob.glob('/usr/lib/*/faketime/libfaketime.so.1')

if not LIBS:
    t.skip('clock skew under libfaketime', 'libfaketime is not installed (Debian package faketime)')
    sys.exit(t.done())

with L.Lab('clockskew') as lab:
    hp = lab.port()
    pb = lab.pebble(http_port=hp, config={'certificateValidityPeriod': 4 * 86400},
                    env={'PEBBLE_AUTHZREUSE': '100'})
    st = lab.stack(http_port=hp, agent=False)
    cfg = lab.hacme_config(pb, st, certs=[('skew', ['domains skew.example'])], agents=[])
    env = {'LD_PRELOAD': LIBS[0], 'FAKETIME': '+5d', 'FAKETIME_DONT_FAKE_MONOTONIC': '1',
           'FAKETIME_NO_CACHE': '1',
           # an -Db_sanitize=address build: libfaketime preloaded before the ASan runtime
           'ASAN_OPTIONS': ':'.join(filter(None, [os.environ.get('ASAN_OPTIONS'),
                                                  'verify_asan_link_order=0']))}
    mark = pb.proc.log_mark()
    run = lab.spawn('hacme-run', [L.exe('acme/hacme'), '-c', cfg, 'run'], env=env,
                    ready=r'hacme run: \d+ certificates')
    run.wait_log(r'skew: the CA\'s certificate expired at', timeout=30)
    t0 = time.time()
    time.sleep(20)
    n = pb.orders_created(mark)
    t.ok(1 <= n <= 2, 'host clock 5 days ahead, 4-day certificates: %d order(s) in 20 s (<= 2; was 205)' % n)
    log = run.read_log()
    t.like(log, r'skew: the CA\'s certificate expired at \S+, 1d 0h ago by this host\'s clock: clock skew '
           r'between this host and the CA', 'the log names clock skew and by how much')
    t.like(log, r'\(1 failures in a row, next attempt ', 'counted as a failure with a next attempt')
    t.ok(not os.path.exists(cfg + '.state/certs/skew/chain.pem'), 'the expired certificate was not stored')
    sched = json.load(open(cfg + '.state/schedule.json'))['skew']
    t.ok(sched.get('failures', 0) >= 1 and 'clock skew' in sched.get('last_error', ''),
         'schedule.json: the failure and its reason')
    run.stop()
sys.exit(t.done())
