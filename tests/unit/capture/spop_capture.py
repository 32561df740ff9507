#!/usr/bin/env python3
"""Capture the SPOP frames the installed HAProxy sends (normal HELLO,
spop-check HELLO, NOTIFY, and the DISCONNECT of `timeout idle`) on loopback,
and print them as hex. Not a test: run it by hand to refresh the golden
frames of tests/unit/test_session.c (python3 spop_capture.py [haproxy]).
Loopback only, random free ports; it stops the haproxy it started."""
import os, shutil, socket, subprocess, sys, tempfile, threading, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def venc(v):
    # HAProxy's varint (intops.h encode_varint)
    if v < 240:
        return bytes([v])
    out = bytearray([(v & 0xff) | 0xF0]); v = (v - 240) >> 4
    while v >= 128:
        out.append((v & 0xff) | 0x80); v = (v - 128) >> 7
    out.append(v)
    return bytes(out)

def vdec(b, i):
    x = b[i]; i += 1
    if x < 240:
        return x, i
    shift = 4
    while True:
        c = b[i]; i += 1
        x += c << shift; shift += 7
        if c < 128:
            return x, i

def s(x):
    x = x.encode() if isinstance(x, str) else x
    return venc(len(x)) + x

def frame(typ, sid, fid, payload):
    body = bytes([typ]) + b"\0\0\0\1" + venc(sid) + venc(fid) + payload
    return len(body).to_bytes(4, "big") + body

def recv_frame(c):
    hdr = b""
    while len(hdr) < 4:
        d = c.recv(4 - len(hdr))
        if not d:
            return None
        hdr += d
    n = int.from_bytes(hdr, "big"); body = b""
    while len(body) < n:
        d = c.recv(n - len(body))
        if not d:
            return None
        body += d
    return hdr + body

HAPROXY = sys.argv[1] if len(sys.argv) > 1 else (shutil.which("haproxy") or "/usr/sbin/haproxy")
got = {}
lock = threading.Lock()

def serve(c):
    with c:
        while True:
            f = recv_frame(c)
            if f is None:
                return
            t = f[4]
            if t == 1:
                hc = b"healthcheck" in f
                with lock:
                    got.setdefault("hello_check" if hc else "hello", f)
                caps = b"" if hc else b"pipelining"
                c.sendall(frame(101, 0, 0, s("version") + b"\x08" + s("2.0") +
                    s("max-frame-size") + b"\x03" + venc(16380) +
                    s("capabilities") + b"\x08" + s(caps)))
                if hc:
                    return
            elif t == 3:
                with lock:
                    got.setdefault("notify", f)
                i = 9
                sid, i = vdec(f, i); fid, i = vdec(f, i)
                c.sendall(frame(103, sid, fid, b"\x01\x03\x02" + s("keyauth") +
                    b"\x08" + s("sometoken.thumb")))
            elif t == 2:
                with lock:
                    got.setdefault("disconnect", f)
                c.sendall(frame(102, 0, 0, s("status-code") + b"\x03\x00" +
                    s("message") + b"\x08\x00"))
                return

def main():
    aport, hport = free_port(), free_port()
    lsock = socket.socket(); lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", aport)); lsock.listen(16)
    def acceptor():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=acceptor, daemon=True).start()
    d = tempfile.mkdtemp(prefix="spopcap-")
    spoe = os.path.join(d, "spoe.conf"); cfg = os.path.join(d, "haproxy.cfg")
    open(spoe, "w").write(f"""[acme]
spoe-agent acme-agent
    messages acme-challenge
    option var-prefix acme
    option set-on-error err
    timeout hello 2s
    timeout idle 1s
    timeout processing 500ms
    use-backend be_agent

spoe-message acme-challenge
    args path=path host=req.fhdr(host) src=src
    event on-frontend-http-request if {{ path_beg /.well-known/acme-challenge/ }}
""")
    open(cfg, "w").write(f"""global
    nbthread 1
defaults
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe_http
    mode http
    bind 127.0.0.1:{hport}
    filter spoe engine acme config {spoe}
    http-request return status 200 content-type text/plain lf-string "%[var(txn.acme.keyauth)]" if {{ var(txn.acme.keyauth) -m found }}
    http-request return status 404
backend be_agent
    mode tcp
    option spop-check
    server a1 127.0.0.1:{aport} check inter 1s
""")
    hp = subprocess.Popen([HAPROXY, "-db", "-f", cfg],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", hport), 0.2).close(); break
            except OSError:
                time.sleep(0.05)
        body = subprocess.run(["curl", "-s", "-H", "Host: example.com",
            f"http://127.0.0.1:{hport}/.well-known/acme-challenge/sometoken"],
            capture_output=True, timeout=10).stdout
        print("# curl body:", body, file=sys.stderr)
        while time.time() < deadline:
            with lock:
                if all(k in got for k in ("hello", "hello_check", "notify", "disconnect")):
                    break
            time.sleep(0.05)
    finally:
        hp.terminate(); hp.wait()
        lsock.close()
    shutil.rmtree(d, ignore_errors=True)
    print("# " + subprocess.run([HAPROXY, "-v"], capture_output=True,
                                text=True).stdout.splitlines()[0])
    for k in ("hello", "hello_check", "notify", "disconnect"):
        if k in got:
            print(k, got[k].hex())

main()
