#!/usr/bin/env python3
"""Tokens a crashed `hacme run` left published are withdrawn at the next
start (real pebble, HAProxy, hacme-spoa): pebble sleeps before validating,
so tokens stay published; `hacme run` is killed with SIGKILL (its agent
child lives on, holding the tokens for their one-hour TTL); the next
`hacme run` -- with a config that no longer orders that certificate --
finds the dead run's journal (<state-dir>/tokens/<pid>.journal, no
process holds its lock) and DELs every token in it."""

import glob
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()


with L.Lab('crash') as lab:
    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_VA_NOSLEEP': '0', 'PEBBLE_AUTHZREUSE': '0'})
    st = lab.stack(http_port=hp, agent=False)
    names = ['k%d.example' % i for i in range(3)]
    cfg = lab.hacme_config(pb, st, certs=[('slow', ['domains ' + ' '.join(names)])], agents=[])
    sock = cfg + '.state/agent.sock'
    run = lab.spawn('hacme-run', [L.exe('acme/hacme'), '-c', cfg, 'run'],
                    ready=r'hacme run: \d+ certificates')
    L.wait_until(lambda: len(L.agent_list(sock) or {}) >= 3, 30, 'tokens published', run)
    before = L.agent_list(sock)
    journals = glob.glob(cfg + '.state/tokens/*.journal')
    t.eq(len(journals), 1, 'the running hacme keeps a journal of its tokens (%s)' %
         [os.path.basename(j) for j in journals])
    run.kill(signal.SIGKILL)
    L.wait_until(lambda: not run.alive(), 10, 'hacme run dead')
    time.sleep(0.5)
    # pebble validates each authorization after a random sleep (0-5 s): one
    # may be done, and its token withdrawn, between the LIST and the kill
    left = L.agent_list(sock) or {}
    t.ok(left and set(left) <= set(before),
         'after SIGKILL the agent still holds the tokens of the dead run (%d of %d; the others '
         'were validated and withdrawn before the kill)' % (len(left), len(before)))

    # the next start orders nothing: no order owns those tokens any more
    lab.write(os.path.basename(cfg), open(cfg).read().split('cert slow')[0])
    run2 = lab.spawn('hacme-run-2', [L.exe('acme/hacme'), '-c', cfg, 'run'],
                     ready=r'hacme run: \d+ certificates')
    L.wait_until(lambda: not (set(left) & set(L.agent_list(sock) or {})), 10,
                 'old tokens withdrawn', run2)
    now = L.agent_list(sock)
    t.ok(now is not None and not (set(left) & set(now)),
         'the next start withdrew every token the dead run left (%d left)' %
         len(set(left) & set(now or {})))
    t.like(run2.read_log(), r'withdrawing %d challenge tokens? that an earlier hacme left published'
           % len(left), 'and says so (%d)' % len(left))
    journals = glob.glob(cfg + '.state/tokens/*.journal')
    t.eq(len(journals), 1, 'the dead run\'s journal is gone, the new run has its own')
    run2.stop()
    t.eq(glob.glob(cfg + '.state/tokens/*.journal'), [], 'a clean exit leaves no journal')
sys.exit(t.done())
