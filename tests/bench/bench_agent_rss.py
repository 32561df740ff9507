#!/usr/bin/env python3
"""hacme-spoa's memory with 10,000 pending tokens: a fresh agent (default
--max-tokens), then 10,000 ADDs through the control socket with realistic
values (43-character tokens, key authorizations of 43 + 1 + 43 characters,
one host each), then one LIST of all of them. Prints VmRSS and VmHWM from
/proc/<pid>/status after each step. Lines starting with SUMMARY are
collected by run.sh. Environment: HACME_BUILD, BENCH_RSS_TOKENS (10000).
"""

import base64
import os
import sys

from lab import Lab, LabError, mem_kb

NTOKENS = int(os.environ.get('BENCH_RSS_TOKENS', '10000'))
TARGET_KB = 8 * 1024


def b64(n):
    return base64.urlsafe_b64encode(os.urandom(n)).rstrip(b'=').decode()


def main():
    with Lab('bench-rss') as lab:
        agent = lab.agent()
        steps = [('started', mem_kb(agent.pid))]
        thumb = b64(32)
        lines = []
        for i in range(NTOKENS):
            tok = b64(32)
            lines.append('ADD %s %s.%s 3600 host-%05d.customer-example.com' % (tok, tok, thumb, i))
        for i in range(0, NTOKENS, 1000):
            replies = agent.ctl_many(lines[i:i + 1000], timeout=60)
            if not all(r == ['OK'] for r in replies):
                raise LabError('ADD failed: %r' % [r for r in replies if r != ['OK']][:3])
        held = agent.stats()['tokens']
        if held != NTOKENS:
            raise LabError('the agent holds %d tokens, not %d' % (held, NTOKENS))
        steps.append(('%d tokens added' % NTOKENS, mem_kb(agent.pid)))
        listed = agent.ctl('LIST', timeout=60)
        if len(listed) != NTOKENS + 1:
            raise LabError('LIST returned %d lines' % len(listed))
        steps.append(('after one LIST', mem_kb(agent.pid)))

    for name, m in steps:
        print('agent %-20s VmRSS %6d KiB  VmHWM %6d KiB' % (name, m['VmRSS'], m['VmHWM']))
    rss, hwm = steps[1][1]['VmRSS'], steps[-1][1]['VmHWM']
    print('SUMMARY Agent memory with %d pending tokens (43-char tokens, 87-char key '
          'authorizations, a host each):' % NTOKENS)
    print('SUMMARY   VmRSS %d KiB (%.1f MiB) with the tokens, %d KiB after a LIST; '
          'VmHWM %d KiB (%.1f MiB); empty agent %d KiB; target < 8 MiB: %s'
          % (rss, rss / 1024, steps[2][1]['VmRSS'], hwm, hwm / 1024, steps[0][1]['VmRSS'],
             'met' if hwm < TARGET_KB else 'NOT met'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
