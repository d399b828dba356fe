#!/usr/bin/env python3
"""A private Tor network on 127.0.0.1, for the solidarity integration tests.

Usage:
    python3 tests/support/tor_network.py DIR [--clients K]   (K defaults to 3)
    python3 tests/support/tor_network.py DIR --check

What it does (standard library only, Debian's /usr/sbin/tor and /usr/bin/tor-gencert):
  1. Writes into DIR the keys and torrc files of a small test network in the manner of
     torproject's chutney: 3 directory authorities (also relays, keys made with
     tor-gencert), two relays (one an exit) and K client-only tors. Every tor has
     TestingTorNetwork 1, short voting intervals, its own DataDirectory DIR/<name>,
     `Log notice file DIR/<name>/notice.log`, and only free ports on 127.0.0.1.
     Each client has a SocksPort (IsolateSOCKSAuth, the default) and a ControlPort with
     CookieAuthentication 1.
  2. Starts the relays, waits until the authorities serve a consensus that lists every
     relay, then starts the clients (like chutney's launch phases). Every tor runs with
     __OwningControllerProcess = this script's pid, so it exits by itself (within ~15 s)
     if this script is SIGKILLed. Waits, at most 180 s in all, until every client
     reports bootstrap 100 % on its control port; on time-out it exits 1 and writes on
     stderr which tor is not ready and the tail of its log.
  3. Prints one JSON line on stdout:
       {"clients":[{"socks":"127.0.0.1:P","socks_unix":"/abs/.../socks","control":"127.0.0.1:P",
                    "cookie":"/abs/.../control_auth_cookie","data_dir":"/abs/..."}, ...],
        "seconds":12.3}
  4. Then answers commands read on stdin, one line each:
       "stop N"  -> stops client N (SIGTERM, waits)            -> "ok"
       "start N" -> starts client N again (same ports/data dir),
                    waits for bootstrap 100 %                  -> "ok" or "error ..."
     End of stdin, SIGTERM or SIGINT: every tor is stopped and the script exits 0.

With --check, after step 3 it proves that onion services work end to end: client 0 makes
an ephemeral v3 onion service (ADD_ONION) in front of a local TCP echo server, and a line
is echoed back through client 1's SOCKS5 port to <id>.onion:7447. Then it exits 0.

How the Rust tests use it: a test spawns this script with a fresh temporary DIR, reads the
first stdout line (the JSON above) to learn each client's SOCKS and control addresses and
cookie file, runs its nodes against those tors, writes "stop N"/"start N" to simulate a
node's Tor going away and coming back, and closes stdin (or kills the script) at the end.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

TOR = "/usr/sbin/tor"
TOR_GENCERT = "/usr/bin/tor-gencert"
HOST = "127.0.0.1"
N_AUTHORITIES = 3
N_RELAYS = 2  # relays besides the authorities; EXIT_NAME is the exit
BOOTSTRAP_TIMEOUT = 180.0
ONION_TIMEOUT = 120.0
ONION_PORT = 7447

# Options shared by every tor of the network (after chutney's common.i).
COMMON_OPTIONS = """\
TestingTorNetwork 1
PathsNeededToBuildCircuits 0.67
V3AuthNIntervalsValid 4
ShutdownWaitLength 0
SafeLogging 0
LogTimeGranularity 1
Sandbox 0
"""

# Only for directory authorities (after chutney's authority.i). A 10 s voting interval
# (chutney uses 20) halves the wait for the first consensus that lists every relay;
# V3AuthNIntervalsValid 4 (in COMMON_OPTIONS) keeps each consensus valid for 40 s anyway,
# so one missed vote under load does not leave the clients without a consensus.
AUTHORITY_OPTIONS = """\
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
TestingDirAuthVoteExit *
TestingDirAuthVoteHSDir *
TestingDirAuthVoteGuard *
TestingMinExitFlagThreshold 0
TestingV3AuthInitialVotingInterval 10
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
V3AuthVotingInterval 10
V3AuthVoteDelay 2
V3AuthDistDelay 2
"""

# For every relay (authorities included): reachable at once, never an exit...
RELAY_OPTIONS = """\
Address 127.0.0.1
AssumeReachable 1
ExitRelay 0
ExitPolicy reject *:*
SocksPort 0
"""

# ...but one: an exit, through which an onion-only node reaches a clearnet member of the
# test. Everything is on 127.0.0.1 anyway; a policy of 127.0.0.1 alone would summarise as
# "reject all" in the microdescriptors, and clients would find no exit.
EXIT_NAME = "relay0"
EXIT_RELAY_OPTIONS = """\
Address 127.0.0.1
AssumeReachable 1
ExitRelay 1
ExitPolicyRejectPrivate 0
ExitPolicyRejectLocalInterfaces 0
ExitPolicy accept *:*
SocksPort 0
"""


def log(msg):
    print("tor_network: " + msg, file=sys.stderr, flush=True)


def free_port():
    """A port that was free on 127.0.0.1 a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def tail(path, lines=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return "(no log: %s)\n" % e


class Node:
    """One tor process of the network: its name, data directory, ports and process."""

    def __init__(self, root, name, kind):
        self.name = name
        self.kind = kind  # "authority", "relay" or "client"
        self.dir = os.path.abspath(os.path.join(root, name))
        self.torrc = os.path.join(self.dir, "torrc")
        self.log = os.path.join(self.dir, "notice.log")
        self.proc = None
        self.or_port = free_port() if kind != "client" else None
        self.dir_port = free_port() if kind == "authority" else None
        self.socks_port = free_port() if kind == "client" else None
        self.control_port = free_port() if kind == "client" else None
        self.cookie = os.path.join(self.dir, "control_auth_cookie")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)

    def fingerprint(self):
        """Make the relay identity key and return its RSA fingerprint (40 hex digits)."""
        subprocess.run(
            [TOR, "--ignore-missing-torrc", "-f", os.devnull, "--defaults-torrc", os.devnull,
             "--DataDirectory", self.dir, "--ORPort", "1", "--Nickname", self.name,
             "--Log", "err stderr", "--list-fingerprint"],
            check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "fingerprint")) as f:
            return f.read().split()[1]

    def make_authority_keys(self):
        """Create the v3 authority identity, signing key and certificate; return v3ident."""
        keys = os.path.join(self.dir, "keys")
        os.makedirs(keys, mode=0o700, exist_ok=True)
        cert = os.path.join(keys, "authority_certificate")
        subprocess.run(
            [TOR_GENCERT, "--create-identity-key", "--passphrase-fd", "0",
             "-i", os.path.join(keys, "authority_identity_key"),
             "-s", os.path.join(keys, "authority_signing_key"),
             "-c", cert, "-m", "12", "-a", "%s:%d" % (HOST, self.dir_port)],
            input=b"\n", check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(cert) as f:
            for line in f:
                if line.startswith("fingerprint "):
                    return line.split()[1]
        raise RuntimeError("no fingerprint in " + cert)

    def write_torrc(self, dir_authorities):
        lines = [
            "Nickname " + self.name,
            "DataDirectory " + self.dir,
            "Log notice file " + self.log,
            "PidFile " + os.path.join(self.dir, "pid"),
            "__OwningControllerProcess %d" % os.getpid(),
            COMMON_OPTIONS, dir_authorities,
        ]
        if self.kind == "client":
            lines += [
                "SocksPort %s:%d" % (HOST, self.socks_port),
                "SocksPort unix:" + os.path.join(self.dir, "socks"),
                "ControlPort %s:%d" % (HOST, self.control_port),
                "CookieAuthentication 1",
                "CookieAuthFile " + self.cookie,
            ]
        else:
            options = EXIT_RELAY_OPTIONS if self.name == EXIT_NAME else RELAY_OPTIONS
            lines += [options, "ORPort %s:%d" % (HOST, self.or_port),
                      "ContactInfo %s@test.invalid" % self.name]
        if self.kind == "authority":
            lines += [AUTHORITY_OPTIONS, "DirPort %s:%d" % (HOST, self.dir_port)]
        with open(self.torrc, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        out = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(
            [TOR, "-f", self.torrc, "--defaults-torrc", os.devnull],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)  # no terminal signals: we stop it ourselves
        out.close()

    def stop(self, timeout=10.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def describe(self):
        return {"socks": "%s:%d" % (HOST, self.socks_port),
                "socks_unix": os.path.join(self.dir, "socks"),
                "control": "%s:%d" % (HOST, self.control_port),
                "cookie": self.cookie, "data_dir": self.dir}


class Control:
    """A minimal Tor control-port client (cookie authentication)."""

    def __init__(self, port, cookie_path, timeout=10.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.command("PROTOCOLINFO 1")
        with open(cookie_path, "rb") as f:
            cookie = f.read()
        self.command("AUTHENTICATE " + cookie.hex())

    def command(self, line):
        """Send one command; return the reply lines (without status codes). Raise on error."""
        self.sock.sendall(line.encode() + b"\r\n")
        replies = []
        while True:
            raw = self.file.readline()
            if not raw:
                raise ConnectionError("control connection closed")
            text = raw.decode(errors="replace").rstrip("\r\n")
            code, sep, rest = text[:3], text[3:4], text[4:]
            if code.startswith("6"):  # asynchronous event: not a reply
                continue
            if not code.startswith("2"):
                raise RuntimeError("%s -> %s" % (line.split()[0], text))
            if sep == "+":  # data block ends with a lone "."
                while True:
                    data = self.file.readline().decode(errors="replace").rstrip("\r\n")
                    if data == ".":
                        break
                    rest += "\n" + data
            replies.append(rest)
            if sep == " ":
                return replies

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def bootstrap_progress(node):
    """The client's bootstrap percentage, or -1 if its control port does not answer."""
    try:
        ctl = Control(node.control_port, node.cookie, timeout=3.0)
    except (OSError, RuntimeError):
        return -1
    try:
        reply = ctl.command("GETINFO status/bootstrap-phase")[0]
        for word in reply.split():
            if word.startswith("PROGRESS="):
                return int(word[len("PROGRESS="):])
        return -1
    except (OSError, RuntimeError, ValueError):
        return -1
    finally:
        ctl.close()


def consensus_size(authority):
    """How many relays the authority's current microdesc consensus lists (0 if none)."""
    try:
        conn = http.client.HTTPConnection(HOST, authority.dir_port, timeout=3)
        conn.request("GET", "/tor/status-vote/current/consensus-microdesc")
        response = conn.getresponse()
        body = response.read()
        conn.close()
    except (OSError, http.client.HTTPException):
        return 0
    if response.status != 200:
        return 0
    return sum(1 for line in body.split(b"\n") if line.startswith(b"r "))


def wait_consensus(net, deadline):
    """Wait until every authority has a consensus listing every relay; None or an error.

    Clients are started only then (as chutney's launch phase 2 does): a client that asks
    too early gets 404s and backs off, and one that gets a consensus of fewer than 3
    relays cannot build circuits until its next consensus fetch, a minute later."""
    pending = list(net.authorities)
    while pending:
        err = exited(net.authorities + net.relays)
        if err is not None:
            return err
        relays = len(net.authorities) + len(net.relays)
        pending = [a for a in pending if consensus_size(a) < relays]
        if pending and time.monotonic() > deadline:
            a = pending[0]
            return "%s has no consensus listing all %d relays yet; log tail:\n%s" % (
                a.name, relays, tail(a.log))
        time.sleep(0.5)
    return None


def exited(nodes):
    """An error text naming the first of these tors that is not running, or None."""
    for node in nodes:
        if not node.running():
            return "%s exited early (code %s); log tail:\n%s" % (
                node.name, node.proc and node.proc.returncode,
                tail(node.log) + tail(os.path.join(node.dir, "stdout.log")))
    return None


def wait_bootstrapped(net, clients, timeout):
    """Wait until these clients are at 100 %; return None, or an error text naming the laggard.

    Only the relays and these clients must stay up (another client may be stopped)."""
    deadline = time.monotonic() + timeout
    pending = list(clients)
    while pending:
        err = exited(net.authorities + net.relays + pending)
        if err is not None:
            return err
        pending = [c for c in pending if bootstrap_progress(c) < 100]
        if not pending:
            return None
        if time.monotonic() > deadline:
            c = pending[0]
            return "%s not bootstrapped after %.0f s (at %d %%); log tail:\n%s" % (
                c.name, timeout, bootstrap_progress(c), tail(c.log))
        time.sleep(0.5)
    return None


class Network:
    def __init__(self, root, n_clients):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self.authorities = [Node(self.root, "auth%d" % i, "authority")
                            for i in range(N_AUTHORITIES)]
        self.relays = [Node(self.root, "relay%d" % i, "relay") for i in range(N_RELAYS)]
        self.clients = [Node(self.root, "client%d" % i, "client") for i in range(n_clients)]
        self.nodes = self.authorities + self.relays + self.clients

    def configure(self):
        lines = []
        for a in self.authorities:
            v3ident = a.make_authority_keys()
            lines.append("DirAuthority %s orport=%d no-v2 v3ident=%s %s:%d %s" % (
                a.name, a.or_port, v3ident, HOST, a.dir_port, a.fingerprint()))
        dir_authorities = "\n".join(lines)
        for node in self.nodes:
            node.write_torrc(dir_authorities)

    def start_relays(self):
        for node in self.authorities + self.relays:
            node.start()

    def start_clients(self):
        for node in self.clients:
            node.start()

    def stop(self):
        for node in self.nodes:  # SIGTERM everyone first, then wait for each
            if node.running():
                node.proc.terminate()
        for node in self.nodes:
            node.stop()


# ---------------------------------------------------------------- onion check

def echo_server():
    """A TCP echo server on 127.0.0.1 in a daemon thread; returns its port."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((HOST, 0))
    srv.listen(8)

    def serve(conn):
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)

    def accept_loop():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return srv.getsockname()[1]


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("SOCKS proxy closed the connection")
        data += chunk
    return data


def socks5_connect(proxy_port, host, port, username=None, password=None, timeout=60.0):
    """Open a TCP connection to host:port (by name) through a SOCKS5 proxy on 127.0.0.1."""
    sock = socket.create_connection((HOST, proxy_port), timeout=timeout)
    try:
        method = 0x02 if username is not None else 0x00
        sock.sendall(bytes([5, 1, method]))
        ver, chosen = recv_exact(sock, 2)
        if ver != 5 or chosen != method:
            raise ConnectionError("SOCKS5 method refused (%d)" % chosen)
        if method == 0x02:
            u, p = username.encode(), password.encode()
            sock.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
            if recv_exact(sock, 2)[1] != 0:
                raise ConnectionError("SOCKS5 authentication refused")
        name = host.encode()
        sock.sendall(bytes([5, 1, 0, 3, len(name)]) + name + port.to_bytes(2, "big"))
        ver, rep, _, atyp = recv_exact(sock, 4)
        if rep != 0:
            raise ConnectionError("SOCKS5 CONNECT failed, reply code 0x%02x" % rep)
        addr_len = {1: 4, 4: 16}.get(atyp) or recv_exact(sock, 1)[0]
        recv_exact(sock, addr_len + 2)
        return sock
    except BaseException:
        sock.close()
        raise


def check_onion(net):
    """Publish an onion service on client 0 and reach it through client 1. Return seconds."""
    if len(net.clients) < 2:
        raise RuntimeError("--check needs at least 2 clients")
    host, reach = net.clients[0], net.clients[1]
    echo_port = echo_server()
    start = time.monotonic()
    ctl = Control(host.control_port, host.cookie)
    try:
        reply = ctl.command("ADD_ONION NEW:ED25519-V3 Flags=DiscardPK Port=%d,%s:%d"
                            % (ONION_PORT, HOST, echo_port))
        service_id = next(r.split("=", 1)[1] for r in reply if r.startswith("ServiceID="))
        onion = service_id + ".onion"
        log("onion service %s added on %s" % (onion, host.name))
        deadline = start + ONION_TIMEOUT
        attempt = 0
        while True:
            attempt += 1
            try:
                # a fresh SOCKS username per attempt: a fresh circuit (IsolateSOCKSAuth)
                with socks5_connect(reach.socks_port, onion, ONION_PORT,
                                    "check", "attempt%d" % attempt) as s:
                    s.sendall(b"hello onion\n")
                    s.settimeout(30)
                    got = b""
                    while not got.endswith(b"\n"):
                        chunk = s.recv(100)
                        if not chunk:
                            break
                        got += chunk
                    if got != b"hello onion\n":
                        raise ConnectionError("echo returned %r" % got)
                break
            except (OSError, ConnectionError) as e:
                if time.monotonic() > deadline:
                    raise RuntimeError("onion not reachable after %.0f s: %s"
                                       % (ONION_TIMEOUT, e))
                log("attempt %d: %s" % (attempt, e))
                time.sleep(1.0)
        return time.monotonic() - start, attempt
    finally:
        ctl.close()


# ---------------------------------------------------------------- command loop

def handle(net, line):
    words = line.split()
    if len(words) != 2 or words[0] not in ("stop", "start") or not words[1].isdigit():
        return "error unknown command: " + line.strip()
    n = int(words[1])
    if n >= len(net.clients):
        return "error no client %d" % n
    client = net.clients[n]
    if words[0] == "stop":
        client.stop()
        return "ok"
    if not client.running():
        client.start()
    err = wait_bootstrapped(net, [client], BOOTSTRAP_TIMEOUT)
    return "ok" if err is None else "error " + err.splitlines()[0]


class Stop(Exception):
    pass


def on_signal(signum, frame):
    raise Stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    net = Network(args.dir, args.clients)
    code = 0
    try:
        t0 = time.monotonic()
        net.configure()
        net.start_relays()
        err = wait_consensus(net, t0 + BOOTSTRAP_TIMEOUT)
        if err is None:
            net.start_clients()
            err = wait_bootstrapped(net, net.clients,
                                    BOOTSTRAP_TIMEOUT - (time.monotonic() - t0))
        if err is not None:
            log(err)
            return 1
        seconds = round(time.monotonic() - t0, 1)
        print(json.dumps({"clients": [c.describe() for c in net.clients],
                          "seconds": seconds}), flush=True)
        log("%d tor processes, clients bootstrapped in %.1f s" % (len(net.nodes), seconds))
        if args.check:
            took, attempts = check_onion(net)
            log("onion publication + first connect took %.1f s (%d attempts)"
                % (took, attempts))
            print(json.dumps({"check": "ok", "bootstrap_seconds": seconds,
                              "onion_seconds": round(took, 1), "attempts": attempts}),
                  flush=True)
            return 0
        for line in sys.stdin:
            if line.strip():
                print(handle(net, line), flush=True)
    except Stop:
        pass
    except Exception as e:  # report, stop the network, fail
        log("error: %s" % e)
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        net.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
