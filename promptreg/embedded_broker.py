"""The embedded Celery broker: kombu's filesystem transport, with an atomic hand-off.

Why not kombu's own filesystem transport: its `_put` creates the message file
under its final name in the queue folder, *then* locks and writes it; its `_get`
lists the folder and moves the file away without taking the lock (flock is
advisory, a rename ignores it). A consumer polling between the create and the
write gets an empty (or partial) file, `json.loads` raises `JSONDecodeError`,
which is not a connection error, and the Celery worker stops with "Unrecoverable
error". The message is lost with it: the writer goes on writing into a file the
reader has already deleted. (`tests/bench/broker_race.py` reproduces it.) Its
`_get` also moves claimed files to the system temporary folder, a copy rather
than a rename when /tmp is another filesystem, and deletes them at once, so a
worker killed while holding messages loses them.

Here a message is written under a temporary name in `tmp/` and renamed into the
queue folder (`os.replace`: readers see the whole file or nothing). A consumer
claims a message by renaming it into its own `unacked/<consumer>/` folder (on the
same filesystem, so exactly one consumer wins) and deletes it only when the task
is acknowledged. Each consumer holds an exclusive `flock` on `unacked/<consumer>.lock`
for its lifetime; the kernel drops that lock when the process dies, however it
dies, so other consumers (or the next worker) move a dead consumer's messages back
into the queue, under their original names and so in their original order.
Delivery is therefore at least once, as with Redis; tasks here are idempotent.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from queue import Empty

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

RECOVER_EVERY_SECONDS = 30.0


class Channel(filesystem.Channel):
    _claimed: dict[str, Path]
    _lock_fd: int | None = None
    _recovered_at = float("-inf")

    def __init__(self, *args, **kwargs):
        self._claimed = {}
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------ folders

    def _folder(self, name: str) -> Path:
        """`tmp`, `unacked` and `bad` live beside the queue folder, on the same filesystem (renames stay atomic)."""
        folder = Path(self.transport_options.get(f"{name}_folder") or Path(self.data_folder_in).parent / name)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _write_atomically(self, target: Path, data: bytes, *, replace: bool = True) -> bool:
        tmp = self._folder("tmp") / f"{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(data)
        try:
            if replace:
                os.replace(tmp, target)
                return True
            try:
                os.link(tmp, target)  # fails if the target exists: first writer wins, whole
                return True
            except FileExistsError:
                return False
        finally:
            tmp.unlink(missing_ok=True)

    # ------------------------------------------------------------ publishing

    def _put(self, queue, payload, **kwargs):  # type: ignore[override]  # kombu-stubs lag kombu's own filesystem signature
        # Nanoseconds since the epoch, zero-padded: names sort in publishing order, across processes and reboots.
        name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"
        try:
            self._write_atomically(Path(self.data_folder_out) / name, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to the queue folder") from exc

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        # kombu creates a new exchange table empty and then writes it; a reader in
        # between would find an empty file. Publish the first table whole instead.
        file = self._exchange_file(exchange)  # type: ignore[attr-defined]  # kombu-stubs lag kombu (5.4+ has it)
        if not file.exists():
            self.control_folder.mkdir(parents=True, exist_ok=True)
            table = [filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")]
            if self._write_atomically(file, str_to_bytes(dumps(table)), replace=False):
                return
        super()._queue_bind(exchange, routing_key, pattern, queue)

    # ------------------------------------------------------------ consuming

    def _consumer_folder(self) -> Path:
        """This channel's folder of claimed messages, created with its lock on first use."""
        unacked = self._folder("unacked")
        if self._lock_fd is None:
            consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            # Lock under a temporary name, then rename: a lock file others can see is always held.
            pending = unacked / f".{consumer}.lock"
            fd = os.open(pending, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            (unacked / consumer).mkdir()
            os.rename(pending, unacked / f"{consumer}.lock")
            self._lock_fd, self._mine = fd, unacked / consumer
        return self._mine

    def _recover_orphans(self) -> int:
        """Move the claimed messages of consumers that died back into the queue; returns how many."""
        self._recovered_at = time.monotonic()
        unacked, queue_folder, moved = self._folder("unacked"), Path(self.data_folder_in), 0
        for lock_path in unacked.glob("*.lock"):
            if lock_path.name.startswith("."):
                continue
            try:
                fd = os.open(lock_path, os.O_RDWR)
            except FileNotFoundError:
                continue  # another consumer recovered it meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is alive
                folder = lock_path.with_suffix("")
                if folder.is_dir():
                    for message in folder.iterdir():
                        os.rename(message, queue_folder / message.name)
                        moved += 1
                    folder.rmdir()
                lock_path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        if moved:
            log.warning("Requeued %d message(s) claimed by a worker that died before acknowledging them.", moved)
        return moved

    def _get(self, queue):  # type: ignore[override]  # kombu-stubs lag kombu's own filesystem signature
        """Claim the oldest message of `queue` by renaming it into this consumer's folder."""
        mine = self._consumer_folder()
        if time.monotonic() - self._recovered_at > RECOVER_EVERY_SECONDS:
            self._recover_orphans()
        queue_folder, wanted = Path(self.data_folder_in), f"{queue}.msg"
        for name in sorted(os.listdir(queue_folder)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = mine / name
            try:
                os.rename(queue_folder / name, claimed)
            except FileNotFoundError:
                continue  # another consumer was first
            try:
                payload = loads(claimed.read_bytes())
                tag = payload["properties"]["delivery_tag"]
            except (ValueError, KeyError, TypeError):
                # Not a message this transport wrote (e.g. a leftover of kombu's own transport): set it aside.
                os.replace(claimed, self._folder("bad") / name)
                log.error("Set aside an unreadable broker message: %s", self._folder("bad") / name)
                continue
            self._claimed[tag] = claimed
            return payload
        raise Empty()

    def _release(self, delivery_tag) -> None:
        claimed = self._claimed.pop(delivery_tag, None)
        if claimed is not None:
            claimed.unlink(missing_ok=True)

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        self._release(delivery_tag)

    def basic_reject(self, delivery_tag, requeue=False):
        super().basic_reject(delivery_tag, requeue=requeue)  # requeue: a copy goes back through _restore
        self._release(delivery_tag)

    def _restore(self, message):
        # Unacknowledged messages at shutdown, or a rejected one: a fresh copy is queued, the claim is dropped.
        super()._restore(message)
        self._release(message.delivery_tag)

    def close(self):
        super().close()  # restores what is still unacknowledged
        if self._lock_fd is not None:
            # Anything left (a restore failed) stays claimed until another consumer recovers it.
            if not any(self._mine.iterdir()):
                self._mine.rmdir()
                self._mine.with_suffix(".lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None


class Transport(filesystem.Transport):
    Channel = Channel

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        # kombu's filesystem transport caches bindings in one class-wide state, so a
        # second connection to another folder in the same process would skip writing
        # its exchange table. The tables live in files; a per-connection cache is enough.
        self.state = virtual.BrokerState()

    @property
    def default_connection_params(self):
        return {"port": self.default_port}  # no host: kombu would warn "No hostname was supplied" at every connection
