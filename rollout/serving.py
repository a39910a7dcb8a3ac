"""The fetch path: what an app server gets for (prompt, label) or (prompt, version).

A fetch resolves once (`rollout.entries`), then every server process reads the serialized
response from Redis. A warm fetch is one `MGET` of three keys:

    pr:kv:<sha256(secret)>         the API key's verdict: "r" may read, "n" may not (then its public id), "x"
                                   unknown/revoked
    pr:g:<prompt>                  the prompt's generation token
    pr:e:<prompt>:l:<label>        an entry: generation, status, ETag, experiment block, body
    pr:e:<prompt>:v:<number>

An entry is valid only while its generation equals the prompt's current one.
Anything that changes what a fetch returns (label move, rollback, new version,
retirement) sends `serving_changed` after commit, which sets a fresh generation:
every entry of that prompt is stale at once, in every process. A reader that
resolved from the database before the change writes its entry with a small Lua
script that checks the generation it read first, so it can never put a stale
payload back after the invalidation.

Without Redis (REDIS_URL unset, or unreachable) every fetch resolves from the
database: slower, still correct. There are no per-process caches of prompts.
An invalidation that cannot reach Redis is written down (`PendingInvalidation`)
and retried by beat every few seconds until it lands, so a rollback made while
Redis blinked is served within seconds of Redis answering again, not after the
entries' TTL.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, cast

import redis
from django.conf import settings
from django.utils import timezone

from promptreg.models import ApiKey, hash_secret
from rollout import hotcache
from rollout.entries import CAN_READ, UNKNOWN_KEY, Entry, key_verdict, resolve, verdict_for
from rollout.models import PendingInvalidation, PendingKeyVerdict

log = logging.getLogger(__name__)


ENTRY_TTL = 600  # seconds; a last bound on staleness, should an invalidation never reach Redis
KEY_TTL = 300
UNKNOWN_KEY_TTL = 30
REDIS_TIMEOUT = 0.25
RETRY_REDIS_AFTER = 1.0  # seconds to serve from the database after Redis failed, before trying it again


KEY_PREFIX = "pr:kv:"
BOOT_KEY = "pr:boot"  # the run id of the Redis server the cache was written to


# --- Redis ------------------------------------------------------------------------

_client: redis.Redis | None = None
_redis_down_until = 0.0
_recovery_lock = threading.Lock()
_WRITE_IF_CURRENT = """
if (redis.call('GET', KEYS[1]) or '') == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def client() -> redis.Redis | None:
    """The process's Redis client (a connection pool), or None in embedded mode."""
    global _client
    if not settings.REDIS_URL:
        return None
    if _client is None:
        _client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        )
    return _client


def _trusted_client(layer: hotcache.Listener) -> redis.Redis | None:
    """The client, unless Redis failed in the last few seconds (then don't wait on it per
    request) or a fault has not been recovered from (then Redis may hold answers from before
    a change whose invalidation could not reach it)."""
    if _redis_down_until and time.monotonic() < _redis_down_until:
        return None
    if layer.needs_recovery and not recover(layer):
        return None
    return client()


def _mark_down(exc: Exception) -> None:
    global _redis_down_until
    _redis_down_until = time.monotonic() + RETRY_REDIS_AFTER
    layer = hotcache.listener()
    if layer is not None:
        layer.fault()
    log.warning("Redis unavailable, serving from the database: %s", exc)


def recover(layer: hotcache.Listener) -> bool:
    """After a fault, before this process reads Redis again: land every invalidation still owed
    (`PendingInvalidation`, `PendingKeyVerdict`) and, if Redis restarted (perhaps from an old
    snapshot), drop whatever it holds. One request thread does it; the others read the database
    meanwhile. True once done."""
    if not _recovery_lock.acquire(blocking=False):
        return False
    try:
        faults = layer.faults
        r = client()
        assert r is not None, "only a process with Redis has a listener to recover"
        try:
            run_id = r.info("server")["run_id"]
            if r.get(BOOT_KEY) != run_id.encode():
                for keys in _batches(r.scan_iter("pr:*", count=1000)):
                    r.delete(*keys)
                r.set(BOOT_KEY, run_id)
            if invalidations_retry(r):
                layer.recovered(faults)
                return True
        except redis.RedisError as exc:
            _mark_down(exc)
        return False
    finally:
        _recovery_lock.release()


def _batches(keys: Iterable[bytes], size: int = 1000) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


_local = threading.local()


def _mget(r: redis.Redis, *keys: str) -> list[bytes | None]:
    """MGET on a connection of this thread's own: the hot path skips the pool's locking and
    redis-py's per-command wrappers (a third of a warm fetch's CPU). Holds no data."""
    connection: Any  # redis-py's Connection; its replies are untyped
    owner, connection = getattr(_local, "connection", (None, None))
    if owner is not r:
        connection = r.connection_pool.make_connection()
        _local.connection = (r, connection)
    try:
        connection.send_command("MGET", *keys)
        values: list[bytes | None] = connection.read_response()
        return values
    except BaseException:
        connection.disconnect()
        _local.connection = (None, None)
        raise


def _from_database(
    secret: str, name: str, label: str | None, version: int | None, resolver: Resolver
) -> tuple[bytes, Entry | None]:
    verdict = key_verdict(secret)
    return verdict, resolver(name, label, version) if verdict[:1] == CAN_READ else None


Resolver = Callable[[str, "str | None", "int | None"], Entry]


def fetch(
    secret: str, name: str, label: str | None, version: int | None, *, resolver: Resolver | None = None, view: str = ""
) -> tuple[bytes, Entry | None]:
    """The key's verdict (see `verdict_for`) and, if it may read, the entry: from this process's
    memory while it is sure to hear of changes, else from Redis in one round trip when warm,
    else from the database. Another route's answers (the Langfuse shape) are cached apart under
    `view`, resolved by its `resolver`, and invalidated with the prompt's generation all the same."""
    resolver = resolver or resolve
    layer = hotcache.listener()
    if layer is None:
        return _from_database(secret, name, label, version, resolver)
    secret_hash = hash_secret(secret)
    where = f"v:{version}" if version is not None else f"l:{label}"
    key_k, gen_k, entry_k = KEY_PREFIX + secret_hash, "pr:g:" + name, f"pr:e:{name}:{view}{where}"
    key_name, prompt_name = "k:" + secret_hash, "p:" + name
    if layer.sure():
        verdict = layer.get(key_k, key_name)
        if verdict is not None and verdict[:1] != CAN_READ:
            return verdict, None
        entry = layer.get(entry_k, prompt_name) if verdict is not None else None
        if entry is not None:
            return verdict, entry
    r = _trusted_client(layer)
    if r is None:
        return _from_database(secret, name, label, version, resolver)
    key_tag, entry_tag = layer.tag(key_name), layer.tag(prompt_name)  # before reading: see hotcache
    try:
        verdict, generation, raw = _mget(r, key_k, gen_k, entry_k)
        if verdict is None:
            verdict = key_verdict(secret)
            cache_verdict(r, key_k, verdict)
        layer.put(key_k, key_tag, verdict)
        if verdict[:1] != CAN_READ:
            return verdict, None
        if generation is None:
            generation = _first_generation(r, gen_k)
            if generation is None:
                return verdict, resolver(name, label, version)
        if raw is not None:
            entry_generation, entry = Entry.unpack(raw)
            if entry_generation == generation:
                layer.put(entry_k, entry_tag, entry)
                return verdict, entry
        entry = resolver(name, label, version)
        if store(r, gen_k, entry_k, generation, entry):
            layer.put(entry_k, entry_tag, entry)
        return verdict, entry
    except redis.RedisError as exc:
        _mark_down(exc)
        return _from_database(secret, name, label, version, resolver)


def _first_generation(r: redis.Redis, gen_k: str) -> bytes | None:
    """A prompt without a generation in Redis gets a fresh random one (never the empty value), so
    that a generation never comes back: a reader that read one before a wipe (`recover`) and
    resolved before a change can never store its answer after it."""
    token = secrets.token_hex(8).encode()
    if r.set(gen_k, token, nx=True):
        return token
    return cast("bytes | None", r.get(gen_k))  # the client does not decode responses


def cache_verdict(r: redis.Redis, key_k: str, verdict: bytes) -> bool:
    """Cache what a reader found in the database; NX, so that a change committed meanwhile
    (its verdict is written by `remember_api_key`) is never overwritten by an older look-up."""
    return bool(r.set(key_k, verdict, ex=KEY_TTL if verdict != UNKNOWN_KEY else UNKNOWN_KEY_TTL, nx=True))


def store(r: redis.Redis, gen_k: str, entry_k: str, generation: bytes, entry: Entry) -> bool:
    """Cache `entry` only if the prompt is still at the generation read before resolving it."""
    return bool(r.eval(_WRITE_IF_CURRENT, 2, gen_k, entry_k, generation, entry.pack(generation), ENTRY_TTL))


# --- Invalidation ---------------------------------------------------------------
#
# A change first writes down that its invalidation is owed (a row in the database), then
# sets the new value in Redis and publishes it on the invalidation channel in one MULTI, then
# deletes the row. So until Redis has the change, the row exists: a process recovering from a
# fault (`recover`) lands it before it reads Redis again, whenever Redis came back.


# A change's own call tries Redis again with longer timeouts before it gives up (~2 s in all):
# a writer slowed down on its side must not return while Redis, reachable by every reader, still
# holds the old answer; a real stall that long makes every reader see a fault (`hotcache.STALL`).
PATIENT_TIMEOUTS = (0.5, 1.0)


def _announce(r: redis.Redis, key: str, value: bytes | str, ttl: int | None, message: str, *, patient: bool) -> None:
    pool = r.connection_pool
    patience = [
        redis.Redis(
            connection_pool=redis.ConnectionPool(
                connection_class=pool.connection_class,
                **{**pool.connection_kwargs, "socket_timeout": t, "socket_connect_timeout": t},
            )
        )
        for t in (PATIENT_TIMEOUTS if patient else ())
    ]
    clients = [r, *patience]
    for attempt, c in enumerate(clients):
        try:
            pipe = c.pipeline(transaction=True)
            pipe.set(key, value, ex=ttl)
            pipe.publish(hotcache.invalidation_channel(settings.REDIS_URL), message)
            pipe.execute()
            return
        except redis.RedisError:
            if attempt == len(clients) - 1:
                raise
        finally:
            if c is not r:
                c.close()


def _new_generation(name: str, r: redis.Redis | None = None, *, patient: bool = False) -> bool:
    """Give the prompt a fresh generation: every cached entry of it is stale, in every process."""
    r = r or client()
    if r is None:
        return True
    try:
        _announce(r, "pr:g:" + name, secrets.token_hex(8), None, "p:" + name, patient=patient)
        return True
    except redis.RedisError as exc:
        log.error("Could not invalidate the serving cache for %r (retried by beat): %s", name, exc)
        _mark_down(exc)
        return False


def _new_verdict(secret_hash: str, r: redis.Redis | None = None, *, patient: bool = False) -> bool:
    """Write a key's verdict as of the database now. A plain SET overrides whatever a concurrent
    reader cached from before the change (readers use NX)."""
    r = r or client()
    if r is None:
        return True
    key = ApiKey.objects.filter(secret_hash=secret_hash).first()
    try:
        _announce(r, KEY_PREFIX + secret_hash, verdict_for(key), KEY_TTL, "k:" + secret_hash, patient=patient)
        return True
    except redis.RedisError as exc:
        log.error("Could not update a cached API key verdict (retried by beat): %s", exc)
        _mark_down(exc)
        return False


_Pending = TypeVar("_Pending", PendingInvalidation, PendingKeyVerdict)


def _owe_and_land(model: type[_Pending], field: str, value: str, land: Callable[..., bool]) -> None:
    if client() is None:
        return
    since = timezone.now()
    # One statement, so concurrent changes of one prompt cannot collide on the unique name; the
    # newest `since` wins, and only the change that wrote it deletes the row.
    model.objects.bulk_create(
        [model(**{field: value}, since=since)], update_conflicts=True, unique_fields=[field], update_fields=["since"]
    )
    if land(value, patient=True):
        model.objects.filter(**{field: value}, since=since).delete()


def invalidate_prompt(name: str) -> None:
    """Invalidate now or, when Redis cannot be reached, leave the debt written down for retries."""
    _owe_and_land(PendingInvalidation, "prompt_name", name, _new_generation)


def remember_api_key(secret_hash: str) -> None:
    """After a key changed (issued, scopes, revoked, deleted): its verdict everywhere, or the debt."""
    _owe_and_land(PendingKeyVerdict, "secret_hash", secret_hash, _new_verdict)


def invalidations_retry(r: redis.Redis | None = None) -> bool:
    """Land every invalidation and key verdict that has not reached Redis yet (beat runs this, and
    a process recovering from a fault); True if all landed. A change that failed again meanwhile
    moved `since` on, so its record stays."""
    for model, field, land in (
        (PendingInvalidation, "prompt_name", _new_generation),
        (PendingKeyVerdict, "secret_hash", _new_verdict),
    ):
        for pending in model.objects.all():
            if not land(getattr(pending, field), r):
                return False  # Redis is not answering: the rest waits for the next try
            model.objects.filter(pk=pending.pk, since=pending.since).delete()
    return True


def forget_connections() -> None:
    """Drop the Redis client, the fault back-off and the per-process copy (settings naming them changed)."""
    global _client, _redis_down_until
    _client, _redis_down_until = None, 0.0
    hotcache.reset()
