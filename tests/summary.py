#!/usr/bin/env python3
"""Reads meson's testlog.json and prints every test's TAP results and one
last line 'N passed, N failed' that counts every check of every test run
(unit, fuzz-corpus replay, integration). A test that printed no TAP counts
as one check with its own result; a test that crashed or timed out after
some TAP lines counts as one more failure."""
import json
import re
import sys

log = sys.argv[1] if len(sys.argv) > 1 else 'build/meson-logs/testlog.json'
passed = failed = skipped = 0
bad = []
with open(log) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        t = json.loads(line)
        name = t.get('name', '?')
        result = t.get('result', 'FAIL')
        out = t.get('stdout') or ''
        p = f_ = s = 0
        for l in out.splitlines():
            if re.match(r'^ok \d+', l):
                if re.search(r'#\s*skip', l, re.I):
                    s += 1
                else:
                    p += 1
            elif re.match(r'^not ok \d+', l):
                if re.search(r'#\s*todo', l, re.I):
                    s += 1
                else:
                    f_ += 1
                    bad.append('%s: %s' % (name, l))
        if p + f_ + s == 0:
            if result in ('OK', 'EXPECTEDFAIL'):
                p = 1
            elif result == 'SKIP':
                s = 1
            else:
                f_ = 1
                bad.append('%s: %s' % (name, result))
        elif result not in ('OK', 'SKIP', 'EXPECTEDFAIL') and f_ == 0:
            f_ += 1
            bad.append('%s: %s after its checks' % (name, result))
        passed += p
        failed += f_
        skipped += s
for b in bad:
    print('FAILED ' + b)
line = '%d passed, %d failed' % (passed, failed)
if skipped:
    line += ', %d skipped' % skipped
print(line)
sys.exit(1 if failed else 0)
