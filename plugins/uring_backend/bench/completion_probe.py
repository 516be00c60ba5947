#!/usr/bin/env python
"""Can a *completion-based* socket path through PyPI's ``liburing`` binding beat
epoll readiness?  A measurement, not part of the plugin.

What runs: in one process, one thread, non-blocking, a connected TCP loopback
pair (TCP_NODELAY) and, as a second case, an AF_UNIX ``socketpair``; N round
trips of 1 KiB (client sends 1 KiB, server receives and echoes it, client
receives it), one message in flight.  Variants:

* ``epoll`` -- ``select.epoll`` level-triggered, then ``recv_into``/``send``
  directly (hookloop's epoll backend + transport, minus the loop).
* ``uring_poll`` -- one-shot ``IORING_OP_POLL_ADD`` re-armed per CQE, one
  ``io_uring_submit`` per iteration, waits by ``poll(2)`` on ``ring.ring_fd``,
  then ``recv_into``/``send`` (what ``UringPoller`` does).
* ``uring_cmpl`` -- ``io_uring_prep_recv`` into preallocated bytearrays,
  ``io_uring_prep_send`` of them, every SQE of an iteration in one submit;
  CQEs via ``CqeIter`` + ``cqe[0]`` + ``cq_advance``; ``poll(2)`` on the ring fd
  only when ``io_uring_cq_ready`` is 0 (it never was, in any variant: the CQEs
  are posted by task_work on the way out of the submitting syscall).
* ``uring_cmpl_skip`` -- as above, sends with ``IOSQE_CQE_SKIP_SUCCESS`` +
  ``MSG_WAITALL`` (so a short send is retried in the kernel and a failure still
  posts a CQE): 2 CQEs per round trip instead of 4.
* ``uring_cmpl_defer`` -- as ``_skip``, ``SINGLE_ISSUER|DEFER_TASKRUN`` added to
  the ring's flags (``io_uring_submit_and_get_events`` each iteration): the best
  kernel setting.
* ``uring_hybrid`` -- recv by completion, ``sock.send()`` directly.
* ``uring_multishot`` -- one multishot recv per socket with provided buffers.
  The buffer-*ring* API of the binding is unusable, so the legacy
  ``IORING_OP_PROVIDE_BUFFERS`` is used (one 1 KiB bytearray per buffer id,
  re-provided by an SQE after each use, linked behind the send that uses it).

Run: ``python completion_probe.py all`` (about a minute and a half; or ``wall``,
``callgrind``, ``strace``, ``micro``, ``run VARIANT N [tcp|unix]``).

Results (Linux 6.18 Firecracker guest, 2 vCPU AMD EPYC, noisy; CPython 3.11.7;
liburing 2026.3.30).  Rings as the backend makes them: 64 entries,
``IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
IORING_SETUP_TASKRUN_FLAG``, ``io_uring_submit`` every iteration (as
``UringPoller.poll``); ``uring_cmpl_defer`` adds ``IORING_SETUP_SINGLE_ISSUER |
IORING_SETUP_DEFER_TASKRUN``, which the kernel accepts with the other three.
RT/s: median of 5 interleaved runs of 20,000 round trips (min..max).  us/RT
user+sys: getrusage over the same runs (tick-sampled, +-10%).  Ir/RT:
callgrind, (N=4000 - N=2000)/2000, TCP, user space only (the kernel is
invisible to valgrind); "in binding" is the inclusive cost of calls into
liburing.so, "in socket/select" that of calls into CPython's _socket/select C
code, "interpreter" the rest.  syscalls/RT: ``strace -f -c``, same subtraction,
TCP (socketpair is identical).  "binding touches/RT": Python-level
calls/attribute reads into the binding (module functions counted with
``sys.setprofile``; ``CqeIter()``, ``__next__``, ``cqe[0]``, ``.user_data``,
``.res``, ``.flags`` counted by hand).  TCP is steady from run to run (+-1%);
socketpair is bimodal (whole runs of a variant land ~7% apart, e.g. epoll at
125k or 134k), so its ratios are good to about +-0.07.

| variant          | TCP RT/s                | vs epoll | socketpair RT/s            | vs epoll |
|---|---|---|---|---|
| epoll            | 75,920 (75,280..76,351) | 1.00x    | 133,773 (130,778..134,757) | 1.00x    |
| uring_poll       | 65,990 (65,219..66,431) | 0.87x    | 107,924 (99,564..110,232)  | 0.81x    |
| uring_cmpl       | 67,678 (67,056..68,221) | 0.89x    | 110,098 (103,305..111,019) | 0.82x    |
| uring_cmpl_skip  | 68,217 (68,033..68,770) | 0.90x    | 118,540 (115,426..118,885) | 0.89x    |
| uring_cmpl_defer | 71,141 (71,126..71,666) | 0.94x    | 118,942 (115,969..119,461) | 0.89x    |
| uring_hybrid     | 67,199 (67,052..67,339) | 0.89x    | 116,544 (115,840..117,395) | 0.87x    |
| uring_multishot  | 66,877 (66,751..67,194) | 0.88x    | 111,999 (108,429..114,727) | 0.84x    |

| variant          | TCP us/RT  | Ir/RT  | interp. | binding | sock+sel | syscalls | touches |
|---|---|---|---|---|---|---|---|
| epoll            | 2.00+11.19 | 12,440 | 5,789   | 0       | 6,643    | 6 (a)    | 0 (e)   |
| uring_poll       | 3.19+11.96 | 21,883 | 15,022  | 2,929   | 3,932    | 6 (b)    | 28 (f)  |
| uring_cmpl       | 2.00+12.80 | 22,221 | 17,122  | 5,102   | 0        | 2 (c)    | 38      |
| uring_cmpl_skip  | 1.98+12.73 | 20,354 | 15,738  | 4,618   | 0        | 2 (c)    | 32      |
| uring_cmpl_defer | 1.98+12.08 | 20,529 | 15,842  | 4,681   | 0        | 2 (c)    | 32      |
| uring_hybrid     | 2.02+12.86 | 17,724 | 12,651  | 3,111   | 1,962    | 4 (d)    | 24 (g)  |
| uring_multishot  | 2.40+12.57 | 23,872 | 18,718  | 5,154   | 0        | 2 (c)    | 36      |

* TCP us/RT: user+sys.  Ir/RT: user Ir/RT, split into interp. (interpreter), binding
  (in binding) and sock+sel (in socket/select); |values| < 10 (subtraction noise) as 0.
* syscalls (per RT): (a) epoll_wait 2, recvfrom 2, sendto 2; (b) io_uring_enter 2,
  recvfrom 2, sendto 2; (c) io_uring_enter 2; (d) io_uring_enter 2, sendto 2.
* touches: binding touches/RT, plus (e) 6 socket/epoll calls, (f) 4 socket calls,
  (g) 2 socket calls.

The ring flags themselves change nothing here.  The same variants on
``IORING_SETUP_SUBMIT_ALL`` alone (the backend's old ring), interleaved with the
flags above in one process (5 x 20,000 RT each), ran within 0.5% on TCP
(uring_poll 65,507 -> 65,776 RT/s, uring_cmpl_skip 67,643 -> 67,843,
uring_cmpl_defer 70,953 -> 71,009; every variant 0.86-0.93x either way); on
socketpair the differences went both ways (-5%..+7%), as its bimodality does.
In this probe all task work is queued by the thread's own syscall (the peer
socket is in the same thread) and runs as that syscall returns, with or
without COOP_TASKRUN: no CQE was ever waited for, and nothing is interrupted.

Cost of each binding call (``micro``: timeit, best of 7, ns per call,
including CPython's call overhead; compare a C builtin call, ``len(b)``: 23):

| call                                                | ns           |
|---|---|
| io_uring_get_sqe(ring)                              | 51           |
| io_uring_prep_recv(sqe, fd, buf)                    | 62           |
| io_uring_prep_send(sqe, fd, msg[, MSG_WAITALL])     | 63 [74]      |
| io_uring_prep_poll_add                              | 60           |
| io_uring_sqe_set_data64 (``sqe.user_data =``: 24)   | 52           |
| io_uring_sqe_set_flags                              | 53           |
| get_sqe + prep_nop + submit (one io_uring_enter)    | 554          |
| (syscall) ``ep.poll(0)``, 1 fd ready                | 586          |
| io_uring_cq_ready(ring)                             | 46           |
| CqeIter(ring, cqe) + 2 x __next__ (1 CQE)           | 85           |
| cqe[0]                                              | 26           |
| .res / .user_data / .flags                          | 28 / 20 / 20 |
| io_uring_cq_advance(ring, n)                        | 55           |
| io_uring_submit(ring), nothing queued or flagged    | 47           |
| reap 1 CQE (iter + [0] + user_data + res + advance) | 218          |
| (syscall) ``poll([ring_fd], 0)``                    | 433          |

So ``uring_cmpl_skip`` spends ~1.4 us per round trip in binding calls
(4 SQEs: 2 x 230 ns for a send, 2 x 165 ns for a recv; 2 iterations x ~235 ns
of submit/cq_ready/iterate/advance; 2 CQEs x 74 ns of cqe[0]/user_data/res),
where ``epoll`` spends ~0.2 us on the Python side of its 6 C calls.

Conclusion.  No: in a Python loop the completion path has no realistic chance
of 1.2x epoll for 1 KiB ping-pong, and none reaches even 1.0x on TCP.  On the
ring the backend now uses (SUBMIT_ALL|COOP_TASKRUN|TASKRUN_FLAG) the completion
variants measure 0.88-0.90x on TCP, as on its old SUBMIT_ALL ring, and 0.94x
(TCP) / 0.89-1.01x (socketpair, by run) at best with DEFER_TASKRUN.  The flags
that lifted the backend's streams_echo from 0.63x to 0.94x remove a cost
(interrupting the process to run task work) that this probe never pays.
Completions do cut syscalls from 6 to 2 per round trip, but (1) the time is
kernel socket work, not syscall entry: ~11 of epoll's ~13 us/RT on TCP are sys,
and io_uring's kernel path is *dearer*, by ~0.8-1.7 us/RT on TCP and -0.3..+0.9
on socketpair (each recv is posted before its data exists: a failed attempt, an
internal poll arm, a wakeup, task_work, the retry;
``IORING_RECVSEND_POLL_FIRST`` would skip the attempt, but the binding cannot
set ``sqe->ioprio``); (2) the user side doubles (callgrind 12.4k -> 20-24k
Ir/RT): 24-38 binding touches/RT at 20-74 ns each (~1.4 us) replace 6 syscall
wrappers.  Even a free binding (-1.4 us) would give ~1.04x on TCP and
~1.07-1.2x on socketpair (only with DEFER_TASKRUN), *before* hookloop's own
loop/transport/protocol cost, which both paths pay and which pulls any ratio
towards 1.  Multishot recv (36 touches) and the send()-direct hybrid (24) do
not help either.  A completion transport through this binding is not worth
building; the readiness backend (0.81-0.87x here) rightly stays below epoll.

Binding findings (liburing 2026.3.30):

* The buffer-ring API is unusable: ``io_uring_setup_buf_ring(ring, n, bgid,
  flags, err)`` declares ``err`` as a Zig ``*i32`` that PyOZ converts from no
  Python object (int, None, bytearray, array, ctypes all give ``TypeError``);
  ``io_uring_register_buf_ring`` needs a ``BufReg`` that has no constructor or
  fields (NULL inside); ``io_uring_buf_ring_add`` takes immutable ``bytes``
  and const-casts it for the kernel to write into (unsafe); a ``BufRing`` is
  never freed.  Legacy ``io_uring_prep_provide_buffers(sqe, bytearray, nr,
  bgid, bid)`` works but passes ``len(bytearray)`` as the length of *each* of
  ``nr`` buffers: only ``nr=1`` is safe (the kernel would write past the end).
* ``prep_recv``/``prep_send`` take ``bytearray``/``bytes`` only (no memoryview,
  no offset or length): a short recv must be copied before it is echoed.
* ``CQE.res`` raises ``OSError`` for a negative result, so a reap loop must
  catch it per CQE or it skips the ``cq_advance``.
* **The wheel's liburing.so contains AVX-512 (EVEX, ``vmovups %zmm0``)
  instructions in ``Ring.__new__`` (and in ``Sqe.__new__``, ``Sockaddr``,
  ``Statx``, ``put_sqe``), with no CPU dispatch.**  valgrind, which has no
  AVX-512, dies with SIGILL in ``liburing.Ring()``; on an x86-64 CPU without
  AVX-512F it should do the same, killing the process inside
  ``hookloop_uring.probe()``, where no ``except`` can catch it.  For callgrind
  this script therefore loads a patched copy of the package from a temporary
  directory (``valgrindable_liburing``: the 4 zmm stores that zero
  ``struct io_uring`` replaced by AVX2 ones; start-up only, cancelled by the
  subtraction).  The PMU is not virtualised here, so ``perf`` cannot count
  instructions instead.

Not measured: many connections per iteration (where one io_uring_enter could
carry many operations, but epoll_wait batches too), larger messages (the
syscall share only shrinks).
"""
from __future__ import annotations

import os
import re
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit

import liburing as L

MSG = 1024
ENTRIES = 64
MSG_WAITALL = socket.MSG_WAITALL

# user_data tokens
RECV_S, SEND_S, RECV_C, SEND_C, PROV_S, PROV_C = 1, 2, 3, 4, 5, 6

get_sqe = L.io_uring_get_sqe
prep_recv = L.io_uring_prep_recv
prep_recv_ms = L.io_uring_prep_recv_multishot
prep_send = L.io_uring_prep_send
prep_poll_add = L.io_uring_prep_poll_add
prep_provide = L.io_uring_prep_provide_buffers
set_data64 = L.io_uring_sqe_set_data64
set_flags = L.io_uring_sqe_set_flags
set_buf_group = L.io_uring_sqe_set_buf_group
submit = L.io_uring_submit
cq_ready = L.io_uring_cq_ready
cq_advance = L.io_uring_cq_advance
CqeIter = L.CqeIter
SKIP = L.IOSQE_CQE_SKIP_SUCCESS
LINK = L.IOSQE_IO_LINK
BUFSEL = L.IOSQE_BUFFER_SELECT
F_MORE = L.IORING_CQE_F_MORE
BUF_SHIFT = L.IORING_CQE_BUFFER_SHIFT
POLLIN = select.POLLIN


# -- set-up ------------------------------------------------------------------

def make_pair(kind: str) -> tuple[socket.socket, socket.socket]:
    """(client, server), connected, non-blocking."""
    if kind == "unix":
        cli, srv = socket.socketpair()
    else:
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        cli = socket.create_connection(lst.getsockname())
        srv, _ = lst.accept()
        lst.close()
        for s in (cli, srv):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cli.setblocking(False)
    srv.setblocking(False)
    return cli, srv


#: The set-up flags of hookloop's uring backend (its ``_SETUP_FLAGS[0]``): task
#: work (which posts the CQEs) runs at the next kernel entry or exit instead of
#: interrupting the process, and is flagged in the ring (IORING_SQ_TASKRUN), so
#: that an ``io_uring_submit`` enters the kernel to run it.  Every variant
#: therefore calls ``io_uring_submit`` once per iteration, as ``UringPoller.poll``
#: does, queued SQEs or not (free when nothing is queued or flagged).
RING_FLAGS = L.IORING_SETUP_SUBMIT_ALL | L.IORING_SETUP_COOP_TASKRUN | L.IORING_SETUP_TASKRUN_FLAG
#: Added for ``uring_cmpl_defer`` (Linux 6.18 accepts it with RING_FLAGS).
DEFER = L.IORING_SETUP_SINGLE_ISSUER | L.IORING_SETUP_DEFER_TASKRUN


def open_ring(extra: int = 0) -> L.Ring:
    """A ring as hookloop's uring backend makes it (RING_FLAGS), plus `extra` flags."""
    ring = L.Ring()
    L.io_uring_queue_init(ENTRIES, ring, RING_FLAGS | extra)
    return ring


def ring_waiter(ring: L.Ring):
    p = select.poll()
    p.register(ring.ring_fd, POLLIN)
    return p.poll


# -- the variants --------------------------------------------------------------
# Each runs n round trips and returns the elapsed seconds.  The client counts a
# round trip once it has received MSG bytes back; the server echoes whatever it
# got.  Everything that is not 1 KiB at once takes a (correct, slower) path.

def v_epoll(n: int, kind: str) -> float:
    """1. epoll, level-triggered; recv_into / send directly."""
    cli, srv = make_pair(kind)
    cfd, sfd = cli.fileno(), srv.fileno()
    ep = select.epoll()
    ep.register(cfd, select.EPOLLIN)
    ep.register(sfd, select.EPOLLIN)
    poll = ep.poll
    msg = os.urandom(MSG)
    sbuf = bytearray(65536)
    smv = memoryview(sbuf)
    cbuf = bytearray(65536)
    srecv, ssend = srv.recv_into, srv.send
    crecv, csend = cli.recv_into, cli.send
    done = got = 0
    t0 = time.perf_counter()
    csend(msg)
    while done < n:
        for fd, _ev in poll(-1, 64):
            if fd == sfd:
                k = srecv(sbuf)
                if ssend(smv[:k]) != k:
                    raise RuntimeError("short send")
            else:
                got += crecv(cbuf)
                if got >= MSG:
                    got = 0
                    done += 1
                    if done < n and csend(msg) != MSG:
                        raise RuntimeError("short send")
    t = time.perf_counter() - t0
    ep.close()
    cli.close()
    srv.close()
    return t


def v_uring_poll(n: int, kind: str) -> float:
    """2. io_uring readiness: one-shot POLL_ADD re-armed per CQE (as UringPoller)."""
    cli, srv = make_pair(kind)
    cfd, sfd = cli.fileno(), srv.fileno()
    ring = open_ring()
    wait = ring_waiter(ring)
    cqe = L.Cqe()
    msg = os.urandom(MSG)
    sbuf = bytearray(65536)
    smv = memoryview(sbuf)
    cbuf = bytearray(65536)
    srecv, ssend = srv.recv_into, srv.send
    crecv, csend = cli.recv_into, cli.send
    for fd in (cfd, sfd):
        sqe = get_sqe(ring)
        prep_poll_add(sqe, fd, POLLIN)
        set_data64(sqe, fd)
    done = got = 0
    t0 = time.perf_counter()
    submit(ring)
    csend(msg)
    while done < n:
        submit(ring)  # runs flagged task work too (TASKRUN_FLAG)
        if not cq_ready(ring):
            wait(-1)
        ready = []
        k = 0
        for _ in CqeIter(ring, cqe):
            e = cqe[0]
            fd = e.user_data
            _ = e.res  # raises OSError on failure
            k += 1
            sqe = get_sqe(ring)  # re-arm at once, as UringPoller._reap does
            prep_poll_add(sqe, fd, POLLIN)
            set_data64(sqe, fd)
            ready.append(fd)
        cq_advance(ring, k)
        for fd in ready:
            if fd == sfd:
                k = srecv(sbuf)
                if ssend(smv[:k]) != k:
                    raise RuntimeError("short send")
            else:
                got += crecv(cbuf)
                if got >= MSG:
                    got = 0
                    done += 1
                    if done < n and csend(msg) != MSG:
                        raise RuntimeError("short send")
    t = time.perf_counter() - t0
    L.io_uring_queue_exit(ring)
    cli.close()
    srv.close()
    return t


def v_uring_cmpl(n: int, kind: str, skip: bool = False, defer: bool = False) -> float:
    """3. io_uring completions: RECV into a preallocated bytearray, SEND of it.

    skip=True: sends carry IOSQE_CQE_SKIP_SUCCESS and MSG_WAITALL (so a short
    send is retried by the kernel and a failure still posts a CQE).
    defer=True: the ring adds SINGLE_ISSUER|DEFER_TASKRUN (completions are run
    only when we enter the ring: io_uring_submit_and_get_events every
    iteration, io_uring_get_events after a wait) -- not something the uring
    backend could do for readiness, tried here as the best kernel setting."""
    cli, srv = make_pair(kind)
    cfd, sfd = cli.fileno(), srv.fileno()
    ring = open_ring(DEFER if defer else 0)
    submit = L.io_uring_submit_and_get_events if defer else L.io_uring_submit
    waits = 0
    wait = ring_waiter(ring)
    cqe = L.Cqe()
    msg = os.urandom(MSG)
    sbufs = (bytearray(MSG), bytearray(MSG))  # alternate: one may still be sent from
    si = 0
    cbuf = bytearray(MSG)
    sflags = MSG_WAITALL if skip else 0
    # Partial-recv copies being sent: the kernel reads them until their sends
    # complete, which they have once the client has its MSG bytes back.
    _keep: list[bytes] = []
    slen = MSG
    done = got = 0

    sqe = get_sqe(ring)
    prep_recv(sqe, sfd, sbufs[0])
    set_data64(sqe, RECV_S)
    t0 = time.perf_counter()
    sqe = get_sqe(ring)
    prep_send(sqe, cfd, msg, sflags)
    set_data64(sqe, SEND_C)
    if skip:
        set_flags(sqe, SKIP)
    sqe = get_sqe(ring)
    prep_recv(sqe, cfd, cbuf)
    set_data64(sqe, RECV_C)
    while done < n:
        submit(ring)  # runs flagged task work too (TASKRUN_FLAG)
        if not cq_ready(ring):
            waits += 1
            wait(-1 if not defer else 100)
            if defer:
                L.io_uring_get_events(ring)
        k = 0
        for _ in CqeIter(ring, cqe):
            e = cqe[0]
            ud = e.user_data
            res = e.res  # raises OSError on failure
            k += 1
            if ud == RECV_S:
                if not res:
                    raise RuntimeError("EOF")
                buf = sbufs[si]
                si ^= 1
                slen = res
                if res != MSG:
                    buf = bytes(buf[:res])
                    _keep.append(buf)
                sqe = get_sqe(ring)
                prep_send(sqe, sfd, buf, sflags)
                set_data64(sqe, SEND_S)
                if skip:
                    set_flags(sqe, SKIP)
                sqe = get_sqe(ring)
                prep_recv(sqe, sfd, sbufs[si])
                set_data64(sqe, RECV_S)
            elif ud == RECV_C:
                if not res:
                    raise RuntimeError("EOF")
                got += res
                if got >= MSG:
                    got = 0
                    done += 1
                    if _keep:
                        _keep.clear()
                    if done < n:
                        sqe = get_sqe(ring)
                        prep_send(sqe, cfd, msg, sflags)
                        set_data64(sqe, SEND_C)
                        if skip:
                            set_flags(sqe, SKIP)
                    else:
                        continue
                sqe = get_sqe(ring)
                prep_recv(sqe, cfd, cbuf)
                set_data64(sqe, RECV_C)
            elif res != (MSG if ud == SEND_C else slen):
                raise RuntimeError(f"short send {res}")
        cq_advance(ring, k)
    t = time.perf_counter() - t0
    if os.environ.get("PROBE_DEBUG"):
        print(f"waits: {waits}", file=sys.stderr)
    L.io_uring_queue_exit(ring)
    cli.close()
    srv.close()
    return t


def v_uring_cmpl_skip(n: int, kind: str) -> float:
    """3b. as 3, sends' successful CQEs skipped."""
    return v_uring_cmpl(n, kind, skip=True)


def v_uring_cmpl_defer(n: int, kind: str) -> float:
    """3d. as 3b, SINGLE_ISSUER|DEFER_TASKRUN added to the ring's flags."""
    return v_uring_cmpl(n, kind, skip=True, defer=True)


def v_uring_hybrid(n: int, kind: str) -> float:
    """3c. RECV by io_uring completion, send() directly (a send almost never waits)."""
    cli, srv = make_pair(kind)
    cfd, sfd = cli.fileno(), srv.fileno()
    ring = open_ring()
    wait = ring_waiter(ring)
    cqe = L.Cqe()
    msg = os.urandom(MSG)
    sbuf = bytearray(MSG)
    smv = memoryview(sbuf)
    cbuf = bytearray(MSG)
    ssend, csend = srv.send, cli.send
    for fd, buf, ud in ((sfd, sbuf, RECV_S), (cfd, cbuf, RECV_C)):
        sqe = get_sqe(ring)
        prep_recv(sqe, fd, buf)
        set_data64(sqe, ud)
    done = got = 0
    t0 = time.perf_counter()
    submit(ring)
    csend(msg)
    while done < n:
        submit(ring)  # runs flagged task work too (TASKRUN_FLAG)
        if not cq_ready(ring):
            wait(-1)
        k = 0
        for _ in CqeIter(ring, cqe):
            e = cqe[0]
            ud = e.user_data
            res = e.res
            k += 1
            if not res:
                raise RuntimeError("EOF")
            if ud == RECV_S:
                if ssend(smv[:res]) != res:
                    raise RuntimeError("short send")
                sqe = get_sqe(ring)
                prep_recv(sqe, sfd, sbuf)
                set_data64(sqe, RECV_S)
            else:
                got += res
                if got >= MSG:
                    got = 0
                    done += 1
                    if done >= n:
                        continue
                    if csend(msg) != MSG:
                        raise RuntimeError("short send")
                sqe = get_sqe(ring)
                prep_recv(sqe, cfd, cbuf)
                set_data64(sqe, RECV_C)
        cq_advance(ring, k)
    t = time.perf_counter() - t0
    L.io_uring_queue_exit(ring)
    cli.close()
    srv.close()
    return t


def v_uring_multishot(n: int, kind: str) -> float:
    """4. multishot RECV with *legacy* provided buffers (IORING_OP_PROVIDE_BUFFERS,
    one bytearray per buffer id), since the binding's buffer-ring API is unusable
    (see the docstring).  Sends: SKIP_SUCCESS + MSG_WAITALL, linked to the
    re-provide of the buffer they send from; re-provides: SKIP_SUCCESS."""
    cli, srv = make_pair(kind)
    cfd, sfd = cli.fileno(), srv.fileno()
    ring = open_ring()
    wait = ring_waiter(ring)
    cqe = L.Cqe()
    msg = os.urandom(MSG)
    NB = 4
    groups = {RECV_S: (sfd, 1, [bytearray(MSG) for _ in range(NB)]),
              RECV_C: (cfd, 2, [bytearray(MSG) for _ in range(NB)])}
    sbufs = groups[RECV_S][2]
    cbufs = groups[RECV_C][2]
    # Partial-recv copies being sent (SKIP_SUCCESS: no CQE says when a send is
    # done): the client having all MSG bytes back means all of them were sent.
    _keep: list[bytes] = []

    def arm(ud: int) -> None:
        fd, bgid, _ = groups[ud]
        sqe = get_sqe(ring)
        prep_recv_ms(sqe, fd, None, 0)
        set_flags(sqe, BUFSEL)
        set_buf_group(sqe, bgid)
        set_data64(sqe, ud)

    for ud, (_fd, bgid, bufs) in groups.items():
        for bid, b in enumerate(bufs):
            sqe = get_sqe(ring)
            prep_provide(sqe, b, 1, bgid, bid)
            set_data64(sqe, PROV_S)
            set_flags(sqe, SKIP)
        arm(ud)
    done = got = 0
    t0 = time.perf_counter()
    sqe = get_sqe(ring)
    prep_send(sqe, cfd, msg, MSG_WAITALL)
    set_data64(sqe, SEND_C)
    set_flags(sqe, SKIP)
    while done < n:
        submit(ring)  # runs flagged task work too (TASKRUN_FLAG)
        if not cq_ready(ring):
            wait(-1)
        k = 0
        for _ in CqeIter(ring, cqe):
            e = cqe[0]
            ud = e.user_data
            res = e.res  # ENOBUFS would raise: never happens with one message in flight
            fl = e.flags
            k += 1
            if not fl & F_MORE:
                arm(ud)
            if ud == RECV_S:
                if not res:
                    raise RuntimeError("EOF")
                bid = fl >> BUF_SHIFT
                buf = sbufs[bid]
                data = buf
                if res != MSG:
                    data = bytes(buf[:res])
                    _keep.append(data)  # alive while the kernel may read it
                sqe = get_sqe(ring)
                prep_send(sqe, sfd, data, MSG_WAITALL)
                set_data64(sqe, SEND_S)
                set_flags(sqe, SKIP | LINK)
                sqe = get_sqe(ring)
                prep_provide(sqe, buf, 1, 1, bid)
                set_data64(sqe, PROV_S)
                set_flags(sqe, SKIP)
            elif ud == RECV_C:
                if not res:
                    raise RuntimeError("EOF")
                bid = fl >> BUF_SHIFT
                sqe = get_sqe(ring)
                prep_provide(sqe, cbufs[bid], 1, 2, bid)
                set_data64(sqe, PROV_C)
                set_flags(sqe, SKIP)
                got += res
                if got >= MSG:
                    got = 0
                    done += 1
                    if _keep:
                        _keep.clear()
                    if done < n:
                        sqe = get_sqe(ring)
                        prep_send(sqe, cfd, msg, MSG_WAITALL)
                        set_data64(sqe, SEND_C)
                        set_flags(sqe, SKIP)
            else:
                raise RuntimeError(f"unexpected CQE {ud} {res}")
        cq_advance(ring, k)
    t = time.perf_counter() - t0
    L.io_uring_queue_exit(ring)
    cli.close()
    srv.close()
    return t


VARIANTS = {
    "epoll": v_epoll,
    "uring_poll": v_uring_poll,
    "uring_cmpl": v_uring_cmpl,
    "uring_cmpl_skip": v_uring_cmpl_skip,
    "uring_cmpl_defer": v_uring_cmpl_defer,
    "uring_hybrid": v_uring_hybrid,
    "uring_multishot": v_uring_multishot,
}


# -- measurements --------------------------------------------------------------

def wall(n: int, reps: int, kinds: list[str]) -> dict:
    """Median round trips/s over `reps` interleaved runs (after one warm-up each)."""
    out = {}
    for kind in kinds:
        for _name, fn in VARIANTS.items():
            fn(2000, kind)
        times = {name: [] for name in VARIANTS}
        cpu = {name: [] for name in VARIANTS}
        for _ in range(reps):
            for name, fn in VARIANTS.items():
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                times[name].append(fn(n, kind))
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                cpu[name].append((r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime))
        for name, ts in times.items():
            usr = statistics.median(u for u, _ in cpu[name]) / n * 1e6
            sys_ = statistics.median(s_ for _, s_ in cpu[name]) / n * 1e6
            out[(kind, name)] = (n / statistics.median(ts), n / min(ts), n / max(ts), usr, sys_)
    return out


def _run_child(prefix: list[str], name: str, n: int, kind: str, env: dict | None = None) -> None:
    cmd = prefix + [sys.executable, os.path.abspath(__file__), "run", name, str(n), kind]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


# The wheel's liburing.so is built with AVX-512: Ring.__new__ zeroes its
# `struct io_uring` with four EVEX `vmovups %zmm0` stores, which valgrind
# cannot decode (SIGILL).  For callgrind only, a copy of the package goes to a
# temporary directory with those 30 bytes replaced by VEX (AVX2) `vmovups
# %ymm0` stores of the same zeroes over the fields that matter (0..0x80, and
# 0xb8..0xd8 where `ring_fd` lives, which the binding's queue_init checks;
# liburing's queue_init then memsets the whole struct anyway).  Nothing on the
# measured path is touched: it is a one-off in start-up, which the N=4000 minus
# N=2000 difference cancels.  (Sqe.__new__, Sockaddr, Statx and put_sqe have
# zmm code too; none of them is used here.)
_ZMM_ZEROING = bytes.fromhex("c5f857c0" "62f17c48118098000000"
                             "62f17c4811400262f17c4811400162f17c481100")
_YMM_ZEROING = bytes.fromhex("c5f857c0" "c5fc1180b8000000" "c5fc1100" "c5fc114020"
                             "c5fc114040" "c5fc114060" "909090")


def valgrindable_liburing(dest: str) -> str:
    """Copy the installed liburing package into dest, patched as above; return dest."""
    import shutil
    src = os.path.dirname(L.__file__)
    dst = os.path.join(dest, "liburing")
    shutil.copytree(src, dst)
    so = os.path.join(dst, "liburing.so")
    data = open(so, "rb").read()
    if data.count(_ZMM_ZEROING) != 1:
        raise RuntimeError("liburing.so is not the build this patch was written for")
    open(so, "wb").write(data.replace(_ZMM_ZEROING, _YMM_ZEROING))
    return dest


def _cg_totals(path: str) -> tuple[int, dict[str, int]]:
    """(total Ir, {group: Ir}) of a callgrind output file.

    Groups: "binding" = inclusive cost of every call from outside into
    liburing.so (PyOZ argument parsing, the wrapper, liburing's inline C, and
    whatever libpython/libc work it calls back into), "socket+select" = the
    same for CPython's _socket and select modules (their C wrappers of the
    syscalls), "interpreter" = everything else (bytecode evaluation, object
    churn, ...).  Start-up is included; callers subtract two runs."""
    names: dict[str, str] = {}
    obj = "?"
    call_obj = None
    total = 0
    in_call = False
    incl: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            c0 = line[:1]
            if c0.isdigit() or c0 in "+-*":
                if in_call:
                    in_call = False
                    target = call_obj or obj
                    call_obj = None
                    if target != obj:
                        g = _short_obj(target)
                        if g != _short_obj(obj) and g != "other":
                            parts = line.split()
                            incl[g] = incl.get(g, 0) + int(parts[1])
                continue
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
            elif line.startswith(("ob=", "cob=")):
                m = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line.strip())
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    name = names.get(m.group(1), "?")
                else:
                    name = line.split("=", 1)[1].strip()
                if c0 == "o":
                    obj = name
                else:
                    call_obj = name
            elif line.startswith("calls="):
                in_call = True  # the next cost line is the call's inclusive cost
    groups = {"binding": incl.get("binding", 0), "socket+select": incl.get("socket+select", 0)}
    groups["interpreter"] = total - sum(groups.values())
    return total, groups


def _short_obj(o: str) -> str:
    b = os.path.basename(o)
    if b.startswith("liburing"):
        return "binding"
    if b.startswith(("_socket", "select")):
        return "socket+select"
    return "other"


def callgrind(names: list[str], kind: str, n1: int, n2: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, PYTHONPATH=valgrindable_liburing(d))
        for name in names:
            res = []
            for n in (n1, n2):
                f = os.path.join(d, f"cg.{name}.{n}.%p")
                _run_child(["valgrind", "--tool=callgrind", f"--callgrind-out-file={f}"],
                           name, n, kind, env)
                f = [os.path.join(d, x) for x in os.listdir(d)
                     if x.startswith(f"cg.{name}.{n}.")][0]
                res.append(_cg_totals(f))
            (t1, o1), (t2, o2) = res
            per = (t2 - t1) / (n2 - n1)
            groups = {g: (o2[g] - o1[g]) / (n2 - n1) for g in o1}
            out[name] = (per, groups)
    return out


def strace_counts(names: list[str], kind: str, n1: int, n2: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            res = []
            for n in (n1, n2):
                f = os.path.join(d, f"st.{name}.{n}")
                _run_child(["strace", "-f", "-c", "-o", f], name, n, kind)
                calls: dict[str, int] = {}
                with open(f) as fh:
                    for line in fh:
                        p = line.split()
                        if len(p) >= 5 and p[0][0].isdigit() and p[-1] != "total":
                            calls[p[-1]] = int(p[3])
                res.append(calls)
            per = {}
            for sc in set(res[0]) | set(res[1]):
                v = (res[1].get(sc, 0) - res[0].get(sc, 0)) / (n2 - n1)
                if v >= 0.01:
                    per[sc] = v
            out[name] = per
    return out


def micro() -> list[tuple[str, float]]:
    """ns per call of the binding's calls on the hot path (min of 7 repeats)."""
    ring = L.Ring()
    L.io_uring_queue_init(4096, ring, RING_FLAGS)
    cqe = L.Cqe()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    fd = a.fileno()
    buf = bytearray(MSG)
    msg = bytes(MSG)
    sqe = get_sqe(ring)
    L.io_uring_prep_nop(sqe)
    submit(ring)
    L.io_uring_wait_cqe(ring, cqe)  # one CQE left in the ring for the cqe[0] tests
    ns = globals() | dict(ring=ring, cqe=cqe, sqe=sqe, fd=fd, buf=buf, msg=msg, a=a, b=b,
                          e=cqe[0], L=L)
    rows = []

    def t(label: str, stmt: str, number: int = 200_000, setup: str = "pass") -> None:
        best = min(timeit.repeat(stmt, setup, number=number, repeat=7, globals=ns))
        rows.append((label, best / number * 1e9))

    t("(floor) empty Python loop iteration", "pass")
    t("(floor) C builtin call: len(buf)", "len(buf)")
    t("(floor) a.fileno()  (METH_NOARGS C method)", "a.fileno()")
    t("io_uring_sqe_set_data64(sqe, 7)", "set_data64(sqe, 7)")
    t("io_uring_sqe_set_flags(sqe, SKIP)", "set_flags(sqe, SKIP)")
    t("sqe.user_data = 7 (setter)", "sqe.user_data = 7")
    t("io_uring_prep_recv(sqe, fd, buf)", "prep_recv(sqe, fd, buf)")
    t("io_uring_prep_send(sqe, fd, msg)", "prep_send(sqe, fd, msg)")
    t("io_uring_prep_send(sqe, fd, msg, MSG_WAITALL)", "prep_send(sqe, fd, msg, MSG_WAITALL)")
    t("io_uring_prep_poll_add(sqe, fd, POLLIN)", "prep_poll_add(sqe, fd, POLLIN)")
    t("io_uring_cq_ready(ring)", "cq_ready(ring)")
    t("io_uring_cq_advance(ring, 0)", "cq_advance(ring, 0)")
    t("cqe[0]", "cqe[0]")
    t("e.res", "e.res")
    t("e.user_data", "e.user_data")
    t("e.flags", "e.flags")
    t("CqeIter(ring, cqe) (construct)", "CqeIter(ring, cqe)")
    t("for _ in CqeIter(ring, cqe): pass  (1 CQE ready)", "for _ in CqeIter(ring, cqe): pass")
    t("io_uring_submit(ring), nothing queued (no syscall)", "submit(ring)")

    # get_sqe: 2048 at a time, then give them back with one submit of NOPs
    def get_sqe_cost() -> float:
        best = 1e9
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(2048):
                get_sqe(ring)
            best = min(best, (time.perf_counter() - t0) / 2048)
            submit(ring)
            k = 0
            for _ in CqeIter(ring, cqe):
                k += 1
            cq_advance(ring, k)
        return best * 1e9

    # the loop overhead of 'for _ in range' is included; subtract it
    loop = min(timeit.repeat("for _ in range(2048): pass", number=100, repeat=7)) / 100 / 2048 * 1e9
    rows.append(("io_uring_get_sqe(ring)", get_sqe_cost() - loop))

    def submit_nop() -> float:
        best = 1e9
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(2000):
                s = get_sqe(ring)
                L.io_uring_prep_nop(s)
                submit(ring)
            best = min(best, (time.perf_counter() - t0) / 2000)
            k = 0
            for _ in CqeIter(ring, cqe):
                k += 1
            cq_advance(ring, k)
        return best * 1e9
    rows.append(("get_sqe + prep_nop + io_uring_submit (1 io_uring_enter)", submit_nop()))

    # one CQE: iterator step + cqe[0] + .user_data + .res + advance, the reap path
    def reap_one() -> float:
        best = 1e9
        for _ in range(7):
            s = get_sqe(ring)
            L.io_uring_prep_nop(s)
            submit(ring)
            t0 = time.perf_counter()
            for _ in range(100_000):
                it = CqeIter(ring, cqe)
                for _ in it:
                    e_ = cqe[0]
                    _ = e_.user_data
                    _ = e_.res
                cq_advance(ring, 0)  # leave the CQE there: reap it again
            best = min(best, (time.perf_counter() - t0) / 100_000)
        k = 0
        for _ in CqeIter(ring, cqe):
            k += 1
        cq_advance(ring, k)
        return best * 1e9
    rows.append(("reap 1 CQE: CqeIter + next x2 + cqe[0] + .user_data + .res + cq_advance",
                 reap_one()))

    # the syscalls that the completion path saves
    ep = select.epoll()
    ep.register(fd, select.EPOLLIN)
    b.send(b"x")
    ns.update(ep=ep, mv=memoryview(buf))
    t("(syscall) ep.poll(0) with 1 ready fd", "ep.poll(0, 64)", number=100_000)
    t("(syscall) b.send(msg) + a.recv_into(buf)  (socketpair, 1 KiB)",
      "b.send(msg); a.recv_into(buf)", number=100_000)
    pw = select.poll()
    pw.register(ring.ring_fd, POLLIN)
    ns.update(pw=pw)
    t("(syscall) poll([ring_fd], 0)", "pw.poll(0)", number=100_000)
    L.io_uring_queue_exit(ring)
    return rows


# -- driver ----------------------------------------------------------------------

def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[1] == "run":  # run VARIANT N [tcp|unix]
        name, n = argv[2], int(argv[3])
        kind = argv[4] if len(argv) > 4 else "tcp"
        t = VARIANTS[name](n, kind)
        print(f"{name} {kind} {n} round trips: {t:.3f}s, {n / t:,.0f}/s")
        return
    if len(argv) >= 2 and argv[1] == "micro":
        for label, v in micro():
            print(f"| {label} | {v:,.0f} |")
        return
    what = argv[1] if len(argv) > 1 else "all"
    names = list(VARIANTS)
    if what in ("all", "wall"):
        res = wall(20_000, 5, ["tcp", "unix"])
        print("| variant | TCP RT/s median (min..max) | vs epoll | TCP us/RT user+sys | "
              "socketpair RT/s median (min..max) | vs epoll | socketpair us/RT user+sys |")
        print("|---|---|---|---|---|---|---|")
        for name in names:
            tm, tlo, thi, tu, ts_ = res[("tcp", name)]
            um, ulo, uhi, uu, us_ = res[("unix", name)]
            print(f"| {name} | {tm:,.0f} ({thi:,.0f}..{tlo:,.0f}) "
                  f"| {tm / res[('tcp', 'epoll')][0]:.2f}x "
                  f"| {tu:.2f}+{ts_:.2f} "
                  f"| {um:,.0f} ({uhi:,.0f}..{ulo:,.0f}) | {um / res[('unix', 'epoll')][0]:.2f}x "
                  f"| {uu:.2f}+{us_:.2f} |")
    if what in ("all", "callgrind"):
        cg = callgrind(names, "tcp", 2000, 4000)
        print("| variant | user Ir/RT | interpreter | in binding calls (incl.) "
              "| in socket/select calls (incl.) |")
        print("|---|---|---|---|---|")
        for name in names:
            per, g = cg[name]
            print(f"| {name} | {per:,.0f} | {g['interpreter']:,.0f} | {g['binding']:,.0f} "
                  f"| {g['socket+select']:,.0f} |")
    if what in ("all", "strace"):
        st = strace_counts(names, "tcp", 2000, 4000)
        print("| variant | syscalls/RT | breakdown |")
        print("|---|---|---|")
        for name in names:
            per = st[name]
            br = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda x: -x[1]))
            print(f"| {name} | {sum(per.values()):.2f} | {br} |")
    if what in ("all",):
        print("| call | ns/call |")
        print("|---|---|")
        for label, v in micro():
            print(f"| {label} | {v:,.0f} |")


if __name__ == "__main__":
    main(sys.argv)
