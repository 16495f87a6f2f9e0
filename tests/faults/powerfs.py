"""powerfs: a FUSE filesystem for tests whose un-fsynced state is lost on a "power cut".

SIGKILL of a process cannot show a missing fsync: the kernel page cache survives it. powerfs
keeps the page cache in its own process instead, so killing that process is a power loss:

* Every file and directory lives in memory (the volatile view every reader sees at once).
* ``fsync``/``fdatasync`` of a file copies that file's current bytes (and length) to the durable
  store: ``<backing>/data/<inode>``.
* ``fsync`` of a directory (``fsyncdir``) makes that directory's current entries (names ->
  inodes) durable: ``<backing>/tree.json``, replaced atomically.
* A file's *name* is durable once its parent directory was fsynced after the name appeared; its
  *contents* once the file itself was fsynced. A file named durably but never fsynced comes back
  empty; a renamed file whose directory was not fsynced comes back under its old name; an
  unlinked file whose directory was not fsynced comes back.
* ``PowerFS.cut()`` SIGKILLs the server (all volatile state vanishes with its memory), detaches
  the mount, and ``PowerFS.mount()`` serves the durable state again. ``cut(partial_seed=N)``
  first writes back a seeded random part of the volatile state (512-byte sectors, file lengths,
  whole directories), as a disk that flushed some dirty pages before the power went.

The durable store is updated with plain writes: it survives the death of the powerfs process,
not a real power loss of the host (tests never need that). See docs/faults.md for the model and
its limits. Fault knobs, set at run time over the control socket: ``fsync_delay`` (seconds
slept in every file fsync, before it takes effect) and ``fail_fsyncs`` (the next N file fsyncs
with dirty data fail with EIO the way Linux fails them: reported once, the dirty pages marked
clean, their new contents dropped or, with ``pages="keep"``, still served from the cache).

Server:  python tests/faults/powerfs.py --backing DIR --mountpoint DIR --control SOCKET
Client:  ``PowerFS(backing, mountpoint)`` below (start/cut/remount/stop, set, stats).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT_INO = 1
SECTOR = 512
_TREE = "tree.json"
_DATA = "data"


# --------------------------------------------------------------------------------------------
# Server side (runs in its own process; imports mfusepy only there)
# --------------------------------------------------------------------------------------------


class _Node:
    __slots__ = (
        "data", "dirty", "durable_entries", "durable_refs", "entries", "fsync_lock", "ino",
        "is_dir", "links", "mode", "mtime", "opens",
    )  # fmt: skip

    def __init__(self, ino: int, is_dir: bool, mode: int) -> None:
        self.ino = ino
        self.is_dir = is_dir
        self.mode = mode
        self.data = bytearray()  # files: current (volatile) contents
        self.dirty: list[tuple[int, int]] = []  # files: ranges differing from the durable copy
        self.entries: dict[str, int] = {}  # dirs: current entries
        self.durable_entries: dict[str, int] = {}  # dirs: entries as of the last fsyncdir
        self.links = 0  # current names pointing here
        self.durable_refs = 0  # durable names pointing here
        self.opens = 0
        self.mtime = time.time_ns()
        self.fsync_lock = threading.Lock()


def _mark(node: _Node, start: int, end: int) -> None:
    if end <= start:
        return
    dirty = node.dirty
    if dirty and dirty[-1][1] >= start and dirty[-1][0] <= end:  # the common append case
        a, b = dirty[-1]
        dirty[-1] = (min(a, start), max(b, end))
    else:
        dirty.append((start, end))
    if len(dirty) > 64:
        dirty.sort()
        merged = [dirty[0]]
        for a, b in dirty[1:]:
            if a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        node.dirty = merged


def make_operations(backing: Path) -> Any:
    import mfusepy
    from mfusepy import FuseOSError

    def fail(code: int) -> FuseOSError:
        return FuseOSError(code)

    class PowerOps(mfusepy.Operations):  # type: ignore[misc]
        use_ns = True

        def __init__(self) -> None:
            self._mu = threading.RLock()
            self.backing = backing
            (backing / _DATA).mkdir(parents=True, exist_ok=True)
            self.nodes: dict[int, _Node] = {}
            self.handles: dict[int, int] = {}
            self.next_fh = 1
            self.fsync_delay = 0.0
            self.fail_fsyncs = 0  # the next N file fsyncs that have dirty data fail with EIO
            self.fail_fsync_pages = "drop"  # what a failed fsync does to the dirty pages
            self.counters = {
                "fsyncs": 0, "fsyncdirs": 0, "writes": 0, "bytes_written": 0, "failed_fsyncs": 0,
            }  # fmt: skip
            self._load()

        # ---- durable store ---------------------------------------------------------------
        def _load(self) -> None:
            tree_path = self.backing / _TREE
            tree = json.loads(tree_path.read_text()) if tree_path.exists() else {}
            raw = tree.get("nodes", {str(ROOT_INO): {"dir": True, "mode": 0o755, "entries": {}}})
            for key, info in raw.items():
                node = _Node(int(key), info["dir"], info["mode"])
                if node.is_dir:
                    node.entries = {k: int(v) for k, v in info["entries"].items()}
                    node.durable_entries = dict(node.entries)
                else:
                    path = self.backing / _DATA / key
                    node.data = bytearray(path.read_bytes()) if path.exists() else bytearray()
                self.nodes[node.ino] = node
            for node in list(self.nodes.values()):
                for ino in node.entries.values():
                    child = self.nodes[ino]
                    child.links += 1
                    child.durable_refs += 1
            # Data of inodes not reachable durably (fsynced, never named durably) is gone.
            for f in (self.backing / _DATA).iterdir():
                if not f.name.isdigit() or int(f.name) not in self.nodes:
                    f.unlink()
            self.next_ino = max(self.nodes) + 1

        def _save_tree(self) -> None:
            """Write the durable graph (reachable from the root by durable entries)."""
            out: dict[str, Any] = {}
            stack = [ROOT_INO]
            while stack:
                node = self.nodes[stack.pop()]
                if str(node.ino) in out:
                    continue
                info: dict[str, Any] = {"dir": node.is_dir, "mode": node.mode}
                if node.is_dir:
                    info["entries"] = dict(node.durable_entries)
                    stack.extend(node.durable_entries.values())
                out[str(node.ino)] = info
            tmp = self.backing / (_TREE + ".tmp")
            tmp.write_text(json.dumps({"nodes": out}))
            os.replace(tmp, self.backing / _TREE)

        # ---- helpers ------------------------------------------------------------------------
        def _resolve(self, path: str) -> _Node:
            node = self.nodes[ROOT_INO]
            for part in path.split("/"):
                if not part:
                    continue
                if not node.is_dir:
                    raise fail(errno.ENOTDIR)
                ino = node.entries.get(part)
                if ino is None:
                    raise fail(errno.ENOENT)
                node = self.nodes[ino]
            return node

        def _parent(self, path: str) -> tuple[_Node, str]:
            head, _, name = path.rstrip("/").rpartition("/")
            parent = self._resolve(head or "/")
            if not parent.is_dir:
                raise fail(errno.ENOTDIR)
            return parent, name

        def _node(self, path: str | None, fh: int | None) -> _Node:
            if fh:
                ino = self.handles.get(fh)
                if ino is not None and ino in self.nodes:
                    return self.nodes[ino]
            if path is None:
                raise fail(errno.EBADF)
            return self._resolve(path)

        def _maybe_forget(self, node: _Node) -> None:
            if node.ino != ROOT_INO and not (node.links or node.opens or node.durable_refs):
                del self.nodes[node.ino]
                with contextlib.suppress(FileNotFoundError):
                    (self.backing / _DATA / str(node.ino)).unlink()

        def _new(self, is_dir: bool, mode: int) -> _Node:
            node = _Node(self.next_ino, is_dir, mode)
            self.next_ino += 1
            self.nodes[node.ino] = node
            return node

        def _open_fh(self, node: _Node) -> int:
            fh = self.next_fh
            self.next_fh += 1
            self.handles[fh] = node.ino
            node.opens += 1
            return fh

        def _drop_link(self, parent: _Node, name: str) -> None:
            child = self.nodes[parent.entries.pop(name)]
            child.links -= 1
            self._maybe_forget(child)

        # ---- metadata -----------------------------------------------------------------------
        def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
            with self._mu:
                node = self._node(path, fh)
                kind = stat.S_IFDIR if node.is_dir else stat.S_IFREG
                nlink = 2 + sum(self.nodes[i].is_dir for i in node.entries.values()) \
                    if node.is_dir else max(node.links, 0)  # fmt: skip
                size = 4096 if node.is_dir else len(node.data)
                return {
                    "st_mode": kind | (node.mode & 0o7777), "st_nlink": nlink, "st_size": size,
                    "st_uid": os.getuid(), "st_gid": os.getgid(), "st_blocks": (size + 511) // 512,
                    "st_atime": node.mtime, "st_mtime": node.mtime, "st_ctime": node.mtime,
                }  # fmt: skip

        def access(self, path: str, amode: int) -> int:
            with self._mu:
                self._resolve(path)
            return 0

        def chmod(self, path: str, mode: int) -> int:
            with self._mu:
                self._resolve(path).mode = mode & 0o7777
            return 0

        def chown(self, path: str, uid: int, gid: int) -> int:
            return 0

        def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
            with self._mu:
                self._resolve(path).mtime = times[1] if times else time.time_ns()
            return 0

        def statfs(self, path: str) -> dict[str, int]:
            sv = os.statvfs(self.backing)
            keys = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                    "f_ffree", "f_favail", "f_namemax")  # fmt: skip
            return {k: getattr(sv, k) for k in keys}

        # ---- directories --------------------------------------------------------------------
        def readdir(self, path: str, fh: int) -> list[str]:
            with self._mu:
                node = self._node(path, fh)
                return [".", "..", *node.entries]

        def opendir(self, path: str) -> int:
            with self._mu:
                node = self._resolve(path)
                if not node.is_dir:
                    raise fail(errno.ENOTDIR)
                return self._open_fh(node)

        def releasedir(self, path: str | None, fh: int) -> int:
            return self.release(path, fh)

        def mkdir(self, path: str, mode: int) -> int:
            with self._mu:
                parent, name = self._parent(path)
                if name in parent.entries:
                    raise fail(errno.EEXIST)
                node = self._new(True, mode & 0o7777)
                parent.entries[name] = node.ino
                node.links = 1
                parent.mtime = time.time_ns()
            return 0

        def rmdir(self, path: str) -> int:
            with self._mu:
                parent, name = self._parent(path)
                node = self._resolve(path)
                if not node.is_dir:
                    raise fail(errno.ENOTDIR)
                if node.entries:
                    raise fail(errno.ENOTEMPTY)
                self._drop_link(parent, name)
            return 0

        def unlink(self, path: str) -> int:
            with self._mu:
                parent, name = self._parent(path)
                node = self._resolve(path)
                if node.is_dir:
                    raise fail(errno.EISDIR)
                self._drop_link(parent, name)
                parent.mtime = time.time_ns()
            return 0

        def rename(self, old: str, new: str) -> int:
            with self._mu:
                src_parent, src_name = self._parent(old)
                node = self._resolve(old)
                dst_parent, dst_name = self._parent(new)
                existing = dst_parent.entries.get(dst_name)
                if existing == node.ino:
                    return 0
                if existing is not None:
                    target = self.nodes[existing]
                    if target.is_dir and (not node.is_dir or target.entries):
                        raise fail(errno.ENOTEMPTY if node.is_dir else errno.EISDIR)
                    if node.is_dir and not target.is_dir:
                        raise fail(errno.ENOTDIR)
                    self._drop_link(dst_parent, dst_name)
                del src_parent.entries[src_name]
                dst_parent.entries[dst_name] = node.ino
                src_parent.mtime = dst_parent.mtime = time.time_ns()
            return 0

        def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
            with self._mu:
                node = self._node(path, fh)
                if not node.is_dir:
                    raise fail(errno.ENOTDIR)
                old = node.durable_entries
                node.durable_entries = dict(node.entries)
                for ino in node.durable_entries.values():
                    self.nodes[ino].durable_refs += 1
                for ino in old.values():
                    child = self.nodes.get(ino)
                    if child is not None:
                        child.durable_refs -= 1
                        self._maybe_forget(child)
                self._save_tree()
                self.counters["fsyncdirs"] += 1
            return 0

        # ---- files --------------------------------------------------------------------------
        def create(self, path: str, mode: int, flags: int = 0) -> int:
            with self._mu:
                parent, name = self._parent(path)
                existing = parent.entries.get(name)
                if existing is not None:
                    if flags & os.O_EXCL:
                        raise fail(errno.EEXIST)
                    node = self.nodes[existing]
                    if flags & os.O_TRUNC:
                        self._truncate(node, 0)
                    return self._open_fh(node)
                node = self._new(False, mode & 0o7777)
                parent.entries[name] = node.ino
                node.links = 1
                parent.mtime = time.time_ns()
                return self._open_fh(node)

        def open(self, path: str, flags: int) -> int:
            with self._mu:
                node = self._resolve(path)
                if node.is_dir:
                    raise fail(errno.EISDIR)
                if flags & os.O_TRUNC:
                    self._truncate(node, 0)
                return self._open_fh(node)

        def release(self, path: str | None, fh: int) -> int:
            with self._mu:
                ino = self.handles.pop(fh, None)
                node = self.nodes.get(ino) if ino is not None else None
                if node is not None:
                    node.opens -= 1
                    self._maybe_forget(node)
            return 0

        def flush(self, path: str | None, fh: int) -> int:
            return 0

        def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
            with self._mu:
                node = self._node(path, fh)
                return bytes(node.data[offset : offset + size])

        def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
            with self._mu:
                node = self._node(path, fh)
                end = offset + len(data)
                old_len = len(node.data)
                if offset > old_len:
                    node.data.extend(bytes(offset - old_len))
                node.data[offset:end] = data
                _mark(node, min(offset, old_len), end)
                node.mtime = time.time_ns()
                self.counters["writes"] += 1
                self.counters["bytes_written"] += len(data)
                return len(data)

        def _truncate(self, node: _Node, length: int) -> None:
            old_len = len(node.data)
            if length < old_len:
                del node.data[length:]
                node.dirty = [(a, min(b, length)) for a, b in node.dirty if a < length]
            elif length > old_len:
                node.data.extend(bytes(length - old_len))
                _mark(node, old_len, length)
            node.mtime = time.time_ns()

        def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
            with self._mu:
                self._truncate(self._node(path, fh), length)
            return 0

        def _fail_writeback(self, node: _Node) -> None:
            """A failed write-back, as Linux does it: the error is reported once and the dirty
            pages are marked clean. "drop": their contents are dropped too, so reads see what
            is on disk (zeros past the durable length); "keep": the page cache keeps serving
            the new bytes although they never reached the disk."""
            if self.fail_fsync_pages == "drop":
                durable_path = self.backing / _DATA / str(node.ino)
                durable = durable_path.read_bytes() if durable_path.exists() else b""
                for a, b in node.dirty:
                    old = durable[a:b]
                    node.data[a:b] = old + bytes(b - a - len(old))
            node.dirty = []
            self.counters["failed_fsyncs"] += 1

        def fsync(self, path: str | None, datasync: int, fh: int) -> int:
            delay = self.fsync_delay
            if delay > 0:
                time.sleep(delay)
            with self._mu:
                node = self._node(path, fh)
            with node.fsync_lock:  # one fsync per file at a time, in order
                with self._mu:
                    if self.fail_fsyncs > 0 and node.dirty:
                        self.fail_fsyncs -= 1
                        self._fail_writeback(node)
                        raise fail(errno.EIO)
                    length = len(node.data)
                    pieces = [(a, bytes(node.data[a:b])) for a, b in sorted(node.dirty)]
                    node.dirty = []
                    self.counters["fsyncs"] += 1
                fd = os.open(self.backing / _DATA / str(node.ino), os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    os.ftruncate(fd, length)
                    for offset, chunk in pieces:
                        os.pwrite(fd, chunk[: max(0, length - offset)], offset)
                finally:
                    os.close(fd)
            return 0

        # ---- control ------------------------------------------------------------------------
        def control(self, request: dict[str, Any]) -> dict[str, Any]:
            cmd = request.get("cmd")
            if cmd == "ping":
                return {"ok": True}
            if cmd == "set":
                if "fsync_delay" in request:
                    self.fsync_delay = float(request["fsync_delay"])
                if "fail_fsyncs" in request:
                    pages = str(request.get("pages", "drop"))
                    if pages not in ("drop", "keep"):
                        return {"ok": False, "error": f"pages must be drop or keep, not {pages}"}
                    with self._mu:
                        self.fail_fsyncs = int(request["fail_fsyncs"])
                        self.fail_fsync_pages = pages
                return {"ok": True, "fsync_delay": self.fsync_delay}
            if cmd == "stats":
                with self._mu:
                    volatile_bytes = sum(
                        b - a for n in self.nodes.values() for a, b in n.dirty if not n.is_dir
                    )
                    volatile_dirs = sum(
                        n.is_dir and n.entries != n.durable_entries for n in self.nodes.values()
                    )
                    return {
                        "ok": True,
                        **self.counters,
                        "volatile_bytes": volatile_bytes,
                        "volatile_dirs": volatile_dirs,
                        "fsync_delay": self.fsync_delay,
                    }
            if cmd == "crash":
                self._crash(random.Random(int(request["seed"])))  # does not return
            return {"ok": False, "error": f"unknown command {cmd!r}"}

        def _crash(self, rng: random.Random) -> None:
            """A power cut where the disk had written back SOME un-fsynced state: each dirty
            512-byte sector of each file independently (probability 1/2), each file's new length
            or its durable one, and each directory's new entries or its durable ones (entries of
            one directory change together, as on a journaling filesystem). Then die."""
            self._mu.acquire()  # never released: nothing may change after the cut
            for node in self.nodes.values():
                if node.is_dir or not node.dirty:
                    continue
                fd = os.open(self.backing / _DATA / str(node.ino), os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    new_len = len(node.data)
                    length = new_len if rng.random() < 0.5 else os.fstat(fd).st_size
                    os.ftruncate(fd, length)
                    for a, b in node.dirty:
                        for sector in range(a - a % SECTOR, b, SECTOR):
                            end = min(sector + SECTOR, length)
                            if sector < end and rng.random() < 0.5:
                                os.pwrite(fd, bytes(node.data[sector:end]), sector)
                finally:
                    os.close(fd)
            for node in self.nodes.values():
                if node.is_dir and node.entries != node.durable_entries and rng.random() < 0.5:
                    node.durable_entries = dict(node.entries)
            self._save_tree()
            os._exit(0)

    return PowerOps()


def _serve_control(ops: Any, sock_path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(8)

    def handle(conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            for line in f:
                try:
                    reply = ops.control(json.loads(line))
                except Exception as exc:  # report, keep serving
                    reply = {"ok": False, "error": repr(exc)}
                f.write(json.dumps(reply).encode() + b"\n")
                f.flush()

    def loop() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def serve(backing: Path, mountpoint: Path, control: Path) -> None:
    import mfusepy

    ops = make_operations(backing)
    _serve_control(ops, control)
    mfusepy.FUSE(
        ops, str(mountpoint), foreground=True, nothreads=False, fsname="powerfs",
        hard_remove=True, attr_timeout=0, entry_timeout=0, negative_timeout=0,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Client side (the test process)
# --------------------------------------------------------------------------------------------


def fuse_available() -> str | None:
    """None when powerfs can run here, else the reason it cannot."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:  # no libfuse: mfusepy raises at import
        return f"mfusepy/libfuse unavailable: {exc}"
    return None


def _is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == target for line in f)


def _detach(path: Path) -> None:
    """Unmount ``path`` however it is (live, or with a dead server); never raise."""
    for argv in (["fusermount3", "-u", "-z", str(path)], ["umount", "-l", str(path)]):
        if not _is_mounted(path):
            return
        subprocess.run(argv, capture_output=True, check=False)


class PowerFS:
    """Mount powerfs at ``mountpoint`` over ``backing`` (a server process per mount)."""

    def __init__(self, backing: Path, mountpoint: Path, log: Path | None = None) -> None:
        self.backing = Path(backing)
        self.mountpoint = Path(mountpoint)
        self.control_path = self.backing.parent / f".{self.backing.name}.powerfs.sock"
        self.log_path = log or self.backing.parent / f"{self.backing.name}.powerfs.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.cuts = 0
        self.dropped_bytes = 0  # un-fsynced bytes dropped by all cuts so far (as last reported)

    def __enter__(self) -> PowerFS:
        self.mount()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def mount(self, timeout_seconds: float = 20.0) -> None:
        assert self.proc is None, "already mounted"
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--backing", str(self.backing),
             "--mountpoint", str(self.mountpoint), "--control", str(self.control_path)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"powerfs exited at mount:\n{self.log_path.read_text()}")
            if _is_mounted(self.mountpoint) and self.control_path.exists():
                try:
                    self.call({"cmd": "ping"})
                    return
                except OSError:
                    pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"powerfs did not mount in {timeout_seconds}s")

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.control_path))
            s.sendall(json.dumps(request).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        reply: dict[str, Any] = json.loads(buf)
        if not reply.get("ok"):
            raise RuntimeError(f"powerfs control {request}: {reply}")
        return reply

    def stats(self) -> dict[str, Any]:
        return self.call({"cmd": "stats"})

    def set_fsync_delay(self, seconds: float) -> None:
        self.call({"cmd": "set", "fsync_delay": seconds})

    def fail_fsyncs(self, count: int = 1, pages: str = "drop") -> None:
        """Make the next ``count`` file fsyncs that have dirty data fail with EIO, the Linux way
        (reported once, pages marked clean); ``pages`` "drop" or "keep" their new contents."""
        self.call({"cmd": "set", "fail_fsyncs": count, "pages": pages})

    def cut(self, partial_seed: int | None = None) -> dict[str, Any]:
        """Power loss: drop every un-fsynced byte and directory entry; the mount goes away.

        With ``partial_seed``, the disk is taken to have written back a random part of the
        un-fsynced state first (sectors, lengths, directories; see ``_crash``), which makes torn
        tails. Returns what was volatile just before (bytes, dirs), as reported by the server."""
        assert self.proc is not None, "not mounted"
        try:
            before = self.stats()
        except (OSError, RuntimeError, ValueError):
            before = {}
        if partial_seed is not None:
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                self.call({"cmd": "crash", "seed": partial_seed})  # the server dies answering
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None
        _detach(self.mountpoint)
        self.cuts += 1
        self.dropped_bytes += int(before.get("volatile_bytes", 0))
        return before

    def remount(self) -> None:
        """Cut power (if mounted) and mount the durable state again."""
        if self.proc is not None:
            self.cut()
        self.mount()

    def stop(self) -> None:
        """Tear down, whatever the state (safe in fixture teardown after a failure)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
            self.proc = None
        _detach(self.mountpoint)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backing", type=Path, required=True)
    p.add_argument("--mountpoint", type=Path, required=True)
    p.add_argument("--control", type=Path, required=True)
    a = p.parse_args()
    serve(a.backing, a.mountpoint, a.control)


if __name__ == "__main__":
    main()
